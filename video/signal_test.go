package video

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLeaveAndReconnect: leaveRoom is announced; a dropped socket keeps its
// place for the grace and resumes with the same token, media untouched;
// after the grace it is announced as gone.
func TestLeaveAndReconnect(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.ReconnectGrace = 1500 * time.Millisecond })
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-7", true, true)
	b.join("r-7", true, true)
	a.await("newParticipantArrived")
	a.publish()
	b.publish()
	aFromB := a.subscribe("2")
	bFromA := b.subscribe("1")
	awaitMedia(t, "1<-2", aFromB, 10)
	awaitMedia(t, "2<-1", bFromA, 10)

	// leaveRoom, then back in.
	b.send(map[string]any{"id": "leaveRoom"})
	if left := a.await("participantLeft"); left.str("userId") != "2" || left.str("name") != "2" {
		t.Fatalf("participantLeft %v", left)
	}
	checkFor(t, 2*time.Second, func() error {
		if !ts.events.has(EventLeft, "r-7", "2") {
			return errors.New("no left event")
		}
		return nil
	})
	ex := b.join("r-7", true, true)
	if members := ex["members"].([]any); len(members) != 1 {
		t.Fatalf("rejoin members %v", members)
	}
	a.await("newParticipantArrived")
	b.publish()
	aFromB = a.subscribe("2")
	bFromA = b.subscribe("1")
	awaitMedia(t, "1<-2 after rejoin", aFromB, 10)
	awaitMedia(t, "2<-1 after rejoin", bFromA, 10)

	// Socket drop and reconnect within the grace: nobody is told, and the
	// media that was flowing keeps flowing.
	b.drop()
	b2 := dial(t, ts, "2", "/signal")
	ex = b2.join("r-7", true, true)
	if members := ex["members"].([]any); len(members) != 1 || members[0].(map[string]any)["userId"] != "1" {
		t.Fatalf("resume members %v", members)
	}
	awaitMedia(t, "1<-2 across the drop", aFromB, 10)
	awaitMedia(t, "2<-1 across the drop", bFromA, 10)
	bFromA2 := b2.subscribe("1") // a re-offer replaces the old subscription
	awaitMedia(t, "2<-1 resubscribed", bFromA2, 10)
	// A republish replaces the old publication; a's subscription, made
	// before, goes on receiving without a new offer.
	before := ts.metricSum(t, "cstalk_video_peer_connections")
	b2.publish()
	checkFor(t, 5*time.Second, func() error {
		if ts.metricSum(t, "cstalk_video_peer_connections") != before {
			return errors.New("the old publication is still open")
		}
		return nil
	})
	awaitMedia(t, "1<-2 republished", aFromB, 10)
	time.Sleep(2 * time.Second) // longer than the grace: the resume must hold
	if !a.none("participantLeft") || !a.none("newParticipantArrived") {
		t.Fatal("a resume was announced to the others")
	}

	// Drop for good: announced after the grace.
	b2.drop()
	start := time.Now()
	a.await("participantLeft", "userId", "2")
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("participantLeft after %s, before the grace", waited)
	}
	if got := ts.Participants(company1("r-7")); len(got) != 1 {
		t.Errorf("participants after drop: %v", got)
	}
	checkFor(t, 2*time.Second, func() error {
		ts.events.mu.Lock()
		defer ts.events.mu.Unlock()
		for _, e := range ts.events.evs {
			if e.Kind == EventLeft && e.User.UserID == "2" && e.Reason == "dropped" {
				return nil
			}
		}
		return errors.New("no left event with reason dropped")
	})
	a.checkRules()
	b.checkRules()
	b2.checkRules()
}

// TestKurentoClient: a client using only Kurento's names works and is
// answered with them.
func TestKurentoClient(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	k := dial(t, ts, "kurento", "/signal?token=tok-kurento")
	k.kurento = true
	a.join("c-3", true, true)
	ex := k.join("c-3", false, false)
	if data := ex["data"].([]any); len(data) != 1 || data[0] != "1" {
		t.Fatalf("existingParticipants data %v", ex)
	}
	if arrived := a.await("newParticipantArrived"); arrived.str("name") != "kurento" {
		t.Fatalf("newParticipantArrived %v", arrived)
	}
	if m := ts.Participants(company1("c-3")); len(m) != 2 || !m[1].Video || !m[1].Audio {
		t.Errorf("a Kurento client publishes both: %v", m)
	}
	a.publish()
	k.publish()
	kFromA := k.subscribe("1")
	aFromK := a.subscribe("kurento")
	awaitMedia(t, "kurento<-1", kFromA, 10)
	awaitMedia(t, "1<-kurento", aFromK, 10)
	a.send(map[string]any{"id": "leaveRoom"})
	if left := k.await("participantLeft"); left.str("name") != "1" {
		t.Fatalf("participantLeft %v", left)
	}
	k.checkRules()
	a.checkRules()
}

// TestMuteState: state changes go to everyone, the sender included, and
// show in the next joiner's list.
func TestMuteState(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("c-1", true, true)
	b.join("c-1", true, true)
	a.send(map[string]any{"id": "videoStateFrom", "userId": "1", "video": false})
	a.send(map[string]any{"id": "audioStateFrom", "userId": "1", "audio": "false"})
	for _, c := range []*client{a, b} {
		if m := c.await("videoStateAnswer"); m.str("userId") != "1" || m["video"] != false {
			t.Fatalf("videoStateAnswer %v", m)
		}
		if m := c.await("audioStateAnswer"); m.str("userId") != "1" || m["audio"] != false {
			t.Fatalf("audioStateAnswer %v", m)
		}
	}
	c := dial(t, ts, "3", "/signal")
	ex := c.join("c-1", true, true)
	first := ex["members"].([]any)[0].(map[string]any)
	if first["userId"] != "1" || first["video"] != false || first["audio"] != false {
		t.Fatalf("members %v", ex["members"])
	}
}

// TestBadInput: every kind of bad input gets its error, and the room's
// media keeps flowing for the others.
func TestBadInput(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxMessageBytes = 16 << 10
		c.MaxSDPBytes = 8 << 10
		c.MaxCandidatesPerPeer = 5
		c.MaxSubscriptions = 2
	})
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-9", true, true)
	b.join("r-9", true, true)
	a.publish()
	bFromA := b.subscribe("1")
	awaitMedia(t, "2<-1", bFromA, 10)

	x := dial(t, ts, "3", "/signal")
	x.sendRaw([]byte(`{"id":`))
	x.awaitError(CodeBadMessage)
	x.sendRaw([]byte(`[1,2,3]`))
	x.awaitError(CodeBadMessage)
	x.send(map[string]any{"id": "dance"})
	x.awaitError(CodeUnknownMessage)
	x.sendRaw([]byte(`{"id":"joinRoom","pad":"` + strings.Repeat("x", 20<<10) + `"}`))
	x.awaitError(CodeTooLarge)
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "1", "sdpOffer": "v=0"})
	x.awaitError(CodeNotJoined)
	x.send(map[string]any{"id": "joinRoom", "token": "tok-3", "userId": "3", "roomId": "x-1"})
	x.awaitError(CodeBadRoom)
	x.send(map[string]any{"id": "joinRoom", "token": "tok-3", "userId": "", "roomId": "r-9"})
	x.awaitError(CodeBadUser)
	x.join("r-9", true, true)
	x.send(map[string]any{"id": "joinRoom", "token": "tok-3", "userId": "3", "roomId": "r-9"})
	x.awaitError(CodeAlreadyJoined)
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "1", "sdpOffer": "garbage\r\nnot sdp"})
	x.awaitError(CodeBadSDP)
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "3", "sdpOffer": "v=0\r\n" + strings.Repeat("a=x\r\n", 1800)})
	x.awaitError(CodeBadSDP)
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "3", "sdpOffer": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"})
	x.awaitError(CodeBadSDP)
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "99", "sdpOffer": "v=0"})
	x.awaitError(CodeBadSDP)
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "3", "roomId": "r-10", "sdpOffer": "v=0"})
	x.awaitError(CodeWrongRoom)
	x.send(map[string]any{"id": "onIceCandidate", "userId": "99", "candidate": map[string]any{"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
	x.awaitError(CodeUnknownParticipant)
	x.send(map[string]any{"id": "onIceCandidate", "userId": "1"})
	x.awaitError(CodeBadCandidate)
	for i := range 8 { // kept for the offer to come, up to the cap
		x.send(map[string]any{"id": "onIceCandidate", "userId": "1", "candidate": map[string]any{
			"candidate": "candidate:1 1 udp 2122194687 127.0.0.1 " + string(rune('1'+i)) + "0000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
	}
	x.awaitError(CodeTooManyCandidates)
	x.send(map[string]any{"id": "videoStateFrom", "userId": "3"})
	x.awaitError(CodeBadMessage)
	x.send(map[string]any{"id": "videoStateFrom", "userId": "1", "video": true})
	x.awaitError(CodeBadUser)
	// Subscriptions beyond the cap.
	c4 := dial(t, ts, "4", "/signal")
	c4.join("r-9", false, false)
	x.subscribe("1") // applies the kept candidates too
	x.subscribe("2")
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "4", "sdpOffer": validOffer(t)})
	x.awaitError(CodeTooManySubscription)
	// A flood of candidates on a live connection.
	for i := range 8 {
		x.send(map[string]any{"id": "onIceCandidate", "userId": "2", "candidate": map[string]any{
			"candidate": "candidate:9 1 udp 2122194687 127.0.0.1 " + string(rune('1'+i)) + "1111 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
	}
	x.awaitError(CodeTooManyCandidates)

	// Bad tokens and forbidden rooms close the connection.
	f := dial(t, ts, "5", "/signal")
	f.send(map[string]any{"id": "joinRoom", "token": "tok-5", "userId": "5", "roomId": "r-forbidden"})
	f.awaitError(CodeForbidden)
	<-f.readDone
	u := dial(t, ts, "6", "/signal")
	u.send(map[string]any{"id": "joinRoom", "token": "forged", "userId": "6", "roomId": "r-9"})
	u.awaitError(CodeUnauthorized)
	<-u.readDone

	// The room never noticed.
	awaitMedia(t, "2<-1 after the abuse", bFromA, 20)
	if !a.none("error") || !b.none("error") {
		t.Errorf("errors leaked to bystanders: %v %v", a.inbox, b.inbox)
	}
	a.checkRules()
	b.checkRules()
	x.checkRules()
}

// validOffer is a subscriber's offer from a real pion peer connection.
func validOffer(t testing.TB) string {
	pc, err := clientAPI(t).NewPeerConnection(webrtcConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(videoKind, recvonly()); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// TestLimits: room capacity and publisher caps.
func TestLimits(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxParticipants = 2
		c.MaxPublishers = 1
	})
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	c := dial(t, ts, "3", "/signal")
	a.join("r-1", true, true)
	b.join("r-1", true, true)
	c.send(map[string]any{"id": "joinRoom", "token": "tok-3", "userId": "3", "roomId": "r-1"})
	c.awaitError(CodeRoomFull)
	a.publish()
	b.send(map[string]any{"id": "receiveVideoFrom", "userId": "2", "sdpOffer": validOffer(t)})
	b.awaitError(CodeTooManyPublishers)
}

// TestSockJS: the same protocol over SockJS, WebSocket framing and
// xhr-polling.
func TestSockJS(t *testing.T) {
	ts := startServer(t, nil)
	resp, err := http.Get(ts.http.URL + "/signal/info")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(info), `"websocket":true`) {
		t.Fatalf("info %s", info)
	}

	ws, _, err := websocket.DefaultDialer.Dial(ts.wsURL("/signal/123/abcdef/websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readFrame := func() string {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("sockjs read: %v", err)
		}
		return string(b)
	}
	if f := readFrame(); f != "o" {
		t.Fatalf("open frame %q", f)
	}
	join, _ := json.Marshal(map[string]any{"id": "joinRoom", "token": "tok-1", "userId": "1", "communityId": "0", "roomId": "r-2", "video": true, "audio": true})
	frame, _ := json.Marshal([]string{string(join)})
	if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		t.Fatal(err)
	}
	f := readFrame()
	var msgs []string
	if !strings.HasPrefix(f, "a") || json.Unmarshal([]byte(f[1:]), &msgs) != nil || len(msgs) != 1 ||
		!strings.Contains(msgs[0], `"existingParticipants"`) {
		t.Fatalf("sockjs answer %q", f)
	}

	// xhr-polling: open, send, poll.
	base := ts.http.URL + "/signal/123/polling1"
	post := func(path, body string) string {
		resp, err := http.Post(base+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := post("/xhr", ""); strings.TrimSpace(got) != "o" {
		t.Fatalf("xhr open %q", got)
	}
	join2, _ := json.Marshal(map[string]any{"id": "joinRoom", "token": "tok-2", "userId": "2", "roomId": "r-2"})
	body, _ := json.Marshal([]string{string(join2)})
	post("/xhr_send", string(body))
	if got := post("/xhr", ""); !strings.Contains(got, `existingParticipants`) || !strings.Contains(got, `\"userId\":\"1\"`) {
		t.Fatalf("xhr poll %q", got)
	}
	f = readFrame()
	if !strings.Contains(f, "newParticipantArrived") {
		t.Fatalf("websocket side %q", f)
	}
}

// TestCloseRoom: the room API ends a call and reports it.
func TestCloseRoom(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-3", true, true)
	b.join("r-3", true, true)
	if n := ts.CloseRoom(company1("r-3")); n != 2 {
		t.Fatalf("CloseRoom = %d", n)
	}
	a.awaitError(CodeRoomClosed)
	b.awaitError(CodeRoomClosed)
	<-a.readDone
	if len(ts.Rooms()) != 0 || ts.Participants(company1("r-3")) != nil {
		t.Fatalf("rooms after close: %v", ts.Rooms())
	}
	checkFor(t, 2*time.Second, func() error {
		if !ts.events.has(EventRoomClosed, "r-3", "") || !ts.events.has(EventLeft, "r-3", "2") {
			return errors.New("close events missing")
		}
		return nil
	})
	if got := ts.metricSum(t, "cstalk_video_rooms") + ts.metricSum(t, "cstalk_video_participants"); got != 0 {
		t.Errorf("gauges after close: %v", got)
	}
}

// TestShutdown: Close tells every client, ends every peer connection and
// returns; later connections are refused.
func TestShutdown(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	idle := dial(t, ts, "3", "/signal")
	a.join("c-5", true, true)
	b.join("c-5", true, true)
	a.publish()
	sub := b.subscribe("1")
	awaitMedia(t, "2<-1", sub, 5)
	start := time.Now()
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
	for _, c := range []*client{a, b, idle} {
		c.awaitError(CodeShutdown)
		<-c.readDone
	}
	if got := ts.metricSum(t, "cstalk_video_peer_connections") + ts.metricSum(t, "cstalk_video_signaling_connections"); got != 0 {
		t.Errorf("open connections after Close: %v", got)
	}
	late := dial(t, ts, "4", "/signal")
	late.awaitError(CodeShutdown)
}

// TestEvents: the hook sees a room's life in order, with who and why.
func TestEvents(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "cust7", "/signal")
	a.join("r-12", true, true)
	b.join("r-12", true, true)
	b.send(map[string]any{"id": "leaveRoom"})
	a.await("participantLeft")
	a.send(map[string]any{"id": "leaveRoom"})
	var got []string
	checkFor(t, 5*time.Second, func() error {
		ts.events.mu.Lock()
		defer ts.events.mu.Unlock()
		got = got[:0]
		for _, e := range ts.events.evs {
			got = append(got, string(e.Kind)+":"+e.User.UserID+":"+e.Reason)
		}
		if len(got) < 6 {
			return errors.New("waiting for events")
		}
		return nil
	})
	want := []string{"roomOpened::", "joined:1:", "joined:cust7:", "left:cust7:leave", "left:1:leave", "roomClosed::"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", got, want)
	}
	ts.events.mu.Lock()
	defer ts.events.mu.Unlock()
	if !ts.events.evs[2].User.Customer || ts.events.evs[1].User.Customer {
		t.Errorf("customer flag lost: %+v", ts.events.evs)
	}
}

func TestParseRoomID(t *testing.T) {
	for _, c := range []struct {
		id   string
		kind RoomKind
		ref  string
	}{{"c-10", RoomChannel, "10"}, {"r-5", RoomChat, "5"}, {ChatRoomID("77"), RoomChat, "77"}, {"g-41", RoomGuide, "41"}} {
		kind, ref, ok := ParseRoomID(c.id)
		if !ok || kind != c.kind || ref != c.ref {
			t.Errorf("ParseRoomID(%q) = %q %q %v", c.id, kind, ref, ok)
		}
	}
	for _, bad := range []string{"", "c-", "x-1", "r-1/2", "r-" + strings.Repeat("9", 65), "C-1"} {
		if _, _, ok := ParseRoomID(bad); ok {
			t.Errorf("ParseRoomID(%q) accepted", bad)
		}
	}
}

// TestIdleAndSilentClients: a joined client that only answers pings stays
// for many ping intervals; a connection that never joins is told and closed.
func TestIdleAndSilentClients(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.PingInterval = 100 * time.Millisecond
		c.JoinTimeout = 300 * time.Millisecond
	})
	a := dial(t, ts, "1", "/signal")
	a.join("c-2", true, true)
	silent := dial(t, ts, "2", "/signal")
	silent.awaitError(CodeJoinTimeout)
	<-silent.readDone
	time.Sleep(time.Second) // idle: only pings flow
	a.send(map[string]any{"id": "videoStateFrom", "userId": "1", "video": false})
	a.await("videoStateAnswer")
}

// TestAppSignalRelay: an app signal (the guide flow's G0001) reaches every
// other participant with the sender's id and payload, not the sender;
// an oversized payload or a look-alike id is refused.
func TestAppSignalRelay(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	c := dial(t, ts, "3", "/signal")
	for _, x := range []*client{a, b, c} {
		x.join("c-7", true, true)
	}
	a.send(map[string]any{"id": "G0001", "data": map[string]any{"gsSeq": 42}})
	for _, x := range []*client{b, c} {
		m := x.await("G0001", "userId", "1")
		if d, _ := m["data"].(map[string]any); d["gsSeq"] != float64(42) {
			t.Fatalf("%s got %v", x.user, m)
		}
	}
	// The sender's own connection carries on in order: its next answer
	// arrives with no echo of the signal before it.
	a.send(map[string]any{"id": "videoStateFrom", "userId": "1", "video": false})
	a.await("videoStateAnswer")
	if !a.none("G0001") {
		t.Fatal("the sender got its own app signal back")
	}
	a.send(map[string]any{"id": "G0001", "data": strings.Repeat("x", 5<<10)})
	a.awaitError(CodeBadMessage)
	a.send(map[string]any{"id": "G001"})
	a.awaitError(CodeUnknownMessage)
	x := dial(t, ts, "4", "/signal")
	x.send(map[string]any{"id": "G0001"})
	x.awaitError(CodeNotJoined)
	b.checkRules()
	c.checkRules()
}
