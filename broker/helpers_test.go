package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// testApp allows or refuses by destination and records what the broker
// tells it. Destinations containing "forbidden" are refused with an ERROR
// frame, "handled" with ErrHandled (after a private notice), "readonly"
// refuse SEND. CONNECT with login "bad" is refused.
type testApp struct {
	srv *Server

	mu     sync.Mutex
	events []string
	sends  []string
}

func (a *testApp) record(format string, args ...any) {
	a.mu.Lock()
	a.events = append(a.events, fmt.Sprintf(format, args...))
	a.mu.Unlock()
}

func (a *testApp) has(event string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		if e == event {
			return true
		}
	}
	return false
}

func (a *testApp) Authenticate(ctx context.Context, c *Conn, h Header) (any, error) {
	login := h.Get("login")
	if login == "bad" {
		return nil, errors.New("unauthorized")
	}
	if login == "" {
		login = "anonymous"
	}
	return login, nil
}

func (a *testApp) AuthorizeSubscribe(ctx context.Context, c *Conn, dest string, h Header) error {
	switch {
	case strings.Contains(dest, "forbidden"):
		return errors.New("forbidden destination")
	case strings.Contains(dest, "handled"):
		_ = a.srv.SendPrivate(ctx, c.ID(), []byte(`{"eventName":"ERROR"}`))
		return fmt.Errorf("refused: %w", ErrHandled)
	}
	return nil
}

func (a *testApp) HandleSend(ctx context.Context, c *Conn, dest string, h Header, body []byte) error {
	a.mu.Lock()
	a.sends = append(a.sends, dest+" "+string(body))
	a.mu.Unlock()
	switch dest {
	case "pub/echo":
		return a.srv.Publish(ctx, "/sub/echo", body)
	case "pub/private":
		return a.srv.SendPrivate(ctx, c.ID(), body)
	case "pub/fail":
		return errors.New("handler refused")
	case "pub/handled":
		return fmt.Errorf("told the client: %w", ErrHandled)
	case "pub/panic":
		panic("application bug")
	}
	return nil
}

func (a *testApp) AuthorizeSend(ctx context.Context, c *Conn, dest string, h Header) error {
	if strings.Contains(dest, "readonly") {
		return errors.New("read-only destination")
	}
	return nil
}

func (a *testApp) Subscribed(ctx context.Context, c *Conn, dest string, h Header) {
	a.record("subscribed %s %s", c.Principal(), dest)
}

func (a *testApp) Unsubscribed(ctx context.Context, c *Conn, dest string) {
	a.record("unsubscribed %s %s", c.Principal(), dest)
}

func (a *testApp) Disconnected(ctx context.Context, c *Conn) {
	a.record("disconnected %s", c.Principal())
}

type testServer struct {
	*Server
	app  *testApp
	http *httptest.Server
	reg  *prometheus.Registry
}

func startServer(t testing.TB, cfg Config, bus Bus) *testServer {
	t.Helper()
	if bus == nil {
		bus = NewMemoryBus()
	}
	app := &testApp{}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(cfg, app, bus, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	app.srv = srv
	mux := http.NewServeMux()
	mux.Handle(srv.cfg.Path+"/", srv.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx, "test over")
		hs.Close()
	})
	return &testServer{Server: srv, app: app, http: hs, reg: reg}
}

// conn returns the local connection of session id, or nil.
func (s *testServer) conn(id string) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

func (s *testServer) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(s.http.URL, "http") + path
}

// wsStream adapts a WebSocket client connection to the byte stream a STOMP
// client expects: every Write is one text message.
type wsStream struct {
	ws  *websocket.Conn
	r   io.Reader
	wmu sync.Mutex
}

func dialWS(t testing.TB, url string) *wsStream {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Sec-WebSocket-Protocol": {"v12.stomp"}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	s := &wsStream{ws: ws}
	t.Cleanup(func() { _ = ws.Close() })
	return s
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			_, r, err := s.ws.NextReader()
			if err != nil {
				return 0, err
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if errors.Is(err, io.EOF) {
			s.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.ws.WriteMessage(websocket.TextMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsStream) Close() error { return s.ws.Close() }

// stompClient connects the go-stomp client over the raw WebSocket.
func stompClient(t testing.TB, s *testServer, opts ...func(*stomp.Conn) error) *stomp.Conn {
	t.Helper()
	opts = append([]func(*stomp.Conn) error{stomp.ConnOpt.Logger(quietLogger{})}, opts...)
	conn, err := stomp.Connect(dialWS(t, s.wsURL("/ws/websocket")), opts...)
	if err != nil {
		t.Fatalf("stomp connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.MustDisconnect() })
	return conn
}

// rawClient writes raw bytes and reads frames, for what a well-behaved
// client library refuses to send.
type rawClient struct {
	t      testing.TB
	stream *wsStream
	frames chan *frame.Frame
	done   chan struct{}
}

func newRawClient(t testing.TB, url string) *rawClient {
	t.Helper()
	c := &rawClient{t: t, stream: dialWS(t, url), frames: make(chan *frame.Frame, 1024), done: make(chan struct{})}
	go c.readFrom(c.stream)
	return c
}

// readFrom reads frames from r until it fails, then closes c.done.
func (c *rawClient) readFrom(r io.Reader) {
	defer close(c.done)
	fr := frame.NewReader(bufio.NewReader(r))
	for {
		f, err := fr.Read()
		if err != nil {
			return
		}
		if f == nil {
			f = frame.New("HEARTBEAT")
		}
		c.frames <- f
	}
}

func (c *rawClient) write(s string) {
	c.t.Helper()
	if _, err := c.stream.Write([]byte(s)); err != nil && !peerClosed(err) {
		c.t.Fatalf("write: %v", err)
	}
}

// peerClosed reports whether a write failed because the server had already
// closed the connection: an oversized message is cut while the client is
// still sending it (the client answers the server's close between two of
// its fragments). What the server said before closing is checked by the
// caller's next expect.
func peerClosed(err error) bool {
	return errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// next returns the next frame that is not a heart-beat.
func (c *rawClient) next() *frame.Frame {
	c.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case f := <-c.frames:
			if f.Command == "HEARTBEAT" {
				continue
			}
			return f
		case <-c.done:
			select {
			case f := <-c.frames:
				if f.Command != "HEARTBEAT" {
					return f
				}
				continue
			default:
			}
			c.t.Fatalf("connection closed while waiting for a frame")
		case <-deadline:
			c.t.Fatalf("no frame within 5s")
		}
	}
}

func (c *rawClient) expect(command string) *frame.Frame {
	c.t.Helper()
	f := c.next()
	if f.Command != command {
		c.t.Fatalf("got %s %v %q, want %s", f.Command, headerString(f.Header), f.Body, command)
	}
	return f
}

// expectClosed waits for the server to close the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.t.Fatalf("connection still open")
	}
}

func (c *rawClient) connect(extra string) *frame.Frame {
	c.t.Helper()
	if extra != "" && !strings.HasSuffix(extra, "\n") {
		extra += "\n"
	}
	c.write("CONNECT\naccept-version:1.2\nhost:test\n" + extra + "\n\x00")
	return c.expect("CONNECTED")
}

// subscribedClients connects n raw WebSocket clients, logged in as u0,
// u1, ..., each subscribed to dest with its receipt read.
func subscribedClients(t testing.TB, s *testServer, n int, dest string) []*rawClient {
	t.Helper()
	clients := make([]*rawClient, n)
	for i := range clients {
		c := newRawClient(t, s.wsURL("/ws/websocket"))
		c.connect(fmt.Sprintf("login:u%d", i))
		c.write("SUBSCRIBE\nid:1\ndestination:" + dest + "\nreceipt:r\n\n\x00")
		c.expect("RECEIPT")
		clients[i] = c
	}
	return clients
}

func headerString(h *frame.Header) string {
	var b bytes.Buffer
	for i := 0; i < h.Len(); i++ {
		k, v := h.GetAt(i)
		fmt.Fprintf(&b, "%s:%s ", k, v)
	}
	return b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func recvMessage(t testing.TB, sub *stomp.Subscription) *stomp.Message {
	t.Helper()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatalf("subscription %s closed", sub.Destination())
		}
		if m.Err != nil {
			t.Fatalf("subscription %s: %v", sub.Destination(), m.Err)
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("no message on %s within 5s", sub.Destination())
	}
	return nil
}

// sockjsStream speaks the SockJS websocket transport
// ({Path}/{server}/{session}/websocket) and exposes the STOMP byte stream.
type sockjsStream struct {
	ws      *websocket.Conn
	pending []byte
	wmu     sync.Mutex
}

func dialSockJS(t testing.TB, s *testServer) *sockjsStream {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/123/"+newSessionID()+"/websocket"), nil)
	if err != nil {
		t.Fatalf("dial sockjs: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &sockjsStream{ws: ws}
}

func (s *sockjsStream) Read(p []byte) (int, error) {
	for len(s.pending) == 0 {
		_, msg, err := s.ws.ReadMessage()
		if err != nil {
			return 0, err
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case 'o', 'h':
		case 'c':
			return 0, io.EOF
		case 'a':
			var parts []string
			if err := json.Unmarshal(msg[1:], &parts); err != nil {
				return 0, err
			}
			for _, part := range parts {
				s.pending = append(s.pending, part...)
			}
		}
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

func (s *sockjsStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	msg, _ := json.Marshal([]string{string(p)})
	if err := s.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *sockjsStream) Close() error { return s.ws.Close() }

// testutilGauge reads a gauge or counter with one label value from the
// server's registry.
func testutilGauge(t testing.TB, s *testServer, name, label string) float64 {
	t.Helper()
	families, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
		}
	}
	return 0
}

// quietLogger keeps go-stomp's connection chatter out of test output.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...interface{})   {}
func (quietLogger) Infof(string, ...interface{})    {}
func (quietLogger) Warningf(string, ...interface{}) {}
func (quietLogger) Errorf(string, ...interface{})   {}
func (quietLogger) Debug(string)                    {}
func (quietLogger) Info(string)                     {}
func (quietLogger) Warning(string)                  {}
func (quietLogger) Error(string)                    {}
