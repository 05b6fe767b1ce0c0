package chat_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/store/storetest"
)

// waitTimeout bounds every wait for an event; events normally arrive in
// milliseconds, so only a broken server ever waits this long.
const waitTimeout = 5 * time.Second

// chatClock is the injected time of a test server; tests move it instead of
// sleeping.
type chatClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *chatClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *chatClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *chatClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// chatEnv is a running cstalk chat node: SQLite store in a temp dir, the real
// broker on 127.0.0.1, with demo tenants 1 and 2.
type chatEnv struct {
	t      *testing.T
	clock  *chatClock
	store  *store.Store
	svc    *chat.Service
	server *broker.Server
	wsURL  string
	// httpURL is the SockJS endpoint, http://127.0.0.1:PORT/ws.
	httpURL string

	seoul   *chat.Company
	incheon *chat.Company
	agent1  *chat.Member // company 1
	agent2  *chat.Member // company 1
	admin1  *chat.Member // company 1, admin
	agent3  *chat.Member // company 2

	cfg chat.Config
	log *slog.Logger
	// lobbyWindow, when set, is the coalescing window of nodes started
	// from now on (defaultLobbyWindow otherwise).
	lobbyWindow time.Duration
	// chatStore, when set, is the store nodes started from now on use
	// (e.g. a wrapper that counts calls); e.store otherwise.
	chatStore chat.Store
}

// node is one cstalk chat node: a chat.Service and its broker on an HTTP
// test server.
type node struct {
	svc     *chat.Service
	server  *broker.Server
	wsURL   string
	httpURL string
}

// defaultLobbyWindow is the coalescing window of the test nodes: lobby
// states come at most this often, so tests that await one wait no longer.
const defaultLobbyWindow = 250 * time.Millisecond

// startNode starts another node on the env's store; presence, when not nil,
// is shared with the other nodes (standing in for a cluster-wide one).
func (e *chatEnv) startNode(bus broker.Bus, presence chat.Presence) *node {
	e.t.Helper()
	var st chat.Store = e.store
	if e.chatStore != nil {
		st = e.chatStore
	}
	svc, err := chat.New(e.cfg, st, e.log)
	if err != nil {
		e.t.Fatalf("chat.New: %v", err)
	}
	if presence != nil {
		svc.UsePresence(presence)
	}
	bcfg := broker.DefaultConfig()
	bcfg.MaxFrameSize = 1 << 20
	bcfg.CoalesceWindow = cmp.Or(e.lobbyWindow, defaultLobbyWindow)
	srv, err := broker.New(bcfg, svc, bus, nil, e.log)
	if err != nil {
		e.t.Fatalf("broker.New: %v", err)
	}
	svc.Bind(srv)
	ts := httptest.NewServer(srv.Handler())
	e.t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx, "test over")
		ts.Close()
		_ = bus.Close()
	})
	return &node{
		svc: svc, server: srv,
		httpURL: ts.URL + "/ws",
		wsURL:   "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/websocket",
	}
}

// seoulAfternoon is 2026-11-23 15:31:37 in Seoul, a Monday afternoon.
var seoulAfternoon = time.Date(2026, 11, 23, 6, 31, 37, 0, time.UTC)

type envOption func(*chat.Config, *chat.Company)

// newEnv starts a node on a fresh SQLite store.
func newEnv(t *testing.T, opts ...envOption) *chatEnv {
	t.Helper()
	return newEnvOn(t, "sqlite:"+t.TempDir()+"/chat.db", opts...)
}

// backend is a store the chat tests run against; a MariaDB run gets a
// database of its own (CSTALK_TEST_MYSQL=off skips it).
type backend struct {
	name string
	dsn  func(t *testing.T) string
}

var chatBackends = []backend{
	{"sqlite", func(t *testing.T) string { return "sqlite:" + t.TempDir() + "/chat.db" }},
	{"mariadb", func(t *testing.T) string { dsn, _ := storetest.MariaDB(t, "chat"); return dsn }},
}

// onEveryBackend runs body as a subtest per store backend: the domain
// behaves the same on the embedded SQLite and on MariaDB.
func onEveryBackend(t *testing.T, body func(t *testing.T, e *chatEnv), opts ...envOption) {
	for _, b := range chatBackends {
		t.Run(b.name, func(t *testing.T) { body(t, newEnvOn(t, b.dsn(t), opts...)) })
	}
}

// newEnvOn starts a node on the store at dsn (migrated, with the tenants).
func newEnvOn(t *testing.T, dsn string, opts ...envOption) *chatEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(chatLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, dsn, log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	e := &chatEnv{t: t, clock: &chatClock{t: seoulAfternoon}, store: st}

	cfg := chat.DefaultConfig()
	cfg.JWTSecret = []byte("test-secret-0123456789abcdef")
	cfg.Now = e.clock.Now
	cfg.UploadDir = t.TempDir()
	// Tests send as fast as they can; the tests of the allowance set it.
	cfg.EventRate = 0
	seoul := &chat.Company{ID: 1, Name: "서울도시가스"}
	for _, o := range opts {
		o(&cfg, seoul)
	}
	e.seoul = seoul
	e.incheon = &chat.Company{ID: 2, Name: "인천도시가스"}
	for _, c := range []*chat.Company{e.seoul, e.incheon} {
		if err := st.SaveCompany(ctx, c); err != nil {
			t.Fatalf("save company: %v", err)
		}
	}
	e.agent1 = e.member(ctx, 1, "agent1", "김상담", false)
	e.agent2 = e.member(ctx, 1, "agent2", "이상담", false)
	e.admin1 = e.member(ctx, 1, "admin1", "박관리", true)
	e.agent3 = e.member(ctx, 2, "agent3", "최인천", false)

	e.cfg, e.log = cfg, log
	n := e.startNode(broker.NewMemoryBus(), nil)
	e.svc, e.server, e.httpURL, e.wsURL = n.svc, n.server, n.httpURL, n.wsURL
	return e
}

func (e *chatEnv) member(ctx context.Context, company int64, login, name string, admin bool) *chat.Member {
	m := &chat.Member{CompanyID: company, LoginName: login, Name: name, PasswordHash: "x", IsAdmin: admin, CreatedAt: seoulAfternoon}
	if err := e.store.CreateMember(ctx, m); err != nil {
		e.t.Fatalf("create member %s: %v", login, err)
	}
	return m
}

func (e *chatEnv) token(m *chat.Member) string {
	tok, _, err := e.svc.IssueToken(m)
	if err != nil {
		e.t.Fatalf("issue token: %v", err)
	}
	return tok
}

type chatLogWriter struct{ t *testing.T }

func (w chatLogWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// chatEvent is one chat event as received.
type chatEvent struct {
	Name string
	Raw  string
	M    map[string]any
	Dest string
}

func (ev chatEvent) data() map[string]any {
	d, _ := ev.M["data"].(map[string]any)
	return d
}

func (ev chatEvent) obj(path ...string) map[string]any {
	cur := ev.M
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func (ev chatEvent) reason() string {
	r, _ := ev.data()["reason"].(string)
	return r
}

// stompClient is one go-stomp connection with its subscriptions.
type stompClient struct {
	t       *testing.T
	name    string
	conn    *stomp.Conn
	private *stomp.Subscription
	subs    map[string]*stomp.Subscription
}

func (e *chatEnv) dial(name string, headers map[string]string) (*stompClient, error) {
	opts := []func(*stomp.Conn) error{stomp.ConnOpt.HeartBeat(0, 0), stomp.ConnOpt.UnsubscribeReceiptTimeout(time.Second)}
	for k, v := range headers {
		opts = append(opts, stomp.ConnOpt.Header(k, v))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, err := brokertest.DialGo(ctx, e.wsURL, opts...)
	if err != nil {
		return nil, err
	}
	c := &stompClient{t: e.t, name: name, conn: conn, subs: make(map[string]*stomp.Subscription)}
	e.t.Cleanup(func() { _ = conn.MustDisconnect() })
	return c, nil
}

func (e *chatEnv) mustDial(name string, headers map[string]string) *stompClient {
	e.t.Helper()
	c, err := e.dial(name, headers)
	if err != nil {
		e.t.Fatalf("%s: connect: %v", name, err)
	}
	return c
}

// customer connects a customer of company 1 and subscribes its private
// channel, returning LOGINED.
func (e *chatEnv) customer(number, name string, extra ...string) (*stompClient, chatEvent) {
	e.t.Helper()
	h := map[string]string{"companyId": "1", "gasappMemberNumber": number, "name": name}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	c := e.mustDial("customer "+number, h)
	c.subscribePrivate()
	return c, c.await(c.private, "LOGINED")
}

// agent connects a member and subscribes its private channel.
func (e *chatEnv) agent(m *chat.Member, extra ...string) *stompClient {
	e.t.Helper()
	h := map[string]string{"Authorization": "Bearer " + e.token(m)}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	c := e.mustDial(m.LoginName, h)
	c.subscribePrivate()
	return c
}

func (c *stompClient) subscribePrivate() {
	c.t.Helper()
	sub, err := c.conn.Subscribe("/user/session/message", stomp.AckAuto)
	if err != nil {
		c.t.Fatalf("%s: subscribe private: %v", c.name, err)
	}
	c.private = sub
}

func (c *stompClient) subscribe(dest string) *stomp.Subscription {
	c.t.Helper()
	sub, err := c.conn.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		c.t.Fatalf("%s: subscribe %s: %v", c.name, dest, err)
	}
	c.subs[dest] = sub
	return sub
}

// unsubscribe ends sub and awaits the server's RECEIPT for it. go-stomp's
// Unsubscribe misses the receipt when it comes before its waiting goroutine
// has started (it then reports a timeout though the subscription closed), so
// what is awaited is sub.C closing, which happens when the receipt is read.
func (c *stompClient) unsubscribe(sub *stomp.Subscription) error {
	err := sub.Unsubscribe()
	if err == nil || !errors.Is(err, &stomp.ErrUnsubscribeReceiptTimeout) {
		return err
	}
	deadline := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-sub.C:
			if !ok {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("%s: no receipt for unsubscribing from %s: %w", c.name, sub.Destination(), err)
		}
	}
}

func (c *stompClient) room(id string) *stomp.Subscription {
	c.t.Helper()
	return c.subscribe("/sub/socket/room/" + id)
}

// send SENDs a raw body to pub/socket/message and waits for the receipt,
// which the server writes only after handling the event.
func (c *stompClient) sendRaw(body []byte, headers ...string) {
	c.t.Helper()
	opts := []func(*frame.Frame) error{stomp.SendOpt.Receipt}
	for i := 0; i+1 < len(headers); i += 2 {
		opts = append(opts, stomp.SendOpt.Header(headers[i], headers[i+1]))
	}
	if err := c.conn.Send("/pub/socket/message", "application/json", body, opts...); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

// send SENDs {"eventName": name, "data": data}.
func (c *stompClient) send(name string, data any, headers ...string) {
	c.t.Helper()
	body, err := json.Marshal(map[string]any{"eventName": name, "data": data})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(body, headers...)
}

// next returns the next event of sub.
func (c *stompClient) next(sub *stomp.Subscription) chatEvent {
	c.t.Helper()
	select {
	case msg, ok := <-sub.C:
		if !ok {
			c.t.Fatalf("%s: subscription %s closed", c.name, sub.Destination())
		}
		return c.decode(sub, msg)
	case <-time.After(waitTimeout):
		c.t.Fatalf("%s: nothing on %s after %v", c.name, sub.Destination(), waitTimeout)
	}
	return chatEvent{}
}

// decode reads the event msg of sub carries.
func (c *stompClient) decode(sub *stomp.Subscription, msg *stomp.Message) chatEvent {
	c.t.Helper()
	if msg.Err != nil {
		c.t.Fatalf("%s: subscription %s: %v", c.name, sub.Destination(), msg.Err)
	}
	ev := chatEvent{Raw: string(msg.Body), Dest: sub.Destination()}
	if err := json.Unmarshal(msg.Body, &ev.M); err != nil {
		c.t.Fatalf("%s: event is not JSON: %v: %s", c.name, err, msg.Body)
	}
	ev.Name, _ = ev.M["eventName"].(string)
	return ev
}

// await skips events of sub until one named name arrives; it fails on an
// ERROR event unless name is ERROR.
func (c *stompClient) await(sub *stomp.Subscription, name string) chatEvent {
	c.t.Helper()
	return c.awaitMatch(sub, name, func(chatEvent) bool { return true })
}

func (c *stompClient) awaitMatch(sub *stomp.Subscription, name string, match func(chatEvent) bool) chatEvent {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var skipped []string
	for time.Now().Before(deadline) {
		ev := c.next(sub)
		if ev.Name == name && match(ev) {
			return ev
		}
		if ev.Name == "ERROR" {
			c.t.Fatalf("%s: ERROR while waiting for %s: %s", c.name, name, ev.Raw)
		}
		skipped = append(skipped, ev.Name)
	}
	c.t.Fatalf("%s: no %s on %s (skipped %v)", c.name, name, sub.Destination(), skipped)
	return chatEvent{}
}

// collect reads events of sub until one named until arrives, returning all.
func (c *stompClient) collect(sub *stomp.Subscription, until string) []chatEvent {
	c.t.Helper()
	var evs []chatEvent
	for {
		ev := c.next(sub)
		evs = append(evs, ev)
		if ev.Name == until {
			return evs
		}
	}
}

// drain returns what is already queued on sub without waiting.
func drainEvents(sub *stomp.Subscription) []chatEvent {
	var evs []chatEvent
	for {
		select {
		case msg, ok := <-sub.C:
			if !ok || msg.Err != nil {
				return evs
			}
			ev := chatEvent{Raw: string(msg.Body)}
			_ = json.Unmarshal(msg.Body, &ev.M)
			ev.Name, _ = ev.M["eventName"].(string)
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func eventNames(evs []chatEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Name
	}
	return out
}

// num reads a JSON number field, failing if it is not a number.
func jsonNum(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok {
		t.Fatalf("%s is %T (%v), want a number in %v", key, m[key], m[key], m)
	}
	return int64(v)
}

// str reads a JSON string field, failing if it is not a string.
func jsonStr(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	v, ok := m[key].(string)
	if !ok {
		t.Fatalf("%s is %T (%v), want a string in %v", key, m[key], m[key], m)
	}
	return v
}

func roomIDOf(t *testing.T, logined chatEvent) string {
	t.Helper()
	return jsonStr(t, logined.M, "roomId")
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func timeAfter() <-chan time.Time { return time.After(waitTimeout) }

// via returns the env with its clients connecting to node n instead.
func (e *chatEnv) via(n *node) *chatEnv {
	c := *e
	c.svc, c.server, c.wsURL, c.httpURL = n.svc, n.server, n.wsURL, n.httpURL
	return &c
}
