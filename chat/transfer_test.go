package chat_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cstalk/cstalk/chat"
)

func TestTransfer(t *testing.T) { onEveryBackend(t, testTransfer) }

func testTransfer(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("8001", "전달고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")
	a1, lobby1 := e.console(e.agent1)
	a1room := a1.room(roomID) // takes the room
	a1.await(a1.private, "MESSAGE_LIST")
	cust.await(cust.private, "ROOM_DETAIL")
	transfer := func(c *stompClient, to int64, note string) {
		data := map[string]any{"memberId": to}
		if note != "" {
			data["note"] = note
		}
		c.send("TRANSFER", data, "roomId", roomID)
	}
	refused := func(c *stompClient, key string, args ...any) {
		t.Helper()
		want := chat.Korean.T(key)
		if len(args) > 0 {
			want = fmt.Sprintf(want, args...)
		}
		if ev := c.await(c.private, "ERROR"); ev.reason() != want {
			t.Fatalf("want %s, got %s", key, ev.Raw)
		}
	}

	transfer(a1, e.agent2.ID, "") // agent2 has no console: OFFLINE
	refused(a1, "transfer_offline")
	transfer(a1, e.agent3.ID, "") // company 2
	refused(a1, "transfer_no_member")
	transfer(a1, 987654, "")
	refused(a1, "transfer_no_member")
	transfer(a1, e.agent1.ID, "")
	refused(a1, "transfer_same")
	a1.send("TRANSFER", map[string]any{}, "roomId", roomID)
	refused(a1, "missing_field", "memberId")
	cust.send("TRANSFER", map[string]any{"memberId": e.agent2.ID})
	refused(cust, "members_only")

	// agent2 is AWAY, which may still take a transfer; it is neither the
	// assignee nor an admin, so it may not move the room itself.
	a2, lobby2 := e.console(e.agent2)
	if _, err := e.svc.SetMemberStatus(t.Context(), e.agent2, chat.MemberAway); err != nil {
		t.Fatal(err)
	}
	transfer(a2, e.agent2.ID, "")
	refused(a2, "transfer_forbidden")

	note := "요금 체납 건, 분할 납부 안내 필요"
	transfer(a1, e.agent2.ID, note)
	if ev := a1.await(a1.private, "MESSAGE"); !isText(note)(ev) || jsonNum(t, ev.obj("data", "message"), "messageAdminType") != 1 || ev.M["target"] != "MEMBER" {
		t.Fatalf("the note to the members present: %s", ev.Raw)
	}
	if rd := a1.await(a1.private, "ROOM_DETAIL"); jsonNum(t, rd.obj("data", "room", "member"), "id") != e.agent2.ID {
		t.Fatalf("transferring counselor's ROOM_DETAIL = %s", rd.Raw)
	}
	tr := a2.await(a2.private, "TRANSFERRED")
	if tr.M["target"] != "MEMBER" || tr.M["roomId"] != roomID || tr.data()["note"] != note ||
		jsonNum(t, tr.obj("data", "from"), "id") != e.agent1.ID || jsonNum(t, tr.obj("data", "room", "member"), "id") != e.agent2.ID {
		t.Fatalf("TRANSFERRED = %s", tr.Raw)
	}
	a2.awaitMatch(lobby2, "RELOAD_READY", func(ev chatEvent) bool {
		return ev.M["roomId"] == roomID && jsonNum(t, ev.obj("data", "room", "member"), "id") == e.agent2.ID
	})
	// The room reads the notice; the note reaches the members present,
	// never the customer.
	sys := cust.awaitMatch(custRoom, "MESSAGE", isText("상담이 이상담 상담사에게 전달되었습니다."))
	if m := sys.obj("data", "message"); jsonNum(t, m, "isSystemMessage") != 1 || jsonNum(t, m, "speakerId") == 0 {
		t.Fatalf("transfer notice %s", sys.Raw)
	}
	if rd := cust.await(cust.private, "ROOM_DETAIL"); jsonNum(t, rd.obj("data", "room", "member"), "id") != e.agent2.ID {
		t.Fatalf("customer's ROOM_DETAIL = %s", rd.Raw)
	}
	_ = a1room
	_ = lobby1
	// agent2 carries on; the customer sees it, never the note.
	a2room := a2.room(roomID)
	a2.await(a2.private, "MESSAGE_LIST")
	a2.send("MESSAGE", map[string]any{"messageType": 0, "message": "이어서 안내드리겠습니다."}, "roomId", roomID)
	var seen []chatEvent
	for ev := cust.next(custRoom); !isText("이어서 안내드리겠습니다.")(ev); ev = cust.next(custRoom) {
		seen = append(seen, ev)
	}
	cust.send("MESSAGE_LIST", map[string]any{})
	seen = append(seen, cust.await(cust.private, "MESSAGE_LIST"))
	for _, ev := range append(seen, drainEvents(cust.private)...) {
		if strings.Contains(ev.Raw, "체납") {
			t.Fatalf("the customer got the transfer note: %s", ev.Raw)
		}
	}
	_ = a2room
	// agent1 no longer has it; an admin may move it back.
	transfer(a1, e.agent1.ID, "")
	refused(a1, "transfer_forbidden")
	admin, _ := e.console(e.admin1)
	transfer(admin, e.agent1.ID, "")
	admin.await(admin.private, "ROOM_DETAIL")
	if got := e.assigneeOf(roomID); got != e.agent1.ID {
		t.Fatalf("after the admin's transfer the room has %d", got)
	}
	a1.await(a1.private, "TRANSFERRED")
	// An ended room is not transferred.
	a1.send("END", map[string]any{}, "roomId", roomID)
	cust.await(custRoom, "END")
	transfer(a1, e.agent2.ID, "")
	refused(a1, "room_ended")
}
