package store

import "github.com/prometheus/client_golang/prometheus"

// metrics describe the message writer: how many messages each committed
// batch held, and how many fsync/fdatasync calls the store caused (the
// price of durability that group commit shares out).
type metrics struct {
	batchMessages prometheus.Histogram
	syncs         prometheus.Counter
	checkpoints   prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		batchMessages: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cstalk_store_append_batch_messages",
			Help:    "Messages stored per committed group-commit batch.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cstalk_store_syncs_total",
			Help: "fsync/fdatasync calls of the embedded database: one per committed batch, two per checkpoint that copied pages (0 on MySQL, which syncs in its own process).",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cstalk_store_checkpoints_total",
			Help: "WAL checkpoints of the embedded database that copied pages into it.",
		}),
	}
}

// Collectors returns the store's metrics, for the server's registry.
func (s *Store) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.batchMessages, s.metrics.syncs, s.metrics.checkpoints}
}
