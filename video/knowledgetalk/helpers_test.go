package knowledgetalk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/video"
	kt "github.com/cstalk/cstalk/video/knowledgetalk"
	"github.com/cstalk/cstalk/video/videotest"
)

// Licences of the test companies 1 and 2.
var (
	lic1 = [2]string{"KP-TEST-0001", "key-one"}
	lic2 = [2]string{"KP-TEST-0002", "key-two"}
)

type harness struct {
	t     *testing.T
	store *store.Store
	video *video.Server
	kt    *kt.Server
	http  *httptest.Server
	reg   *prometheus.Registry
}

func testLog() *slog.Logger {
	if os.Getenv("KT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a video server and the KnowledgeTalk front end on a fresh
// SQLite store with companies 1 and 2 and their licences.
func start(t *testing.T, mutate func(*kt.Config, *video.Config)) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "kt.db"), testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i, lic := range [][2]string{lic1, lic2} {
		c := &chat.Company{Name: fmt.Sprintf("회사 %d", i+1)}
		if err := st.SaveCompany(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := st.SaveKTLicence(ctx, &kt.Licence{CPCode: lic[0], CompanyID: c.ID, AuthKeyHash: kt.HashAuthKey(lic[1]), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	vcfg := video.DefaultConfig()
	vcfg.IncludeLoopback = true
	vcfg.Interfaces = []string{"lo"}
	kcfg := kt.DefaultConfig()
	if mutate != nil {
		mutate(&kcfg, &vcfg)
	}
	reg := prometheus.NewRegistry()
	refuse := video.AuthorizerFunc(func(context.Context, string, string, string, string) (video.Identity, error) {
		return video.Identity{}, video.ErrUnauthorized
	})
	vs, err := video.New(vcfg, refuse, reg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kt.New(kcfg, vs, st, testLog())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", ks.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = ks.Close()
		_ = vs.Close()
		hs.Close()
	})
	return &harness{t: t, store: st, video: vs, kt: ks, http: hs, reg: reg}
}

// metric adds up every series of the metric name whose labels include
// the label=value pairs of want.
func (h *harness) metric(name string, want ...string) float64 {
	h.t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(want); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
				}
				if !found {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func checkFor(t *testing.T, timeout time.Duration, fn func() error) { t.Helper(); videotest.CheckFor(t, timeout, fn) }

// msg is a message the server sent.
type msg = map[string]any

func str(m msg, k string) string { s, _ := m[k].(string); return s }

// op is the message's eventOp or signalOp.
func op(m msg) string {
	if s := str(m, "eventOp"); s != "" {
		return s
	}
	return str(m, "signalOp")
}

type botEvent struct {
	Event   string `json:"event"`
	ID      string `json:"id"`
	Data    msg    `json:"data"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func parseEvent(line string) botEvent {
	var e botEvent
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		e.Event, e.Message = "error", "bad line "+line
	}
	return e
}

// bot is a real socket.io client (testdata/kt-bot.cjs): socket.io-client
// 2.3.0 ("v2") or 4.x ("v4").
type bot struct {
	t    *testing.T
	name string
	lic  [2]string
	node *videotest.Node

	// userID and roomID, once joined
	userID, roomID string
}

func (h *harness) bot(name, gen string, lic [2]string) *bot {
	return h.botAt(h.http.URL, name, gen, lic)
}

func (h *harness) botAt(url, name, gen string, lic [2]string) *bot {
	h.t.Helper()
	return newBot(h.t, url, name, gen, lic)
}

func newBot(t *testing.T, url, name, gen string, lic [2]string) *bot {
	t.Helper()
	b := &bot{t: t, name: name, lic: lic, node: videotest.StartNode(t, "socket.io-client-v2", "testdata/kt-bot.cjs", gen, url)}
	b.awaitEvent("connect")
	return b
}

// emit sends m with the bot's licence (unless m names one).
func (b *bot) emit(m msg) {
	b.t.Helper()
	if _, ok := m["cpCode"]; !ok {
		m["cpCode"] = b.lic[0]
	}
	if _, ok := m["authKey"]; !ok {
		m["authKey"] = b.lic[1]
	}
	line, err := json.Marshal(map[string]any{"emit": m})
	if err != nil {
		b.t.Fatal(err)
	}
	b.node.Send(line)
}

// drop ends the client process: its TCP connection drops.
func (b *bot) drop() {
	b.node.Send([]byte(`{"drop":true}`))
	<-b.node.Exited()
}

func (b *bot) awaitEvent(kind string) botEvent {
	b.t.Helper()
	line := b.node.Take(15*time.Second, func(line string) error {
		if e := parseEvent(line); e.Event != kind {
			return fmt.Errorf("%s: %s", b.name, line)
		}
		return nil
	})
	return parseEvent(line)
}

// await returns (and takes) the first message with op whose fields match
// the key/value pairs.
func (b *bot) await(o string, kv ...any) msg {
	b.t.Helper()
	line := b.node.Take(15*time.Second, func(line string) error {
		if e := parseEvent(line); e.Event != "msg" || op(e.Data) != o || !matches(e.Data, kv) {
			return fmt.Errorf("%s waits for %s %v: %s", b.name, o, kv, line)
		}
		return nil
	})
	return parseEvent(line).Data
}

func matches(m msg, kv []any) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if fmt.Sprint(m[kv[i].(string)]) != fmt.Sprint(kv[i+1]) {
			return false
		}
	}
	return true
}

// sync waits for a KeepAlive round trip: whatever the server queued for
// this socket before it is in by then.
func (b *bot) sync() {
	b.t.Helper()
	b.emit(msg{"eventOp": "KeepAlive"})
	b.await("KeepAlive", "code", "200")
}

// quiet syncs and fails if any message with op (and kv) came.
func (b *bot) quiet(o string, kv ...any) {
	b.t.Helper()
	b.sync()
	for _, line := range b.node.Lines() {
		if e := parseEvent(line); e.Event == "msg" && op(e.Data) == o && matches(e.Data, kv) {
			b.t.Errorf("%s got an unexpected %s: %v", b.name, o, e.Data)
		}
	}
}

// createRoom makes a room under the bot's licence.
func (b *bot) createRoom() string {
	b.t.Helper()
	b.emit(msg{"eventOp": "CreateRoom"})
	m := b.await("CreateRoom")
	id := str(m, "roomId")
	if str(m, "code") != "200" || len(id) != 8 {
		b.t.Fatalf("CreateRoom: %v", m)
	}
	return id
}

// join joins room id and returns the RoomJoin answer.
func (b *bot) join(id string) msg {
	b.t.Helper()
	b.emit(msg{"eventOp": "RoomJoin", "roomId": id})
	m := b.await("RoomJoin")
	if str(m, "code") != "200" || !strings.HasPrefix(str(m, "userId"), "u") || len(str(m, "userId")) != 8 {
		b.t.Fatalf("%s RoomJoin: %v", b.name, m)
	}
	b.userID, b.roomID = str(m, "userId"), id
	return m
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
