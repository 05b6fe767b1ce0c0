package main

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	kt "github.com/cstalk/cstalk/video/knowledgetalk"
	"github.com/cstalk/cstalk/video/knowledgetalk/kttest"
)

var demoLicence = [2]string{kt.DemoCPCode, kt.DemoAuthKey}

// call runs a 1:1 call's signaling between a (socket.io-client 2.3.0) and
// b (4.x) connected to base, in a room a creates on creator's node.
func call(t *testing.T, creator, base string) (a, b *kttest.Bot) {
	t.Helper()
	a = kttest.NewBot(t, creator, "a", "v2", demoLicence)
	id := a.CreateRoom()
	if creator != base {
		a.Drop()
		a = kttest.NewBot(t, base, "a", "v2", demoLicence)
	}
	a.Join(id)
	b = kttest.NewBot(t, base, "b", "v4", demoLicence)
	b.Join(id)
	a.Await("StartSession", "useMediaSvr", "N", "who", b.UserID)
	a.Emit(kttest.Msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "userId": a.UserID, "sdp": kttest.Msg{"type": "offer", "sdp": "v=0"}})
	if m := b.Await("SDP", "userId", a.UserID, "useMediaSvr", "N"); m["authKey"] != nil {
		t.Fatalf("relayed with credentials: %v", m)
	}
	return a, b
}

// TestServeKnowledgeTalk: `cstalk serve --demo` serves the KnowledgeTalk
// signal server at /socket.io/ with the demo licence, to both client
// generations, from any page origin, over WebSockets and long-polling
// that outlive the deadlines of plain HTTP requests.
func TestServeKnowledgeTalk(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTPReadTimeout, cfg.HTTPWriteTimeout = time.Second, time.Second
	srv := startNode(t, cfg)
	base := "http://" + srv.ln.Addr().String()
	a, b := call(t, base, base)
	polling := kttest.NewBot(t, base, "polling", "v2-polling", demoLicence)
	polling.Sync()

	// Engine.IO 3 and 4 framing, as the wire page has it. (Pages' Origin
	// headers: the Chromium tests of video/knowledgetalk.)
	for eio, joined := range map[string]string{"3": "40/SignalServer", "4": `40/SignalServer,{"sid":"`} {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO="+eio+"&transport=websocket",
			nil)
		if err != nil {
			t.Fatalf("EIO %s: %v", eio, err)
		}
		// read returns the next frame but the root namespace's "40", which
		// socket.io 2 servers send unasked, in no fixed order with the
		// others, and the 2.x client ignores.
		read := func() string {
			for {
				_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, p, err := ws.ReadMessage()
				if err != nil {
					t.Fatalf("EIO %s: %v", eio, err)
				}
				if string(p) != "40" {
					return string(p)
				}
			}
		}
		if open := read(); !strings.HasPrefix(open, `0{`) || !strings.Contains(open, `"pingInterval":25000`) {
			t.Fatalf("EIO %s open %q", eio, open)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte("40/SignalServer,"))
		if got := read(); !strings.HasPrefix(got, joined) {
			t.Fatalf("EIO %s namespace answer %q, want %q", eio, got, joined)
		}
		if eio == "3" { // the client pings
			_ = ws.WriteMessage(websocket.TextMessage, []byte("2"))
			if pong := read(); pong != "3" {
				t.Fatalf("EIO 3 pong %q", pong)
			}
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`42/SignalServer,["knowledgetalk",{"eventOp":"KeepAlive"}]`))
		if ka := read(); !strings.Contains(ka, `"eventOp":"KeepAlive"`) || !strings.Contains(ka, `"code":"200"`) {
			t.Fatalf("EIO %s KeepAlive %q", eio, ka)
		}
		ws.Close()
	}

	// Past the deadlines of a plain request, the call's sockets live on.
	time.Sleep(1500 * time.Millisecond)
	b.Emit(kttest.Msg{"signalOp": "SetVideo", "roomId": b.RoomID, "status": true})
	a.Await("SetVideo", "userId", b.UserID, "status", true)
	polling.Sync()
	if code, body := getBody(t, base+"/metrics"); code != 200 || !strings.Contains(body, `cstalk_video_signaling_connections{transport="socketio"} 3`) ||
		!strings.Contains(body, `cstalk_video_participants{frontend="knowledgetalk"} 2`) {
		t.Fatalf("metrics: %s", grepLines(body, "cstalk_video_"))
	}
}

// TestClusterKnowledgeTalk: two nodes on one MariaDB and Redis share
// licences and rooms: a room made on one node is joined on the other, and
// a call's members meet whichever node each reached (the room lives on
// the node of its first join; TestClusterKnowledgeTalkAcrossNodes has the
// relay in full). Then a room lives on node A, one member's socket on A,
// the other's on B (relayed), and A drains (SIGTERM's path): both sockets
// are closed, A gives the room up and keeps it in the store, so a RoomJoin
// on B opens it there at once, long before A's lease would have run out.
func TestClusterKnowledgeTalk(t *testing.T) {
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	cfg.VideoRoomLease = time.Minute
	na := startClusterNode(t, "a", cfg)
	nb := startClusterNode(t, "b", cfg)
	waitReady(t, na.base, 200)
	waitReady(t, nb.base, 200)
	call(t, na.base, nb.base)
	a2, b2 := call(t, nb.base, na.base)
	b2.Drop()
	a2.Await("Presence", "action", "exit", "userId", b2.UserID)

	a := kttest.NewBot(t, na.base, "a", "v2", demoLicence)
	id := a.CreateRoom()
	a.Join(id)
	b := kttest.NewBot(t, nb.base, "b", "v2", demoLicence)
	b.Join(id)
	a.Await("StartSession", "useMediaSvr", "N", "who", b.UserID)
	na.stop()
	a.AwaitEvent("disconnect")
	b.AwaitEvent("disconnect")
	na.awaitDrained(t)
	c := kttest.NewBot(t, nb.base, "c", "v4", demoLicence)
	c.Join(id) // 500 while a's lease held the room, 400 had a deleted it
}
