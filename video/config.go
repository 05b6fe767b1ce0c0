package video

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Config holds every setting of the signaling front end and the SFU. The
// zero value is not usable; start from DefaultConfig and override.
type Config struct {
	// SockJSURL is the sockjs-client script SockJS's iframe transports load
	// for /signal: a path on this host by default, never a CDN.
	SockJSURL string

	// SockJSAnyAddress lets any client address use a /signal SockJS
	// session's HTTP transports; by default a session belongs to the
	// address that opened it (broker.SessionOwners).
	SockJSAnyAddress bool

	// Language of error messages sent to clients: "ko" (default) or "en".
	// A connection may ask for English with ?lang=en or Accept-Language: en.
	Language string

	// MaxMessageBytes caps one inbound signaling message; larger ones get
	// an error and are dropped before they are parsed.
	MaxMessageBytes int
	// MaxSDPBytes caps an SDP offer inside a message.
	MaxSDPBytes int
	// MaxCandidatesPerPeer caps the remote ICE candidates one peer
	// connection accepts, queued ones included.
	MaxCandidatesPerPeer int
	// MaxSubscriptions caps the peer connections one participant opens to
	// receive others.
	MaxSubscriptions int
	// MaxParticipants and MaxPublishers are per room.
	MaxParticipants int
	MaxPublishers   int
	// MessageRate and MessageBurst bound what one connection may ask per
	// second (a token bucket); an offer or a join costs OfferCost messages
	// because each builds a peer connection or calls the authorizer.
	MessageRate  float64
	MessageBurst float64
	OfferCost    float64
	// SendQueue bounds each connection's outbound messages; a client that
	// does not drain it is disconnected.
	SendQueue int
	// WriteTimeout bounds one write to a signaling socket.
	WriteTimeout time.Duration
	// PingInterval is how often a WebSocket is pinged (or a SockJS
	// heart-beat sent); a socket silent for three intervals is dropped.
	PingInterval time.Duration
	// JoinTimeout is how long a new connection may stay without joining.
	JoinTimeout time.Duration
	// AuthTimeout bounds one Authorizer call.
	AuthTimeout time.Duration
	// ReconnectGrace is how long a participant whose socket dropped keeps
	// its place; a join with the same token in that time resumes it.
	ReconnectGrace time.Duration

	// VideoCodec is the one video codec every publisher and subscriber
	// uses: "VP8" (default), "H264" or "VP9". One codec for everyone means
	// the SFU forwards without transcoding.
	VideoCodec string
	// KeyframeInterval is the shortest time between two keyframe requests
	// the SFU sends one publisher; requests in between are merged.
	KeyframeInterval time.Duration

	// UDPPortMin and UDPPortMax bound the ports of host candidates (one
	// port per peer connection). Zero means any port.
	UDPPortMin, UDPPortMax uint16
	// UDPMuxPort, when not zero, serves every peer connection on this one
	// UDP port instead of the range (simplest behind a load balancer).
	UDPMuxPort int
	// NAT1To1IPs are the public addresses announced in host candidates
	// when the server sits behind 1:1 NAT (a cloud VM, a Kubernetes node).
	NAT1To1IPs []string
	// Interfaces restricts candidate gathering to these network interface
	// names; empty means all.
	Interfaces []string
	// IncludeLoopback gathers loopback candidates (tests, one-machine
	// development).
	IncludeLoopback bool
	// ICEDisconnectedTimeout and ICEFailedTimeout tune how fast a peer
	// connection that stops answering is noticed and dropped.
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration

	// STUNURLs are handed to clients (e.g. "stun:stun.example.com:3478").
	STUNURLs []string
	// TURNURLs are external TURN servers (coturn with use-auth-secret)
	// sharing TURNSecret; clients get time-limited credentials for them.
	TURNURLs []string
	// TURNSecret signs TURN credentials (REST API scheme: username
	// "{expiry}:{userId}", password base64(HMAC-SHA1(secret, username))).
	TURNSecret string
	// TURNCredentialTTL is how long handed-out TURN credentials stay valid.
	TURNCredentialTTL time.Duration
	// TURN configures the embedded TURN server.
	TURN TURNConfig

	// Placement, when set, puts each room of /signal on one node of a
	// cluster; a join on another node is relayed to the room's node.
	Placement Placement
	// RelaySecret authenticates relayed signaling between nodes: the same
	// on every node, required with Placement.
	RelaySecret []byte

	// OnEvent, if set, receives room events (joins, leaves, rooms opened
	// and closed) one at a time in order, on a goroutine owned by the
	// server, so a slow receiver never stalls signaling.
	OnEvent func(Event)
	// Now is the clock (tests inject their own); nil means time.Now.
	Now func() time.Time
}

// TURNConfig is the embedded TURN server (pion/turn). It relays media for
// clients whose network blocks direct UDP to the SFU.
type TURNConfig struct {
	Enabled bool
	// ListenAddr is the UDP address the TURN server listens on.
	ListenAddr string
	// PublicIP is the address relayed candidates carry and clients dial;
	// required when Enabled.
	PublicIP string
	// Realm of the long-term credentials.
	Realm string
	// RelayPortMin and RelayPortMax bound the relay ports.
	RelayPortMin, RelayPortMax uint16
	// StaticUsers are fixed username/password pairs accepted beside the
	// expiring REST credentials, for clients that keep one TURN user in
	// their configuration (the deployed KnowledgeTalk web client does).
	// They never expire: give them only to such clients, and rotate them
	// by changing the configuration.
	StaticUsers map[string]string
}

// DefaultConfig returns settings fit for one node on a public address.
func DefaultConfig() Config {
	return Config{
		SockJSURL:              "/assets/sockjs.min.js",
		Language:               "ko",
		MaxMessageBytes:        64 << 10,
		MaxSDPBytes:            32 << 10,
		MaxCandidatesPerPeer:   64,
		MaxSubscriptions:       35,
		MaxParticipants:        36,
		MaxPublishers:          16,
		MessageRate:            50,
		MessageBurst:           400,
		OfferCost:              5,
		SendQueue:              256,
		WriteTimeout:           10 * time.Second,
		PingInterval:           20 * time.Second,
		JoinTimeout:            30 * time.Second,
		AuthTimeout:            5 * time.Second,
		ReconnectGrace:         10 * time.Second,
		VideoCodec:             "VP8",
		KeyframeInterval:       500 * time.Millisecond,
		ICEDisconnectedTimeout: 5 * time.Second,
		ICEFailedTimeout:       15 * time.Second,
		TURNCredentialTTL:      12 * time.Hour,
		TURN: TURNConfig{
			ListenAddr:   ":3478",
			Realm:        "cstalk",
			RelayPortMin: 49160,
			RelayPortMax: 49200,
		},
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Language != "ko" && c.Language != "en" {
		errs = append(errs, fmt.Errorf("language %q: want ko or en", c.Language))
	}
	for name, v := range map[string]int{
		"max message bytes": c.MaxMessageBytes, "max sdp bytes": c.MaxSDPBytes,
		"max candidates per peer": c.MaxCandidatesPerPeer, "max subscriptions": c.MaxSubscriptions,
		"max participants": c.MaxParticipants, "max publishers": c.MaxPublishers, "send queue": c.SendQueue,
	} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	for name, v := range map[string]time.Duration{
		"write timeout": c.WriteTimeout, "ping interval": c.PingInterval, "join timeout": c.JoinTimeout,
		"auth timeout": c.AuthTimeout, "keyframe interval": c.KeyframeInterval,
		"ice disconnected timeout": c.ICEDisconnectedTimeout, "ice failed timeout": c.ICEFailedTimeout,
	} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, v))
		}
	}
	if c.MessageRate <= 0 || c.MessageBurst < 1 || c.OfferCost < 1 || c.OfferCost > c.MessageBurst {
		errs = append(errs, fmt.Errorf("message rate %v/s, burst %v, offer cost %v: rate positive, 1 <= offer cost <= burst",
			c.MessageRate, c.MessageBurst, c.OfferCost))
	}
	if c.Placement != nil && len(c.RelaySecret) < 16 {
		errs = append(errs, errors.New("a placement needs a relay secret of at least 16 bytes"))
	}
	if c.ReconnectGrace < 0 {
		errs = append(errs, fmt.Errorf("reconnect grace must not be negative, got %s", c.ReconnectGrace))
	}
	if _, err := codecFor(c.VideoCodec); err != nil {
		errs = append(errs, err)
	}
	if (c.UDPPortMin == 0) != (c.UDPPortMax == 0) || c.UDPPortMin > c.UDPPortMax {
		errs = append(errs, fmt.Errorf("udp port range %d-%d: give both ends, min <= max", c.UDPPortMin, c.UDPPortMax))
	}
	if c.UDPMuxPort < 0 || c.UDPMuxPort > 65535 {
		errs = append(errs, fmt.Errorf("udp mux port %d out of range", c.UDPMuxPort))
	}
	for _, ip := range c.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("nat 1:1 ip %q is not an IP address", ip))
		}
	}
	if (len(c.TURNURLs) > 0 || c.TURN.Enabled) && c.TURNCredentialTTL <= 0 {
		errs = append(errs, errors.New("turn credential ttl must be positive"))
	}
	if len(c.TURNURLs) > 0 && c.TURNSecret == "" {
		errs = append(errs, errors.New("turn urls need a turn secret"))
	}
	if c.TURN.Enabled {
		if net.ParseIP(c.TURN.PublicIP) == nil {
			errs = append(errs, fmt.Errorf("embedded turn: public ip %q is not an IP address", c.TURN.PublicIP))
		}
		if c.TURN.RelayPortMin == 0 || c.TURN.RelayPortMin > c.TURN.RelayPortMax {
			errs = append(errs, fmt.Errorf("embedded turn: relay port range %d-%d", c.TURN.RelayPortMin, c.TURN.RelayPortMax))
		}
		if c.TURN.Realm == "" {
			errs = append(errs, errors.New("embedded turn: realm is empty"))
		}
		for user, pass := range c.TURN.StaticUsers {
			if user == "" || pass == "" || strings.Contains(user, ":") {
				errs = append(errs, fmt.Errorf("embedded turn: static user %q: want a non-empty name without ':' and a non-empty password", user))
			}
		}
	}
	return errors.Join(errs...)
}
