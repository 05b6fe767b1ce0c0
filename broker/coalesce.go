package broker

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Coalescing: a message published with a key (PublishCoalesced) stands for
// a state, not an event, so only the newest one matters. Each node
// delivers to its own subscribers, per destination, the first message at
// once and opens a window (Config.CoalesceWindow); what comes during the
// window waits for its end, only the newest per key, and then goes out in
// the order it was published, opening the next window. So a subscriber
// gets at most one message per key and window, always the last state, and
// the states in the order they changed. Every node coalesces what it
// delivers itself (the publisher hands the bus every message), so however
// many nodes publish, a subscriber gets no more.

// coalescer holds, per destination, whether a window is running and what
// waits for its end.
type coalescer struct {
	window  time.Duration
	deliver func(topic string, m *message)

	mu      sync.Mutex
	closed  bool
	windows map[string]*coalesceWindow
}

type coalesceWindow struct {
	timer   *time.Timer
	seq     uint64
	pending map[string]coalesced // the newest per key
}

type coalesced struct {
	seq uint64 // publication order within the window
	m   *message
}

func newCoalescer(window time.Duration, deliver func(topic string, m *message)) *coalescer {
	return &coalescer{window: window, deliver: deliver, windows: make(map[string]*coalesceWindow)}
}

// offer delivers m now if no window runs for its destination, and opens
// one; else m replaces what of its key waits for the window's end.
func (c *coalescer) offer(topic, key string, m *message) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if w := c.windows[topic]; w != nil {
		w.seq++
		w.pending[key] = coalesced{seq: w.seq, m: m}
		c.mu.Unlock()
		return
	}
	w := &coalesceWindow{pending: make(map[string]coalesced)}
	w.timer = time.AfterFunc(c.window, func() { c.windowEnded(topic, w) })
	c.windows[topic] = w
	c.mu.Unlock()
	c.deliver(topic, m)
}

// windowEnded delivers what waited, in publication order, opening the next
// window for it; or forgets the destination when nothing came.
func (c *coalescer) windowEnded(topic string, w *coalesceWindow) {
	c.mu.Lock()
	if len(w.pending) == 0 || c.closed {
		if c.windows[topic] == w {
			delete(c.windows, topic)
		}
		c.mu.Unlock()
		return
	}
	out := slices.SortedFunc(maps.Values(w.pending), func(a, b coalesced) int { return cmp.Compare(a.seq, b.seq) })
	clear(w.pending)
	w.timer.Reset(c.window)
	c.mu.Unlock()
	for _, p := range out {
		c.deliver(topic, p.m)
	}
}

// close stops every window; nothing more is delivered.
func (c *coalescer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for topic, w := range c.windows {
		w.timer.Stop()
		delete(c.windows, topic)
	}
}

// PublishCoalesced delivers body to every subscriber of destination on
// every node, like Publish, except that it stands for the newest state of
// key: each node delivers at most one message per destination and key in
// Config.CoalesceWindow, the last one always (see coalescer). An empty key
// is a plain Publish.
func (s *Server) PublishCoalesced(ctx context.Context, destination, key string, body []byte) error {
	if key == "" {
		return s.Publish(ctx, destination, body)
	}
	topicName := normalizeDestination(destination)
	now := time.Now().UnixNano()
	if s.hub.has(topicName) {
		s.coalesce.offer(topicName, key, &message{suffix: encodeMessageSuffix(s.cfg.ContentType, body), published: now})
	}
	if err := s.bus.Publish(ctx, topicName, encodeKeyedPayload(now, key, body)); err != nil {
		s.metrics.errors.WithLabelValues("bus").Inc()
		return fmt.Errorf("broker: publish to %s: %w", topicName, err)
	}
	return nil
}
