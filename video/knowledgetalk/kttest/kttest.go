// Package kttest drives the KnowledgeTalk front end with real socket.io
// clients — socket.io-client 2.3.0 ("v2", Engine.IO 3, the deployed web
// client's library) and 4.x ("v4", Engine.IO 4) from web/node_modules,
// through kt-bot.cjs beside this file — for the tests of knowledgetalk
// and of the cstalk command. It is for tests only.
package kttest

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/videotest"
)

// waitFor bounds every wait for the server: generous, for a machine busy
// with other builds and browsers.
const waitFor = 30 * time.Second

// Msg is a message the server sent.
type Msg = map[string]any

// Str is field k of m as a string ("" when it is none).
func Str(m Msg, k string) string { s, _ := m[k].(string); return s }

// Op is the message's eventOp or signalOp.
func Op(m Msg) string {
	if s := Str(m, "eventOp"); s != "" {
		return s
	}
	return Str(m, "signalOp")
}

// Keys is the set of keys of m, an object (members).
func Keys(m any) map[string]bool {
	out := map[string]bool{}
	if mm, ok := m.(map[string]any); ok {
		for k := range mm {
			out[k] = true
		}
	}
	return out
}

type event struct {
	Event   string `json:"event"`
	ID      string `json:"id"`
	Data    Msg    `json:"data"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func parse(line string) event {
	var e event
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		e.Event, e.Message = "error", "bad line "+line
	}
	return e
}

// Bot is one socket.io client connected to URL/SignalServer over the
// websocket transport, as the deployed client connects.
type Bot struct {
	t    testing.TB
	Name string
	lic  [2]string
	node *videotest.Node

	// UserID and RoomID, once joined.
	UserID, RoomID string
}

// NewBot connects a client of generation gen ("v2" or "v4"; with
// "-polling" over long-polling) to url with licence lic (cpCode,
// authKey), added to everything it emits.
func NewBot(t testing.TB, url, name, gen string, lic [2]string) *Bot {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "kt-bot.cjs")
	b := &Bot{t: t, Name: name, lic: lic, node: videotest.StartNode(t, "socket.io-client-v2", script, gen, url)}
	b.node.Take(waitFor, func(line string) error {
		if e := parse(line); e.Event != "connect" {
			return fmt.Errorf("%s: %s", name, line)
		}
		return nil
	})
	return b
}

// Emit sends m with the bot's licence (unless m names one).
func (b *Bot) Emit(m Msg) {
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

// Drop ends the client process: its TCP connection drops, as when the
// page is closed.
func (b *Bot) Drop() {
	b.node.Send([]byte(`{"drop":true}`))
	<-b.node.Exited()
}

// AwaitEvent waits for a client event other than a message:
// "disconnect", "error".
func (b *Bot) AwaitEvent(kind string) {
	b.t.Helper()
	b.node.Take(waitFor, func(line string) error {
		if e := parse(line); e.Event != kind {
			return fmt.Errorf("%s waits for %s: %s", b.Name, kind, line)
		}
		return nil
	})
}

// Await returns (and takes) the first message with op whose fields match
// the key/value pairs.
func (b *Bot) Await(op string, kv ...any) Msg {
	b.t.Helper()
	line := b.node.Take(waitFor, func(line string) error {
		if e := parse(line); e.Event != "msg" || Op(e.Data) != op || !matches(e.Data, kv) {
			return fmt.Errorf("%s waits for %s %v: %s", b.Name, op, kv, line)
		}
		return nil
	})
	return parse(line).Data
}

func matches(m Msg, kv []any) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if fmt.Sprint(m[kv[i].(string)]) != fmt.Sprint(kv[i+1]) {
			return false
		}
	}
	return true
}

// Sync waits for a KeepAlive round trip: whatever the server queued for
// this socket before it is in by then.
func (b *Bot) Sync() {
	b.t.Helper()
	b.Emit(Msg{"eventOp": "KeepAlive"})
	b.Await("KeepAlive", "code", "200")
}

// Quiet syncs and fails if any message with op (and kv) came.
func (b *Bot) Quiet(op string, kv ...any) {
	b.t.Helper()
	b.Sync()
	for _, line := range b.node.Lines() {
		if e := parse(line); e.Event == "msg" && Op(e.Data) == op && matches(e.Data, kv) {
			b.t.Errorf("%s got an unexpected %s: %v", b.Name, op, e.Data)
		}
	}
}

// CreateRoom makes a room under the bot's licence.
func (b *Bot) CreateRoom() string {
	b.t.Helper()
	b.Emit(Msg{"eventOp": "CreateRoom"})
	m := b.Await("CreateRoom")
	id := Str(m, "roomId")
	if Str(m, "code") != "200" || len(id) != 8 {
		b.t.Fatalf("CreateRoom: %v", m)
	}
	return id
}

// Join joins room id and returns the RoomJoin answer.
func (b *Bot) Join(id string) Msg {
	b.t.Helper()
	b.Emit(Msg{"eventOp": "RoomJoin", "roomId": id})
	m := b.Await("RoomJoin")
	if Str(m, "code") != "200" || !strings.HasPrefix(Str(m, "userId"), "u") || len(Str(m, "userId")) != 8 {
		b.t.Fatalf("%s RoomJoin: %v", b.Name, m)
	}
	b.UserID, b.RoomID = Str(m, "userId"), id
	return m
}
