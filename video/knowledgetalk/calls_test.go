package knowledgetalk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	kt "github.com/cstalk/cstalk/video/knowledgetalk"
)

// TestOneToOne: a 1:1 call between the two client generations — only the
// member already there gets StartSession, SDP (camera and screen) is
// relayed untouched without credentials, mute/name/chat reach only the
// other, one screen sharer, Presence exit once per departure, and the room
// goes once empty.
func TestOneToOne(t *testing.T) {
	h := start(t, nil)
	a := h.bot("a", "v2", lic1)
	b := h.bot("b", "v4", lic1)
	id := a.CreateRoom()
	ja := a.Join(id)
	if m := keys(ja["members"]); len(m) != 1 || !m[a.UserID] {
		t.Fatalf("A's members %v", ja["members"])
	}
	jb := b.Join(id)
	if m := keys(jb["members"]); len(m) != 2 || !m[a.UserID] || !m[b.UserID] {
		t.Fatalf("B's members %v", jb["members"])
	}
	ss := a.Await("StartSession")
	if str(ss, "useMediaSvr") != "N" || str(ss, "who") != b.UserID || ss["changeView"] != nil || len(keys(ss["members"])) != 2 {
		t.Fatalf("A's StartSession %v", ss)
	}
	if fmt.Sprint(ss["count"]) != "2" {
		t.Errorf("StartSession count %v", ss["count"])
	}
	a.Emit(msg{"eventOp": "StartSession", "code": "200"})
	b.Quiet("StartSession") // B must not offer too

	// A offers (any text: 1:1 SDP is not the server's business), B answers.
	a.Emit(msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "isSfu": true, "userId": a.UserID,
		"sdp": msg{"type": "offer", "sdp": "v=0 offer of A"}})
	off := b.Await("SDP")
	if str(off, "useMediaSvr") != "N" || str(off, "userId") != a.UserID || str(off, "usage") != "cam" ||
		off["sdp"].(map[string]any)["sdp"] != "v=0 offer of A" || off["isSfu"] != true || off["cpCode"] != nil || off["authKey"] != nil || off["code"] != nil {
		t.Fatalf("relayed offer %v", off)
	}
	b.Emit(msg{"eventOp": "SDP", "code": "200"})
	b.Emit(msg{"eventOp": "SDP", "roomId": id, "usage": "cam", "isSfu": true, "userId": b.UserID,
		"sdp": msg{"type": "answer", "sdp": "v=0 answer of B"}})
	if ans := a.Await("SDP"); ans["sdp"].(map[string]any)["type"] != "answer" || str(ans, "userId") != b.UserID {
		t.Fatalf("relayed answer %v", ans)
	}
	a.Quiet("SDP", "userId", a.UserID) // nothing back to the sender

	// Mute, name and chat: to the other only.
	a.Emit(msg{"signalOp": "SetVideo", "roomId": id, "userId": a.UserID, "status": true})
	a.Emit(msg{"signalOp": "SetAudio", "roomId": id, "userId": a.UserID, "status": false})
	a.Emit(msg{"signalOp": "ChangeName", "roomId": id, "userId": a.UserID, "name": "홍길동"})
	a.Emit(msg{"signalOp": "Chat", "roomId": id, "userId": a.UserID, "message": "안녕하세요"})
	b.Await("SetVideo", "userId", a.UserID, "status", true)
	b.Await("SetAudio", "userId", a.UserID, "status", false)
	b.Await("ChangeName", "userId", a.UserID, "name", "홍길동")
	if m := b.Await("Chat", "userId", a.UserID); m["message"] != "안녕하세요" || m["cpCode"] != nil {
		t.Errorf("chat %v", m)
	}
	for _, o := range []string{"SetVideo", "SetAudio", "ChangeName", "Chat"} {
		a.Quiet(o)
	}

	// Screen share: one sharer, SDP with usage screen relayed.
	a.Emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": a.UserID, "reqNo": 7})
	if m := a.Await("SessionReserve"); str(m, "code") != "200" || fmt.Sprint(m["reqNo"]) != "7" {
		t.Fatalf("SessionReserve %v", m)
	}
	b.Emit(msg{"eventOp": "SessionReserve", "roomId": id, "userId": b.UserID})
	b.Await("SessionReserve", "code", "440")
	a.Emit(msg{"eventOp": "SDP", "roomId": id, "usage": "screen", "userId": a.UserID, "useMediaSvr": "N",
		"sdp": msg{"type": "offer", "sdp": "v=0 screen"}})
	b.Await("SDP", "usage", "screen", "useMediaSvr", "N")
	b.Emit(msg{"eventOp": "SessionReserveEnd", "roomId": id, "userId": b.UserID})
	b.Await("SessionReserveEnd", "code", "440")
	a.Emit(msg{"eventOp": "SessionReserveEnd", "roomId": id, "userId": a.UserID})
	a.Await("SessionReserveEnd", "code", "200")
	a.Emit(msg{"eventOp": "ScreenShareConferenceEnd", "roomId": id, "userId": a.UserID, "useMediaSvr": "N"})
	a.Await("ScreenShareConferenceEnd", "code", "200", "roomId", id)
	b.Await("ScreenShareConferenceEndSvr", "userId", a.UserID, "roomId", id)

	// The new member's state is in the members a later joiner sees.
	c := h.bot("c", "v2", lic1)
	jc := c.Join(id)
	if mem := jc["members"].(map[string]any)[a.UserID].(map[string]any); mem["NAME"] != "홍길동" || mem["VIDEO"] != true || mem["AUDIO"] != false {
		t.Errorf("A as C sees it: %v", mem)
	}
	c.Emit(msg{"eventOp": "ExitRoom", "roomId": id})
	c.Await("ExitRoom", "code", "200")
	a.Await("Presence", "action", "exit", "userId", c.UserID)
	b.Await("Presence", "action", "exit", "userId", c.UserID)
	c.Drop()
	// The drop after ExitRoom is no second departure.
	a.Quiet("Presence", "action", "exit", "userId", c.UserID)

	// B's socket drops: A hears it once.
	b.Drop()
	a.Await("Presence", "action", "exit", "userId", b.UserID)
	a.Quiet("Presence", "action", "exit", "userId", b.UserID)
	a.Drop()
	checkFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := h.store.KTRoom(ctx, 1, id); !errors.Is(err, kt.ErrNotFound) {
			return fmt.Errorf("room still stored: %v", err)
		}
		return nil
	})
	checkFor(t, 30*time.Second, func() error {
		if n := h.metric("cstalk_video_rooms") + h.metric("cstalk_video_participants") + h.metric("cstalk_video_signaling_connections"); n != 0 {
			return fmt.Errorf("rooms, participants and connections: %v", n)
		}
		return nil
	})
}
