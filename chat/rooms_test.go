package chat_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/chat"
)

func TestAssign(t *testing.T) { onEveryBackend(t, testAssign) }

func testAssign(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("9001", "배정고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")

	a1 := e.agent(e.agent1)
	lobby := a1.subscribe("/sub/socket/room/LOBBY1")
	a1.send("ROOM_DETAIL", map[string]any{}, "roomId", roomID)
	if rd := a1.await(a1.private, "ROOM_DETAIL"); jsonStr(t, rd.obj("data", "room"), "status") != "WAITING" {
		t.Fatalf("before ASSIGN: %s", rd.Raw)
	}
	// ASSIGN names the room in data, without subscribing to it.
	a1.send("ASSIGN", map[string]any{"roomId": roomID})
	rd := a1.await(a1.private, "ROOM_DETAIL")
	room := rd.obj("data", "room")
	if jsonStr(t, room, "status") != "IN_PROGRESS" || jsonNum(t, room["member"].(map[string]any), "id") != e.agent1.ID {
		t.Fatalf("after ASSIGN: %s", rd.Raw)
	}
	a1.await(lobby, "RELOAD")
	ready := a1.await(lobby, "RELOAD_READY")
	if jsonNum(t, ready.data(), "isCustomer") != 0 || jsonNum(t, ready.obj("data", "profile"), "id") != e.agent1.ID {
		t.Fatalf("RELOAD_READY = %s", ready.Raw)
	}
	if sm := cust.await(custRoom, "MESSAGE"); jsonNum(t, sm.obj("data", "message"), "isSystemMessage") != 1 ||
		!strings.Contains(jsonStr(t, sm.obj("data", "message"), "message"), "김상담") {
		t.Fatalf("assignment notice = %s", sm.Raw)
	}
	// Repeating it is harmless; another counselor is refused.
	a1.send("ASSIGN", map[string]any{"roomId": roomID})
	a1.await(a1.private, "ROOM_DETAIL")
	a2 := e.agent(e.agent2)
	a2.send("ASSIGN", map[string]any{"roomId": roomID})
	if ev := a2.await(a2.private, "ERROR"); ev.reason() != chat.Korean.T("room_taken") {
		t.Fatalf("second ASSIGN: %s", ev.Raw)
	}
	// Opening someone else's room does not take it over.
	a2room := a2.room(roomID)
	if rd := a2.await(a2.private, "ROOM_DETAIL"); jsonNum(t, rd.obj("data", "room")["member"].(map[string]any), "id") != e.agent1.ID {
		t.Fatalf("observer took the room: %s", rd.Raw)
	}
	_ = a2room
	// No second assignment notice was stored.
	a1.send("MESSAGE_LIST", map[string]any{}, "roomId", roomID)
	list := a1.await(a1.private, "MESSAGE_LIST")
	if n := len(list.data()["messages"].([]any)); n != 1 {
		t.Fatalf("messages after ASSIGN x2 and an observer: %s", list.Raw)
	}
	// REST-side ending through the exported API.
	if err := e.svc.EndRoom(t.Context(), e.agent3, mustInt(t, roomID)); err == nil {
		t.Fatalf("another company's member ended the room")
	}
	if err := e.svc.EndRoom(t.Context(), e.admin1, mustInt(t, roomID)); err != nil {
		t.Fatalf("EndRoom: %v", err)
	}
	cust.await(custRoom, "END")
	a1.await(lobby, "RELOAD")
	a1.send("ASSIGN", map[string]any{"roomId": roomID})
	if ev := a1.await(a1.private, "ERROR"); ev.reason() != chat.Korean.T("room_ended") {
		t.Fatalf("ASSIGN of an ended room: %s", ev.Raw)
	}
}

func TestStartMessageFollowsWorkingHours(t *testing.T) {
	e := newEnv(t, func(_ *chat.Config, c *chat.Company) {
		c.WorkStart, c.WorkEnd, c.LunchStart, c.LunchEnd = "09:00", "18:00", "12:00", "13:00"
		c.WorkingText, c.AfterHoursText = "상담 중입니다", "업무 시간이 아닙니다"
		c.WaitingText = ptr("상담사 연결을 기다리는 중입니다")
	})
	cust, logined := e.customer("9101", "시작고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	welcome := cust.await(cust.private, "WELCOME_MESSAGE")
	if welcome.data()["autoMessage1"] != "상담사 연결을 기다리는 중입니다" || welcome.data()["autoMessage2"] != nil {
		t.Fatalf("WELCOME_MESSAGE = %s", welcome.Raw)
	}
	a := e.agent(e.agent1)
	lobby := a.subscribe("/sub/socket/room/LOBBY1")
	a.send("ROOM_DETAIL", map[string]any{}, "roomId", roomID)
	a.await(a.private, "ROOM_DETAIL")

	seoul := e.svc.Config().Zone
	for i, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 23, 10, 0, 0, 0, seoul), "상담 중입니다"},
		{time.Date(2026, 11, 23, 12, 30, 0, 0, seoul), chat.Korean.T("start_lunch")},
		{time.Date(2026, 11, 23, 21, 0, 0, 0, seoul), "업무 시간이 아닙니다"},
		{time.Date(2026, 11, 24, 8, 59, 0, 0, seoul), "업무 시간이 아닙니다"},
	} {
		e.clock.Set(tc.at)
		if i > 0 {
			// A room starts once: each moment is another customer's room.
			var logined chatEvent
			cust, logined = e.customer(strconv.Itoa(9110+i), "시작고객")
			custRoom = cust.room(roomIDOf(t, logined))
			cust.await(cust.private, "WELCOME_MESSAGE")
		}
		cust.send("START_MESSAGE", map[string]any{})
		msg := cust.await(custRoom, "MESSAGE")
		m := msg.obj("data", "message")
		if jsonStr(t, m, "message") != tc.want || jsonNum(t, m, "isSystemMessage") != 1 || jsonNum(t, m, "isCustomer") != 0 ||
			jsonStr(t, m, "createDate") != tc.at.Format("2006-01-02 15:04:05") {
			t.Fatalf("START_MESSAGE at %v = %s", tc.at, msg.Raw)
		}
		a.await(lobby, "RELOAD")
	}
	a.send("START_MESSAGE", map[string]any{}, "roomId", roomID)
	if ev := a.await(a.private, "ERROR"); ev.reason() != chat.Korean.T("customers_only") {
		t.Fatalf("member START_MESSAGE: %s", ev.Raw)
	}
}

// TestStartMessageOnce: a room's START_MESSAGE is stored and told once;
// repeating it, even many times at once, stores nothing and tells nobody
// (the next thing the room sees is the customer's next message), and a
// client cannot take its place with a clientMessageId of the server's.
func TestStartMessageOnce(t *testing.T) {
	e := newEnv(t)
	p := e.pair("9121", e.agent1)
	p.cust.send("START_MESSAGE", map[string]any{})
	first := p.agent.await(p.agentRoom, "MESSAGE").obj("data", "message")
	if jsonNum(t, first, "isSystemMessage") != 1 {
		t.Fatalf("START_MESSAGE = %v", first)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { p.cust.send("START_MESSAGE", map[string]any{}) })
	}
	wg.Wait()
	p.cust.send("MESSAGE", map[string]any{"message": "after the repeats"})
	if next := p.agent.await(p.agentRoom, "MESSAGE").obj("data", "message"); jsonStr(t, next, "message") != "after the repeats" {
		t.Fatalf("the room was told %v after repeated START_MESSAGEs", next)
	}
	p.cust.send("MESSAGE", map[string]any{"message": "x", "clientMessageId": "cstalk:start"})
	if ev := p.cust.await(p.cust.private, "ERROR"); !strings.Contains(ev.reason(), "clientMessageId") {
		t.Fatalf("a reserved clientMessageId: %s", ev.Raw)
	}
	p.agent.send("MESSAGE_LIST", map[string]any{}, "roomId", p.roomID)
	starts := 0
	for _, raw := range p.agent.await(p.agent.private, "MESSAGE_LIST").data()["messages"].([]any) {
		if jsonStr(t, raw.(map[string]any), "message") == jsonStr(t, first, "message") {
			starts++
		}
	}
	if starts != 1 {
		t.Fatalf("%d START_MESSAGE lines stored", starts)
	}
}

func TestSaveHistory(t *testing.T) {
	e := newEnv(t)
	cust, logined := e.customer("9201", "챗봇고객")
	roomID := roomIDOf(t, logined)
	// No subscription yet: the room is the customer's open room.
	cust.send("SAVE_HISTORY", map[string]any{"history": []any{
		"안녕하세요, 무엇을 도와드릴까요?",
		map[string]any{"message": "요금 문의요", "isCustomer": 1},
		map[string]any{"message": "상담사를 연결해 드릴게요", "isCustomer": 0, "messageType": 0},
	}})
	ack := cust.await(cust.private, "SAVE_HISTORY")
	if ack.data()["success"] != true || jsonNum(t, ack.data(), "count") != 3 || jsonStr(t, ack.M, "roomId") != roomID {
		t.Fatalf("SAVE_HISTORY = %s", ack.Raw)
	}
	a := e.agent(e.agent1)
	a.room(roomID)
	list := a.await(a.private, "MESSAGE_LIST")
	msgs := list.data()["messages"].([]any)
	if len(msgs) < 3 {
		t.Fatalf("history not stored: %s", list.Raw)
	}
	first, second := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if jsonStr(t, first, "message") != "안녕하세요, 무엇을 도와드릴까요?" || jsonNum(t, first, "isCustomer") != 0 ||
		jsonStr(t, first, "speakerName") != chat.Korean.T("chatbot_name") ||
		jsonStr(t, second, "message") != "요금 문의요" || jsonNum(t, second, "isCustomer") != 1 {
		t.Fatalf("history = %s", list.Raw)
	}
	cust.send("SAVE_HISTORY", map[string]any{"history": "not a list"})
	cust.await(cust.private, "ERROR")
	cust.send("SAVE_HISTORY", map[string]any{})
	cust.await(cust.private, "ERROR")
}

// TestSaveHistoryValidatedAsMessage: every line of a transcript passes the
// checks a MESSAGE does, and one bad line stores nothing of it: an image
// line may only show an image uploaded to that room.
func TestSaveHistoryValidatedAsMessage(t *testing.T) {
	e := newEnv(t)
	p := e.pair("9211", e.agent1)
	uploaded := "/files/1/" + p.roomID + "/" + strings.Repeat("c", 32) + ".png"
	path := filepath.Join(e.cfg.UploadDir, strings.TrimPrefix(uploaded, "/files/"))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("\x89PNG"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("긴", e.cfg.MaxMessageBytes)
	for name, line := range map[string]map[string]any{
		"foreign image":     {"messageType": 1, "messageDetail": "https://evil.example/t.png", "isCustomer": 0},
		"script url":        {"messageType": 1, "messageDetail": "javascript:alert(1)", "isCustomer": 0},
		"other room's file": {"messageType": 1, "messageDetail": "/files/1/999999/" + strings.Repeat("c", 32) + ".png"},
		"too long":          {"message": long, "isCustomer": 1},
		"nul byte":          {"message": "a\x00b", "isCustomer": 1},
		"bad type":          {"messageType": 7, "message": "x"},
	} {
		p.cust.send("SAVE_HISTORY", map[string]any{"history": []any{"first line is fine", line}})
		if ev := p.cust.await(p.cust.private, "ERROR"); ev.reason() == "" {
			t.Fatalf("%s: %s", name, ev.Raw)
		}
	}
	p.cust.send("SAVE_HISTORY", map[string]any{"history": []any{
		"",
		map[string]any{"messageType": 1, "messageDetail": uploaded, "isCustomer": 0},
	}})
	if ack := p.cust.await(p.cust.private, "SAVE_HISTORY"); jsonNum(t, ack.data(), "count") != 1 {
		t.Fatalf("SAVE_HISTORY = %s", ack.Raw)
	}
	// Nothing of the refused transcripts was stored or shown.
	p.agent.send("MESSAGE_LIST", map[string]any{}, "roomId", p.roomID)
	for _, raw := range p.agent.await(p.agent.private, "MESSAGE_LIST").data()["messages"].([]any) {
		m := raw.(map[string]any)
		if jsonStr(t, m, "message") == "first line is fine" || strings.Contains(jsonStr(t, m, "messageDetail"), "evil") {
			t.Fatalf("a refused transcript was stored: %v", m)
		}
	}
}

func TestRoomResolutionAndLeave(t *testing.T) {
	e := newEnv(t)
	p1 := e.pair("9301", e.agent1)
	c2, l2 := e.customer("9302", "둘째")
	room2 := roomIDOf(t, l2)
	c2.room(room2)
	c2.await(c2.private, "WELCOME_MESSAGE")

	// The counselor opens the second room too: several rooms at once.
	a := p1.agent
	a2room := a.room(room2)
	a.await(a.private, "MESSAGE_LIST")
	// No roomId: the most recently subscribed room (room2).
	a.send("MESSAGE", map[string]any{"messageType": 0, "message": "to-last"})
	if m := a.awaitMatch(a2room, "MESSAGE", isText("to-last")); jsonStr(t, m.M, "roomId") != room2 {
		t.Fatalf("default room: %s", m.Raw)
	}
	// Body roomId beats the last room; the header beats the body.
	a.sendRaw([]byte(`{"eventName":"MESSAGE","roomId":` + p1.roomID + `,"data":{"messageType":0,"message":"to-body"}}`))
	a.awaitMatch(p1.agentRoom, "MESSAGE", isText("to-body"))
	a.sendRaw([]byte(`{"eventName":"MESSAGE","roomId":`+room2+`,"data":{"messageType":0,"message":"to-header"}}`), "roomId", p1.roomID)
	a.awaitMatch(p1.agentRoom, "MESSAGE", isText("to-header"))

	// LEAVE: the counselor is no longer present in room2 (no internal
	// notes delivered there), and its default room falls back.
	a.send("LEAVE", map[string]any{}, "roomId", room2)
	if ev := a.await(a.private, "LEAVE"); jsonStr(t, ev.M, "roomId") != room2 {
		t.Fatalf("LEAVE = %s", ev.Raw)
	}
	a.send("MESSAGE", map[string]any{"messageType": 0, "message": "after-leave"})
	if m := a.awaitMatch(p1.agentRoom, "MESSAGE", isText("after-leave")); jsonStr(t, m.M, "roomId") != p1.roomID {
		t.Fatalf("room after LEAVE: %s", m.Raw)
	}

	// A customer's only room is its own; it may not name another.
	p1.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "x", "roomId": room2})
	if ev := p1.cust.await(p1.cust.private, "ERROR"); ev.reason() != chat.Korean.T("room_forbidden") {
		t.Fatalf("customer into another room: %s", ev.Raw)
	}
	// A member with no room at all.
	lonely := e.agent(e.agent2)
	lonely.send("MESSAGE", map[string]any{"messageType": 0, "message": "x"})
	if ev := lonely.await(lonely.private, "ERROR"); ev.reason() != chat.Korean.T("no_room") {
		t.Fatalf("no room: %s", ev.Raw)
	}
}

func TestUnreadOnEntryAndOnline(t *testing.T) { onEveryBackend(t, testUnreadOnEntryAndOnline) }

func testUnreadOnEntryAndOnline(t *testing.T, e *chatEnv) {
	p := e.pair("9401", e.agent1)
	// The customer leaves; the counselor writes twice meanwhile.
	if err := p.cust.conn.Disconnect(); err != nil {
		t.Fatal(err)
	}
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "하나"})
	m1 := p.agent.awaitMatch(p.agentRoom, "MESSAGE", isText("하나"))
	if jsonNum(t, m1.obj("data", "message"), "noReadCount") != 1 {
		t.Fatalf("unread by the customer: %s", m1.Raw)
	}
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "둘"})
	m2 := p.agent.awaitMatch(p.agentRoom, "MESSAGE", isText("둘"))
	id1, id2 := jsonNum(t, m1.obj("data", "message"), "id"), jsonNum(t, m2.obj("data", "message"), "id")

	// Back: its unread messages become read and the room is told.
	c, logined := e.customer("9401", "고객9401")
	if roomIDOf(t, logined) != p.roomID {
		t.Fatalf("customer got room %s, want its open room %s", roomIDOf(t, logined), p.roomID)
	}
	c.room(p.roomID)
	detail := c.await(c.private, "ROOM_DETAIL")
	// Unread: the assignment notice and both answers.
	if jsonNum(t, detail.obj("data", "room"), "noReadCount") != 3 || jsonNum(t, detail.obj("data", "room"), "customerNoReadCount") != 3 {
		t.Fatalf("customer ROOM_DETAIL = %s", detail.Raw)
	}
	read := p.agent.await(p.agentRoom, "READ_MESSAGE")
	if jsonNum(t, read.data(), "endId") != id2 || jsonNum(t, read.data(), "startId") > id1 {
		t.Fatalf("READ_MESSAGE on entry = %s", read.Raw)
	}
	p.agent.send("MESSAGE_LIST", map[string]any{})
	for _, raw := range p.agent.await(p.agent.private, "MESSAGE_LIST").data()["messages"].([]any) {
		m := raw.(map[string]any)
		if jsonNum(t, m, "isEmployee") == 1 && jsonNum(t, m, "noReadCount") != 0 {
			t.Fatalf("still unread after entry: %v", m)
		}
	}
}

func isText(text string) func(chatEvent) bool {
	return func(ev chatEvent) bool {
		m := ev.obj("data", "message")
		return m != nil && m["message"] == text
	}
}

func ptr[T any](v T) *T { return &v }

// TestReloadOnFirstUnansweredMessage: the lobby re-sorts when a customer's
// message starts waiting for an answer, not on every message.
func TestReloadOnFirstUnansweredMessage(t *testing.T) {
	onEveryBackend(t, testReloadOnFirstUnansweredMessage)
}

func testReloadOnFirstUnansweredMessage(t *testing.T, e *chatEnv) {
	p := e.pair("9501", e.agent1)
	lobbyAgent := e.agent(e.agent2)
	lobby := lobbyAgent.subscribe("/sub/socket/room/LOBBY1")
	lobbyAgent.send("ROOM_DETAIL", map[string]any{}, "roomId", p.roomID)
	lobbyAgent.await(lobbyAgent.private, "ROOM_DETAIL")

	roomReloads := func(until string) int {
		t.Helper()
		// A new customer's room is the marker that ends the window.
		_, logined := e.customer(until, "표식")
		marker := roomIDOf(t, logined)
		n := 0
		for {
			ev := lobbyAgent.await(lobby, "RELOAD_READY")
			id := strconv.FormatInt(jsonNum(t, ev.obj("data", "room"), "id"), 10)
			if id == marker {
				return n
			}
			if id == p.roomID {
				n++
			}
		}
	}
	// The assignment's own RELOAD may still be on its way to the lobby:
	// close that window with a marker before counting.
	roomReloads("9600")
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "첫 질문"})
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "추가 질문"})
	if n := roomReloads("9601"); n != 1 {
		t.Fatalf("%d reloads for two unanswered messages, want 1", n)
	}
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "답변"})
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "메모", "messageAdminType": 1})
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "다시 질문"})
	if n := roomReloads("9602"); n != 1 {
		t.Fatalf("%d reloads after an answer, want 1", n)
	}
}

// TestOfflineWhenTheSocketDrops: a customer whose socket simply goes away
// (no DISCONNECT) is OFFLINE for the lobby all the same.
func TestOfflineWhenTheSocketDrops(t *testing.T) {
	e := newEnv(t)
	lobbyAgent := e.agent(e.agent1)
	lobby := lobbyAgent.subscribe("/sub/socket/room/LOBBY1")
	lobbyAgent.send("ROOM_DETAIL", map[string]any{}, "roomId", "424242")
	lobbyAgent.await(lobbyAgent.private, "ERROR")

	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	stream, err := brokertest.DialWebSocket(ctx, e.wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := stomp.Connect(stream, stomp.ConnOpt.HeartBeat(0, 0),
		stomp.ConnOpt.Header("companyId", "1"), stomp.ConnOpt.Header("gasappMemberNumber", "9701"))
	if err != nil {
		t.Fatal(err)
	}
	c := &stompClient{t: t, name: "dropping", conn: conn, subs: map[string]*stomp.Subscription{}}
	c.subscribePrivate()
	roomID := roomIDOf(t, c.await(c.private, "LOGINED"))
	c.room(roomID)
	c.await(c.private, "WELCOME_MESSAGE")
	lobbyAgent.await(lobby, "ONLINE")

	_ = stream.Close()
	off := lobbyAgent.await(lobby, "OFFLINE")
	if jsonStr(t, off.M, "roomId") != roomID {
		t.Fatalf("OFFLINE = %s", off.Raw)
	}
}
