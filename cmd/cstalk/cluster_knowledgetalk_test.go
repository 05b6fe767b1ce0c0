package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/cstalk/cstalk/video/knowledgetalk/kttest"
	"github.com/cstalk/cstalk/video/videotest"
)

// ktSDP is the SDP text of a KnowledgeTalk SDP message.
func ktSDP(t *testing.T, m kttest.Msg) string {
	t.Helper()
	d, _ := m["sdp"].(map[string]any)
	s, _ := d["sdp"].(string)
	if s == "" {
		t.Fatalf("no SDP in %v", m)
	}
	return s
}

// ktPublish publishes b's camera (pion, synthetic VP8 and Opus) in an SFU
// call, as the deployed client does after StartSession.
func ktPublish(t *testing.T, api *webrtc.API, b *kttest.Bot) {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	video, audio := videotest.AddSampleTracks(t, pc, "cam", nil)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Emit(kttest.Msg{"eventOp": "SDP", "roomId": b.RoomID, "usage": "cam", "userId": b.UserID, "host": false,
		"sdp": kttest.Msg{"type": "offer", "sdp": videotest.CompleteSDP(t, pc, offer)}})
	b.Await("SDP", "code", "200")
	answer := b.Await("SDP", "useMediaSvr", "Y", "userId", b.UserID)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ktSDP(t, answer)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go videotest.SendSamples(ctx, video, audio)
}

// ktSubscribe takes b's ReceiveFeed of from's camera, subscribes with
// SendFeed and answers the server's offer; the peer counts what arrives.
func ktSubscribe(t *testing.T, api *webrtc.API, b *kttest.Bot, from string) *videotest.Peer {
	t.Helper()
	rf := b.Await("ReceiveFeed")
	feeds, _ := rf["feeds"].([]any)
	var feedID any
	for _, f := range feeds {
		if f := f.(map[string]any); f["display"] == from {
			feedID = f["id"]
		}
	}
	if feedID == nil {
		t.Fatalf("%s: ReceiveFeed without %s's camera: %v", b.Name, from, rf)
	}
	b.Emit(kttest.Msg{"eventOp": "SendFeed", "roomId": b.RoomID, "feedId": feedID, "display": from})
	offer := b.Await("SDP", "displayId", from)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	p := &videotest.Peer{PC: pc}
	videotest.ReceiveAll(t, pc, &p.Audio, &p.Video)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: ktSDP(t, offer)}); err != nil {
		t.Fatal(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Emit(kttest.Msg{"eventOp": "SDP", "roomId": b.RoomID, "usage": "cam", "pluginId": offer["pluginId"],
		"sdp": kttest.Msg{"type": "answer", "sdp": videotest.CompleteSDP(t, pc, answer)}})
	b.Await("SDP", "code", "200")
	return p
}

// TestClusterKnowledgeTalkAcrossNodes: two `cstalk serve` processes on one
// MariaDB and Redis. A KnowledgeTalk room opened on node A is joined by
// sockets of node B, whose sessions B relays to A: everyone sees everyone,
// the 1:1 SDP and the signalOps cross, the third member turns the call
// SFU on A and media flows both ways between A and the relayed members. A
// relayed socket's drop is one Presence exit; a relayed ExitRoom frees the
// socket. A is killed: B's relayed sockets are closed, and a rejoin opens
// the room on B once A's lease has run out.
func TestClusterKnowledgeTalkAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cstalk and runs two nodes")
	}
	bin := buildCstalk(t)
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	common := []string{"--db", dsn, "--redis", rds.URL(), "--jwt-secret", "cluster-kt-secret-" + randomHex(8),
		"--video-room-lease", "2s"}
	procA := startProcess(t, "node a", bin, append(common, "--demo")...)
	procB := startProcess(t, "node b", bin, common...)
	na, nb := procA.node(), procB.node()
	waitReady(t, na.base, 200)
	waitReady(t, nb.base, 200)

	a := kttest.NewBot(t, na.base, "a", "v2", demoLicence)
	id := a.CreateRoom()
	a.Join(id)
	b := kttest.NewBot(t, nb.base, "b", "v4", demoLicence)
	if ms := kttest.Keys(b.Join(id)["members"]); !ms[a.UserID] || !ms[b.UserID] {
		t.Fatalf("b, relayed by node b, is shown members %v", ms)
	}
	a.Await("StartSession", "useMediaSvr", "N", "who", b.UserID)

	// 1:1: the SDP is relayed untouched both ways, without credentials.
	a.Emit(kttest.Msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "userId": a.UserID, "sdp": kttest.Msg{"type": "offer", "sdp": "v=0 a"}})
	if m := b.Await("SDP", "userId", a.UserID, "useMediaSvr", "N"); m["authKey"] != nil || ktSDP(t, m) != "v=0 a" {
		t.Fatalf("relayed offer: %v", m)
	}
	b.Emit(kttest.Msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "userId": b.UserID, "sdp": kttest.Msg{"type": "answer", "sdp": "v=0 b"}})
	if m := a.Await("SDP", "userId", b.UserID, "useMediaSvr", "N"); m["cpCode"] != nil || ktSDP(t, m) != "v=0 b" {
		t.Fatalf("relayed answer: %v", m)
	}
	b.Emit(kttest.Msg{"signalOp": "SetVideo", "roomId": id, "status": true})
	a.Await("SetVideo", "userId", b.UserID, "status", true)
	b.Emit(kttest.Msg{"signalOp": "ChangeName", "roomId": id, "name": "고객"})
	a.Await("ChangeName", "userId", b.UserID, "name", "고객")
	a.Emit(kttest.Msg{"signalOp": "Chat", "roomId": id, "message": "안녕하세요"})
	b.Await("Chat", "userId", a.UserID, "message", "안녕하세요")
	b.Emit(kttest.Msg{"eventOp": "SessionReserve", "roomId": id})
	b.Await("SessionReserve", "code", "200")
	a.Emit(kttest.Msg{"eventOp": "SessionReserve", "roomId": id})
	a.Await("SessionReserve", "code", "440")
	b.Emit(kttest.Msg{"eventOp": "SessionReserveEnd", "roomId": id})
	b.Await("SessionReserveEnd", "code", "200")

	// The third member, on node b too, turns the call SFU on node a.
	c := kttest.NewBot(t, nb.base, "c", "v2", demoLicence)
	c.Join(id)
	c.Await("StartSession", "useMediaSvr", "Y", "changeView", true, "host", true)
	a.Await("StartSession", "useMediaSvr", "Y", "changeView", true, "host", false)
	b.Await("StartSession", "useMediaSvr", "Y", "changeView", true, "host", false)
	api := videotest.ClientAPI(t, false)
	start := time.Now()
	ktPublish(t, api, a)
	ktPublish(t, api, b)
	fromA := ktSubscribe(t, api, b, a.UserID)
	fromB := ktSubscribe(t, api, a, b.UserID)
	fromA.AwaitMedia(t, "b (relayed) receiving a", 50, mediaWait)
	fromB.AwaitMedia(t, "a receiving b (relayed)", 50, mediaWait)
	t.Logf("SFU switch to media both ways across nodes: %s", time.Since(start).Round(time.Millisecond))
	metricLine(t, na.base, `cstalk_video_rooms{frontend="knowledgetalk"} 1`)
	metricLine(t, na.base, `cstalk_video_participants{frontend="knowledgetalk"} 3`)
	metricLine(t, na.base, `cstalk_video_signaling_connections{transport="relay"} 2`)
	if _, body := getBody(t, nb.base+"/metrics"); strings.Contains(body, `cstalk_video_rooms{frontend="knowledgetalk"} 1`) {
		t.Fatalf("node b opened a room of its own: %s", grepLines(body, "cstalk_video_rooms"))
	}

	// A relayed socket drops: one Presence exit on node a, none later.
	c.Drop()
	a.Await("Presence", "action", "exit", "userId", c.UserID)
	b.Await("Presence", "action", "exit", "userId", c.UserID)
	a.Quiet("Presence", "action", "exit", "userId", c.UserID)
	b.Quiet("Presence", "action", "exit", "userId", c.UserID)
	metricLine(t, na.base, `cstalk_video_signaling_connections{transport="relay"} 1`)

	// A relayed ExitRoom frees the socket on node b: it may join again.
	b.Emit(kttest.Msg{"eventOp": "ExitRoom", "roomId": id})
	b.Await("ExitRoom", "code", "200")
	a.Await("Presence", "action", "exit", "userId", b.UserID)
	b.Join(id)
	a.Await("Presence", "action", "join", "userId", b.UserID)

	// Node a dies: node b closes its relayed socket, as node a's own
	// would be; a rejoin on b opens the room there after a's lease.
	killed := time.Now()
	if err := procA.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procA.exited
	b.AwaitEvent("disconnect")
	d := kttest.NewBot(t, nb.base, "d", "v2", demoLicence)
	deadline := time.Now().Add(clusterWait)
	for tries := 1; ; tries++ {
		d.Emit(kttest.Msg{"eventOp": "RoomJoin", "roomId": id})
		m := d.Await("RoomJoin")
		if kttest.Str(m, "code") == "200" {
			break
		}
		if kttest.Str(m, "code") != "500" || time.Now().After(deadline) {
			t.Fatalf("rejoin on node b (try %d): %v", tries, m)
		}
		time.Sleep(100 * time.Millisecond) // the lease runs out in its own time; nothing to await
	}
	t.Logf("room moved to node b %s after node a died", time.Since(killed).Round(10*time.Millisecond))
	metricLine(t, nb.base, `cstalk_video_rooms{frontend="knowledgetalk"} 1`)
}
