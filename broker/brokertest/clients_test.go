package brokertest_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/brokertest"
)

// openApp lets everyone in and everything through, except CONNECT frames
// carrying a "refuse" header and destinations under sub/forbidden/. It
// records which principals have disconnected.
type openApp struct {
	mu           sync.Mutex
	disconnected map[string]bool
	transports   map[string]string // principal -> transport the broker saw
}

func newOpenApp() *openApp {
	return &openApp{disconnected: map[string]bool{}, transports: map[string]string{}}
}

func (a *openApp) Authenticate(_ context.Context, c *broker.Conn, h broker.Header) (any, error) {
	if _, ok := h.Contains("refuse"); ok {
		return nil, errors.New("refused by the test application")
	}
	login := h.Get("login")
	if login == "" {
		login = "anonymous"
	}
	a.mu.Lock()
	a.transports[login] = c.Transport()
	a.mu.Unlock()
	return login, nil
}

func (a *openApp) AuthorizeSubscribe(_ context.Context, _ *broker.Conn, dest string, _ broker.Header) error {
	if strings.HasPrefix(dest, "sub/forbidden/") {
		return errors.New("forbidden destination")
	}
	return nil
}

func (a *openApp) HandleSend(context.Context, *broker.Conn, string, broker.Header, []byte) error {
	return nil
}

func (a *openApp) AuthorizeSend(context.Context, *broker.Conn, string, broker.Header) error {
	return nil
}

func (a *openApp) Subscribed(context.Context, *broker.Conn, string, broker.Header) {}
func (a *openApp) Unsubscribed(context.Context, *broker.Conn, string)              {}

func (a *openApp) Disconnected(_ context.Context, c *broker.Conn) {
	if login, ok := c.Principal().(string); ok {
		a.mu.Lock()
		a.disconnected[login] = true
		a.mu.Unlock()
	}
}

func (a *openApp) hasDisconnected(login string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.disconnected[login]
}

func (a *openApp) transportOf(login string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.transports[login]
}

type testBroker struct {
	srv     *broker.Server
	app     *openApp
	httpURL string // SockJS endpoint, http://127.0.0.1:PORT/ws
	wsURL   string // raw WebSocket, ws://127.0.0.1:PORT/ws/websocket
}

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	app := newOpenApp()
	bus := broker.NewMemoryBus()
	log := slog.New(slog.DiscardHandler)
	srv, err := broker.New(broker.DefaultConfig(), app, bus, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx, "test over"); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
		ts.Close()
		_ = bus.Close()
	})
	return &testBroker{
		srv:     srv,
		app:     app,
		httpURL: ts.URL + "/ws",
		wsURL:   "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/websocket",
	}
}

type clientCase struct {
	lib, transport string
}

func (c clientCase) name() string { return c.lib + "/" + c.transport }

// allClientCases is every library over every transport Node can drive.
func allClientCases() []clientCase {
	var cases []clientCase
	for _, lib := range []string{brokertest.LibStompJS2, brokertest.LibStompJS7} {
		for _, tr := range append([]string{brokertest.TransportRaw}, brokertest.NodeTransports()...) {
			cases = append(cases, clientCase{lib, tr})
		}
	}
	return cases
}

// brokerTransport is the name broker.Conn.Transport reports for a driver transport.
func brokerTransport(tr string) string {
	if tr == brokertest.TransportRaw {
		return "raw-websocket"
	}
	return tr
}

// TestJavaScriptClients runs every JavaScript client over every transport
// through a whole session: connect, subscribe, fan-out from the broker's Go
// API, from a Go STOMP client and from another JavaScript client, receipts,
// unsubscribe and disconnect.
func TestJavaScriptClients(t *testing.T) {
	b := startBroker(t)
	for _, tc := range allClientCases() {
		t.Run(tc.name(), func(t *testing.T) {
			t.Parallel()
			runSession(t, b, tc)
		})
	}
}

func runSession(t *testing.T, b *testBroker, tc clientCase) {
	ctx := context.Background()
	id := strings.ReplaceAll(tc.name(), "/", "-")
	room := "sub/test/" + id + "/room"
	fence := "sub/test/" + id + "/fence"
	alice := "alice-" + id

	// A Go STOMP client subscribes first, so its probe reaches nobody else.
	gopher := brokertest.ConnectGo(t, b.wsURL, stomp.ConnOpt.Login("gopher-"+id, ""))
	goSub := brokertest.SubscribeGo(t, gopher, room)

	js := brokertest.StartNode(t, brokertest.WithName(alice))
	connected := js.Connect(t, brokertest.ConnectOptions{
		Lib: tc.lib, URL: b.httpURL, Transport: tc.transport,
		Headers: map[string]string{"login": alice},
	})
	if connected.Headers["version"] == "" {
		t.Errorf("CONNECTED without version: %s", connected.Raw)
	}
	if got := b.app.transportOf(alice); got != brokerTransport(tc.transport) {
		t.Errorf("broker saw transport %q, want %q", got, brokerTransport(tc.transport))
	}
	// The leading slash is optional; both spellings name one destination.
	js.Subscribe(t, "room", "/"+room, nil)
	js.Subscribe(t, "fence", fence, nil)

	// Fan-out from the broker's Go API.
	fromAPI := `{"eventName":"MESSAGE","data":{"message":"안녕하세요 ☃ from the API"}}`
	if err := b.srv.Publish(ctx, room, []byte(fromAPI)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := js.NextMessage(t, "room")
	if got.Body != fromAPI {
		t.Errorf("body from Publish = %q, want %q", got.Body, fromAPI)
	}
	if strings.TrimPrefix(got.Destination, "/") != room {
		t.Errorf("MESSAGE destination = %q, want %s", got.Destination, room)
	}
	if got.Headers["message-id"] == "" || got.Headers["subscription"] != "room" {
		t.Errorf("MESSAGE headers: %v", got.Headers)
	}

	// Fan-out from a Go STOMP client's SEND.
	fromGo := `{"eventName":"MESSAGE","data":{"message":"from go-stomp"}}`
	if err := gopher.Send(room, "application/json", []byte(fromGo), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("go-stomp send: %v", err)
	}
	if got := js.NextMessage(t, "room"); got.Body != fromGo {
		t.Errorf("body from go-stomp = %q, want %q", got.Body, fromGo)
	}

	// Fan-out from another JavaScript client, to it, the sender and Go.
	bob := brokertest.StartNode(t, brokertest.WithName("bob-"+id))
	bob.Connect(t, brokertest.ConnectOptions{
		Lib: brokertest.LibStompJS7, URL: b.wsURL, Transport: brokertest.TransportRaw,
		Headers: map[string]string{"login": "bob-" + id},
	})
	bob.Subscribe(t, "room", room, nil)
	fromJS := strings.Repeat("긴 메시지 ", 200) // several KB of UTF-8
	js.SendReceipt(t, room, map[string]string{"content-type": "text/plain"}, fromJS, "sent-1")
	for _, c := range []*brokertest.JSClient{js, bob} {
		if got := c.NextMessage(t, "room"); got.Body != fromJS {
			t.Errorf("body from JS = %d bytes, want %d", len(got.Body), len(fromJS))
		}
	}
	for _, want := range []string{fromAPI, fromGo, fromJS} {
		if body := nextGoBody(t, goSub); body != want {
			t.Errorf("go subscriber got %q, want %q", body, want)
		}
	}

	// After UNSUBSCRIBE nothing more arrives on it. A connection's frames
	// keep their order, so once the fence message (published after) is in,
	// an undelivered room message cannot still be on its way.
	js.Unsubscribe(t, "room")
	if err := b.srv.Publish(ctx, room, []byte("after unsubscribe")); err != nil {
		t.Fatal(err)
	}
	if err := b.srv.Publish(ctx, fence, []byte("fence")); err != nil {
		t.Fatal(err)
	}
	if got := js.NextMessageAny(t); got.Sub != "fence" || got.Body != "fence" {
		t.Errorf("after unsubscribe got %s, want only the fence", got.Raw)
	}
	if got := bob.NextMessage(t, "room"); got.Body != "after unsubscribe" {
		t.Errorf("bob got %q", got.Body)
	}

	// DISCONNECT with a receipt; the broker sees the connection end.
	ev := js.Disconnect(t, "bye-"+id)
	if tc.lib == brokertest.LibStompJS7 && ev.ReceiptID != "bye-"+id {
		t.Errorf("DISCONNECT receipt = %q, want bye-%s", ev.ReceiptID, id)
	}
	brokertest.WaitFor(t, brokertest.DefaultTimeout, alice+" disconnected", func() bool {
		return b.app.hasDisconnected(alice)
	})
}

func nextGoBody(t *testing.T, sub *stomp.Subscription) string {
	t.Helper()
	msg, err := brokertest.NextGoMessage(sub, brokertest.DefaultTimeout)
	if err != nil {
		t.Fatalf("go subscriber: %v", err)
	}
	return string(msg.Body)
}

// TestJavaScriptClientsSeeErrorFrames checks that both libraries surface a
// refused CONNECT and a refused SUBSCRIBE as ERROR frames with the reason.
func TestJavaScriptClientsSeeErrorFrames(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []clientCase{
		{brokertest.LibStompJS2, brokertest.TransportWebSocket},
		{brokertest.LibStompJS2, brokertest.TransportXHRPolling},
		{brokertest.LibStompJS7, brokertest.TransportRaw},
		{brokertest.LibStompJS7, brokertest.TransportXHRStreaming},
		{brokertest.LibStompJS7, brokertest.TransportXHRPolling},
		{brokertest.LibStompJS2, brokertest.TransportEventSource},
	} {
		t.Run(tc.name(), func(t *testing.T) {
			t.Parallel()
			refused := brokertest.StartNode(t, brokertest.WithName("refused"))
			ev := refused.TryConnect(t, brokertest.ConnectOptions{
				Lib: tc.lib, URL: b.httpURL, Transport: tc.transport,
				Headers: map[string]string{"refuse": "yes"},
			})
			if ev.Ev != "error" || !strings.Contains(ev.Headers["message"]+ev.Body, "refused by the test application") {
				t.Errorf("refused CONNECT: got %s, want an ERROR frame with the reason", ev.Raw)
			}

			c := brokertest.StartNode(t, brokertest.WithName("forbidden"))
			c.Connect(t, brokertest.ConnectOptions{Lib: tc.lib, URL: b.httpURL, Transport: tc.transport})
			c.Do(t, brokertest.Command{Op: "subscribe", Sub: "s", Destination: "sub/forbidden/x", Headers: map[string]string{"receipt": "r"}})
			ev = c.Expect(t, func(e brokertest.Event) bool { return e.Ev == "error" || e.Ev == "receipt" }, brokertest.DefaultTimeout)
			if ev.Ev != "error" || !strings.Contains(ev.Headers["message"]+ev.Body, "forbidden destination") {
				t.Errorf("forbidden SUBSCRIBE: got %s, want an ERROR frame with the reason", ev.Raw)
			}
		})
	}
}

// TestDriverRefusesBrowserOnlyTransports keeps the driver honest about what
// Node cannot run: those transports are the browser tests' job.
func TestDriverRefusesBrowserOnlyTransports(t *testing.T) {
	c := brokertest.StartNode(t)
	for _, tr := range []string{"jsonp-polling", "iframe-htmlfile"} {
		c.Do(t, brokertest.Command{Op: "connect", ID: tr, Lib: brokertest.LibStompJS2, URL: "http://127.0.0.1:1/ws", Transport: tr})
		ev := c.Expect(t, func(e brokertest.Event) bool { return e.ID == tr }, brokertest.DefaultTimeout)
		if ev.Ev != "fail" || !strings.Contains(ev.Error, "needs a browser") {
			t.Errorf("%s: got %s, want a fail event", tr, ev.Raw)
		}
	}
}
