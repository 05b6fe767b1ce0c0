package redisbus

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the bus's Stats to Prometheus, labelled bus=name (a
// node runs one bus per purpose under its own prefix). The figures are
// read at each scrape; nothing is counted twice.
func (b *Bus) Collector(name string) prometheus.Collector {
	labels := prometheus.Labels{"bus": name}
	desc := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc("cstalk_bus_"+metric, help, nil, labels)
	}
	return &collector{bus: b,
		published:  desc("published_total", "Messages this node handed to Redis."),
		errors:     desc("publish_errors_total", "Publishes Redis did not confirm."),
		roundTrips: desc("publish_round_trips_total", "Round trips to Redis that carried batched publishes."),
		received:   desc("received_total", "Messages of other nodes read from Redis."),
		delivered:  desc("delivered_total", "Messages of other nodes passed to this node's subscribers."),
		own:        desc("own_dropped_total", "This node's own messages back from Redis, dropped (delivered locally already)."),
		reconnects: desc("reconnects_total", "Recoveries of the pub/sub connection."),
		topics:     desc("topics", "Topics this node subscribes to in Redis."),
	}
}

type collector struct {
	bus                                                                 *Bus
	published, errors, roundTrips, received, delivered, own, reconnects *prometheus.Desc
	topics                                                              *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.published, c.errors, c.roundTrips, c.received, c.delivered, c.own, c.reconnects, c.topics} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.bus.Stats()
	for _, m := range []struct {
		desc  *prometheus.Desc
		value uint64
	}{
		{c.published, s.Published}, {c.errors, s.PublishErrors}, {c.roundTrips, s.PublishPipelines},
		{c.received, s.Received}, {c.delivered, s.Delivered}, {c.own, s.OwnDropped}, {c.reconnects, s.Reconnects},
	} {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.value))
	}
	ch <- prometheus.MustNewConstMetric(c.topics, prometheus.GaugeValue, float64(s.Topics))
}
