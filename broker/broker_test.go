package broker

import (
	"context"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

func TestRawWebSocketPubSub(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	a := stompClient(t, s, stomp.ConnOpt.Login("alice", ""))
	b := stompClient(t, s, stomp.ConnOpt.Login("bob", ""))
	if a.Version() != stomp.V12 {
		t.Fatalf("version %s", a.Version())
	}
	subA, err := a.Subscribe("/sub/room/1", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	subB, err := b.Subscribe("sub/room/1", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two subscriptions", func() bool { return s.Stats().Subscriptions == 2 })
	if err := a.Send("/sub/room/1", "text/plain", []byte("hello"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*stomp.Subscription{subA, subB} {
		m := recvMessage(t, sub)
		if string(m.Body) != "hello" {
			t.Fatalf("body %q", m.Body)
		}
		if got := m.Header.Get("destination"); got != sub.Destination() {
			t.Fatalf("destination %q, want %q", got, sub.Destination())
		}
	}
	if err := s.Publish(context.Background(), "sub/room/1", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	m := recvMessage(t, subB)
	if m.ContentType != "application/json;charset=UTF-8" || string(m.Body) != `{"a":1}` {
		t.Fatalf("got %q %q", m.ContentType, m.Body)
	}
}

func TestSockJSWebSocketPubSub(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	conn, err := stomp.Connect(dialSockJS(t, s), stomp.ConnOpt.Login("carol", ""), stomp.ConnOpt.Logger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.MustDisconnect()
	raw := stompClient(t, s)
	sub, err := conn.Subscribe("/sub/lobby", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscription", func() bool { return s.Stats().Subscriptions == 1 })
	if err := raw.Send("sub/lobby", "", []byte("from raw")); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(t, sub); string(m.Body) != "from raw" {
		t.Fatalf("body %q", m.Body)
	}
	waitFor(t, "transport label", func() bool {
		return testutilGauge(t, s, "cstalk_broker_connections", "websocket") == 1 &&
			testutilGauge(t, s, "cstalk_broker_connections", "raw-websocket") == 1
	})
}
