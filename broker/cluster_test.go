package broker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"
)

func TestSendPrivate(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	a := newRawClient(t, s.wsURL("/ws/websocket"))
	sessionA := a.connect("").Header.Get("session")
	b := newRawClient(t, s.wsURL("/ws/websocket"))
	sessionB := b.connect("").Header.Get("session")
	if sessionA == "" || sessionA == sessionB {
		t.Fatalf("sessions %q %q", sessionA, sessionB)
	}
	a.write("SUBSCRIBE\nid:me\ndestination:/user/session/message\nreceipt:1\n\n\x00")
	a.expect("RECEIPT")
	b.write("SUBSCRIBE\nid:mine\ndestination:user/session/message\nreceipt:1\n\n\x00")
	b.expect("RECEIPT")

	if err := s.SendPrivate(context.Background(), sessionA, []byte(`{"to":"a"}`)); err != nil {
		t.Fatal(err)
	}
	m := a.expect("MESSAGE")
	if string(m.Body) != `{"to":"a"}` || m.Header.Get("destination") != "/user/session/message" || m.Header.Get("subscription") != "me" {
		t.Fatalf("MESSAGE %s %q", headerString(m.Header), m.Body)
	}
	// SEND to pub/private answers the sender only.
	b.write("SEND\ndestination:/pub/private\nreceipt:2\n\n{\"to\":\"b\"}\x00")
	m = b.expect("MESSAGE")
	if string(m.Body) != `{"to":"b"}` || m.Header.Get("destination") != "user/session/message" {
		t.Fatalf("MESSAGE %s %q", headerString(m.Header), m.Body)
	}
	b.expect("RECEIPT")
	// a got nothing of b's: the next thing a sees is its own next message.
	if err := s.SendPrivate(context.Background(), sessionA, []byte("second")); err != nil {
		t.Fatal(err)
	}
	if m := a.expect("MESSAGE"); string(m.Body) != "second" {
		t.Fatalf("a got %q", m.Body)
	}
	if c := s.conn(sessionA); c == nil || !c.HasSubscription("/user/session/message") || c.HasSubscription("sub/other") {
		t.Fatal("HasSubscription")
	}
}

func TestMultiNode(t *testing.T) {
	network := NewMemoryNetwork()
	bus1, bus2 := network.Node(), network.Node()
	n1 := startServer(t, DefaultConfig(), bus1)
	n2 := startServer(t, DefaultConfig(), bus2)

	c1 := newRawClient(t, n1.wsURL("/ws/websocket"))
	c1.connect("")
	c2 := newRawClient(t, n2.wsURL("/ws/websocket"))
	session2 := c2.connect("").Header.Get("session")
	for _, c := range []*rawClient{c1, c2} {
		c.write("SUBSCRIBE\nid:r\ndestination:/sub/room/9\n\n\x00SUBSCRIBE\nid:p\ndestination:/user/session/message\nreceipt:ok\n\n\x00")
		c.expect("RECEIPT")
	}
	if !bus1.Subscribed("sub/room/9") || !bus2.Subscribed("sub/room/9") {
		t.Fatal("no bus subscription for the first local subscriber")
	}

	// A SEND on node 1 reaches both nodes, once each; so does a publish on node 2.
	c1.write("SEND\ndestination:/sub/room/9\nreceipt:sent\n\nfrom node 1\x00")
	expectBody := func(c *rawClient, want string) {
		t.Helper()
		m := c.expect("MESSAGE")
		if string(m.Body) != want || m.Header.Get("subscription") != "r" {
			t.Fatalf("MESSAGE %s %q, want %q", headerString(m.Header), m.Body, want)
		}
	}
	expectBody(c1, "from node 1")
	c1.expect("RECEIPT")
	expectBody(c2, "from node 1")
	if err := n2.Publish(context.Background(), "/sub/room/9", []byte("from node 2")); err != nil {
		t.Fatal(err)
	}
	expectBody(c1, "from node 2")
	expectBody(c2, "from node 2")
	// A private message for a session on node 2, sent from node 1.
	if err := n1.SendPrivate(context.Background(), session2, []byte("across")); err != nil {
		t.Fatal(err)
	}
	if m := c2.expect("MESSAGE"); string(m.Body) != "across" || m.Header.Get("subscription") != "p" {
		t.Fatalf("MESSAGE %s %q", headerString(m.Header), m.Body)
	}
	// No duplicate arrived at node 1's client: its next message is the next publish.
	if err := n1.Publish(context.Background(), "sub/room/9", []byte("barrier")); err != nil {
		t.Fatal(err)
	}
	if m := c1.expect("MESSAGE"); string(m.Body) != "barrier" {
		t.Fatalf("c1 got %q", m.Body)
	}
	if m := c2.expect("MESSAGE"); string(m.Body) != "barrier" {
		t.Fatalf("c2 got %q", m.Body)
	}

	// The last local subscriber leaving drops the node's bus subscription.
	c1.write("UNSUBSCRIBE\nid:r\nreceipt:u\n\n\x00")
	c1.expect("RECEIPT")
	if bus1.Subscribed("sub/room/9") || !bus2.Subscribed("sub/room/9") {
		t.Fatal("bus subscription not dropped after the last local subscriber")
	}
	c2.write("DISCONNECT\nreceipt:bye\n\n\x00")
	c2.expect("RECEIPT")
	waitFor(t, "node 2 unsubscribed", func() bool {
		return !bus2.Subscribed("sub/room/9") && !bus2.Subscribed(privateTopic(session2))
	})
}

func TestSlowConsumerIsCut(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OutboundQueue = 16
	cfg.WriteTimeout = 500 * time.Millisecond
	s := startServer(t, cfg, nil)

	// The slow client subscribes and then never reads again.
	slow, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/websocket"), http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.WriteMessage(websocket.TextMessage, []byte("CONNECT\naccept-version:1.2\nlogin:slow\n\n\x00SUBSCRIBE\nid:1\ndestination:/sub/firehose\nreceipt:r\n\n\x00")); err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := slow.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(msg), "RECEIPT") {
			break
		}
	}

	fast := stompClient(t, s, stomp.ConnOpt.Login("fast", ""), stomp.ConnOpt.ReadChannelCapacity(4096))
	sub, err := fast.Subscribe("/sub/firehose", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two subscribers", func() bool { return s.Stats().Subscriptions == 2 })
	// Publish at the pace of the fast client: its queue never grows, while
	// the slow client's fills once the kernel buffers are full.
	body := []byte(strings.Repeat("x", 32<<10))
	published := 0
	for !s.app.has("disconnected slow") {
		if published > 20000 {
			t.Fatal("the slow consumer was never cut")
		}
		if err := s.Publish(context.Background(), "sub/firehose", body); err != nil {
			t.Fatal(err)
		}
		published++
		if m := recvMessage(t, sub); len(m.Body) != len(body) {
			t.Fatalf("fast client got %d bytes", len(m.Body))
		}
	}
	if n := testutilGauge(t, s, "cstalk_broker_errors_total", "slow_consumer"); n != 1 {
		t.Fatalf("%v slow consumers counted", n)
	}
	if err := fast.Send("/sub/firehose", "text/plain", []byte("still fine"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	t.Logf("slow consumer cut after %d messages of %d bytes", published, len(body))
}

func TestShutdown(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	clients := subscribedClients(t, s, 3, "/sub/all")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx, "server restarting"); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		f := c.expect("ERROR")
		if f.Header.Get("message") != "server restarting" {
			t.Fatalf("ERROR %s", headerString(f.Header))
		}
		c.expectClosed()
	}
	if st := s.Stats(); st.Connections != 0 || st.Subscriptions != 0 || st.Topics != 0 {
		t.Fatalf("after shutdown: %+v", st)
	}
	for i := range 3 {
		if !s.app.has(fmt.Sprintf("disconnected u%d", i)) || !s.app.has(fmt.Sprintf("unsubscribed u%d sub/all", i)) {
			t.Fatalf("hooks for u%d not called: %v", i, s.app.events)
		}
	}
	_, resp, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/websocket"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v %v", err, resp)
	}
}
