package broker

import (
	"fmt"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections   *prometheus.GaugeVec
	subscriptions prometheus.Gauge
	unfinished    prometheus.Gauge
	framesInVec   *prometheus.CounterVec
	framesIn      map[string]prometheus.Counter
	framesOut     [outCommands]prometheus.Counter
	errors        *prometheus.CounterVec
	latency       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "cstalk", Subsystem: "broker", Name: "connections",
			Help: "Open STOMP connections by transport.",
		}, []string{"transport"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cstalk", Subsystem: "broker", Name: "subscriptions",
			Help: "Active STOMP subscriptions on this node.",
		}),
		unfinished: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cstalk", Subsystem: "broker", Name: "unfinished_frame_bytes",
			Help: "Bytes held by the frames that have begun to arrive but not ended, all connections together.",
		}),
		framesInVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cstalk", Subsystem: "broker", Name: "frames_in_total",
			Help: "STOMP frames received, by command.",
		}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cstalk", Subsystem: "broker", Name: "errors_total",
			Help: "Connections ended or frames refused, by kind.",
		}, []string{"kind"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "cstalk", Subsystem: "broker", Name: "fanout_latency_seconds",
			Help:    "Time from publish (on any node) to the write of a MESSAGE frame.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	out := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cstalk", Subsystem: "broker", Name: "frames_out_total",
		Help: "STOMP frames written, by command (HEARTBEAT for heart-beat EOLs).",
	}, []string{"command"})
	for cmd := range outCommands {
		m.framesOut[cmd] = out.WithLabelValues(cmd.String())
	}
	m.framesIn = make(map[string]prometheus.Counter)
	for _, cmd := range []string{frame.CONNECT, frame.STOMP, frame.SEND, frame.SUBSCRIBE, frame.UNSUBSCRIBE,
		frame.ACK, frame.NACK, frame.BEGIN, frame.COMMIT, frame.ABORT, frame.DISCONNECT} {
		m.framesIn[cmd] = m.framesInVec.WithLabelValues(cmd)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.connections, m.subscriptions, m.unfinished, m.framesInVec, out, m.errors, m.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("broker: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) frameIn(cmd string) {
	if c, ok := m.framesIn[cmd]; ok {
		c.Inc()
	}
}
