package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// subscription is one SUBSCRIBE of one connection.
type subscription struct {
	conn   *Conn
	id     string
	dest   string // normalized, as hooks see it
	topic  string // hub topic: dest, or the connection's private topic
	ack    ackMode
	prefix string // MESSAGE headers fixed for this subscription
	active atomic.Bool
}

type ackMode uint8

const (
	ackAuto ackMode = iota
	ackClient
	ackClientIndividual
)

// message is one published payload, shared by every subscriber it reaches.
type message struct {
	suffix    []byte // content-type, content-length, blank line, body, NUL
	published int64  // unix nanos at the publishing node, for the latency histogram
	// burst: its publisher sent more frames in the same read, so more
	// deliveries are likely coming to the same subscribers. Each then waits
	// for its subscriber's writer, which writes all that queued meanwhile
	// at once, instead of being written alone at once (write_now.go).
	burst bool
}

// hub fans messages out to local subscriptions and keeps exactly one bus
// subscription per topic that has local subscribers.
type hub struct {
	srv    *Server
	mu     sync.RWMutex
	topics map[string]*topic
	// busRetry is set when a bus subscription failed; see retryBus.
	busRetry atomic.Bool
}

type topic struct {
	name string
	refs int // guarded by hub.mu: holders that may still add or remove

	mu            sync.Mutex // serializes membership changes and bus calls
	busSubscribed bool
	subs          atomic.Pointer[[]*subscription] // copy-on-write for lock-free fan-out
}

// busTimeout bounds one Subscribe or Unsubscribe on the bus.
const busTimeout = 5 * time.Second

func (h *hub) acquire(name string) *topic {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t == nil {
		t = &topic{name: name}
		h.topics[name] = t
	}
	t.refs++
	return t
}

func (h *hub) release(t *topic) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.refs--
	if t.refs == 0 {
		delete(h.topics, t.name)
	}
}

func (h *hub) add(s *subscription) {
	t := h.acquire(s.topic)
	t.mu.Lock()
	old := t.subsSlice()
	next := make([]*subscription, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	t.subs.Store(&next)
	s.active.Store(true)
	if !t.busSubscribed {
		ctx, cancel := context.WithTimeout(h.srv.runCtx, busTimeout)
		err := h.srv.bus.Subscribe(ctx, t.name)
		cancel()
		if err != nil {
			// Local delivery still works; retryBus subscribes later.
			h.busRetry.Store(true)
			h.srv.metrics.errors.WithLabelValues("bus").Inc()
			h.srv.log.Warn("bus subscribe failed", "topic", t.name, "err", err)
		} else {
			t.busSubscribed = true
		}
	}
	t.mu.Unlock()
}

func (h *hub) remove(s *subscription) {
	if !s.active.Swap(false) {
		return
	}
	h.mu.RLock()
	t := h.topics[s.topic]
	h.mu.RUnlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	old := t.subsSlice()
	next := make([]*subscription, 0, len(old))
	for _, o := range old {
		if o != s {
			next = append(next, o)
		}
	}
	t.subs.Store(&next)
	if len(next) == 0 && t.busSubscribed {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(h.srv.runCtx), busTimeout)
		if err := h.srv.bus.Unsubscribe(ctx, t.name); err != nil {
			h.srv.metrics.errors.WithLabelValues("bus").Inc()
			h.srv.log.Warn("bus unsubscribe failed", "topic", t.name, "err", err)
		}
		cancel()
		t.busSubscribed = false
	}
	t.mu.Unlock()
	h.release(t)
}

func (t *topic) subsSlice() []*subscription {
	if p := t.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// publishLocal queues m for every local subscriber of topic name.
func (h *hub) publishLocal(name string, m *message) int {
	h.mu.RLock()
	t := h.topics[name]
	h.mu.RUnlock()
	if t == nil {
		return 0
	}
	subs := t.subsSlice()
	for _, s := range subs {
		s.conn.deliver(s, m)
	}
	return len(subs)
}

func (h *hub) count() (topics int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics)
}

// privateTopicPrefix cannot collide with a client destination: normalized
// destinations never start with '@' (see classify).
const privateTopicPrefix = "@session/"

func privateTopic(sessionID string) string { return privateTopicPrefix + sessionID }

// Bus payload: a format byte, the publish time (unix nanos, big endian), a
// string as a uvarint length and bytes, then the body. The destination is
// the bus topic itself. In format 1 the string is the content type (empty:
// the broker default); in format 2 it is the coalescing key of a
// PublishCoalesced, whose content type is the default.
const (
	payloadFormat      = 1
	payloadFormatKeyed = 2
)

func encodePayload(published int64, contentType string, body []byte) []byte {
	return appendPayload(payloadFormat, published, contentType, body)
}

func encodeKeyedPayload(published int64, key string, body []byte) []byte {
	return appendPayload(payloadFormatKeyed, published, key, body)
}

func appendPayload(format byte, published int64, str string, body []byte) []byte {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen32+len(str)+len(body))
	b = append(b, format)
	b = binary.BigEndian.AppendUint64(b, uint64(published))
	b = binary.AppendUvarint(b, uint64(len(str)))
	b = append(b, str...)
	return append(b, body...)
}

var errBadPayload = errors.New("broker: malformed bus payload")

// decodePayload reads either format: key is set for a coalesced message,
// contentType otherwise.
func decodePayload(p []byte) (published int64, contentType, key string, body []byte, err error) {
	if len(p) < 10 || (p[0] != payloadFormat && p[0] != payloadFormatKeyed) {
		return 0, "", "", nil, errBadPayload
	}
	published = int64(binary.BigEndian.Uint64(p[1:9]))
	n, k := binary.Uvarint(p[9:])
	if k <= 0 || uint64(len(p)-9-k) < n {
		return 0, "", "", nil, errBadPayload
	}
	rest := p[9+k:]
	if p[0] == payloadFormatKeyed {
		return published, "", string(rest[:n]), rest[n:], nil
	}
	return published, string(rest[:n]), "", rest[n:], nil
}

// has reports whether topic name has local subscribers.
func (h *hub) has(name string) bool {
	h.mu.RLock()
	t := h.topics[name]
	h.mu.RUnlock()
	return t != nil && len(t.subsSlice()) > 0
}

// safeContentType keeps a client's content-type only if it needs no escaping
// in any STOMP version, since the encoded suffix is shared by all of them.
func safeContentType(ct, fallback string) string {
	if ct == "" || len(ct) > 256 || strings.ContainsAny(ct, ":\r\n\\") {
		return fallback
	}
	return ct
}
