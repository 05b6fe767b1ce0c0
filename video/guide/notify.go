package guide

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Event types pushed to users and mates.
const (
	EventRequest   = "guideRequest"   // to the mate: a user asks for a guide
	EventApproved  = "guideApproved"  // to the user: room and token
	EventRejected  = "guideRejected"  // to the user
	EventTimeout   = "guideTimeout"   // to the user: the mate did not answer
	EventCancelled = "guideCancelled" // to the other side: the request or session was withdrawn
	EventBegun     = "guideBegun"     // to both: the clock runs
	EventWarning   = "guideWarning"   // to both: WarnBefore left on the last ticket
	EventExtended  = "guideExtended"  // to both: another ticket was spent
	EventEnded     = "guideEnded"     // to both: completed (Reason says why)
)

// Party is an account as events and answers show it.
type Party struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Rating      float64 `json:"rating,omitempty"`
	RatingCount int64   `json:"ratingCount,omitempty"`
}

// Event is one push to a user or mate. Clients show text by Type (the
// SSE stream adds a message in the subscriber's language).
type Event struct {
	Type             string     `json:"type"`
	GsSeq            int64      `json:"gsSeq"`
	GhSeq            int64      `json:"ghSeq,omitempty"`
	RoomID           string     `json:"roomId,omitempty"`
	Token            string     `json:"token,omitempty"`
	User             *Party     `json:"user,omitempty"`
	Mate             *Party     `json:"mate,omitempty"`
	ExpiresAt        *time.Time `json:"expiresAt,omitempty"`
	EndsAt           *time.Time `json:"endsAt,omitempty"`
	RemainingSeconds *int       `json:"remainingSeconds,omitempty"`
	TicketsUsed      *int       `json:"ticketsUsed,omitempty"`
	TicketsLeft      *int       `json:"ticketsLeft,omitempty"`
	DurationSeconds  *int       `json:"durationSeconds,omitempty"`
	Reason           string     `json:"reason,omitempty"`
	At               time.Time  `json:"at"`
}

// Notifier delivers events to an account beyond its /guide/events stream:
// the wiring passes a mobile-push Webhook. Notify must not block for long;
// delivery is best effort (apps resynchronise with /guide/session/{gs_seq}).
type Notifier interface {
	Notify(ctx context.Context, accountID int64, ev Event)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, accountID int64, ev Event)

func (f NotifierFunc) Notify(ctx context.Context, accountID int64, ev Event) { f(ctx, accountID, ev) }

var _ Notifier = NotifierFunc(nil)

// Hub is the in-process Notifier: subscribers per account, each with a
// bounded queue. The /guide/events stream reads from it; tests do too.
type Hub struct {
	log   *slog.Logger
	mu    sync.Mutex
	subs  map[int64]map[*hubSub]struct{}
	limit int
}

type hubSub struct {
	ch     chan Event
	closed bool
}

var _ Notifier = (*Hub)(nil)

// NewHub returns a hub whose subscribers each queue up to queue events.
func NewHub(queue int, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.Default()
	}
	return &Hub{log: log, subs: map[int64]map[*hubSub]struct{}{}, limit: queue}
}

// Subscribe returns the events for accountID until cancel is called. The
// channel is closed by cancel, or when the subscriber fell a whole queue
// behind (it should reconnect and check its session).
func (h *Hub) Subscribe(accountID int64) (events <-chan Event, cancel func()) {
	s := &hubSub{ch: make(chan Event, h.limit)}
	h.mu.Lock()
	if h.subs[accountID] == nil {
		h.subs[accountID] = map[*hubSub]struct{}{}
	}
	h.subs[accountID][s] = struct{}{}
	h.mu.Unlock()
	return s.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.dropLocked(accountID, s)
	}
}

func (h *Hub) dropLocked(accountID int64, s *hubSub) {
	if s.closed {
		return
	}
	s.closed = true
	close(s.ch)
	delete(h.subs[accountID], s)
	if len(h.subs[accountID]) == 0 {
		delete(h.subs, accountID)
	}
}

// Notify queues ev for every subscriber of accountID.
func (h *Hub) Notify(_ context.Context, accountID int64, ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[accountID] {
		select {
		case s.ch <- ev:
		default:
			h.log.Warn("guide event subscriber too slow, dropped", "account", accountID, "type", ev.Type)
			h.dropLocked(accountID, s)
		}
	}
}

// Subscribers counts the subscribers of accountID.
func (h *Hub) Subscribers(accountID int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[accountID])
}

// closeAll ends every subscription (service shutdown).
func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, subs := range h.subs {
		for s := range subs {
			h.dropLocked(id, s)
		}
	}
}
