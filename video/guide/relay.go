package guide

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/cstalk/cstalk/broker"
)

// relayTopic is the bus topic of guide events; they are few (a handful per
// guide), so one topic for the whole cluster is enough.
const relayTopic = "guide-events"

// relayPublishTimeout bounds one publish: Notify runs inside guide
// operations and must not hold them up when the bus is slow or down.
const relayPublishTimeout = 2 * time.Second

// Relay carries guide events between the nodes of a cluster over a
// broker.Bus, so an account's /guide/events stream hears a guide whichever
// node runs it: a user's request on one node reaches the mate listening on
// another. Pass it to New as (part of) the push Notifier, then Start it
// with the service's Hub. The bus delivers only other nodes' events, and the
// local Hub has the node's own already, so nothing arrives twice.
type Relay struct {
	bus  broker.Bus
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
}

var _ Notifier = (*Relay)(nil)

// NewRelay returns a relay over bus, which must be used by nothing else:
// Start takes over its delivery loop.
func NewRelay(bus broker.Bus, log *slog.Logger) *Relay {
	if log == nil {
		log = slog.Default()
	}
	return &Relay{bus: bus, log: log.With("component", "guide-relay")}
}

type relayed struct {
	AccountID int64 `json:"accountId"`
	Event     Event `json:"event"`
}

// Notify publishes ev for accountID to the other nodes. A failure is
// logged, not returned: the apps' session check catches them up.
func (r *Relay) Notify(ctx context.Context, accountID int64, ev Event) {
	payload, err := json.Marshal(relayed{AccountID: accountID, Event: ev})
	if err != nil {
		r.log.Error("encode guide event", "type", ev.Type, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), relayPublishTimeout)
	defer cancel()
	if err := r.bus.Publish(ctx, relayTopic, payload); err != nil {
		r.log.Warn("guide event not relayed to other nodes", "account", accountID, "type", ev.Type, "err", err)
	}
}

// Start subscribes to the other nodes' events, then hands them to svc
// (its Hub and its clocks) from a goroutine of its own until Close.
func (r *Relay) Start(ctx context.Context, svc *Service) error {
	if err := r.bus.Subscribe(ctx, relayTopic); err != nil {
		return fmt.Errorf("guide relay: subscribe: %w", err)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.done = stop, make(chan struct{})
	go func() {
		defer close(r.done)
		err := r.bus.Run(runCtx, func(_ string, payload []byte) {
			var m relayed
			if err := json.Unmarshal(payload, &m); err != nil {
				r.log.Warn("undecodable guide event from another node", "err", err)
				return
			}
			svc.heardFromPeer(runCtx, m.AccountID, m.Event)
		})
		if err != nil && runCtx.Err() == nil {
			r.log.Error("guide relay stopped", "err", err)
		}
	}()
	return nil
}

// Close stops delivering and waits for the goroutine; the bus stays open
// (its owner closes it).
func (r *Relay) Close() error {
	if r.stop != nil {
		r.stop()
		<-r.done
	}
	return nil
}

// heardFromPeer delivers another node's event to this node's streams and
// applies it to this node's clock of the guide, if it runs one: a guide
// completed elsewhere is over here too (timers stopped, no warning after
// the end; its video room, which may live here, closed); one extended
// elsewhere is re-armed from the store.
func (s *Service) heardFromPeer(ctx context.Context, accountID int64, ev Event) {
	// The clock first: whoever hears the end must not hear a warning after.
	defer s.hub.Notify(ctx, accountID, ev)
	s.mu.Lock()
	l := s.live[ev.GsSeq]
	if l == nil || l.done {
		s.mu.Unlock()
		if ev.Type == EventEnded {
			s.closeRoom(ev.GsSeq)
		}
		return
	}
	switch {
	case ev.Type == EventEnded:
		l.done = true
		stopAll(l.warn, l.expire, l.watchdog)
		delete(s.live, ev.GsSeq)
		s.releaseLocked(&l.gs)
		s.mu.Unlock()
		s.closeRoom(ev.GsSeq)
	case ev.Type == EventExtended && ev.TicketsUsed != nil && *ev.TicketsUsed > l.h.TicketsUsed:
		s.mu.Unlock()
		s.followStore(ctx, l)
	default:
		s.mu.Unlock()
	}
}

// Notifiers notifies each of its notifiers in turn.
type Notifiers []Notifier

var _ Notifier = Notifiers(nil)

func (ns Notifiers) Notify(ctx context.Context, accountID int64, ev Event) {
	for _, n := range ns {
		n.Notify(ctx, accountID, ev)
	}
}
