package broker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// downBus is a node of an in-process network whose Subscribe fails while
// down is set, as a Redis bus does during an outage.
type downBus struct {
	*MemoryBus
	down atomic.Bool
}

func (b *downBus) Subscribe(ctx context.Context, topic string) error {
	if b.down.Load() {
		return errors.New("bus down")
	}
	return b.MemoryBus.Subscribe(ctx, topic)
}

// TestBusSubscribeRetried: a subscription made while the bus is down is
// served locally at once, and subscribed on the bus once it is back, so
// what other nodes publish reaches it without anyone subscribing again.
func TestBusSubscribeRetried(t *testing.T) {
	network := NewMemoryNetwork()
	bus := &downBus{MemoryBus: network.Node()}
	bus.down.Store(true)
	a := startServer(t, DefaultConfig(), bus)
	b := startServer(t, DefaultConfig(), network.Node())

	c := newRawClient(t, a.wsURL("/ws/websocket"))
	c.connect("")
	c.write("SUBSCRIBE\nid:1\ndestination:/sub/late\nreceipt:r\n\n\x00")
	c.expect("RECEIPT")
	if err := a.Publish(context.Background(), "sub/late", []byte("local")); err != nil {
		t.Fatal(err)
	}
	if m := c.expect("MESSAGE"); string(m.Body) != "local" {
		t.Fatalf("MESSAGE %q", m.Body)
	}

	if err := a.Ready(context.Background()); err == nil {
		t.Fatal("ready while a topic waits for its bus subscription")
	}
	bus.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for !a.busSubscribed("sub/late") {
		if time.Now().After(deadline) {
			t.Fatal("topic not subscribed on the bus after it came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.Ready(context.Background()); err != nil {
		t.Fatalf("not ready after the bus came back: %v", err)
	}
	if err := b.Publish(context.Background(), "sub/late", []byte("remote")); err != nil {
		t.Fatal(err)
	}
	if m := c.expect("MESSAGE"); string(m.Body) != "remote" {
		t.Fatalf("MESSAGE %q", m.Body)
	}
}

func (s *testServer) busSubscribed(topicName string) bool {
	s.hub.mu.RLock()
	t := s.hub.topics[topicName]
	s.hub.mu.RUnlock()
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.busSubscribed
}
