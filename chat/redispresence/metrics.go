package redispresence

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	healthy  prometheus.Gauge
	errors   prometheus.Counter
	rewrites prometheus.Counter
	// sweptNodes counts dead nodes whose connections this node announced gone.
	sweptNodes prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, p *Presence) (*metrics, error) {
	m := &metrics{
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cstalk", Subsystem: "presence", Name: "redis_up",
			Help: "1 while cluster-wide presence is in line with Redis, 0 while this node serves its own connections only.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cstalk", Subsystem: "presence", Name: "redis_errors_total",
			Help: "Failed presence calls to Redis.",
		}),
		rewrites: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cstalk", Subsystem: "presence", Name: "rewrites_total",
			Help: "Rooms whose entries of this node were rewritten (after an outage, a stall or a Redis restart).",
		}),
	}
	m.sweptNodes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "cstalk", Subsystem: "presence", Name: "dead_nodes_swept_total",
		Help: "Nodes that died without leaving, whose connections this node announced gone.",
	})
	attendees := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "cstalk", Subsystem: "presence", Name: "local_attendees",
		Help: "Connections of this node present in rooms.",
	}, func() float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := 0
		for _, room := range p.local {
			n += len(room)
		}
		return float64(n)
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.healthy, m.errors, m.rewrites, m.sweptNodes, attendees} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("redispresence: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
