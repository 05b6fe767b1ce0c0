package knowledgetalk_test

import (
	"strings"
	"testing"
)

// TestCodes: each refusal gets its code, as a string, with the request's
// op; acknowledgements and the server's own ops are swallowed; nothing
// refused changes anything.
func TestCodes(t *testing.T) {
	for _, gen := range []string{"v2", "v4"} {
		t.Run(gen, func(t *testing.T) {
			h := start(t, nil)
			a := h.bot("a", gen, lic1)
			a.Emit(msg{"eventOp": "KeepAlive"})
			if m := a.Await("KeepAlive"); str(m, "code") != "200" || str(m, "message") != "OK" {
				t.Fatalf("KeepAlive: %v", m)
			}

			// Licences: a wrong key, another company's key, none at all.
			for _, bad := range []msg{
				{"eventOp": "CreateRoom", "authKey": "wrong"},
				{"eventOp": "CreateRoom", "authKey": lic2[1]},
				{"eventOp": "CreateRoom", "cpCode": "", "authKey": ""},
				{"eventOp": "CreateRoom", "cpCode": "NOPE", "authKey": "x"},
			} {
				a.Emit(bad)
				if m := a.Await("CreateRoom"); str(m, "code") != "401" || str(m, "roomId") != "" {
					t.Errorf("CreateRoom with %v: %v", bad, m)
				}
			}
			a.Emit(msg{"signalOp": "SetVideo", "authKey": "wrong", "roomId": "12345678", "status": true})
			if m := a.Await("SetVideo"); str(m, "code") != "401" {
				t.Errorf("SetVideo with a bad licence: %v", m)
			}

			// Unknown and missing ops.
			a.Emit(msg{"eventOp": "Frobnicate"})
			if m := a.Await("Frobnicate"); str(m, "code") != "400" {
				t.Errorf("unknown op: %v", m)
			}

			// Missing parameters: 421.
			for _, o := range []string{"RoomJoin", "SDP", "SendFeed", "SessionReserve", "SessionReserveEnd", "ScreenShareConferenceEnd", "DestroyRoom"} {
				a.Emit(msg{"eventOp": o})
				if m := a.Await(o); str(m, "code") != "421" {
					t.Errorf("%s without roomId: %v", o, m)
				}
			}

			// Unknown rooms: RoomJoin gets 400 with useMediaSvr N (the
			// client's "room has expired"), the rest 441.
			other := h.bot("other", gen, lic2)
			room2 := other.CreateRoom()
			for _, id := range []string{"12345678", "1234", "abcdefgh", room2} {
				a.Emit(msg{"eventOp": "RoomJoin", "roomId": id})
				if m := a.Await("RoomJoin"); str(m, "code") != "400" || str(m, "useMediaSvr") != "N" {
					t.Errorf("RoomJoin %s: %v", id, m)
				}
			}
			for _, o := range []string{"SessionReserve", "ScreenShareConferenceEnd", "ExitRoom"} {
				a.Emit(msg{"eventOp": o, "roomId": "12345678", "userId": "u1234567"})
				if m := a.Await(o); str(m, "code") != "441" {
					t.Errorf("%s outside a room: %v", o, m)
				}
			}
			a.Emit(msg{"eventOp": "DestroyRoom", "roomId": room2})
			if m := a.Await("DestroyRoom"); str(m, "code") != "441" {
				t.Errorf("DestroyRoom of another company's room: %v", m)
			}

			// Acknowledgements and the server's own ops: no answer at all.
			for _, ack := range []msg{
				{"eventOp": "StartSession", "code": "200"},
				{"eventOp": "SDP", "code": "200"},
				{"eventOp": "Candidate", "code": "200"},
				{"eventOp": "ReceiveFeed", "code": "200", "cpCode": "", "authKey": ""},
				{"eventOp": "StartSession"},
				{"eventOp": "Candidate", "candidate": "x"},
			} {
				a.Emit(ack)
			}
			for _, o := range []string{"StartSession", "SDP", "Candidate", "ReceiveFeed"} {
				a.Quiet(o)
			}

			// A room of capacity 2: the third is over the limit.
			a.Emit(msg{"eventOp": "CreateRoom", "capacity": 2})
			id := str(a.Await("CreateRoom", "code", "200"), "roomId")
			a.Join(id)
			a.Emit(msg{"eventOp": "RoomJoin", "roomId": id})
			if m := a.Await("RoomJoin"); str(m, "code") != "442" {
				t.Errorf("second RoomJoin: %v", m)
			}
			b := h.bot("b", gen, lic1)
			b.Join(id)
			c := h.bot("c", gen, lic1)
			c.Emit(msg{"eventOp": "RoomJoin", "roomId": id})
			if m := c.Await("RoomJoin"); str(m, "code") != "445" {
				t.Errorf("RoomJoin of a full room: %v", m)
			}
			// Another company's licence does not reach the room.
			other.Emit(msg{"eventOp": "RoomJoin", "roomId": id})
			if m := other.Await("RoomJoin"); str(m, "code") != "400" {
				t.Errorf("RoomJoin under another company: %v", m)
			}
			// In the room: bad fields.
			for _, bad := range []msg{
				{"signalOp": "SetVideo", "roomId": id},
				{"signalOp": "ChangeName", "roomId": id},
				{"signalOp": "Chat", "roomId": id},
				{"eventOp": "SDP", "roomId": id, "usage": "cam"},
			} {
				a.Emit(bad)
				if m := a.Await(op(bad)); str(m, "code") != "421" {
					t.Errorf("%v: %v", bad, m)
				}
			}
			for _, bad := range []msg{
				{"signalOp": "ChangeName", "roomId": id, "name": strings.Repeat("가", 65)},
				{"signalOp": "SetVideo", "roomId": id, "status": "yes"},
				{"eventOp": "SDP", "roomId": id, "usage": "desk", "sdp": msg{"type": "offer", "sdp": "v=0"}},
				{"eventOp": "SDP", "roomId": id, "sdp": msg{"type": "pranswer", "sdp": "v=0"}},
			} {
				a.Emit(bad)
				if m := a.Await(op(bad)); str(m, "code") != "422" {
					t.Errorf("%v: %v", bad, m)
				}
			}
			a.Emit(msg{"eventOp": "SessionReserve", "roomId": "87654321"})
			if m := a.Await("SessionReserve"); str(m, "code") != "441" {
				t.Errorf("SessionReserve for another room: %v", m)
			}
			a.Emit(msg{"eventOp": "DestroyRoom", "roomId": id})
			if m := a.Await("DestroyRoom"); str(m, "code") != "413" {
				t.Errorf("DestroyRoom of a room in use: %v", m)
			}
			// Nothing refused reached the others.
			b.Quiet("SetVideo")
			b.Quiet("ChangeName")
			if h.metric("cstalk_video_signaling_errors_total", "frontend", "knowledgetalk", "code", "401") < 5 {
				t.Errorf("licence refusals not counted")
			}
		})
	}
}
