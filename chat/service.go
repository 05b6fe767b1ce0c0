// Package chat is the counseling domain: companies, counselors (members),
// customers, rooms and messages, and the STOMP events of the counseling chat
// (see the chat contract). It plugs into the broker as a broker.Application and
// reaches persistence through Store; it knows nothing of SQL, Redis or frames.
//
// Delivery: a room's conversation events are published on its destination
// sub/socket/room/{id}, which its customer and its company's counselors
// subscribe to. Internal notes (messageAdminType 1) and their deletion never
// go there: they are sent to the private destination of every counselor
// connection present in the room (Presence) and of the writer, with target
// MEMBER. Private delivery reaches a session on any node, so notes work in a
// cluster once Presence is cluster-wide; the default MemoryPresence knows the
// connections of its own node only. Another participant's JOINED and the
// ROOM_DETAIL that follows a status or assignee change travel the same way,
// to everyone present, rendered for each viewer (the customer's noReadCount
// is its own) and never echoed to the connection that caused them.
//
// Every message is stored before it is delivered. A refused event is answered
// with an ERROR event whose reason is a catalog text in the connection's
// language; internal errors are logged here and reported as "internal".
//
// Faults: a STOMP RECEIPT for a SEND means the event was carried out (a
// MESSAGE is stored) or refused for the reason its ERROR event gives. When the
// server itself fails (the store is unreachable) the client gets the ERROR
// event and no receipt, and retries with the same clientMessageId, which is
// stored once. Events cross nodes on the bus only after they are stored, and
// a bus outage costs other nodes' clients the live events, not the messages:
// a client catches up with MESSAGE_LIST, the newest page first, then older
// pages (startId = the smallest id received) down to the last id it had seen.
package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cstalk/cstalk/broker"
)

// Config holds the chat settings; DefaultConfig fills every field.
type Config struct {
	// Zone is the time zone of every date on the wire and of working hours.
	Zone *time.Location
	// PageSize is the number of messages in one MESSAGE_LIST page.
	PageSize int
	// JWTSecret signs member tokens (HS256); it must be shared by all nodes.
	JWTSecret []byte
	JWTIssuer string
	TokenTTL  time.Duration
	// RequireSignedCustomers refuses customers that do not use the signed
	// mode (see CustomerFromHeaders), whatever their company says.
	RequireSignedCustomers bool
	// SignatureMaxSkew is how far a signed CONNECT's timestamp may be from now.
	SignatureMaxSkew time.Duration
	// MaxMessageBytes limits one message's text (UTF-8 bytes).
	MaxMessageBytes int
	UploadDir       string
	MaxUploadBytes  int64
	// ContractsTimeout bounds a call to a company's contracts endpoint
	// (Company.ContractsURL).
	ContractsTimeout time.Duration
	// UploadTimeout is how long an upload's body may take to arrive.
	UploadTimeout time.Duration
	// Uploads are the upload quotas (DefaultUploadQuota when its Limiter
	// is nil).
	Uploads UploadQuota
	// DecodeConcurrency is how many uploads of this node may decode their
	// pixels at once, each needing at most MaxDecodeBytes (estimated from
	// the image's header, before decoding): together they bound the
	// memory uploads take.
	DecodeConcurrency int
	MaxDecodeBytes    int64
	// Logins throttles password checks (DefaultLoginThrottle when its
	// Limiter is nil).
	Logins LoginThrottle
	// EventRate is how many client events (SEND to pub/socket/message,
	// TYPING aside) one connection may send per second on average, with
	// bursts of EventBurst; past it ERROR rate_limited, the connection
	// stays. EventRate 0: no limit.
	EventRate  float64
	EventBurst int
	// RecordCalls is whether calls are recorded in companies that did not
	// choose (Company.RecordCalls nil).
	RecordCalls bool
	// Now is the clock; tests inject their own.
	Now func() time.Time
}

// DefaultConfig returns the production defaults (JWTSecret stays empty: the
// caller must provide one).
func DefaultConfig() Config {
	zone, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		// Without tzdata Korea is still UTC+9 all year round (no DST).
		zone = time.FixedZone("KST", 9*60*60)
	}
	return Config{
		Zone:             zone,
		PageSize:         30,
		JWTIssuer:        "cstalk",
		TokenTTL:         12 * time.Hour,
		SignatureMaxSkew: 5 * time.Minute,
		MaxMessageBytes:  32 << 10,
		UploadDir:        "./data/uploads",
		MaxUploadBytes:   10 << 20,
		ContractsTimeout: 5 * time.Second,
		// 10 MB at 1 Mbit/s with room to spare.
		UploadTimeout: 3 * time.Minute,
		Uploads:       DefaultUploadQuota(),
		// A 25-megapixel photo and its thumbnail fit; a 16-bit image of
		// more than about 15 megapixels does not.
		DecodeConcurrency: 2,
		MaxDecodeBytes:    144 << 20,
		EventRate:         10,
		EventBurst:        30,
		Now:               time.Now,
	}
}

// Broker is what chat needs from the message broker: publishing to a
// destination's subscribers and reaching one connection's private destination,
// both cluster-wide.
type Broker interface {
	Publish(ctx context.Context, destination string, body []byte) error
	// PublishCoalesced publishes body as the newest state of key: each
	// subscriber gets at most one per key in a short window, the last one
	// always, however many nodes publish.
	PublishCoalesced(ctx context.Context, destination, key string, body []byte) error
	SendPrivate(ctx context.Context, sessionID string, body []byte) error
}

// Service implements the counseling chat on top of a Store and a Broker.
type Service struct {
	cfg      Config
	store    Store
	log      *slog.Logger
	broker   Broker
	presence Presence
	// video closes calls; nil until UseVideo.
	video VideoRooms
	// events maps a client event name to its handler.
	events map[string]handler

	// speakers caches speaker IDs of members and customers: they never change
	// once created, and every message payload needs them.
	speakerMu sync.Mutex
	speakers  map[speakerKey]int64

	// companies holds one copy of each company as connections last read
	// it (sharedCompany).
	companyMu sync.Mutex
	companies map[int64]*Company

	// members and memberSpeakers hold one copy of each member row and its
	// speaker while connections hold it (sharedRows).
	members        sharedRows[Member]
	memberSpeakers sharedRows[Speaker]

	// decodes is shared by every handler of the service: the bound on
	// decoded pixels is the node's.
	decodes *decodeGate
}

type speakerKey struct {
	member bool
	id     int64
}

var _ broker.Application = (*Service)(nil)

// New returns a Service; call Bind before the broker serves connections.
func New(cfg Config, store Store, log *slog.Logger) (*Service, error) {
	if store == nil {
		return nil, errors.New("chat: nil store")
	}
	if log == nil {
		log = slog.Default()
	}
	def := DefaultConfig()
	if cfg.Zone == nil {
		cfg.Zone = def.Zone
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = def.PageSize
	}
	if cfg.JWTIssuer == "" {
		cfg.JWTIssuer = def.JWTIssuer
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = def.TokenTTL
	}
	if cfg.SignatureMaxSkew <= 0 {
		cfg.SignatureMaxSkew = def.SignatureMaxSkew
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = def.MaxMessageBytes
	}
	if cfg.UploadDir == "" {
		cfg.UploadDir = def.UploadDir
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = def.MaxUploadBytes
	}
	if cfg.ContractsTimeout <= 0 {
		cfg.ContractsTimeout = def.ContractsTimeout
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = def.UploadTimeout
	}
	if cfg.Logins.Limiter == nil {
		cfg.Logins = DefaultLoginThrottle()
	}
	if cfg.Uploads.Limiter == nil {
		cfg.Uploads = def.Uploads
	}
	if cfg.Uploads.Window <= 0 {
		cfg.Uploads.Window = def.Uploads.Window
	}
	if cfg.DecodeConcurrency <= 0 {
		cfg.DecodeConcurrency = def.DecodeConcurrency
	}
	if cfg.MaxDecodeBytes <= 0 {
		cfg.MaxDecodeBytes = def.MaxDecodeBytes
	}
	if cfg.EventRate > 0 && cfg.EventBurst < 1 {
		cfg.EventBurst = max(1, int(cfg.EventRate))
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	if len(cfg.JWTSecret) < 16 {
		return nil, fmt.Errorf("chat: JWT secret must be at least 16 bytes, got %d", len(cfg.JWTSecret))
	}
	s := &Service{
		cfg:      cfg,
		store:    store,
		log:      log.With("component", "chat"),
		presence: NewMemoryPresence(),
		speakers: make(map[speakerKey]int64),
		decodes:  newDecodeGate(cfg.DecodeConcurrency),
	}
	s.events = s.handlers()
	return s, nil
}

// Bind attaches the broker events are sent through. The broker is built with
// the Service as its Application, so binding happens once, after both exist
// and before the first connection.
func (s *Service) Bind(b Broker) { s.broker = b }

// UsePresence replaces the in-process presence registry, e.g. with a
// cluster-wide one; call it before serving.
func (s *Service) UsePresence(p Presence) { s.presence = p }

// Config returns the effective configuration (defaults filled in).
func (s *Service) Config() Config { return s.cfg }

func (s *Service) now() time.Time { return s.cfg.Now() }
