package bustest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker"
)

// Timeout bounds every wait in the suite. It is generous because the suite
// runs under the race detector on small shared machines; a healthy bus
// finishes each wait in milliseconds.
const Timeout = 15 * time.Second

// Delivery is one message a node's Run handed to its deliver function.
type Delivery struct {
	Topic   string
	Payload []byte
}

// Node is a running bus: Run is active and every delivery is recorded.
type Node struct {
	Name string
	Bus  broker.Bus

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every delivery
	all     []Delivery
	byTopic map[string][][]byte

	runDone chan struct{}
	runErr  error
}

// Start runs every bus of a cluster and records what each delivers. Cleanup
// closes the buses and fails the test if a Run does not return after Close.
func Start(t testing.TB, buses []broker.Bus) []*Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nodes := make([]*Node, len(buses))
	for i, bus := range buses {
		n := &Node{
			Name:    string(rune('A' + i)),
			Bus:     bus,
			changed: make(chan struct{}),
			byTopic: make(map[string][][]byte),
			runDone: make(chan struct{}),
		}
		nodes[i] = n
		go func() {
			defer close(n.runDone)
			n.runErr = bus.Run(ctx, n.record)
		}()
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			_ = n.Bus.Close()
		}
		for _, n := range nodes {
			select {
			case <-n.runDone:
			case <-time.After(Timeout):
				t.Errorf("node %s: Run did not return after Close", n.Name)
			}
		}
		cancel()
	})
	return nodes
}

func (n *Node) record(topic string, payload []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, Delivery{Topic: topic, Payload: payload})
	n.byTopic[topic] = append(n.byTopic[topic], payload)
	close(n.changed)
	n.changed = make(chan struct{})
}

// RunDone is closed when the node's Run has returned.
func (n *Node) RunDone() <-chan struct{} { return n.runDone }

// Received returns the payloads delivered on topic so far, in delivery order.
func (n *Node) Received(topic string) [][]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([][]byte(nil), n.byTopic[topic]...)
}

// All returns every delivery so far, in delivery order.
func (n *Node) All() []Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Delivery(nil), n.all...)
}

// Count returns how many messages were delivered on topic.
func (n *Node) Count(topic string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.byTopic[topic])
}

// Contains reports whether payload was delivered on topic.
func (n *Node) Contains(topic string, payload []byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.byTopic[topic] {
		if bytes.Equal(p, payload) {
			return true
		}
	}
	return false
}

// WaitUntil blocks until cond holds, re-checking it after every delivery,
// and fails the test when Timeout passes first.
func (n *Node) WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		changed := n.changed
		n.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-n.runDone:
			if !cond() {
				t.Fatalf("node %s: Run returned (%v) while waiting for %s", n.Name, n.runErr, what)
			}
			return
		case <-deadline.C:
			t.Fatalf("node %s: timed out after %s waiting for %s", n.Name, Timeout, what)
		}
	}
}

// WaitCount waits until at least count messages were delivered on topic.
func (n *Node) WaitCount(t testing.TB, topic string, count int) {
	t.Helper()
	n.WaitUntil(t, fmt.Sprintf("%d messages on %q", count, topic), func() bool {
		return n.Count(topic) >= count
	})
}

// WaitFor waits until payload was delivered on topic.
func (n *Node) WaitFor(t testing.TB, topic string, payload []byte) {
	t.Helper()
	n.WaitUntil(t, fmt.Sprintf("%q on %q", payload, topic), func() bool {
		return n.Contains(topic, payload)
	})
}

// Eventually polls cond every interval until it holds, failing the test
// after timeout. It is for conditions no delivery signals, such as a bus
// becoming ready again.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// Context returns a context that ends with the test or after Timeout.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// MustSubscribe subscribes n to every topic or fails the test.
func MustSubscribe(t testing.TB, n *Node, topics ...string) {
	t.Helper()
	for _, topic := range topics {
		if err := n.Bus.Subscribe(Context(t), topic); err != nil {
			t.Fatalf("node %s: Subscribe(%q): %v", n.Name, topic, err)
		}
	}
}

// MustUnsubscribe unsubscribes n from every topic or fails the test.
func MustUnsubscribe(t testing.TB, n *Node, topics ...string) {
	t.Helper()
	for _, topic := range topics {
		if err := n.Bus.Unsubscribe(Context(t), topic); err != nil {
			t.Fatalf("node %s: Unsubscribe(%q): %v", n.Name, topic, err)
		}
	}
}

// MustPublish publishes payload on topic from n or fails the test.
func MustPublish(t testing.TB, n *Node, topic string, payload []byte) {
	t.Helper()
	if err := n.Bus.Publish(Context(t), topic, payload); err != nil {
		t.Fatalf("node %s: Publish(%q): %v", n.Name, topic, err)
	}
}
