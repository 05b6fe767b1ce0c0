//go:build linux

package broker

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// readers counts the goroutines that read a raw WebSocket, running or
// waiting for bytes.
func readers() int {
	s := stacks()
	return strings.Count(s, "broker.(*wsTransport).readReady(") + strings.Count(s, "broker.(*Conn).serve(")
}

func stacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Idle raw WebSocket connections hold no goroutine (the node keeps a few
// readers waiting for work, not one per connection); bytes arriving on one
// have it read again, and a peer that drops its socket ends it.
func TestIdleRawWebSocketHoldsNoGoroutine(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	clients := subscribedClients(t, s, 10, "/sub/idle")
	waitFor(t, "the readers to end", func() bool { return readers() == 0 })
	if n := strings.Count(stacks(), "broker.(*readPoller).reader("); n > maxIdleReaders {
		t.Fatalf("%d readers wait for work, at most %d should", n, maxIdleReaders)
	}

	clients[3].write("SEND\ndestination:/sub/idle\n\nhello\x00")
	for i, c := range clients {
		if f := c.expect("MESSAGE"); string(f.Body) != "hello" {
			t.Fatalf("client %d got %q", i, f.Body)
		}
	}
	// Twice, so a reader that ended after the first frame started again.
	clients[3].write("SEND\ndestination:/sub/nobody\nreceipt:r2\n\nagain\x00")
	clients[3].expect("RECEIPT")

	_ = clients[5].stream.ws.NetConn().Close()
	waitFor(t, "the dropped connection to end", func() bool { return s.Stats().Connections == 9 })
	if !s.app.has("disconnected u5") || !s.app.has("unsubscribed u5 sub/idle") {
		t.Fatalf("hooks for u5 not called: %v", s.app.events)
	}
	waitFor(t, "the readers to end", func() bool { return readers() == 0 })
}

// A polled connection the server closes ends closeGrace after its close
// frame, though its peer never answers it and no reader waits on the
// socket's deadline (the write timeout, after which the node drops a
// closing connection anyway, is out of reach here).
func TestPolledConnectionEndsWithoutThePeersClose(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WriteTimeout = time.Hour
	s := startServer(t, cfg, nil)
	ws, nc := rawWSConn(t, s)
	if _, err := nc.Write(clientFrame(0x80|opText, []byte("CONNECT\naccept-version:1.2\nhost:test\n\n\x00"))); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "CONNECTED\n") {
		t.Fatalf("got %q, %v; want CONNECTED", msg, err)
	}
	var c *Conn
	s.mu.Lock()
	for _, one := range s.conns {
		c = one
	}
	s.mu.Unlock()
	c.Close("bye")
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("the connection did not end")
	}
	if n := s.Stats().Connections; n != 0 {
		t.Fatalf("%d connections after the close", n)
	}
}

// Without the poller each raw WebSocket keeps a reader goroutine, and
// works as before.
func TestRawWebSocketWithoutPoller(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	s.mu.Lock()
	s.pollerErr = errors.New("no epoll here")
	s.mu.Unlock()
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("login:u1")
	c.write("SUBSCRIBE\nid:1\ndestination:/sub/echo\nreceipt:r\n\n\x00")
	c.expect("RECEIPT")
	if n := readers(); n != 1 {
		t.Fatalf("%d readers, want the connection's own", n)
	}
	c.write("SEND\ndestination:/sub/echo\n\nhi\x00")
	if f := c.expect("MESSAGE"); string(f.Body) != "hi" {
		t.Fatalf("got %q", f.Body)
	}
	c.write("DISCONNECT\n\n\x00")
	c.expectClosed()
	waitFor(t, "the connection to end", func() bool { return s.Stats().Connections == 0 })
	if readers() != 0 {
		t.Fatal("the reader outlived its connection")
	}
}
