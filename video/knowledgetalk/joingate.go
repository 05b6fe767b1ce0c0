package knowledgetalk

import (
	"bytes"
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// joinGate holds an Engine.IO connection's incoming messages while its
// join of /SignalServer is under way.
//
// It works around a race in github.com/zishang520/socket.io v3.0.6: the
// namespace join runs on the new socket's task queue, and its _doConnect
// writes the CONNECT acknowledgement before it records the namespace in
// the client (Client.doConnect's callback storing c.nsps). A client that
// answers the acknowledgement at once (every client: its first request
// follows the join) can have its next packet decoded on the reader
// goroutine in between; Client.ondecoded then finds no socket for the
// namespace, logs "invalid state (packet type: EVENT)" and closes the
// transport without a close frame (the client sees 1006). Holding the
// reader from a CONNECT until our connection handler runs, which is after
// the namespace is recorded, closes the window.
type joinGate struct {
	timeout time.Duration
	closed  chan struct{} // closed with the connection

	mu      sync.Mutex
	joining chan struct{} // non-nil from a CONNECT until the join completes
}

// gate installs a joinGate on a new Engine.IO connection. Engine.IO
// starts reading only after its "connection" listeners return, so the
// gate sees every packet.
func (s *Server) gate(conn engine.Socket) {
	g := &joinGate{timeout: s.cfg.ConnectTimeout, closed: make(chan struct{})}
	id := conn.Id()
	s.mu.Lock()
	s.gates[id] = g
	s.mu.Unlock()
	_ = conn.On("packet", func(args ...any) {
		if p, ok := args[0].(*packet.Packet); ok && p.Type == packet.MESSAGE {
			g.admit(p.Data)
		}
	})
	_ = conn.Once("close", func(...any) {
		s.mu.Lock()
		delete(s.gates, id)
		s.mu.Unlock()
		close(g.closed)
	})
}

// joined opens the gate of the connection that sock's join completed on.
func (s *Server) joined(conn engine.Socket) {
	s.mu.Lock()
	g := s.gates[conn.Id()]
	s.mu.Unlock()
	if g == nil {
		return
	}
	g.mu.Lock()
	if g.joining != nil {
		close(g.joining)
		g.joining = nil
	}
	g.mu.Unlock()
}

// admit runs on the connection's reader before the message is decoded: it
// waits for a join under way (at most the connect timeout: the library
// closes a connection that has not joined by then), then marks a join of
// /SignalServer as under way.
func (g *joinGate) admit(data any) {
	g.mu.Lock()
	joining := g.joining
	g.mu.Unlock()
	if joining != nil {
		t := time.NewTimer(g.timeout)
		select {
		case <-joining:
		case <-g.closed:
		case <-t.C:
		}
		t.Stop()
	}
	if !joinsNamespace(data) {
		return
	}
	g.mu.Lock()
	if g.joining == nil {
		g.joining = make(chan struct{})
	}
	g.mu.Unlock()
}

// joinsNamespace reports whether an Engine.IO message is the socket.io
// CONNECT of /SignalServer: "0/SignalServer" then "," (Engine.IO 4's
// auth or 3's end of namespace), "?" (3's query) or nothing.
func joinsNamespace(data any) bool {
	b, ok := data.(*types.StringBuffer)
	if !ok {
		return false
	}
	rest, ok := bytes.CutPrefix(b.Bytes(), []byte("0"+namespace))
	return ok && (len(rest) == 0 || rest[0] == ',' || rest[0] == '?')
}
