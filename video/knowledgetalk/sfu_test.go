package knowledgetalk_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pion/webrtc/v3"
)

// member is a bot with its Go-side media.
type member struct {
	*bot
	pub  *publisher
	subs map[string]*subscriber // by displayId
}

// publish sends the camera offer of a StartSession'd member, as the
// client does (host as StartSession said), and applies the SFU's answer.
func (m *member) publish(t *testing.T, api *webrtc.API, host bool) {
	t.Helper()
	m.pub = newPublisher(t, api, true)
	m.Emit(msg{"eventOp": "SDP", "roomId": m.RoomID, "usage": "cam", "isSfu": true, "userId": m.UserID, "host": host,
		"sdp": msg{"type": "offer", "sdp": m.pub.offer}})
	m.Await("SDP", "code", "200")
	ans := m.Await("SDP", "useMediaSvr", "Y", "usage", "cam")
	sdp := ans["sdp"].(map[string]any)
	if sdp["type"] != "answer" || str(ans, "userId") != m.UserID || ans["code"] != nil ||
		!strings.Contains(sdp["sdp"].(string), "a=candidate:") {
		t.Fatalf("%s: publish answer %v", m.Name, ans)
	}
	m.pub.answered(t, sdp["sdp"].(string))
	m.Emit(msg{"eventOp": "SDP", "code": "200"})
}

// takeFeeds reads ReceiveFeed messages until it has feeds of want
// (displays) and subscribes to each with SendFeed, answering the SFU's
// offer with the pluginId, as the client does.
func (m *member) takeFeeds(t *testing.T, api *webrtc.API, want ...string) {
	t.Helper()
	if m.subs == nil {
		m.subs = map[string]*subscriber{}
	}
	for range want {
		rf := m.Await("ReceiveFeed")
		feeds := rf["feeds"].([]any)
		if len(feeds) != 1 {
			t.Fatalf("%s: ReceiveFeed %v", m.Name, rf)
		}
		f := feeds[0].(map[string]any)
		display := str(f, "display")
		found := false
		for _, w := range want {
			found = found || w == display
		}
		if !found || m.subs[display] != nil {
			t.Fatalf("%s: feed %v, want one each of %v", m.Name, f, want)
		}
		m.Emit(msg{"eventOp": "SendFeed", "roomId": str(rf, "roomId"), "feedId": f["id"], "display": display})
		m.Await("SendFeed", "code", "200")
		offer := m.Await("SDP", "displayId", display)
		usage := "cam"
		if strings.HasSuffix(display, "_screen") {
			usage = "screen"
		}
		sdp := offer["sdp"].(map[string]any)
		if sdp["type"] != "offer" || str(offer, "usage") != usage || str(offer, "useMediaSvr") != "Y" || offer["pluginId"] == nil ||
			!strings.Contains(sdp["sdp"].(string), "a=candidate:") {
			t.Fatalf("%s: subscription offer %v", m.Name, offer)
		}
		sub := newSubscriber(t, api, sdp["sdp"].(string))
		m.Emit(msg{"eventOp": "SDP", "code": "200"})
		m.Emit(msg{"eventOp": "SDP", "roomId": m.RoomID, "usage": usage, "isSfu": true, "userId": m.UserID, "host": false,
			"pluginId": offer["pluginId"], "sdp": msg{"type": "answer", "sdp": sub.answer}})
		m.Await("SDP", "code", "200")
		m.subs[display] = sub
	}
}

// TestSFUCall: a third member turns the 1:1 call into an SFU call
// (changeView, host for the joiner), every member publishes without
// trickle and subscribes to the others' feeds through server offers, a
// fourth joins into the running call (StartSession for it, Presence join
// with members for the others), a screen share is a second publication,
// and departures are announced once, the sharer's ending its share.
func TestSFUCall(t *testing.T) {
	h := start(t, nil)
	api := clientAPI(t)
	a := &member{bot: h.bot("a", "v2", lic1)}
	b := &member{bot: h.bot("b", "v4", lic1)}
	c := &member{bot: h.bot("c", "v2", lic1)}
	id := a.CreateRoom()
	a.Join(id)
	b.Join(id)
	a.Await("StartSession", "useMediaSvr", "N")

	c.Join(id)
	ss := c.Await("StartSession")
	if str(ss, "useMediaSvr") != "Y" || ss["changeView"] != true || ss["host"] != true || str(ss, "who") != c.UserID || fmt.Sprint(ss["count"]) != "3" {
		t.Fatalf("C's StartSession %v", ss)
	}
	if l := ss["layout"].(map[string]any); fmt.Sprint(l["maxWidth"]) != "640" || fmt.Sprint(l["maxFps"]) != "12" {
		t.Errorf("layout for 3: %v", l)
	}
	for _, m := range []*member{a, b} {
		ss := m.Await("StartSession", "useMediaSvr", "Y")
		if ss["changeView"] != true || ss["host"] != false || str(ss, "who") != c.UserID || len(keys(ss["members"])) != 3 {
			t.Fatalf("%s's StartSession %v", m.Name, ss)
		}
	}
	// A 1:1 offer still on its way when the call turned SFU (no host
	// flag) is dropped: no answer to confuse the new publication.
	a.Emit(msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "isSfu": true, "userId": a.UserID, "sdp": msg{"type": "offer", "sdp": "v=0 stale"}})
	a.Quiet("SDP")
	b.Quiet("SDP")
	c.publish(t, api, true)
	a.publish(t, api, false)
	b.publish(t, api, false)
	a.takeFeeds(t, api, c.UserID, b.UserID)
	b.takeFeeds(t, api, c.UserID, a.UserID)
	c.takeFeeds(t, api, a.UserID, b.UserID)
	a.subs[b.UserID].awaitVideo(t, "a<-b")
	c.subs[a.UserID].awaitVideo(t, "c<-a")

	// D joins the running SFU call.
	d := &member{bot: h.bot("d", "v4", lic1)}
	d.Join(id)
	ss = d.Await("StartSession")
	if str(ss, "useMediaSvr") != "Y" || ss["changeView"] != nil || ss["host"] != false || str(ss, "who") != d.UserID || len(keys(ss["members"])) != 4 {
		t.Fatalf("D's StartSession %v", ss)
	}
	for _, m := range []*member{a, b, c} {
		p := m.Await("Presence", "action", "join", "userId", d.UserID)
		if len(keys(p["members"])) != 4 {
			t.Errorf("%s's Presence join %v", m.Name, p)
		}
		m.Quiet("StartSession")
	}
	d.publish(t, api, false)
	d.takeFeeds(t, api, a.UserID, b.UserID, c.UserID)
	for _, m := range []*member{a, b, c} {
		m.takeFeeds(t, api, d.UserID)
	}
	d.subs[c.UserID].awaitVideo(t, "d<-c")
	b.subs[d.UserID].awaitVideo(t, "b<-d")
	// Each feed once.
	for _, m := range []*member{a, b, c, d} {
		m.Quiet("ReceiveFeed")
	}

	// B shares its screen: a second publication, announced to the others.
	b.Emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": b.UserID})
	b.Await("SessionReserve", "code", "200")
	c.Emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": c.UserID})
	c.Await("SessionReserve", "code", "440")
	screen := newPublisher(t, api, false)
	b.Emit(msg{"eventOp": "SDP", "roomId": id, "usage": "screen", "userId": b.UserID, "useMediaSvr": "Y",
		"sdp": msg{"type": "offer", "sdp": screen.offer}})
	b.Await("SDP", "code", "200")
	screen.answered(t, b.Await("SDP", "usage", "screen")["sdp"].(map[string]any)["sdp"].(string))
	for _, m := range []*member{a, c, d} {
		m.takeFeeds(t, api, b.UserID+"_screen")
	}
	a.subs[b.UserID+"_screen"].awaitVideo(t, "a<-b screen")
	b.Quiet("ReceiveFeed")
	b.Emit(msg{"eventOp": "SessionReserveEnd", "roomId": id, "userId": b.UserID})
	b.Await("SessionReserveEnd", "code", "200")
	b.Emit(msg{"eventOp": "ScreenShareConferenceEnd", "roomId": id, "userId": b.UserID, "useMediaSvr": "Y"})
	b.Await("ScreenShareConferenceEnd", "code", "200")
	for _, m := range []*member{a, c, d} {
		m.Await("ScreenShareConferenceEndSvr", "userId", b.UserID)
	}

	// C shares and then its socket drops: the others close the share, then
	// hear C left, once.
	c.Emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": c.UserID})
	c.Await("SessionReserve", "code", "200")
	c.Drop()
	for _, m := range []*member{a, b, d} {
		m.Await("ScreenShareConferenceEndSvr", "userId", c.UserID, "code", "200")
		p := m.Await("Presence", "action", "exit", "userId", c.UserID)
		if fmt.Sprint(p["count"]) != "3" {
			t.Errorf("%s's Presence exit %v", m.Name, p)
		}
		m.Quiet("Presence", "action", "exit")
	}
	// The call stays an SFU call: E joining a room of three is told so.
	e := &member{bot: h.bot("e", "v2", lic1)}
	e.Join(id)
	e.Await("StartSession", "useMediaSvr", "Y", "host", false)
	d.Emit(msg{"eventOp": "ExitRoom", "roomId": id})
	d.Await("ExitRoom", "code", "200")
	a.Await("Presence", "action", "exit", "userId", d.UserID)
	if h.metric("cstalk_video_participants", "frontend", "knowledgetalk") != 3 || h.metric("cstalk_video_rooms", "frontend", "knowledgetalk") != 1 {
		t.Errorf("metrics: %v participants, %v rooms", h.metric("cstalk_video_participants"), h.metric("cstalk_video_rooms"))
	}
}
