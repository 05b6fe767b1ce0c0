package redisbus

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the bus's Stats to Prometheus, labelled bus=name (a
// node runs one bus per purpose under its own prefix). The figures are
// read at each scrape; nothing is counted twice.
func (b *Bus) Collector(name string) prometheus.Collector {
	labels := prometheus.Labels{"bus": name}
	counter := func(metric, help string, value func(Stats) uint64) statMetric {
		return statMetric{prometheus.NewDesc("cstalk_bus_"+metric, help, nil, labels), prometheus.CounterValue,
			func(s Stats) float64 { return float64(value(s)) }}
	}
	return &collector{bus: b, metrics: []statMetric{
		counter("published_total", "Messages this node handed to Redis.", func(s Stats) uint64 { return s.Published }),
		counter("publish_errors_total", "Publishes Redis did not confirm.", func(s Stats) uint64 { return s.PublishErrors }),
		counter("publish_round_trips_total", "Round trips to Redis that carried batched publishes.", func(s Stats) uint64 { return s.PublishPipelines }),
		counter("received_total", "Messages of other nodes read from Redis.", func(s Stats) uint64 { return s.Received }),
		counter("delivered_total", "Messages of other nodes passed to this node's subscribers.", func(s Stats) uint64 { return s.Delivered }),
		counter("own_dropped_total", "This node's own messages back from Redis, dropped (delivered locally already).", func(s Stats) uint64 { return s.OwnDropped }),
		counter("reconnects_total", "Recoveries of the pub/sub connection.", func(s Stats) uint64 { return s.Reconnects }),
		{prometheus.NewDesc("cstalk_bus_topics", "Topics this node subscribes to in Redis.", nil, labels), prometheus.GaugeValue,
			func(s Stats) float64 { return float64(s.Topics) }},
	}}
}

// statMetric is one metric and the figure of Stats it reports.
type statMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(Stats) float64
}

type collector struct {
	bus     *Bus
	metrics []statMetric
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect reads Stats once, so one scrape's figures are one snapshot.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.bus.Stats()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
