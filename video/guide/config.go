package guide

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cstalk/cstalk/chat"
)

// Config holds the guide settings. Zero fields take DefaultConfig's values.
type Config struct {
	// TicketDuration is the guide time one ticket buys. The seed leaves it
	// open; ten minutes is cstalk's default.
	TicketDuration time.Duration
	// WarnBefore is how long before the current ticket runs out both sides
	// are warned (the seed's 15 seconds).
	WarnBefore time.Duration
	// RequestTimeout is how long a mate has to approve a request.
	RequestTimeout time.Duration
	// BeginTimeout is how long an approved session waits for /guide/begin.
	BeginTimeout time.Duration
	// CheckInterval is the apps' session check period (the seed's 5 s);
	// VanishAfter without a check from either side ends the guide.
	CheckInterval time.Duration
	VanishAfter   time.Duration
	// RetryAfter is when a completion the store refused is tried again.
	RetryAfter time.Duration

	// JWTSecret signs account and video tokens (HS256): the secret the rest
	// of cstalk uses; the audiences keep the token kinds apart.
	JWTSecret     []byte
	JWTIssuer     string
	TokenTTL      time.Duration
	VideoTokenTTL time.Duration

	// TopMates is the length of the ranking list; MatchCandidates how many
	// of the best available mates quick connect and shake consider.
	TopMates        int
	MatchCandidates int
	// EventQueue bounds each /guide/events subscriber's queue.
	EventQueue int
	// PasswordCost is the bcrypt cost of account passwords.
	PasswordCost int
	// Logins throttles password checks of /guide/login, in a scope of its
	// own ("guide"); the wiring passes the counseling login's throttle, so
	// both share one policy and, with Redis, one count for the cluster.
	// chat.DefaultLoginThrottle when its Limiter is nil.
	Logins chat.LoginThrottle

	// Now and AfterFunc are the clock; tests advance a manual one.
	Now       func() time.Time
	AfterFunc AfterFunc
	// RandIntN picks the shaken mate (math/rand/v2.IntN by default).
	RandIntN func(n int) int
}

// Token audiences: a guide account token is not a counseling member token,
// and a video token admits to one room only.
const (
	AudienceAccount = "cstalk-guide"
	AudienceVideo   = "cstalk-guide-video"
)

// DefaultConfig returns the defaults (JWTSecret stays empty: the wiring
// passes the server's).
func DefaultConfig() Config {
	return Config{
		TicketDuration:  10 * time.Minute,
		WarnBefore:      15 * time.Second,
		RequestTimeout:  30 * time.Second,
		BeginTimeout:    60 * time.Second,
		CheckInterval:   5 * time.Second,
		VanishAfter:     30 * time.Second,
		RetryAfter:      5 * time.Second,
		JWTIssuer:       "cstalk",
		TokenTTL:        24 * time.Hour,
		VideoTokenTTL:   12 * time.Hour,
		TopMates:        50,
		MatchCandidates: 100,
		EventQueue:      64,
		PasswordCost:    bcrypt.DefaultCost,
		Now:             time.Now,
		AfterFunc:       realAfterFunc,
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	durations := []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.TicketDuration, d.TicketDuration}, {&c.WarnBefore, d.WarnBefore}, {&c.RequestTimeout, d.RequestTimeout},
		{&c.BeginTimeout, d.BeginTimeout}, {&c.CheckInterval, d.CheckInterval}, {&c.VanishAfter, d.VanishAfter},
		{&c.RetryAfter, d.RetryAfter}, {&c.TokenTTL, d.TokenTTL}, {&c.VideoTokenTTL, d.VideoTokenTTL},
	}
	for _, f := range durations {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.JWTIssuer == "" {
		c.JWTIssuer = d.JWTIssuer
	}
	if c.TopMates <= 0 {
		c.TopMates = d.TopMates
	}
	if c.MatchCandidates <= 0 {
		c.MatchCandidates = d.MatchCandidates
	}
	if c.EventQueue <= 0 {
		c.EventQueue = d.EventQueue
	}
	if c.PasswordCost == 0 {
		c.PasswordCost = d.PasswordCost
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.AfterFunc == nil {
		c.AfterFunc = d.AfterFunc
	}
	if c.Logins.Limiter == nil {
		c.Logins = chat.DefaultLoginThrottle()
	}
	switch {
	case len(c.JWTSecret) < 16:
		return c, fmt.Errorf("guide: JWT secret must be at least 16 bytes, got %d", len(c.JWTSecret))
	case c.WarnBefore >= c.TicketDuration:
		return c, errors.New("guide: the warning must come before a ticket's time is over")
	case c.VanishAfter <= c.CheckInterval:
		return c, errors.New("guide: VanishAfter must be longer than CheckInterval")
	}
	return c, nil
}
