package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What cstalk's /metrics says about its group commit and its Go runtime.
const (
	metricBatchMessages = "cstalk_store_append_batch_messages" // histogram: messages per committed batch
	metricSyncs         = "cstalk_store_syncs_total"           // fsync/fdatasync calls the store caused
	metricMallocs       = "go_memstats_mallocs_total"
	metricAllocBytes    = "go_memstats_alloc_bytes_total"
	metricGoroutines    = "go_sched_goroutines_created_goroutines_total"
)

// storeCounters are the server's cumulative figures at one moment.
type storeCounters struct {
	batches, messages, syncs     float64
	mallocs, allocBytes, created float64
}

func (a storeCounters) minus(b storeCounters) storeCounters {
	return storeCounters{batches: a.batches - b.batches, messages: a.messages - b.messages, syncs: a.syncs - b.syncs,
		mallocs: a.mallocs - b.mallocs, allocBytes: a.allocBytes - b.allocBytes, created: a.created - b.created}
}

// scrapeStore reads the store's counters from a cstalk /metrics endpoint.
func scrapeStore(ctx context.Context, metricsURL string) (storeCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return storeCounters{}, fmt.Errorf("metrics %s: %w", metricsURL, err)
	}
	// Text format: the parser below reads it, whatever the server prefers.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return storeCounters{}, fmt.Errorf("metrics %s: %w", metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return storeCounters{}, fmt.Errorf("metrics %s: HTTP %d", metricsURL, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return storeCounters{}, fmt.Errorf("metrics %s: %w", metricsURL, err)
	}
	var c storeCounters
	f, ok := families[metricBatchMessages]
	if !ok {
		return storeCounters{}, fmt.Errorf("metrics %s: no %s (a cstalk without store metrics)", metricsURL, metricBatchMessages)
	}
	for _, m := range f.GetMetric() {
		c.batches += float64(m.GetHistogram().GetSampleCount())
		c.messages += m.GetHistogram().GetSampleSum()
	}
	c.syncs = sumCounter(families[metricSyncs])
	c.mallocs = sumCounter(families[metricMallocs])
	c.allocBytes = sumCounter(families[metricAllocBytes])
	c.created = sumCounter(families[metricGoroutines])
	return c, nil
}

func sumCounter(f *dto.MetricFamily) float64 {
	var sum float64
	for _, m := range f.GetMetric() {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// storeFigures fills in what the store did over the measured window.
func (r *loadResult) storeFigures(d storeCounters) {
	if d.batches <= 0 || d.messages <= 0 {
		return
	}
	r.StoredMessages = int64(d.messages)
	r.BatchMean = d.messages / d.batches
	r.SyncsPerMessage = d.syncs / d.messages
	r.AllocsPerMessage = d.mallocs / d.messages
	r.AllocKiBPerMessage = d.allocBytes / 1024 / d.messages
	r.GoroutinesPerMessage = d.created / d.messages
}
