package chat_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

var dateFormat = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

// checkMessageObject asserts the exact field set and JSON types of a message
// object (chat contract, seed 003).
func checkMessageObject(t *testing.T, m map[string]any) {
	t.Helper()
	for _, k := range []string{"id", "joinMessageId", "speakerId", "roomId", "messageType", "noReadCount",
		"isSystemMessage", "messageAdminType", "isEmployee", "isCustomer", "isOnline"} {
		jsonNum(t, m, k)
	}
	for _, k := range []string{"createDate", "updateDate", "speakerName", "roomName", "companyId", "message", "messageDetail"} {
		jsonStr(t, m, k)
	}
	for _, k := range []string{"createDate", "updateDate"} {
		if !dateFormat.MatchString(m[k].(string)) {
			t.Fatalf("%s = %q, want YYYY-MM-DD HH:MM:SS", k, m[k])
		}
	}
}

func TestConversation(t *testing.T) { onEveryBackend(t, testConversation) }

func testConversation(t *testing.T, e *chatEnv) {

	lobby := e.agent(e.agent1)
	lobbySub := lobby.subscribe("/sub/socket/room/LOBBY1")
	// A receipt-ed no-op makes sure the lobby subscription is active
	// before the customer's room is created.
	lobby.send("ROOM_DETAIL", map[string]any{}, "roomId", "999999")
	lobby.await(lobby.private, "ERROR")

	cust, logined := e.customer("3825", "안치성")
	roomID := roomIDOf(t, logined)
	prof := logined.obj("data", "profile")
	if jsonStr(t, prof, "roomId") != roomID || jsonStr(t, prof, "companyId") != "1" || jsonNum(t, prof, "isCustomer") != 1 ||
		jsonNum(t, prof, "isMember") != 0 || jsonStr(t, prof, "name") != "안치성" || jsonNum(t, prof, "speakerId") == 0 {
		t.Fatalf("LOGINED profile = %v", prof)
	}
	if jsonStr(t, logined.M, "companyId") != "1" || jsonStr(t, logined.M, "target") != "SELF" {
		t.Fatalf("LOGINED envelope = %s", logined.Raw)
	}
	customerSpeaker := jsonNum(t, prof, "speakerId")

	// The new WAITING room is announced to the lobby.
	reload := lobby.await(lobbySub, "RELOAD")
	if jsonStr(t, reload.M, "companyId") != "1" || reload.M["data"] != nil || reload.M["roomId"] != nil {
		t.Fatalf("RELOAD = %s", reload.Raw)
	}
	ready := lobby.await(lobbySub, "RELOAD_READY")
	if room := ready.obj("data", "room"); jsonNum(t, room, "id") != mustInt(t, roomID) || jsonStr(t, room, "status") != "WAITING" {
		t.Fatalf("RELOAD_READY = %s", ready.Raw)
	}

	// The customer enters its room.
	custRoom := cust.room(roomID)
	joined := cust.await(cust.private, "JOINED")
	if p := joined.obj("data", "profile"); jsonStr(t, p, "roomId") != roomID || jsonStr(t, p, "sessionId") == "" {
		t.Fatalf("JOINED = %s", joined.Raw)
	}
	if jsonStr(t, joined.M, "roomId") != roomID {
		t.Fatalf("JOINED envelope roomId = %v", joined.M["roomId"])
	}
	detail := cust.await(cust.private, "ROOM_DETAIL")
	room := detail.obj("data", "room")
	if jsonStr(t, room, "status") != "WAITING" || room["member"] != nil || room["lastMessage"] != nil ||
		jsonStr(t, room, "companyId") != "1" || jsonStr(t, room, "roomName") != "안치성" {
		t.Fatalf("ROOM_DETAIL = %s", detail.Raw)
	}
	if c := room["customer"].(map[string]any); jsonStr(t, c, "gasappMemberNumber") != "3825" {
		t.Fatalf("ROOM_DETAIL customer = %v", c)
	}
	list := cust.await(cust.private, "MESSAGE_LIST")
	if msgs := list.data()["messages"].([]any); len(msgs) != 0 {
		t.Fatalf("MESSAGE_LIST of a new room = %s", list.Raw)
	}
	welcome := cust.await(cust.private, "WELCOME_MESSAGE")
	if _, ok := welcome.data()["autoMessage1"]; !ok {
		t.Fatalf("WELCOME_MESSAGE = %s", welcome.Raw)
	}
	online := lobby.await(lobbySub, "ONLINE")
	if p := online.obj("data", "profile"); jsonNum(t, p, "speakerId") != customerSpeaker {
		t.Fatalf("ONLINE = %s", online.Raw)
	}

	// The customer writes first: stored, sent to the room, the lobby re-sorts.
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "보일러가 안 켜져요", "messageDetail": ""})
	msg := cust.await(custRoom, "MESSAGE")
	m := msg.obj("data", "message")
	checkMessageObject(t, m)
	if jsonStr(t, msg.M, "roomId") != roomID || jsonNum(t, m, "roomId") != mustInt(t, roomID) || jsonStr(t, m, "companyId") != "1" ||
		jsonStr(t, m, "message") != "보일러가 안 켜져요" || jsonNum(t, m, "isCustomer") != 1 || jsonNum(t, m, "isEmployee") != 0 ||
		jsonNum(t, m, "noReadCount") != 1 || jsonNum(t, m, "isOnline") != 1 || jsonNum(t, m, "speakerId") != customerSpeaker ||
		jsonStr(t, m, "createDate") != "2026-11-23 15:31:37" || jsonStr(t, m, "speakerName") != "안치성" || jsonStr(t, m, "roomName") != "안치성" {
		t.Fatalf("MESSAGE = %s", msg.Raw)
	}
	if jsonStr(t, msg.M, "target") != "BROADCAST" {
		t.Fatalf("MESSAGE target = %v", msg.M["target"])
	}
	firstID := jsonNum(t, m, "id")
	lobby.await(lobbySub, "RELOAD")

	// The first counselor to open the room takes it.
	e.clock.Advance(time.Minute)
	agentRoom := lobby.room(roomID)
	mj := lobby.await(lobby.private, "JOINED")
	if p := mj.obj("data", "profile"); jsonNum(t, p, "isMember") != 1 || jsonStr(t, p, "loginName") != "agent1" || jsonStr(t, p, "roomId") != roomID {
		t.Fatalf("member JOINED = %s", mj.Raw)
	}
	md := lobby.await(lobby.private, "ROOM_DETAIL")
	mroom := md.obj("data", "room")
	if jsonStr(t, mroom, "status") != "IN_PROGRESS" || jsonNum(t, mroom["member"].(map[string]any), "id") != e.agent1.ID {
		t.Fatalf("member ROOM_DETAIL = %s", md.Raw)
	}
	if last := mroom["lastMessage"].(map[string]any); jsonNum(t, last, "id") <= firstID {
		t.Fatalf("lastMessage should be the assignment notice: %v", last)
	}
	ml := lobby.await(lobby.private, "MESSAGE_LIST")
	msgs := ml.data()["messages"].([]any)
	if len(msgs) != 2 {
		t.Fatalf("MESSAGE_LIST = %s", ml.Raw)
	}
	sys := msgs[1].(map[string]any)
	checkMessageObject(t, sys)
	if jsonNum(t, sys, "isSystemMessage") != 1 || jsonNum(t, msgs[0].(map[string]any), "id") != firstID ||
		jsonStr(t, sys, "createDate") != "2026-11-23 15:32:37" {
		t.Fatalf("MESSAGE_LIST after assignment = %s", ml.Raw)
	}
	// The customer sees the assignment: JOINED of the counselor and the new
	// ROOM_DETAIL privately, the system message on the room channel.
	cj := cust.awaitMatch(cust.private, "JOINED", func(ev chatEvent) bool { return jsonNum(t, ev.obj("data", "profile"), "isMember") == 1 })
	_ = cj
	sm := cust.await(custRoom, "MESSAGE")
	if jsonNum(t, sm.obj("data", "message"), "isSystemMessage") != 1 {
		t.Fatalf("system MESSAGE = %s", sm.Raw)
	}
	rd := cust.await(cust.private, "ROOM_DETAIL")
	if jsonStr(t, rd.obj("data", "room"), "status") != "IN_PROGRESS" {
		t.Fatalf("room ROOM_DETAIL = %s", rd.Raw)
	}
	lobby.await(lobbySub, "RELOAD")
	lobby.await(lobbySub, "RELOAD_READY")

	// The counselor entering its room has read it: READ_MESSAGE to the
	// room under its speakerId, up to the room's last message (the notice).
	agentSpeaker := jsonNum(t, mj.obj("data", "profile"), "speakerId")
	for _, ev := range []chatEvent{cust.await(custRoom, "READ_MESSAGE"), lobby.await(agentRoom, "READ_MESSAGE")} {
		d := ev.data()
		if jsonNum(t, d, "startId") > firstID || jsonNum(t, d, "endId") != jsonNum(t, sys, "id") ||
			jsonNum(t, d, "speakerId") != agentSpeaker || jsonStr(t, d, "roomId") != roomID {
			t.Fatalf("READ_MESSAGE of the counselor entering = %s", ev.Raw)
		}
	}

	// The counselor answers; the customer reads it: noReadCount drops.
	lobby.send("MESSAGE", map[string]any{"messageType": 0, "message": "확인해 보겠습니다.", "messageDetail": ""})
	answer := cust.await(custRoom, "MESSAGE")
	am := answer.obj("data", "message")
	checkMessageObject(t, am)
	if jsonNum(t, am, "isEmployee") != 1 || jsonNum(t, am, "noReadCount") != 1 || jsonStr(t, am, "speakerName") != "김상담" {
		t.Fatalf("answer = %s", answer.Raw)
	}
	answerID := jsonNum(t, am, "id")
	cust.send("READ_MESSAGE", map[string]any{"startId": answerID, "endId": answerID})
	read := lobby.await(agentRoom, "READ_MESSAGE")
	rdata := read.data()
	if jsonNum(t, rdata, "startId") != answerID || jsonNum(t, rdata, "endId") != answerID ||
		jsonNum(t, rdata, "speakerId") != customerSpeaker || jsonStr(t, rdata, "roomId") != roomID {
		t.Fatalf("READ_MESSAGE = %s", read.Raw)
	}
	// The counselor reads everything too.
	lobby.send("READ_MESSAGE", map[string]any{"startId": firstID, "endId": answerID})
	lobby.await(agentRoom, "READ_MESSAGE")
	cust.send("MESSAGE_LIST", map[string]any{"messageAdminType": 0})
	after := cust.await(cust.private, "MESSAGE_LIST")
	for _, raw := range after.data()["messages"].([]any) {
		if n := jsonNum(t, raw.(map[string]any), "noReadCount"); n != 0 {
			t.Fatalf("after both read everything noReadCount = %d: %s", n, after.Raw)
		}
	}

	// Leaving the room makes the customer OFFLINE for the lobby.
	if err := cust.conn.Disconnect(); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	off := lobby.await(lobbySub, "OFFLINE")
	if p := off.obj("data", "profile"); jsonNum(t, p, "speakerId") != customerSpeaker {
		t.Fatalf("OFFLINE = %s", off.Raw)
	}
}

func mustInt(t *testing.T, v string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%q is not an integer", v)
	}
	return n
}
