package broker

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Config holds the broker's endpoint, destination layout and limits.
type Config struct {
	Path               string        // "/ws"
	PrivateDestination string        // "user/session/message"
	AppPrefixes        []string      // {"pub/"}
	BrokerPrefixes     []string      // {"sub/"}
	ContentType        string        // of MESSAGE frames: "application/json;charset=UTF-8"
	MaxFrameSize       int           // bytes, headers + body
	MaxHeaders         int           // per frame
	MaxHeaderLine      int           // bytes per header line
	MaxSubscriptions   int           // per connection
	ConnectTimeout     time.Duration // a connection silent without CONNECT is closed
	HeartbeatSend      time.Duration // the server's offer cx
	HeartbeatRecv      time.Duration // the server's offer cy
	OutboundQueue      int           // frames queued per connection before it is "slow"
	WriteTimeout       time.Duration
	// FrameTimeout is how long a frame may take to arrive once its first
	// byte has, whatever the heart-beats: a client that keeps a frame
	// unfinished holds its buffer. MaxPendingBytes bounds the buffers of
	// unfinished frames of all connections together. Past either, the
	// connection gets an ERROR frame and is closed.
	FrameTimeout    time.Duration
	MaxPendingBytes int
	// CoalesceWindow is the least time between two deliveries of one
	// destination and key of PublishCoalesced on a node.
	CoalesceWindow time.Duration

	// MaxTransactions bounds the open transactions of one connection,
	// MaxTransactionFrames the frames one transaction buffers until COMMIT
	// and MaxTransactionBytes the bodies all of a connection's open
	// transactions buffer together.
	MaxTransactions      int
	MaxTransactionFrames int
	MaxTransactionBytes  int
	// SockJSURL is the sockjs-client script the SockJS iframe transports
	// load into their iframe. The default is a path on the same host (the
	// cstalk binary serves it with its pages), so nothing comes from a CDN.
	SockJSURL string
	// SockJSHeartbeat is how often a quiet SockJS session gets an "h" frame,
	// which keeps proxies from closing it.
	SockJSHeartbeat time.Duration
	// SockJSAnyAddress lets any client address use a SockJS session's HTTP
	// transports. By default a session belongs to the address that opened
	// it: its id is all a request shows, so another address presenting it
	// (xhr_send, a poll) is refused. Turn it on only behind proxies that
	// change a client's address within a session and are not trusted to
	// name it.
	SockJSAnyAddress bool
	// CheckOrigin decides whether a WebSocket upgrade from another origin is
	// accepted. Nil accepts every origin: CONNECT carries the credentials, not
	// cookies, so a foreign page gains nothing by opening a socket.
	CheckOrigin func(r *http.Request) bool
}

// DefaultConfig returns the configuration cstalk deploys with.
func DefaultConfig() Config {
	return Config{
		Path:                 "/ws",
		PrivateDestination:   "user/session/message",
		AppPrefixes:          []string{"pub/"},
		BrokerPrefixes:       []string{"sub/"},
		ContentType:          "application/json;charset=UTF-8",
		MaxFrameSize:         64 << 10,
		MaxHeaders:           32,
		MaxHeaderLine:        8 << 10,
		MaxSubscriptions:     64,
		ConnectTimeout:       10 * time.Second,
		HeartbeatSend:        10 * time.Second,
		HeartbeatRecv:        10 * time.Second,
		OutboundQueue:        1024,
		WriteTimeout:         10 * time.Second,
		FrameTimeout:         30 * time.Second,
		MaxPendingBytes:      32 << 20,
		CoalesceWindow:       time.Second,
		MaxTransactions:      8,
		MaxTransactionFrames: 64,
		MaxTransactionBytes:  256 << 10,
		SockJSURL:            "/assets/sockjs.min.js",
		SockJSHeartbeat:      25 * time.Second,
	}
}

// normalize fills zero fields from DefaultConfig and rejects values the
// broker cannot work with.
func (c Config) normalize() (Config, error) {
	d := DefaultConfig()
	if c.Path == "" {
		c.Path = d.Path
	}
	c.Path = "/" + strings.Trim(c.Path, "/")
	if c.PrivateDestination == "" {
		c.PrivateDestination = d.PrivateDestination
	}
	c.PrivateDestination = normalizeDestination(c.PrivateDestination)
	if c.AppPrefixes == nil {
		c.AppPrefixes = d.AppPrefixes
	}
	if c.BrokerPrefixes == nil {
		c.BrokerPrefixes = d.BrokerPrefixes
	}
	c.AppPrefixes = append([]string(nil), c.AppPrefixes...) // normalized below, not the caller's
	c.BrokerPrefixes = append([]string(nil), c.BrokerPrefixes...)
	for i, p := range c.AppPrefixes {
		c.AppPrefixes[i] = normalizeDestination(p)
		if c.AppPrefixes[i] == "" {
			return c, fmt.Errorf("broker: config: empty application prefix")
		}
	}
	for i, p := range c.BrokerPrefixes {
		c.BrokerPrefixes[i] = normalizeDestination(p)
		if c.BrokerPrefixes[i] == "" {
			return c, fmt.Errorf("broker: config: empty broker prefix")
		}
	}
	if c.ContentType == "" {
		c.ContentType = d.ContentType
	}
	if strings.ContainsAny(c.ContentType, ":\r\n\\") {
		return c, fmt.Errorf("broker: config: content type %q needs escaping", c.ContentType)
	}
	setDefault(&c.MaxFrameSize, d.MaxFrameSize)
	setDefault(&c.MaxHeaders, d.MaxHeaders)
	setDefault(&c.MaxHeaderLine, d.MaxHeaderLine)
	setDefault(&c.MaxSubscriptions, d.MaxSubscriptions)
	setDefault(&c.OutboundQueue, d.OutboundQueue)
	setDefault(&c.MaxTransactions, d.MaxTransactions)
	setDefault(&c.MaxTransactionFrames, d.MaxTransactionFrames)
	setDefault(&c.MaxTransactionBytes, d.MaxTransactionBytes)
	setDefault(&c.MaxPendingBytes, d.MaxPendingBytes)
	if c.FrameTimeout <= 0 {
		c.FrameTimeout = d.FrameTimeout
	}
	if c.CoalesceWindow <= 0 {
		c.CoalesceWindow = d.CoalesceWindow
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.HeartbeatSend < 0 || c.HeartbeatRecv < 0 {
		return c, fmt.Errorf("broker: config: negative heart-beat")
	}
	if c.SockJSURL == "" {
		c.SockJSURL = d.SockJSURL
	}
	if c.SockJSHeartbeat <= 0 {
		c.SockJSHeartbeat = d.SockJSHeartbeat
	}
	if c.MaxHeaderLine > c.MaxFrameSize {
		c.MaxHeaderLine = c.MaxFrameSize
	}
	return c, nil
}

func setDefault(v *int, d int) {
	if *v <= 0 {
		*v = d
	}
}

// normalizeDestination makes "/sub/x" and "sub/x" the same destination.
func normalizeDestination(d string) string {
	return strings.TrimPrefix(d, "/")
}
