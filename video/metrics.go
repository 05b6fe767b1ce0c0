package video

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	rooms            *prometheus.GaugeVec   // frontend
	participants     *prometheus.GaugeVec   // frontend
	connections      *prometheus.GaugeVec   // transport
	peerConnections  *prometheus.GaugeVec   // role: publish|subscribe
	publishedTracks  *prometheus.GaugeVec   // kind
	receivedPackets  *prometheus.CounterVec // kind
	receivedBytes    *prometheus.CounterVec // kind
	forwardedPackets *prometheus.CounterVec // kind
	forwardedBytes   *prometheus.CounterVec // kind
	keyframeRequests prometheus.Counter
	errors           *prometheus.CounterVec // frontend, code
	eventsDropped    prometheus.Counter
	// relayed counts this node's signaling connections relayed to the
	// node hosting their room.
	relayed prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "cstalk", "video"
	m := &metrics{
		rooms: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "rooms", Help: "Open video rooms by signaling front end (signal, knowledgetalk)."}, []string{"frontend"}),
		participants: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "participants", Help: "Participants in video rooms by signaling front end, those within the reconnect grace included."}, []string{"frontend"}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "signaling_connections", Help: "Open signaling connections by transport."}, []string{"transport"}),
		peerConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peer_connections", Help: "Open WebRTC peer connections by role (publish, subscribe)."}, []string{"role"}),
		publishedTracks: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "published_tracks", Help: "Tracks being received from publishers, by kind."}, []string{"kind"}),
		receivedPackets: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "received_packets_total", Help: "RTP packets received from publishers."}, []string{"kind"}),
		receivedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "received_bytes_total", Help: "RTP bytes received from publishers; rate()*8 is the inbound bitrate."}, []string{"kind"}),
		forwardedPackets: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "forwarded_packets_total", Help: "RTP packets forwarded to subscribers."}, []string{"kind"}),
		forwardedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "forwarded_bytes_total", Help: "RTP bytes forwarded to subscribers; rate()*8 is the outbound bitrate."}, []string{"kind"}),
		keyframeRequests: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "keyframe_requests_total", Help: "PLIs sent to publishers (subscriber requests and joins, merged)."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "signaling_errors_total", Help: "Error messages sent to clients, by front end and code."}, []string{"frontend", "code"}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "events_dropped_total", Help: "Room events dropped because the event receiver fell behind."}),
		relayed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "relayed_connections", Help: "Signaling connections of this node relayed to the node hosting their room."}),
	}
	for _, c := range []prometheus.Collector{m.rooms, m.participants, m.connections, m.peerConnections,
		m.publishedTracks, m.receivedPackets, m.receivedBytes, m.forwardedPackets, m.forwardedBytes,
		m.keyframeRequests, m.errors, m.eventsDropped, m.relayed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("video: register metrics: %w", err)
		}
	}
	return m, nil
}
