package chat_test

import (
	"testing"

	"github.com/cstalk/cstalk/chat"
)

func TestJoinMessageID(t *testing.T) { onEveryBackend(t, testJoinMessageID) }

// joinMessageId, as in the seed: a MESSAGE_LIST item carries its own id, a
// live MESSAGE carries 0.
func testJoinMessageID(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("5101", "목록고객")
	custRoom := cust.room(roomIDOf(t, logined))
	cust.await(cust.private, "WELCOME_MESSAGE")
	cust.send("START_MESSAGE", map[string]any{})
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "목록에서 확인"})
	live := cust.awaitMatch(custRoom, "MESSAGE", isText("목록에서 확인"))
	if jsonNum(t, live.obj("data", "message"), "joinMessageId") != 0 {
		t.Fatalf("live MESSAGE joinMessageId: %s", live.Raw)
	}
	cust.send("MESSAGE_LIST", map[string]any{"messageAdminType": 0})
	list := cust.await(cust.private, "MESSAGE_LIST")
	msgs := list.data()["messages"].([]any)
	if len(msgs) < 2 {
		t.Fatalf("MESSAGE_LIST = %s", list.Raw)
	}
	for _, raw := range msgs {
		m := raw.(map[string]any)
		if jsonNum(t, m, "joinMessageId") != jsonNum(t, m, "id") {
			t.Fatalf("listed message joinMessageId != id: %v", m)
		}
	}
}

func TestSystemMessagesOnlyAdminsDelete(t *testing.T) {
	onEveryBackend(t, testSystemMessagesOnlyAdminsDelete)
}

// START_MESSAGE texts, chatbot lines and the assignment notice are the
// company's: neither the customer whose action stored them nor a counselor
// may delete them; an administrator may. They count as read by whoever
// caused them.
func testSystemMessagesOnlyAdminsDelete(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("5601", "시스템고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")
	cust.send("START_MESSAGE", map[string]any{})
	start := cust.await(custRoom, "MESSAGE").obj("data", "message")
	if jsonNum(t, start, "isSystemMessage") != 1 || jsonNum(t, start, "noReadCount") != 1 {
		t.Fatalf("START_MESSAGE = %v", start)
	}
	cust.send("SAVE_HISTORY", map[string]any{"history": []any{"챗봇 안내"}})
	bot := cust.awaitMatch(custRoom, "MESSAGE", isText("챗봇 안내")).obj("data", "message")
	cust.send("ROOM_DETAIL", map[string]any{})
	if r := cust.await(cust.private, "ROOM_DETAIL").obj("data", "room"); jsonNum(t, r, "noReadCount") != 0 || jsonNum(t, r, "memberNoReadCount") != 2 {
		t.Fatalf("counts after system messages: %v", r)
	}

	p := e.agent(e.agent1)
	p.room(roomID)
	list := p.await(p.private, "MESSAGE_LIST").data()["messages"].([]any)
	notice := list[len(list)-1].(map[string]any)
	if jsonNum(t, notice, "isSystemMessage") != 1 {
		t.Fatalf("assignment notice = %v", notice)
	}

	for _, id := range []int64{jsonNum(t, start, "id"), jsonNum(t, bot, "id")} {
		cust.send("DELETE_MESSAGE", map[string]any{"id": id})
		if ev := cust.await(cust.private, "ERROR"); ev.reason() != chat.Korean.T("system_delete_forbidden") {
			t.Fatalf("customer deleting system message %d: %s", id, ev.Raw)
		}
	}
	p.send("DELETE_MESSAGE", map[string]any{"id": jsonNum(t, notice, "id")})
	if ev := p.await(p.private, "ERROR"); ev.reason() != chat.Korean.T("system_delete_forbidden") {
		t.Fatalf("counselor deleting its assignment notice: %s", ev.Raw)
	}
	admin := e.agent(e.admin1)
	admin.send("DELETE_MESSAGE", map[string]any{"id": jsonNum(t, start, "id")})
	del := cust.await(custRoom, "DELETE_MESSAGE")
	if jsonNum(t, del.data(), "id") != jsonNum(t, start, "id") {
		t.Fatalf("admin delete = %s", del.Raw)
	}
}

func TestAssignmentNoticeIsOnline(t *testing.T) { onEveryBackend(t, testAssignmentNoticeIsOnline) }

// The counselor who assigns a room is connected, so its notice is online,
// whether it took the room by subscribing or by ASSIGN from the lobby.
func testAssignmentNoticeIsOnline(t *testing.T, e *chatEnv) {
	for _, viaAssign := range []bool{false, true} {
		number := "5701"
		if viaAssign {
			number = "5702"
		}
		cust, logined := e.customer(number, "온라인고객")
		roomID := roomIDOf(t, logined)
		custRoom := cust.room(roomID)
		cust.await(cust.private, "WELCOME_MESSAGE")
		a := e.agent(e.agent1)
		if viaAssign {
			a.send("ASSIGN", map[string]any{"roomId": roomID})
		} else {
			a.room(roomID)
		}
		notice := cust.await(custRoom, "MESSAGE").obj("data", "message")
		if jsonNum(t, notice, "isSystemMessage") != 1 || jsonNum(t, notice, "isOnline") != 1 {
			t.Fatalf("assignment notice (ASSIGN %v) = %v", viaAssign, notice)
		}
	}
}

// Text stored in a room is read by both sides: it is in the company's
// language (Korean) even when the customer's client asked for English.
func TestStartMessageInTheCompanysLanguage(t *testing.T) {
	e := newEnv(t)
	cust, logined := e.customer("5801", "영어고객", "accept-language", "en-US,en;q=0.9")
	custRoom := cust.room(roomIDOf(t, logined))
	cust.await(cust.private, "WELCOME_MESSAGE")
	cust.send("START_MESSAGE", map[string]any{})
	if m := cust.await(custRoom, "MESSAGE").obj("data", "message"); jsonStr(t, m, "message") != chat.Korean.T("start_working") {
		t.Fatalf("START_MESSAGE for an English client = %v", m)
	}
	// Reasons stay in the client's language.
	cust.send("REVIEW", map[string]any{"reviewScore": 5})
	if ev := cust.await(cust.private, "ERROR"); ev.reason() != chat.English.T("review_unassigned") {
		t.Fatalf("English reason: %s", ev.Raw)
	}
}
