package broker

import (
	"context"
	"fmt"
	"time"
)

// busRetryInterval is how often topics whose bus subscription failed are
// subscribed again.
const busRetryInterval = time.Second

// retryBus subscribes on the bus the topics whose Subscribe failed (the bus
// was down when their first local subscriber came), until ctx ends. Without
// it such a topic would hear only this node until another subscriber came,
// e.g. a client that reconnected during a Redis outage would miss, once
// Redis is back, everything published for it on other nodes.
func (h *hub) retryBus(ctx context.Context) {
	tick := time.NewTicker(busRetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if h.busRetry.Swap(false) && !h.resubscribe(ctx) {
			h.busRetry.Store(true)
		}
	}
}

// resubscribe tries every topic with local subscribers and no bus
// subscription; it reports whether none is left.
func (h *hub) resubscribe(ctx context.Context) bool {
	h.mu.Lock()
	held := make([]*topic, 0, len(h.topics))
	for _, t := range h.topics {
		t.refs++ // keeps t in the map while it is looked at
		held = append(held, t)
	}
	h.mu.Unlock()
	done, restored := true, 0
	for _, t := range held {
		t.mu.Lock()
		// After one failure the bus is still down: the rest waits for the
		// next round rather than each costing a timeout now.
		if done && !t.busSubscribed && len(t.subsSlice()) > 0 && ctx.Err() == nil {
			subCtx, cancel := context.WithTimeout(ctx, busTimeout)
			err := h.srv.bus.Subscribe(subCtx, t.name)
			cancel()
			if err == nil {
				t.busSubscribed = true
				restored++
			} else {
				done = false
			}
		}
		t.mu.Unlock()
		h.release(t)
	}
	if restored > 0 {
		h.srv.log.Info("bus subscriptions restored", "topics", restored)
	}
	return done
}

// Ready reports an error while some topic with local subscribers has no bus
// subscription: until the retry succeeds, those subscribers hear only this
// node, so a load balancer should send new clients elsewhere.
func (s *Server) Ready(context.Context) error {
	if n := s.hub.waitingForBus(); n > 0 {
		return fmt.Errorf("broker: %d topics wait for their bus subscription", n)
	}
	return nil
}

// waitingForBus counts topics with local subscribers and no bus subscription.
func (h *hub) waitingForBus() int {
	h.mu.RLock()
	topics := make([]*topic, 0, len(h.topics))
	for _, t := range h.topics {
		topics = append(topics, t)
	}
	h.mu.RUnlock()
	n := 0
	for _, t := range topics {
		t.mu.Lock()
		if !t.busSubscribed && len(t.subsSlice()) > 0 {
			n++
		}
		t.mu.Unlock()
	}
	return n
}
