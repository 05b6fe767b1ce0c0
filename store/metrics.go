package store

import "github.com/prometheus/client_golang/prometheus"

// metrics describe the message writer: how many messages each committed
// batch held, how long storing a batch and waiting for it took, and how
// many fsync/fdatasync calls the store caused (the price of durability
// that group commit shares out).
type metrics struct {
	batchMessages prometheus.Histogram
	commitSeconds prometheus.Histogram
	appendSeconds prometheus.Histogram
	syncs         prometheus.Counter
	checkpoints   prometheus.Counter
	checkpointSec prometheus.Histogram
}

// latencyBuckets span a sync on a fast disk (0.1 ms) to a stalled one.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1}

func newMetrics() *metrics {
	return &metrics{
		batchMessages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cstalk_store_append_batch_messages",
			Help:    "Messages stored per committed group-commit batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cstalk_store_commit_seconds",
			Help:    "Time the message writer took to store one batch: its statements and the commit with its sync.",
			Buckets: latencyBuckets,
		}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cstalk_store_append_seconds",
			Help:    "Time from a message queued for the writer to its answer: the wait for the batch ahead, the batch's gathering and its commit.",
			Buckets: latencyBuckets,
		}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cstalk_store_syncs_total",
			Help: "fsync/fdatasync calls of the embedded database: one per committed batch, two per checkpoint that copied pages (0 on MySQL, which syncs in its own process).",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cstalk_store_checkpoints_total",
			Help: "WAL checkpoints of the embedded database that copied pages into it.",
		}),
		checkpointSec: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cstalk_store_checkpoint_seconds",
			Help:    "Time one WAL checkpoint of the embedded database took, its syncs included.",
			Buckets: latencyBuckets,
		}),
	}
}

// Collectors returns the store's metrics, for the server's registry.
func (s *Store) Collectors() []prometheus.Collector {
	m := s.metrics
	return []prometheus.Collector{m.batchMessages, m.commitSeconds, m.appendSeconds, m.syncs, m.checkpoints, m.checkpointSec}
}
