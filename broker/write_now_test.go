package broker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	rtmetrics "runtime/metrics"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"
)

func goroutinesCreated() uint64 {
	s := []rtmetrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// subscribedReader starts a server with one STOMP client subscribed to
// destination, and returns once the server counts the subscription.
func subscribedReader(t *testing.T, destination string) (*testServer, *stomp.Subscription) {
	s := startServer(t, DefaultConfig(), nil)
	c := stompClient(t, s, stomp.ConnOpt.Login("reader", ""))
	sub, err := c.Subscribe(destination, stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the subscription", func() bool { return s.Stats().Subscriptions == 1 })
	return s, sub
}

// A delivery to a raw WebSocket that is waiting for nothing is written by
// the publisher at once: publishing one message at a time to an idle
// subscriber starts no writer goroutine per delivery. Bodies of every
// WebSocket length class arrive intact and in order (one that is not UTF-8
// with U+FFFD in place of its invalid bytes, as always).
func TestDeliveryWrittenAtOnce(t *testing.T) {
	s, sub := subscribedReader(t, "/sub/now")
	bodies := [][]byte{
		[]byte("짧은 메시지"),
		bytes.Repeat([]byte("a"), 125-len("content-type:text/plain\ncontent-length:125\n\n")),
		[]byte(strings.Repeat("b", 126)),
		[]byte(strings.Repeat("c", 70000)),
		{0xff, 0xfe, 'x'},
	}
	const rounds = 40
	before := goroutinesCreated()
	for range rounds {
		for _, b := range bodies {
			if err := s.Publish(context.Background(), "sub/now", b); err != nil {
				t.Fatal(err)
			}
			// One at a time: each delivery finds the connection idle.
			want := bytes.ToValidUTF8(b, []byte("\uFFFD"))
			if m := recvMessage(t, sub); !bytes.Equal(m.Body, want) {
				t.Fatalf("got %d bytes %.40q, want %d bytes %.40q", len(m.Body), m.Body, len(want), want)
			}
		}
	}
	// The client's own reader goroutines and the odd large frame that the
	// socket takes only in part may start some; not one per delivery.
	if created := goroutinesCreated() - before; created > rounds*uint64(len(bodies))/4 {
		t.Fatalf("%d goroutines started for %d deliveries", created, rounds*len(bodies))
	}
}

// Writing a delivery at once allocates nothing: the write handed to the
// socket is bound once per connection, not made for every delivery.
func TestTrySendAllocatesNothing(t *testing.T) {
	conns := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil); err == nil {
			conns <- ws
		}
	}))
	defer hs.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ws := <-conns
	defer ws.Close()
	s := &Server{cfg: DefaultConfig()}
	s.buffers.New = func() any { b := make([]byte, 0, 4096); return &b }
	tr := s.newWSTransport(ws)
	frame := []byte("MESSAGE\ndestination:/sub/now\nmessage-id:1\ncontent-length:2\n\nok\x00")
	send := func() {
		if sent, pending, err := tr.TrySend(frame); !sent || pending || err != nil {
			t.Fatalf("TrySend: sent %v, pending %v, %v", sent, pending, err)
		}
	}
	send() // the pooled frame buffer exists from here on
	if allocs := testing.AllocsPerRun(100, send); allocs != 0 {
		t.Fatalf("%.1f allocations per write", allocs)
	}
	// What the client reads is the frames, whole.
	for range 102 {
		if _, p, err := client.ReadMessage(); err != nil || !bytes.Equal(p, frame) {
			t.Fatalf("read %q, %v", p, err)
		}
	}
}

// Frames read together mark each but the last as followed by more (a
// frame's beginning counts): their deliveries are a burst.
func TestFeedMarksFramesFollowedByMore(t *testing.T) {
	var in inputBuffer
	v := v12
	l := limits{maxFrame: 512, maxHeaders: 8, maxLine: 128}
	frames := "SEND\ndestination:/sub/a\n\nx\x00SEND\ndestination:/sub/a\n\ny\x00SEND\ndestination:/sub/a\n\nz"
	var more []bool
	if _, perr := in.feed([]byte(frames), l, &v, func([]byte) bool {
		more = append(more, in.more)
		return true
	}); perr != nil {
		t.Fatal(perr)
	}
	if _, perr := in.feed([]byte("\x00"), l, &v, func([]byte) bool {
		more = append(more, in.more)
		return true
	}); perr != nil {
		t.Fatal(perr)
	}
	if fmt.Sprint(more) != "[true true false]" {
		t.Fatalf("followed by more: %v, want [true true false]", more)
	}
}

// A burst of SENDs in one WebSocket message reaches a subscriber whole and
// in order through its writer, which writes what queued meanwhile at once.
func TestBurstDeliveredInOrder(t *testing.T) {
	s, sub := subscribedReader(t, "/sub/burst")
	pub := newRawClient(t, s.wsURL("/ws/websocket"))
	pub.connect("login:writer")
	const n = 200
	var burst bytes.Buffer
	for i := range n {
		fmt.Fprintf(&burst, "SEND\ndestination:/sub/burst\ncontent-type:text/plain\n\n%d\x00", i)
	}
	before := goroutinesCreated()
	pub.write(burst.String())
	for i := range n {
		if m := recvMessage(t, sub); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d of the burst: %q", i, m.Body)
		}
	}
	// Written at once, one by one, the burst would have started none.
	if goroutinesCreated() == before {
		t.Fatal("the burst's deliveries did not go through the subscriber's writer")
	}
}
