// Package bustest is the contract every broker.Bus implementation passes:
// one test body, a factory per implementation (the in-process bus and the
// Redis bus run the same suite).
//
// Beyond what the broker.Bus comments state, the suite holds implementations
// to two guarantees the hub relies on:
//
//   - Once Subscribe returns, every message published afterwards on that topic
//     by another node is delivered: Subscribe waits until the upstream
//     subscription is active.
//   - Messages one node publishes one after another (each Publish returned
//     before the next began) reach a given other node in that order, across
//     topics too. The suite uses a later message as a barrier to prove that an
//     earlier one was not delivered, instead of sleeping.
//
// Subscribe and Unsubscribe keep a set, not a count: the hub does the
// counting, so subscribing twice and unsubscribing once leaves the topic
// unsubscribed, and unsubscribing an unknown topic is not an error.
package bustest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/cstalk/cstalk/broker"
)

// NewCluster builds nodes buses that reach each other and nothing else (for
// Redis: a key prefix of their own). Buses are closed by the suite; the
// factory may also close them in a cleanup, so Close must tolerate a second
// call.
type NewCluster func(t *testing.T, nodes int) []broker.Bus

// Run runs the whole contract against the implementation newCluster builds.
func Run(t *testing.T, newCluster NewCluster) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newCluster NewCluster)
	}{
		{"FanOut", testFanOut},
		{"NoEcho", testNoEcho},
		{"SubscribeThenPublish", testSubscribeThenPublish},
		{"OrderUnderBurst", testOrderUnderBurst},
		{"Unsubscribe", testUnsubscribe},
		{"SetSemantics", testSetSemantics},
		{"PrivateTopics", testPrivateTopics},
		{"ManyTopics", testManyTopics},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"BinaryPayloads", testBinaryPayloads},
		{"Ready", testReady},
		{"CloseEndsRun", testCloseEndsRun},
		{"CancelEndsRun", testCancelEndsRun},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newCluster) })
	}
}

// StartCluster builds a cluster with newCluster and starts every node.
func StartCluster(t *testing.T, newCluster NewCluster, nodes int) []*Node {
	t.Helper()
	buses := newCluster(t, nodes)
	if len(buses) != nodes {
		t.Fatalf("factory built %d buses, want %d", len(buses), nodes)
	}
	return Start(t, buses)
}

const settleTopic = "bustest/settle"

// Settle returns once every message any node published before the call has
// reached every other node: each node publishes a fresh marker, and each
// waits for the markers of all the others.
func Settle(t testing.TB, nodes []*Node) {
	t.Helper()
	for _, n := range nodes {
		MustSubscribe(t, n, settleTopic)
	}
	token := randomToken(t)
	for _, n := range nodes {
		MustPublish(t, n, settleTopic, []byte(token+"/"+n.Name))
	}
	for _, n := range nodes {
		for _, from := range nodes {
			if from != n {
				n.WaitFor(t, settleTopic, []byte(token+"/"+from.Name))
			}
		}
	}
}

func randomToken(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random token: %v", err)
	}
	return hex.EncodeToString(b[:])
}

func wantCount(t testing.TB, n *Node, topic string, want int) {
	t.Helper()
	if got := n.Count(topic); got != want {
		t.Errorf("node %s: %d messages on %q, want %d: %q", n.Name, got, topic, want, n.Received(topic))
	}
}

// testFanOut: one publisher, two subscribed nodes, one node not subscribed.
func testFanOut(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 4)
	a, b, c, d := nodes[0], nodes[1], nodes[2], nodes[3]
	const topic = "sub/socket/room/147"
	MustSubscribe(t, a, topic)
	MustSubscribe(t, b, topic)
	MustSubscribe(t, c, topic)

	MustPublish(t, a, topic, []byte(`{"type":"MESSAGE"}`))
	b.WaitFor(t, topic, []byte(`{"type":"MESSAGE"}`))
	c.WaitFor(t, topic, []byte(`{"type":"MESSAGE"}`))
	Settle(t, nodes)

	wantCount(t, a, topic, 0)
	wantCount(t, b, topic, 1)
	MustPublish(t, a, "sub/socket/room/nobody-listens", []byte("void"))
	wantCount(t, c, topic, 1)
	wantCount(t, d, topic, 0)
}

// testNoEcho: two nodes publish on a topic both hold; each sees only the other's.
func testNoEcho(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	const topic = "sub/socket/room/LOBBY1"
	MustSubscribe(t, nodes[0], topic)
	MustSubscribe(t, nodes[1], topic)
	const perNode = 100
	for i := range perNode {
		for _, n := range nodes {
			MustPublish(t, n, topic, fmt.Appendf(nil, "%s-%d", n.Name, i))
		}
	}
	for _, n := range nodes {
		n.WaitCount(t, topic, perNode)
	}
	Settle(t, nodes)
	for i, n := range nodes {
		other := nodes[1-i]
		got := n.Received(topic)
		if len(got) != perNode {
			t.Fatalf("node %s: %d messages, want %d", n.Name, len(got), perNode)
		}
		for seq, p := range got {
			if want := fmt.Sprintf("%s-%d", other.Name, seq); string(p) != want {
				t.Fatalf("node %s: message %d is %q, want %q", n.Name, seq, p, want)
			}
		}
	}
}

// testSubscribeThenPublish: a message published right after Subscribe
// returns is delivered, with no pause in between.
func testSubscribeThenPublish(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	a, b := nodes[0], nodes[1]
	for i := range 50 {
		topic := fmt.Sprintf("sub/socket/room/%d", 1000+i)
		MustSubscribe(t, b, topic)
		MustPublish(t, a, topic, []byte("first"))
		b.WaitFor(t, topic, []byte("first"))
	}
}

// testOrderUnderBurst: 10,000 messages published back to back arrive complete
// and in order.
func testOrderUnderBurst(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	a, b := nodes[0], nodes[1]
	const topic, count = "sub/socket/room/burst", 10_000
	MustSubscribe(t, b, topic)
	ctx := Context(t)
	for i := range count {
		if err := a.Bus.Publish(ctx, topic, seqPayload(i)); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
	b.WaitCount(t, topic, count)
	checkSequence(t, b, topic, count)
}

func seqPayload(i int) []byte {
	p := make([]byte, 8, 40)
	binary.BigEndian.PutUint64(p, uint64(i))
	return fmt.Appendf(p, `{"seq":%d}`, i)
}

func checkSequence(t testing.TB, n *Node, topic string, count int) {
	t.Helper()
	got := n.Received(topic)
	if len(got) != count {
		t.Fatalf("node %s: %d messages on %q, want %d", n.Name, len(got), topic, count)
	}
	for i, p := range got {
		if !bytes.Equal(p, seqPayload(i)) {
			t.Fatalf("node %s: message %d on %q is %q, want %q", n.Name, i, topic, p, seqPayload(i))
		}
	}
}

// testUnsubscribe: after Unsubscribe returns nothing more arrives, and a new
// Subscribe brings delivery back.
func testUnsubscribe(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	const topic = "sub/socket/room/7"
	MustSubscribe(t, b, topic)
	MustSubscribe(t, c, topic)

	MustPublish(t, a, topic, []byte("before"))
	b.WaitFor(t, topic, []byte("before"))

	MustUnsubscribe(t, b, topic)
	MustPublish(t, a, topic, []byte("after"))
	c.WaitFor(t, topic, []byte("after"))
	Settle(t, nodes)
	if b.Contains(topic, []byte("after")) {
		t.Fatalf("node B received a message published after it unsubscribed")
	}

	MustSubscribe(t, b, topic)
	MustPublish(t, a, topic, []byte("again"))
	b.WaitFor(t, topic, []byte("again"))
	Settle(t, nodes)
	wantCount(t, b, topic, 2)
}

// testSetSemantics: subscriptions are a set, the hub does the counting.
func testSetSemantics(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	a, b := nodes[0], nodes[1]
	const topic = "sub/socket/room/9"

	MustUnsubscribe(t, b, "sub/socket/room/never-subscribed")

	MustSubscribe(t, b, topic)
	MustSubscribe(t, b, topic)
	MustPublish(t, a, topic, []byte("once"))
	b.WaitFor(t, topic, []byte("once"))
	Settle(t, nodes)
	wantCount(t, b, topic, 1) // subscribing twice must not deliver twice

	MustUnsubscribe(t, b, topic)
	MustPublish(t, a, topic, []byte("gone"))
	Settle(t, nodes)
	if b.Contains(topic, []byte("gone")) {
		t.Fatalf("one Unsubscribe after two Subscribes left the topic subscribed")
	}
	MustUnsubscribe(t, b, topic) // a second Unsubscribe is harmless
}

// testPrivateTopics: per-session topics, each held by one node, reachable
// from every node and from nowhere else.
func testPrivateTopics(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 3)
	const sessions = 20
	session := func(n *Node, i int) string {
		return fmt.Sprintf("user/session/message/%s-%d", n.Name, i)
	}
	for _, n := range nodes {
		for i := range sessions {
			MustSubscribe(t, n, session(n, i))
		}
	}
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			for i := range sessions {
				MustPublish(t, from, session(to, i), []byte("from "+from.Name))
			}
		}
	}
	for _, n := range nodes {
		for i := range sessions {
			n.WaitCount(t, session(n, i), len(nodes)-1)
		}
	}
	Settle(t, nodes)
	for _, n := range nodes {
		for _, d := range n.All() {
			if d.Topic == settleTopic {
				continue
			}
			if !bytes.HasPrefix([]byte(d.Topic), []byte("user/session/message/"+n.Name+"-")) {
				t.Errorf("node %s received %q on %q, a topic it does not hold", n.Name, d.Payload, d.Topic)
			}
		}
		for i := range sessions {
			wantCount(t, n, session(n, i), len(nodes)-1)
		}
	}
}

// testManyTopics: 1,000 topics on one node, interleaved publishing, per-topic
// order, then unsubscribing all of them.
func testManyTopics(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	a, b := nodes[0], nodes[1]
	const topics, perTopic = 1000, 3
	name := func(i int) string { return fmt.Sprintf("sub/socket/room/%d", 50_000+i) }
	// The hub subscribes from many connections at once.
	const subscribers = 8
	ctx := Context(t)
	var wg sync.WaitGroup
	errs := make(chan error, subscribers)
	for g := range subscribers {
		wg.Go(func() {
			for i := g; i < topics; i += subscribers {
				if err := b.Bus.Subscribe(ctx, name(i)); err != nil {
					errs <- fmt.Errorf("Subscribe(%q): %w", name(i), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for seq := range perTopic {
		for i := range topics {
			if err := a.Bus.Publish(ctx, name(i), seqPayload(seq)); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
	}
	for i := range topics {
		b.WaitCount(t, name(i), perTopic)
	}
	for i := range topics {
		checkSequence(t, b, name(i), perTopic)
	}

	for i := range topics {
		MustUnsubscribe(t, b, name(i))
	}
	for i := range topics {
		if err := a.Bus.Publish(ctx, name(i), []byte("after")); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	Settle(t, nodes)
	for i := range topics {
		wantCount(t, b, name(i), perTopic)
	}
}

// testConcurrentPublishers: every node publishes from several goroutines at
// once on one shared topic while another node churns unrelated
// subscriptions; each node gets everything the others sent, each sender's
// messages in order.
func testConcurrentPublishers(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 3)
	const topic = "sub/socket/room/shared"
	const goroutines, perGoroutine = 4, 250
	for _, n := range nodes {
		MustSubscribe(t, n, topic)
	}

	ctx := Context(t)
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*goroutines+1)
	for _, n := range nodes {
		for g := range goroutines {
			wg.Go(func() {
				for i := range perGoroutine {
					if err := n.Bus.Publish(ctx, topic, fmt.Appendf(nil, "%s/%d/%d", n.Name, g, i)); err != nil {
						errs <- fmt.Errorf("node %s: Publish: %w", n.Name, err)
						return
					}
				}
			})
		}
	}
	churnDone := make(chan struct{})
	wg.Go(func() {
		defer close(churnDone)
		for i := range 100 {
			churn := fmt.Sprintf("sub/socket/room/churn-%d", i%10)
			if err := nodes[1].Bus.Subscribe(ctx, churn); err != nil {
				errs <- fmt.Errorf("churn Subscribe: %w", err)
				return
			}
			if err := nodes[1].Bus.Unsubscribe(ctx, churn); err != nil {
				errs <- fmt.Errorf("churn Unsubscribe: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	want := (len(nodes) - 1) * goroutines * perGoroutine
	for _, n := range nodes {
		n.WaitCount(t, topic, want)
	}
	Settle(t, nodes)
	for _, n := range nodes {
		got := n.Received(topic)
		if len(got) != want {
			t.Fatalf("node %s: %d messages, want %d", n.Name, len(got), want)
		}
		next := make(map[string]int)
		for _, p := range got {
			var from string
			var g, i int
			if _, err := fmt.Sscanf(string(p), "%1s/%d/%d", &from, &g, &i); err != nil {
				t.Fatalf("node %s: unexpected payload %q: %v", n.Name, p, err)
			}
			if from == n.Name {
				t.Fatalf("node %s received its own message %q", n.Name, p)
			}
			source := fmt.Sprintf("%s/%d", from, g)
			if i != next[source] {
				t.Fatalf("node %s: from %s got message %d, want %d", n.Name, source, i, next[source])
			}
			next[source]++
		}
	}
}

// testBinaryPayloads: payloads are bytes, not text.
func testBinaryPayloads(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	a, b := nodes[0], nodes[1]

	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := make([]byte, 1<<20)
	if _, err := rand.Read(large); err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{
		{},
		{0},
		{0, 0, 0},
		all,
		[]byte("\xff\xfe\x00invalid utf-8\x80"),
		[]byte("\r\n*3\r\n$7\r\nmessage\r\n"), // looks like the Redis protocol
		{255, 'A', 'B'},                       // looks like a length-prefixed frame
		[]byte("상담 메시지 😀"),
		large,
	}
	topics := []string{"sub/socket/room/bin", "sub/socket/room/상담", "user/session/message/with space"}
	for _, topic := range topics {
		MustSubscribe(t, b, topic)
	}
	for _, topic := range topics {
		for _, p := range payloads {
			MustPublish(t, a, topic, p)
		}
	}
	for _, topic := range topics {
		b.WaitCount(t, topic, len(payloads))
	}
	for _, topic := range topics {
		got := b.Received(topic)
		if len(got) != len(payloads) {
			t.Fatalf("%q: %d messages, want %d", topic, len(got), len(payloads))
		}
		for i, p := range got {
			if !bytes.Equal(p, payloads[i]) {
				t.Errorf("%q: payload %d differs: got %d bytes %.40q, want %d bytes %.40q",
					topic, i, len(p), p, len(payloads[i]), payloads[i])
			}
		}
	}
}

// testReady: a healthy bus is ready.
func testReady(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	for _, n := range nodes {
		if err := n.Bus.Ready(Context(t)); err != nil {
			t.Errorf("node %s: Ready: %v", n.Name, err)
		}
	}
}

// testCloseEndsRun: Close makes Run return.
func testCloseEndsRun(t *testing.T, newCluster NewCluster) {
	nodes := StartCluster(t, newCluster, 2)
	MustSubscribe(t, nodes[1], "sub/socket/room/close")
	for _, n := range nodes {
		if err := n.Bus.Close(); err != nil {
			t.Errorf("node %s: Close: %v", n.Name, err)
		}
	}
	for _, n := range nodes {
		n.WaitUntil(t, "Run to return after Close", func() bool {
			select {
			case <-n.RunDone():
				return true
			default:
				return false
			}
		})
	}
}

// testCancelEndsRun: Run returns when its context ends.
func testCancelEndsRun(t *testing.T, newCluster NewCluster) {
	buses := newCluster(t, 1)
	t.Cleanup(func() { _ = buses[0].Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- buses[0].Run(ctx, func(string, []byte) {}) }()
	if err := buses[0].Subscribe(Context(t), "sub/socket/room/cancel"); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	cancel()
	select {
	case <-done:
	case <-Context(t).Done():
		t.Fatal("Run did not return after its context ended")
	}
}
