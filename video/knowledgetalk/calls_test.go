package knowledgetalk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	kt "github.com/cstalk/cstalk/video/knowledgetalk"
)

func keys(m any) map[string]bool {
	out := map[string]bool{}
	if mm, ok := m.(map[string]any); ok {
		for k := range mm {
			out[k] = true
		}
	}
	return out
}

// TestOneToOne: a 1:1 call between the two client generations — only the
// member already there gets StartSession, SDP (camera and screen) is
// relayed untouched without credentials, mute/name/chat reach only the
// other, one screen sharer, Presence exit once per departure, and the room
// goes once empty.
func TestOneToOne(t *testing.T) {
	h := start(t, nil)
	a := h.bot("a", "v2", lic1)
	b := h.bot("b", "v4", lic1)
	id := a.createRoom()
	ja := a.join(id)
	if m := keys(ja["members"]); len(m) != 1 || !m[a.userID] {
		t.Fatalf("A's members %v", ja["members"])
	}
	jb := b.join(id)
	if m := keys(jb["members"]); len(m) != 2 || !m[a.userID] || !m[b.userID] {
		t.Fatalf("B's members %v", jb["members"])
	}
	ss := a.await("StartSession")
	if str(ss, "useMediaSvr") != "N" || str(ss, "who") != b.userID || ss["changeView"] != nil || len(keys(ss["members"])) != 2 {
		t.Fatalf("A's StartSession %v", ss)
	}
	if fmt.Sprint(ss["count"]) != "2" {
		t.Errorf("StartSession count %v", ss["count"])
	}
	a.emit(msg{"eventOp": "StartSession", "code": "200"})
	b.quiet("StartSession") // B must not offer too

	// A offers (any text: 1:1 SDP is not the server's business), B answers.
	a.emit(msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "isSfu": true, "userId": a.userID,
		"sdp": msg{"type": "offer", "sdp": "v=0 offer of A"}})
	off := b.await("SDP")
	if str(off, "useMediaSvr") != "N" || str(off, "userId") != a.userID || str(off, "usage") != "cam" ||
		off["sdp"].(map[string]any)["sdp"] != "v=0 offer of A" || off["isSfu"] != true || off["cpCode"] != nil || off["authKey"] != nil || off["code"] != nil {
		t.Fatalf("relayed offer %v", off)
	}
	b.emit(msg{"eventOp": "SDP", "code": "200"})
	b.emit(msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "isSfu": true, "userId": b.userID,
		"sdp": msg{"type": "answer", "sdp": "v=0 answer of B"}})
	if ans := a.await("SDP"); ans["sdp"].(map[string]any)["type"] != "answer" || str(ans, "userId") != b.userID {
		t.Fatalf("relayed answer %v", ans)
	}
	a.quiet("SDP", "userId", a.userID) // nothing back to the sender

	// Mute, name and chat: to the other only.
	a.emit(msg{"signalOp": "SetVideo", "roomId": id, "userId": a.userID, "status": true})
	a.emit(msg{"signalOp": "SetAudio", "roomId": id, "userId": a.userID, "status": false})
	a.emit(msg{"signalOp": "ChangeName", "roomId": id, "userId": a.userID, "name": "홍길동"})
	a.emit(msg{"signalOp": "Chat", "roomId": id, "userId": a.userID, "message": "안녕하세요"})
	b.await("SetVideo", "userId", a.userID, "status", true)
	b.await("SetAudio", "userId", a.userID, "status", false)
	b.await("ChangeName", "userId", a.userID, "name", "홍길동")
	if m := b.await("Chat", "userId", a.userID); m["message"] != "안녕하세요" || m["cpCode"] != nil {
		t.Errorf("chat %v", m)
	}
	for _, o := range []string{"SetVideo", "SetAudio", "ChangeName", "Chat"} {
		a.quiet(o)
	}

	// Screen share: one sharer, SDP with usage screen relayed.
	a.emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": a.userID, "reqNo": 7})
	if m := a.await("SessionReserve"); str(m, "code") != "200" || fmt.Sprint(m["reqNo"]) != "7" {
		t.Fatalf("SessionReserve %v", m)
	}
	b.emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": b.userID})
	b.await("SessionReserve", "code", "440")
	a.emit(msg{"eventOp": "SDP", "roomId": id, "usage": "screen", "userId": a.userID, "useMediaSvr": "N",
		"sdp": msg{"type": "offer", "sdp": "v=0 screen"}})
	b.await("SDP", "usage", "screen", "useMediaSvr", "N")
	b.emit(msg{"eventOp": "SessionReserveEnd", "roomId": id, "userId": b.userID})
	b.await("SessionReserveEnd", "code", "440")
	a.emit(msg{"eventOp": "SessionReserveEnd", "roomId": id, "userId": a.userID})
	a.await("SessionReserveEnd", "code", "200")
	a.emit(msg{"eventOp": "ScreenShareConferenceEnd", "roomId": id, "userId": a.userID, "useMediaSvr": "N"})
	a.await("ScreenShareConferenceEnd", "code", "200", "roomId", id)
	b.await("ScreenShareConferenceEndSvr", "userId", a.userID, "roomId", id)

	// The new member's state is in the members a later joiner sees.
	c := h.bot("c", "v2", lic1)
	jc := c.join(id)
	if mem := jc["members"].(map[string]any)[a.userID].(map[string]any); mem["NAME"] != "홍길동" || mem["VIDEO"] != true || mem["AUDIO"] != false {
		t.Errorf("A as C sees it: %v", mem)
	}
	c.emit(msg{"eventOp": "ExitRoom", "roomId": id})
	c.await("ExitRoom", "code", "200")
	a.await("Presence", "action", "exit", "userId", c.userID)
	b.await("Presence", "action", "exit", "userId", c.userID)
	c.drop()
	// The drop after ExitRoom is no second departure.
	a.quiet("Presence", "action", "exit", "userId", c.userID)

	// B's socket drops: A hears it once.
	b.drop()
	a.await("Presence", "action", "exit", "userId", b.userID)
	a.quiet("Presence", "action", "exit", "userId", b.userID)
	a.drop()
	checkFor(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := h.store.KTRoom(ctx, 1, id); !errors.Is(err, kt.ErrNotFound) {
			return fmt.Errorf("room still stored: %v", err)
		}
		return nil
	})
	checkFor(t, 10*time.Second, func() error {
		if n := h.metric("cstalk_video_rooms") + h.metric("cstalk_video_participants") + h.metric("cstalk_video_signaling_connections"); n != 0 {
			return fmt.Errorf("rooms, participants and connections: %v", n)
		}
		return nil
	})
}
