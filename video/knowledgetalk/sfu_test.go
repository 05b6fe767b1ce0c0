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
	m.emit(msg{"eventOp": "SDP", "roomId": m.roomID, "usage": "cam", "isSfu": true, "userId": m.userID, "host": host,
		"sdp": msg{"type": "offer", "sdp": m.pub.offer}})
	m.await("SDP", "code", "200")
	ans := m.await("SDP", "useMediaSvr", "Y", "usage", "cam")
	sdp := ans["sdp"].(map[string]any)
	if sdp["type"] != "answer" || str(ans, "userId") != m.userID || ans["code"] != nil ||
		!strings.Contains(sdp["sdp"].(string), "a=candidate:") {
		t.Fatalf("%s: publish answer %v", m.name, ans)
	}
	m.pub.answered(t, sdp["sdp"].(string))
	m.emit(msg{"eventOp": "SDP", "code": "200"})
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
		rf := m.await("ReceiveFeed")
		feeds := rf["feeds"].([]any)
		if len(feeds) != 1 {
			t.Fatalf("%s: ReceiveFeed %v", m.name, rf)
		}
		f := feeds[0].(map[string]any)
		display := str(f, "display")
		found := false
		for _, w := range want {
			found = found || w == display
		}
		if !found || m.subs[display] != nil {
			t.Fatalf("%s: feed %v, want one each of %v", m.name, f, want)
		}
		m.emit(msg{"eventOp": "SendFeed", "roomId": str(rf, "roomId"), "feedId": f["id"], "display": display})
		m.await("SendFeed", "code", "200")
		offer := m.await("SDP", "displayId", display)
		usage := "cam"
		if strings.HasSuffix(display, "_screen") {
			usage = "screen"
		}
		sdp := offer["sdp"].(map[string]any)
		if sdp["type"] != "offer" || str(offer, "usage") != usage || str(offer, "useMediaSvr") != "Y" || offer["pluginId"] == nil ||
			!strings.Contains(sdp["sdp"].(string), "a=candidate:") {
			t.Fatalf("%s: subscription offer %v", m.name, offer)
		}
		sub := newSubscriber(t, api, sdp["sdp"].(string))
		m.emit(msg{"eventOp": "SDP", "code": "200"})
		m.emit(msg{"eventOp": "SDP", "roomId": m.roomID, "usage": usage, "isSfu": true, "userId": m.userID, "host": false,
			"pluginId": offer["pluginId"], "sdp": msg{"type": "answer", "sdp": sub.answer}})
		m.await("SDP", "code", "200")
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
	id := a.createRoom()
	a.join(id)
	b.join(id)
	a.await("StartSession", "useMediaSvr", "N")

	c.join(id)
	ss := c.await("StartSession")
	if str(ss, "useMediaSvr") != "Y" || ss["changeView"] != true || ss["host"] != true || str(ss, "who") != c.userID || fmt.Sprint(ss["count"]) != "3" {
		t.Fatalf("C's StartSession %v", ss)
	}
	if l := ss["layout"].(map[string]any); fmt.Sprint(l["maxWidth"]) != "640" || fmt.Sprint(l["maxFps"]) != "12" {
		t.Errorf("layout for 3: %v", l)
	}
	for _, m := range []*member{a, b} {
		ss := m.await("StartSession", "useMediaSvr", "Y")
		if ss["changeView"] != true || ss["host"] != false || str(ss, "who") != c.userID || len(keys(ss["members"])) != 3 {
			t.Fatalf("%s's StartSession %v", m.name, ss)
		}
	}
	c.publish(t, api, true)
	a.publish(t, api, false)
	b.publish(t, api, false)
	a.takeFeeds(t, api, c.userID, b.userID)
	b.takeFeeds(t, api, c.userID, a.userID)
	c.takeFeeds(t, api, a.userID, b.userID)
	a.subs[b.userID].awaitVideo(t, "a<-b")
	c.subs[a.userID].awaitVideo(t, "c<-a")

	// D joins the running SFU call.
	d := &member{bot: h.bot("d", "v4", lic1)}
	d.join(id)
	ss = d.await("StartSession")
	if str(ss, "useMediaSvr") != "Y" || ss["changeView"] != nil || ss["host"] != false || str(ss, "who") != d.userID || len(keys(ss["members"])) != 4 {
		t.Fatalf("D's StartSession %v", ss)
	}
	for _, m := range []*member{a, b, c} {
		p := m.await("Presence", "action", "join", "userId", d.userID)
		if len(keys(p["members"])) != 4 {
			t.Errorf("%s's Presence join %v", m.name, p)
		}
		m.quiet("StartSession")
	}
	d.publish(t, api, false)
	d.takeFeeds(t, api, a.userID, b.userID, c.userID)
	for _, m := range []*member{a, b, c} {
		m.takeFeeds(t, api, d.userID)
	}
	d.subs[c.userID].awaitVideo(t, "d<-c")
	b.subs[d.userID].awaitVideo(t, "b<-d")
	// Each feed once.
	for _, m := range []*member{a, b, c, d} {
		m.quiet("ReceiveFeed")
	}

	// B shares its screen: a second publication, announced to the others.
	b.emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": b.userID})
	b.await("SessionReserve", "code", "200")
	c.emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": c.userID})
	c.await("SessionReserve", "code", "440")
	screen := newPublisher(t, api, false)
	b.emit(msg{"eventOp": "SDP", "roomId": id, "usage": "screen", "userId": b.userID, "useMediaSvr": "Y",
		"sdp": msg{"type": "offer", "sdp": screen.offer}})
	b.await("SDP", "code", "200")
	screen.answered(t, b.await("SDP", "usage", "screen")["sdp"].(map[string]any)["sdp"].(string))
	for _, m := range []*member{a, c, d} {
		m.takeFeeds(t, api, b.userID+"_screen")
	}
	a.subs[b.userID+"_screen"].awaitVideo(t, "a<-b screen")
	b.quiet("ReceiveFeed")
	b.emit(msg{"eventOp": "SessionReserveEnd", "roomId": id, "userId": b.userID})
	b.await("SessionReserveEnd", "code", "200")
	b.emit(msg{"eventOp": "ScreenShareConferenceEnd", "roomId": id, "userId": b.userID, "useMediaSvr": "Y"})
	b.await("ScreenShareConferenceEnd", "code", "200")
	for _, m := range []*member{a, c, d} {
		m.await("ScreenShareConferenceEndSvr", "userId", b.userID)
	}

	// C shares and then its socket drops: the others close the share, then
	// hear C left, once.
	c.emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": c.userID})
	c.await("SessionReserve", "code", "200")
	c.drop()
	for _, m := range []*member{a, b, d} {
		m.await("ScreenShareConferenceEndSvr", "userId", c.userID, "code", "200")
		p := m.await("Presence", "action", "exit", "userId", c.userID)
		if fmt.Sprint(p["count"]) != "3" {
			t.Errorf("%s's Presence exit %v", m.name, p)
		}
		m.quiet("Presence", "action", "exit")
	}
	// The call stays an SFU call: E joining a room of three is told so.
	e := &member{bot: h.bot("e", "v2", lic1)}
	e.join(id)
	e.await("StartSession", "useMediaSvr", "Y", "host", false)
	d.emit(msg{"eventOp": "ExitRoom", "roomId": id})
	d.await("ExitRoom", "code", "200")
	a.await("Presence", "action", "exit", "userId", d.userID)
	if h.metric("cstalk_video_participants", "frontend", "knowledgetalk") != 3 || h.metric("cstalk_video_rooms", "frontend", "knowledgetalk") != 1 {
		t.Errorf("metrics: %v participants, %v rooms", h.metric("cstalk_video_participants"), h.metric("cstalk_video_rooms"))
	}
}
