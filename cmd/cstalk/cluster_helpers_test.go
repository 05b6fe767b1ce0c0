package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/chat/chattest"
	"github.com/cstalk/cstalk/store/storetest"
)

// Helpers of the multi-node tests: a redis-server and a MariaDB database of
// each test's own, a TCP proxy that can cut the database off, in-process
// nodes, and chat clients on go-stomp.

const clusterWait = 15 * time.Second

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitUntil polls cond until it holds or fails the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freshMariaDB creates an empty database on the machine's MariaDB for this
// test, dropped when it ends, and returns its cstalk DSN and a handle for
// checking what is stored. An unreachable MariaDB fails the test.
func freshMariaDB(t *testing.T) (dsn string, db *sql.DB) {
	t.Helper()
	return storetest.MariaDB(t, "cluster")
}

// storedBodies returns the text of every message of room, in id order.
func storedBodies(t *testing.T, db *sql.DB, room string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT body FROM messages WHERE room_id = ? ORDER BY id", room)
	if err != nil {
		t.Fatalf("read stored messages: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		out = append(out, body)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tcpProxy forwards connections to a target and can cut them off: cut
// closes every open connection and refuses new ones until restore, as a
// network partition or a database crash would look to a client. Silent
// keeps every connection open and accepts new ones, but forwards nothing:
// a server that hangs, or a partition that drops packets.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	silent bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused, silent := p.cut, p.silent && !p.cut
		if silent {
			p.conns[client] = struct{}{}
			p.wg.Add(1)
		}
		p.mu.Unlock()
		if refused {
			client.Close()
			continue
		}
		if silent {
			// Held open, never answered, until closeAll.
			go p.pipe(io.Discard, client)
			continue
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

// pipe copies src to dst until either ends, dropping what arrives while
// the proxy is silent.
func (p *tcpProxy) pipe(dst io.Writer, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		silent := p.silent
		p.mu.Unlock()
		if n > 0 && !silent {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	src.Close()
	p.mu.Lock()
	delete(p.conns, src)
	if c, ok := dst.(net.Conn); ok {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
}

func (p *tcpProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// setSilent stops forwarding without closing anything.
func (p *tcpProxy) setSilent(silent bool) {
	p.mu.Lock()
	p.silent = silent
	p.mu.Unlock()
}

func (p *tcpProxy) setCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	p.mu.Unlock()
	if cut {
		p.closeAll()
	}
}

// clusterNode is one in-process node built by newServer, as `cstalk serve`
// builds it.
type clusterNode struct {
	srv  *server
	base string // http://127.0.0.1:PORT
	stop context.CancelFunc
	ran  chan error
}

// clusterConfig is the configuration every node of one test shares.
func clusterConfig(t *testing.T, db, redisURL string) serveConfig {
	cfg := defaultServeConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DB = db
	cfg.Redis = redisURL
	cfg.JWTSecret = "cluster-test-secret-" + randomHex(8)
	cfg.UploadDir = filepath.Join(t.TempDir(), "uploads")
	cfg.Demo = true
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.LogLevel = "warn"
	return cfg
}

func startClusterNode(t *testing.T, name string, cfg serveConfig) *clusterNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
	srv, err := newServer(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("node %s: %v", name, err)
	}
	n := &clusterNode{srv: srv, base: "http://" + srv.ln.Addr().String(), stop: cancel, ran: make(chan error, 1)}
	go func() { n.ran <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.ran:
		case <-time.After(clusterWait):
			t.Errorf("node %s did not stop", name)
		}
		srv.Close()
	})
	return n
}

// awaitDrained waits until n, stopped, has drained without an error.
func (n *clusterNode) awaitDrained(t *testing.T) {
	t.Helper()
	select {
	case err := <-n.ran:
		if err != nil {
			t.Fatalf("drain: %v", err)
		}
	case <-time.After(clusterWait):
		t.Fatal("the node did not drain")
	}
	n.ran <- nil // the cleanup awaits it too
}

func (n *clusterNode) wsURL() string {
	return "ws" + strings.TrimPrefix(n.base, "http") + "/ws/websocket"
}

func (n *clusterNode) sockJSURL() string { return n.base + "/ws" }

// testLogWriter sends node logs to the test log, shown when a test fails.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func readyStatus(base string) int {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func waitReady(t *testing.T, base string, want int) {
	t.Helper()
	waitUntil(t, clusterWait, fmt.Sprintf("%s/readyz answers %d", base, want), func() bool { return readyStatus(base) == want })
}

// login returns a counselor's bearer token from any node.
func login(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/auth/login", "application/json",
		strings.NewReader(`{"loginName":"`+name+`","password":"demo1234"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("login %s: status %d, %v", name, resp.StatusCode, err)
	}
	return out.Token
}

// event is one chat event as received; inbox drains one subscription.
type (
	event = chattest.Event
	inbox = chattest.Inbox
)

func parseEvent(t *testing.T, body []byte) event {
	t.Helper()
	ev, err := chattest.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// chatClient is a go-stomp connection to one node.
type chatClient struct {
	t       *testing.T
	name    string
	conn    *stomp.Conn
	private *inbox
}

func dialChat(t *testing.T, name string, n *clusterNode, headers map[string]string) *chatClient {
	t.Helper()
	var opts []func(*stomp.Conn) error
	for k, v := range headers {
		opts = append(opts, stomp.ConnOpt.Header(k, v))
	}
	conn := brokertest.ConnectGo(t, n.wsURL(), opts...)
	c := &chatClient{t: t, name: name, conn: conn}
	c.private = c.subscribe("/user/session/message")
	return c
}

func customerHeaders(number string) map[string]string {
	return map[string]string{"companyId": "1", "gasappMemberNumber": number, "name": "고객" + number}
}

func memberHeaders(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func (c *chatClient) subscribe(dest string) *inbox {
	c.t.Helper()
	sub, err := c.conn.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		c.t.Fatalf("%s: subscribe %s: %v", c.name, dest, err)
	}
	return chattest.Drain(dest, sub)
}

// next returns the next event of in.
func (c *chatClient) next(in *inbox) event {
	c.t.Helper()
	return c.nextWithin(in, clusterWait)
}

func (c *chatClient) nextWithin(in *inbox, wait time.Duration) event {
	c.t.Helper()
	ev, err := in.Next(wait)
	if err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	return ev
}

// await skips events until one named name that match accepts (nil: any).
func (c *chatClient) await(in *inbox, name string, match func(event) bool) event {
	c.t.Helper()
	return c.awaitWithin(in, name, match, clusterWait)
}

func (c *chatClient) awaitWithin(in *inbox, name string, match func(event) bool, timeout time.Duration) event {
	c.t.Helper()
	ev, err := in.Await(name, match, timeout)
	if err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	return ev
}

func withText(text string) func(event) bool {
	return func(ev event) bool { return ev.Text() == text }
}

func chatBody(name string, data any) []byte {
	b, _ := json.Marshal(map[string]any{"eventName": name, "data": data})
	return b
}

// trySend SENDs an event and waits for its receipt; it returns the error of
// a send that got none (the connection failed).
func (c *chatClient) trySend(name string, data any, headers ...string) error {
	sendOpts := []func(*frame.Frame) error{stomp.SendOpt.Receipt}
	for i := 0; i+1 < len(headers); i += 2 {
		sendOpts = append(sendOpts, stomp.SendOpt.Header(headers[i], headers[i+1]))
	}
	return c.conn.Send("/pub/socket/message", "application/json", chatBody(name, data), sendOpts...)
}

func (c *chatClient) send(name string, data any, headers ...string) {
	c.t.Helper()
	if err := c.trySend(name, data, headers...); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.name, name, err)
	}
}

// sendNoWait SENDs an event without a receipt.
func (c *chatClient) sendNoWait(name string, data any, headers ...string) {
	c.t.Helper()
	var sendOpts []func(*frame.Frame) error
	for i := 0; i+1 < len(headers); i += 2 {
		sendOpts = append(sendOpts, stomp.SendOpt.Header(headers[i], headers[i+1]))
	}
	if err := c.conn.Send("/pub/socket/message", "application/json", chatBody(name, data), sendOpts...); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.name, name, err)
	}
}

func textMessage(text, clientID string) map[string]any {
	d := map[string]any{"messageType": 0, "message": text, "messageDetail": ""}
	if clientID != "" {
		d["clientMessageId"] = clientID
	}
	return d
}

// rawClient speaks STOMP frames itself over the raw WebSocket, for tests
// that must see exactly which frames arrive and in what order (a receipt
// that must not come).
type rawClient struct {
	t      *testing.T
	name   string
	stream io.ReadWriteCloser
	w      *frame.Writer
	frames chan *frame.Frame
	done   chan struct{}
}

func dialRaw(t *testing.T, name string, n *clusterNode, headers map[string]string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	stream, err := brokertest.DialWebSocket(ctx, n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, name: name, stream: stream, w: frame.NewWriter(stream),
		frames: make(chan *frame.Frame, 256), done: make(chan struct{})}
	t.Cleanup(func() { stream.Close() })
	go func() {
		defer close(c.done)
		r := frame.NewReader(stream)
		for {
			f, err := r.Read()
			if err != nil {
				return
			}
			if f != nil { // nil: a heart-beat
				c.frames <- f
			}
		}
	}()
	connect := frame.New(frame.CONNECT, frame.AcceptVersion, "1.2", frame.Host, "/")
	for k, v := range headers {
		connect.Header.Add(k, v)
	}
	c.write(connect)
	c.expect(frame.CONNECTED)
	c.write(frame.New(frame.SUBSCRIBE, frame.Id, "private", frame.Destination, "/user/session/message"))
	return c
}

func (c *rawClient) write(f *frame.Frame) {
	c.t.Helper()
	if err := c.w.Write(f); err != nil {
		c.t.Fatalf("%s: write %s: %v", c.name, f.Command, err)
	}
}

func (c *rawClient) next() *frame.Frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.done:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatalf("%s: connection closed", c.name)
	case <-time.After(clusterWait):
		c.t.Fatalf("%s: no frame within %v", c.name, clusterWait)
	}
	return nil
}

func (c *rawClient) expect(command string) *frame.Frame {
	c.t.Helper()
	f := c.next()
	if f.Command != command {
		c.t.Fatalf("%s: got %s %v %q, want %s", c.name, f.Command, f.Header, f.Body, command)
	}
	return f
}

// expectEvent reads the next frame, which must be a MESSAGE carrying the
// chat event name, and returns the event.
func (c *rawClient) expectEvent(name string) event {
	c.t.Helper()
	f := c.expect(frame.MESSAGE)
	ev := parseEvent(c.t, f.Body)
	if ev.Name != name {
		c.t.Fatalf("%s: got event %s, want %s", c.name, ev.Raw, name)
	}
	return ev
}

// awaitEvent skips frames until the chat event name on destination arrives.
func (c *rawClient) awaitEvent(destination, name string) event {
	c.t.Helper()
	deadline := time.Now().Add(clusterWait)
	for time.Now().Before(deadline) {
		f := c.next()
		if f.Command == frame.ERROR {
			c.t.Fatalf("%s: ERROR frame %v %q", c.name, f.Header, f.Body)
		}
		if f.Command != frame.MESSAGE || strings.TrimPrefix(f.Header.Get(frame.Destination), "/") != strings.TrimPrefix(destination, "/") {
			continue
		}
		if ev := parseEvent(c.t, f.Body); ev.Name == name {
			return ev
		}
	}
	c.t.Fatalf("%s: no %s on %s within %v", c.name, name, destination, clusterWait)
	return event{}
}

func (c *rawClient) sendEvent(receipt, name string, data any) {
	c.t.Helper()
	f := frame.New(frame.SEND, frame.Destination, "/pub/socket/message", frame.ContentType, "application/json")
	if receipt != "" {
		f.Header.Add(frame.Receipt, receipt)
	}
	f.Body = chatBody(name, data)
	c.write(f)
}

// awaitReceipt skips MESSAGE frames until the RECEIPT id; any other RECEIPT
// or an ERROR frame first fails the test.
func (c *rawClient) awaitReceipt(id string) {
	c.t.Helper()
	for {
		f := c.next()
		switch f.Command {
		case frame.MESSAGE:
			continue
		case frame.RECEIPT:
			if got := f.Header.Get(frame.ReceiptId); got != id {
				c.t.Fatalf("%s: RECEIPT %q, want %q", c.name, got, id)
			}
			return
		default:
			c.t.Fatalf("%s: got %s %v %q while waiting for RECEIPT %s", c.name, f.Command, f.Header, f.Body, id)
		}
	}
}
