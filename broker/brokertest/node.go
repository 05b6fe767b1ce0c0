package brokertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Client libraries the Node driver can run.
const (
	// LibStompJS2 is stompjs 2.3.3 used as seed 003 does: Stomp.over(new SockJS(...)).
	LibStompJS2 = "stompjs2"
	// LibStompJS7 is @stomp/stompjs 7's Client.
	LibStompJS7 = "stompjs7"
)

// Transports the Node driver can drive. TransportRaw is plain STOMP over the
// raw WebSocket at <url>/websocket; the others are sockjs-client transports
// that have a Node implementation. htmlfile, iframe-* and jsonp-polling need a
// browser and are covered by the Chromium tests.
const (
	TransportRaw          = "raw"
	TransportWebSocket    = "websocket"
	TransportXHRStreaming = "xhr-streaming"
	TransportXHRPolling   = "xhr-polling"
	TransportEventSource  = "eventsource"
)

// NodeTransports lists every SockJS transport the Node driver can drive.
func NodeTransports() []string {
	return []string{TransportWebSocket, TransportXHRStreaming, TransportXHRPolling, TransportEventSource}
}

// DefaultTimeout bounds every wait of the helpers that take no timeout.
const DefaultTimeout = 10 * time.Second

// Command is one line sent to the driver; see web/e2e/stomp-driver.cjs.
type Command struct {
	Op          string            `json:"op"`
	ID          string            `json:"id,omitempty"`
	Lib         string            `json:"lib,omitempty"`
	URL         string            `json:"url,omitempty"`
	Transport   string            `json:"transport,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Heartbeat   []int             `json:"heartbeat,omitempty"`
	Sub         string            `json:"sub,omitempty"`
	Destination string            `json:"destination,omitempty"`
	Body        string            `json:"body,omitempty"`
	MessageID   string            `json:"messageId,omitempty"`
	Transaction string            `json:"transaction,omitempty"`
	Receipt     string            `json:"receipt,omitempty"`
	Data        string            `json:"data,omitempty"`
}

// Event is one line the driver reported.
type Event struct {
	Ev          string            `json:"ev"` // ready, connected, message, receipt, error, close, disconnected, fail
	ID          string            `json:"id,omitempty"`
	Sub         string            `json:"sub,omitempty"`
	Destination string            `json:"destination,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Body        string            `json:"body,omitempty"`
	ReceiptID   string            `json:"receiptId,omitempty"`
	Transport   string            `json:"transport,omitempty"`
	Code        int               `json:"code,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Error       string            `json:"error,omitempty"`
	Op          string            `json:"op,omitempty"`
	Raw         string            `json:"-"` // the line as received
}

func (e Event) String() string { return e.Raw }

// JSClient is one Node process running one JavaScript STOMP client.
type JSClient struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	stderr lockedBuffer

	mu      sync.Mutex
	pending []Event // received, not yet consumed by an Expect
	exitErr error
	notify  chan struct{} // signalled (cap 1) on every new event
	done    chan struct{} // closed when the driver's stdout ends
}

// NodeOption adjusts StartNode.
type NodeOption func(*nodeOptions)

type nodeOptions struct {
	name  string
	env   []string
	debug bool
}

// WithName labels the client in failure messages.
func WithName(name string) NodeOption { return func(o *nodeOptions) { o.name = name } }

// WithEnv adds environment variables ("K=V") to the driver process.
func WithEnv(kv ...string) NodeOption {
	return func(o *nodeOptions) { o.env = append(o.env, kv...) }
}

// WithDebug makes the driver log every frame to its stderr, which the test
// log shows if the test fails.
func WithDebug() NodeOption { return func(o *nodeOptions) { o.debug = true } }

// StartNode starts web/e2e/stomp-driver.cjs under node and waits until it is
// ready for commands. The process is stopped when the test ends.
func StartNode(t testing.TB, opts ...NodeOption) *JSClient {
	t.Helper()
	o := nodeOptions{name: "js"}
	for _, opt := range opts {
		opt(&o)
	}
	web, err := WebDir()
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("brokertest: node (>= 20) is not on PATH: %v", err)
	}
	cmd := exec.Command(nodeBin, filepath.Join(web, "e2e", "stomp-driver.cjs"))
	cmd.Dir = web
	cmd.Env = append(os.Environ(), o.env...)
	if o.debug {
		cmd.Env = append(cmd.Env, "STOMP_DRIVER_DEBUG=1")
	}
	c := &JSClient{name: o.name, cmd: cmd, notify: make(chan struct{}, 1), done: make(chan struct{})}
	cmd.Stderr = &c.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("brokertest: %s: stdout pipe: %v", o.name, err)
	}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatalf("brokertest: %s: stdin pipe: %v", o.name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("brokertest: %s: start node: %v", o.name, err)
	}
	go c.readEvents(stdout)
	t.Cleanup(func() { c.stop(t) })
	c.Expect(t, func(e Event) bool { return e.Ev == "ready" }, DefaultTimeout)
	return c
}

// WebDir finds the module's web/ directory by walking up from the working
// directory to go.mod, and checks that its npm dependencies are installed.
func WebDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
	web := filepath.Join(dir, "web")
	for _, pkg := range []string{"sockjs-client", "stompjs", "@stomp/stompjs", "ws"} {
		if _, err := os.Stat(filepath.Join(web, "node_modules", pkg, "package.json")); err != nil {
			return "", fmt.Errorf("npm package %s is missing in %s/node_modules; install it with: (cd %s && npm ci)", pkg, web, web)
		}
	}
	return web, nil
}

func (c *JSClient) readEvents(stdout io.Reader) {
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var ev Event
			if jerr := json.Unmarshal(line, &ev); jerr != nil {
				ev = Event{Ev: "fail", Error: fmt.Sprintf("driver wrote a line that is not JSON: %v", jerr)}
			}
			ev.Raw = string(bytes.TrimSpace(line))
			c.mu.Lock()
			c.pending = append(c.pending, ev)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
		if err != nil {
			c.mu.Lock()
			c.exitErr = c.cmd.Wait()
			c.mu.Unlock()
			close(c.done)
			return
		}
	}
}

func (c *JSClient) stop(t testing.TB) {
	_ = c.stdin.Close() // the driver exits when its stdin ends
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	if t.Failed() && c.stderr.String() != "" {
		t.Logf("brokertest: %s stderr:\n%s", c.name, c.stderr.String())
	}
}

// Do sends one command to the driver.
func (c *JSClient) Do(t testing.TB, cmd Command) {
	t.Helper()
	line, err := json.Marshal(cmd)
	if err != nil {
		t.Fatalf("brokertest: %s: encode command: %v", c.name, err)
	}
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("brokertest: %s: send %s: %v (stderr: %s)", c.name, cmd.Op, err, c.stderr.String())
	}
}

// Expect waits up to timeout for an event that match accepts and consumes it.
// Events that do not match stay queued for later Expects, in order. A "fail"
// event (the driver could not run a command) fails the test at once unless
// match accepts it.
func (c *JSClient) Expect(t testing.TB, match func(Event) bool, timeout time.Duration) Event {
	t.Helper()
	ev, err := c.await(match, timeout, func(e Event) bool { return e.Ev == "fail" })
	if err != nil {
		t.Fatalf("brokertest: %s: %v", c.name, err)
	}
	return ev
}

// await returns the first pending event match accepts, or an error when an
// event fatal accepts arrives first, the driver exits or timeout passes.
func (c *JSClient) await(match func(Event) bool, timeout time.Duration, fatal func(Event) bool) (Event, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i, ev := range c.pending {
			if match(ev) {
				c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
				c.mu.Unlock()
				return ev, nil
			}
			if fatal != nil && fatal(ev) {
				c.mu.Unlock()
				return Event{}, fmt.Errorf("got %s while waiting", ev.Raw)
			}
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.done:
			// Events may have landed between the scan and the exit.
			c.mu.Lock()
			for i, ev := range c.pending {
				if match(ev) {
					c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
					c.mu.Unlock()
					return ev, nil
				}
			}
			exitErr := c.exitErr
			c.mu.Unlock()
			return Event{}, fmt.Errorf("driver exited (%v) before the awaited event; unconsumed events:\n%s\nstderr:\n%s", exitErr, c.PendingString(), c.stderr.String())
		case <-deadline.C:
			return Event{}, fmt.Errorf("timed out after %v; unconsumed events:\n%s", timeout, c.PendingString())
		}
	}
}

// PendingString lists the events received but not consumed, for failure messages.
func (c *JSClient) PendingString() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for _, ev := range c.pending {
		b.WriteString("  ")
		b.WriteString(ev.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// Pending returns a copy of the events received but not consumed.
func (c *JSClient) Pending() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.pending...)
}

// ConnectOptions describes a connect command.
type ConnectOptions struct {
	Lib       string            // LibStompJS2 or LibStompJS7
	URL       string            // the SockJS endpoint, http://127.0.0.1:PORT/ws (or a ws:// URL for TransportRaw)
	Transport string            // TransportRaw or one of NodeTransports()
	Headers   map[string]string // CONNECT headers
	Heartbeat []int             // [outgoing, incoming] ms; nil keeps the library's default
}

// TryConnect connects and returns what came first: "connected", "error" (an
// ERROR frame) or "close".
func (c *JSClient) TryConnect(t testing.TB, o ConnectOptions) Event {
	t.Helper()
	c.Do(t, Command{Op: "connect", Lib: o.Lib, URL: o.URL, Transport: o.Transport, Headers: o.Headers, Heartbeat: o.Heartbeat})
	return c.Expect(t, func(e Event) bool {
		return e.Ev == "connected" || e.Ev == "error" || e.Ev == "close"
	}, DefaultTimeout)
}

// Connect connects and fails the test unless the server answers CONNECTED.
func (c *JSClient) Connect(t testing.TB, o ConnectOptions) Event {
	t.Helper()
	ev := c.TryConnect(t, o)
	if ev.Ev != "connected" {
		t.Fatalf("brokertest: %s: connect %s over %s: got %s", c.name, o.Lib, o.Transport, ev.Raw)
	}
	return ev
}

// Subscribe subscribes with id sub and waits for the server's receipt, so the
// subscription is active when it returns.
func (c *JSClient) Subscribe(t testing.TB, sub, destination string, headers map[string]string) {
	t.Helper()
	receipt := "sub-" + sub + "-" + destination
	c.Do(t, Command{Op: "subscribe", Sub: sub, Destination: destination, Headers: withReceipt(headers, receipt)})
	c.AwaitReceipt(t, receipt)
}

// Unsubscribe ends subscription sub and waits for the server's receipt.
func (c *JSClient) Unsubscribe(t testing.TB, sub string) {
	t.Helper()
	receipt := "unsub-" + sub
	c.Do(t, Command{Op: "unsubscribe", Sub: sub, Headers: map[string]string{"receipt": receipt}})
	c.AwaitReceipt(t, receipt)
}

// Send sends without waiting for anything.
func (c *JSClient) Send(t testing.TB, destination string, headers map[string]string, body string) {
	t.Helper()
	c.Do(t, Command{Op: "send", Destination: destination, Headers: headers, Body: body})
}

// SendReceipt sends with a receipt header and waits for the receipt.
func (c *JSClient) SendReceipt(t testing.TB, destination string, headers map[string]string, body, receipt string) {
	t.Helper()
	c.Do(t, Command{Op: "send", Destination: destination, Headers: withReceipt(headers, receipt), Body: body})
	c.AwaitReceipt(t, receipt)
}

// AwaitReceipt waits for the RECEIPT with receipt-id id. An ERROR frame or a
// closed socket fails the test at once.
func (c *JSClient) AwaitReceipt(t testing.TB, id string) Event {
	t.Helper()
	ev, err := c.await(func(e Event) bool { return e.Ev == "receipt" && e.ReceiptID == id }, DefaultTimeout, connectionLost)
	if err != nil {
		t.Fatalf("brokertest: %s: receipt %q: %v", c.name, id, err)
	}
	return ev
}

// NextMessage waits for the next MESSAGE on subscription sub. An ERROR frame
// or a closed socket fails the test at once.
func (c *JSClient) NextMessage(t testing.TB, sub string) Event {
	t.Helper()
	ev, err := c.await(func(e Event) bool { return e.Ev == "message" && e.Sub == sub }, DefaultTimeout, connectionLost)
	if err != nil {
		t.Fatalf("brokertest: %s: message on %q: %v", c.name, sub, err)
	}
	return ev
}

// NextMessageAny waits for the next MESSAGE on any subscription.
func (c *JSClient) NextMessageAny(t testing.TB) Event {
	t.Helper()
	ev, err := c.await(func(e Event) bool { return e.Ev == "message" }, DefaultTimeout, connectionLost)
	if err != nil {
		t.Fatalf("brokertest: %s: message: %v", c.name, err)
	}
	return ev
}

// Disconnect sends DISCONNECT (with receipt when non-empty) and waits until
// the library reports the connection closed. @stomp/stompjs 7 waits for the
// receipt and reports its id; stompjs 2 closes the socket right after
// DISCONNECT, so its event carries no receipt id.
func (c *JSClient) Disconnect(t testing.TB, receipt string) Event {
	t.Helper()
	c.Do(t, Command{Op: "disconnect", Receipt: receipt})
	return c.Expect(t, func(e Event) bool { return e.Ev == "disconnected" }, DefaultTimeout)
}

func connectionLost(e Event) bool { return e.Ev == "fail" || e.Ev == "error" || e.Ev == "close" }

func withReceipt(headers map[string]string, receipt string) map[string]string {
	h := make(map[string]string, len(headers)+1)
	for k, v := range headers {
		h[k] = v
	}
	h["receipt"] = receipt
	return h
}

// lockedBuffer collects the driver's stderr, written by exec's copier
// goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
