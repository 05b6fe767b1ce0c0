package knowledgetalk

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the front end's settings; start from DefaultConfig.
type Config struct {
	// Path is where socket.io is served (the clients' default).
	Path string
	// PingInterval and PingTimeout are the Engine.IO heartbeat told to
	// clients: Engine.IO 3 clients ping every PingInterval, Engine.IO 4
	// clients are pinged; a silent one is closed after the timeout.
	PingInterval, PingTimeout time.Duration
	// ConnectTimeout closes a connection that joins no namespace.
	ConnectTimeout time.Duration
	// IdleTimeout closes a session that sent nothing (KeepAlive included)
	// for that long: the seed's 60 s session.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection whose writes are stuck that long.
	WriteTimeout time.Duration
	// MaxMessageBytes caps one inbound message (a larger one closes the
	// connection, as socket.io's maxHttpBufferSize does).
	MaxMessageBytes int
	// MaxSDPBytes caps an SDP inside a message.
	MaxSDPBytes int
	// MaxChatBytes caps a Chat message and MaxNameRunes a ChangeName.
	MaxChatBytes int
	MaxNameRunes int
	// MessageRate and MessageBurst bound what one connection may ask per
	// second (a token bucket; KeepAlive and acknowledgements included);
	// requests that build peer connections or hit the store cost
	// HeavyCost. A connection over the limit is closed.
	MessageRate  float64
	MessageBurst float64
	HeavyCost    float64
	// SendQueue bounds a connection's outbound messages; a client that
	// does not drain it is closed.
	SendQueue int
	// RoomCapacity is a new room's capacity unless CreateRoom asks for
	// less (the video server's MaxParticipants bounds it too).
	RoomCapacity int
	// RoomTTL: a room neither joined nor live for this long is deleted;
	// JanitorInterval is how often live rooms are marked and idle ones
	// swept.
	RoomTTL         time.Duration
	JanitorInterval time.Duration
	// LicenceCacheTTL is how long a licence lookup is reused: a changed or
	// removed licence takes effect within it. LicenceCacheSize bounds the
	// cache.
	LicenceCacheTTL  time.Duration
	LicenceCacheSize int
	// StoreTimeout bounds one store call; MediaTimeout one SFU operation
	// (an answer or offer with every candidate gathered).
	StoreTimeout time.Duration
	MediaTimeout time.Duration
	// Language of the messages: "ko" (default) or "en"; a connection may
	// ask for English with ?lang=en or Accept-Language: en.
	Language string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig returns the settings of the real service: engine.io 3.4's
// heartbeat, the seed's 60-s session, rooms of 24.
func DefaultConfig() Config {
	return Config{
		Path:             "/socket.io",
		PingInterval:     25 * time.Second,
		PingTimeout:      5 * time.Second,
		ConnectTimeout:   10 * time.Second,
		IdleTimeout:      60 * time.Second,
		WriteTimeout:     10 * time.Second,
		MaxMessageBytes:  64 << 10,
		MaxSDPBytes:      32 << 10,
		MaxChatBytes:     4 << 10,
		MaxNameRunes:     64,
		MessageRate:      20,
		MessageBurst:     200,
		HeavyCost:        5,
		SendQueue:        256,
		RoomCapacity:     24,
		RoomTTL:          24 * time.Hour,
		JanitorInterval:  time.Hour,
		LicenceCacheTTL:  30 * time.Second,
		LicenceCacheSize: 4096,
		StoreTimeout:     5 * time.Second,
		MediaTimeout:     10 * time.Second,
		Language:         "ko",
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Language != "ko" && c.Language != "en" {
		errs = append(errs, fmt.Errorf("language %q: want ko or en", c.Language))
	}
	if c.Path == "" || c.Path[0] != '/' {
		errs = append(errs, fmt.Errorf("path %q: want an absolute path", c.Path))
	}
	for name, v := range map[string]time.Duration{
		"ping interval": c.PingInterval, "ping timeout": c.PingTimeout, "connect timeout": c.ConnectTimeout,
		"idle timeout": c.IdleTimeout, "write timeout": c.WriteTimeout, "room ttl": c.RoomTTL,
		"janitor interval": c.JanitorInterval, "licence cache ttl": c.LicenceCacheTTL,
		"store timeout": c.StoreTimeout, "media timeout": c.MediaTimeout,
	} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", name, v))
		}
	}
	for name, v := range map[string]int{
		"max message bytes": c.MaxMessageBytes, "max sdp bytes": c.MaxSDPBytes, "max chat bytes": c.MaxChatBytes,
		"max name runes": c.MaxNameRunes, "send queue": c.SendQueue, "room capacity": c.RoomCapacity,
		"licence cache size": c.LicenceCacheSize,
	} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	if c.MessageRate <= 0 || c.MessageBurst < 1 || c.HeavyCost < 1 || c.HeavyCost > c.MessageBurst {
		errs = append(errs, errors.New("message rate positive, 1 <= heavy cost <= message burst"))
	}
	return errors.Join(errs...)
}
