package broker

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flakyBus wraps a MemoryBus: Subscribe fails while failSubscribe is set,
// and the first Run returns an error at once.
type flakyBus struct {
	*MemoryBus
	failSubscribe atomic.Bool
	runs          atomic.Int32
}

func (b *flakyBus) Subscribe(ctx context.Context, topic string) error {
	if b.failSubscribe.Load() {
		return errors.New("bus down")
	}
	return b.MemoryBus.Subscribe(ctx, topic)
}

func (b *flakyBus) Run(ctx context.Context, deliver func(string, []byte)) error {
	if b.runs.Add(1) == 1 {
		return errors.New("connection reset")
	}
	return b.MemoryBus.Run(ctx, deliver)
}

func TestBusFailures(t *testing.T) {
	network := NewMemoryNetwork()
	bus := &flakyBus{MemoryBus: network.Node()}
	bus.failSubscribe.Store(true)
	n1 := startServer(t, DefaultConfig(), bus)
	n2 := startServer(t, DefaultConfig(), network.Node())

	// A failing bus subscription still leaves local delivery working.
	c := newRawClient(t, n1.wsURL("/ws/websocket"))
	c.connect("")
	c.write("SUBSCRIBE\nid:1\ndestination:/sub/flaky\nreceipt:r\n\n\x00")
	c.expect("RECEIPT")
	if err := n1.Publish(context.Background(), "sub/flaky", []byte("local")); err != nil {
		t.Fatal(err)
	}
	if m := c.expect("MESSAGE"); string(m.Body) != "local" {
		t.Fatalf("body %q", m.Body)
	}
	// The failed Run is counted by the bus goroutine, which may not have
	// run yet on a busy machine.
	waitFor(t, "the failed Run and Subscribe counted", func() bool {
		return testutilGauge(t, n1, "cstalk_broker_errors_total", "bus") >= 2
	})

	// The next subscriber retries the bus subscription, and the restarted
	// Run delivers what node 2 publishes.
	bus.failSubscribe.Store(false)
	c2 := newRawClient(t, n1.wsURL("/ws/websocket"))
	c2.connect("")
	c2.write("SUBSCRIBE\nid:1\ndestination:/sub/flaky\nreceipt:r\n\n\x00")
	c2.expect("RECEIPT")
	if !bus.Subscribed("sub/flaky") {
		t.Fatal("bus subscription not retried")
	}
	waitFor(t, "Run restarted", func() bool { return bus.runs.Load() >= 2 })
	if err := n2.Publish(context.Background(), "sub/flaky", []byte("remote")); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*rawClient{c, c2} {
		if m := cl.expect("MESSAGE"); string(m.Body) != "remote" {
			t.Fatalf("body %q", m.Body)
		}
	}
}

func TestApplicationClosesConnection(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	session := c.connect("login:kicked").Header.Get("session")
	conn := s.conn(session)
	if conn == nil || conn.Principal() != "kicked" || conn.Transport() != "raw-websocket" || conn.RemoteAddr() == "" {
		t.Fatalf("conn %+v", conn)
	}
	conn.Close("다른 기기에서 로그인했습니다")
	if f := c.expect("ERROR"); f.Header.Get("message") != "다른 기기에서 로그인했습니다" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
	c.expectClosed()
	select {
	case <-conn.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Context not ended after close")
	}
	waitFor(t, "Disconnected", func() bool { return s.app.has("disconnected kicked") })
}

func TestShutdownDeadline(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx, "now"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context: %v", err)
	}
	c.expectClosed()
	waitFor(t, "connections dropped", func() bool { return s.Stats().Connections == 0 })
}

func TestSockJSPostBodyLimit(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	by := newBystander(t, s)
	base := s.http.URL + "/ws/003/" + newSessionID()
	resp, err := http.Post(base+"/xhr", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	huge := `["` + strings.Repeat("x", 2<<20) + `"]`
	resp, err = http.Post(base+"/xhr_send", "text/plain", strings.NewReader(huge))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 MiB xhr_send: %s", resp.Status)
	}
	resp, err = http.Post(base+"/xhr", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(got), "ERROR") || !strings.Contains(string(got), "message:frame too large") {
		t.Fatalf("poll after the refused body: %q", got)
	}
	by.check(t)
}
