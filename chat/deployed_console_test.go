package chat_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// What the deployed CS-talk console relies on over STOMP besides seed 003
// (the end of the contract's compatibility section).

func TestAssigneeEnteringReadsTheRoom(t *testing.T) {
	onEveryBackend(t, testAssigneeEnteringReadsTheRoom)
}

// The deployed console never sends READ_MESSAGE for history: the assignee
// entering its room moves its read position to the room's last message and
// tells the room, as a customer's entering does. Other members only look.
func testAssigneeEnteringReadsTheRoom(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("5301", "읽음고객")
	roomID := roomIDOf(t, logined)
	custSpeaker := jsonNum(t, logined.obj("data", "profile"), "speakerId")
	custRoom := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")
	var ids []int64
	for _, text := range []string{"첫 질문", "두 번째 질문"} {
		cust.send("MESSAGE", map[string]any{"messageType": 0, "message": text})
		ids = append(ids, jsonNum(t, cust.await(custRoom, "MESSAGE").obj("data", "message"), "id"))
	}

	// Taken from the lobby, then opened.
	agent := e.agent(e.agent1)
	agent.subscribe("/sub/socket/room/LOBBY1")
	agent.send("ASSIGN", map[string]any{"roomId": roomID})
	agent.await(agent.private, "ROOM_DETAIL")
	notice := cust.await(custRoom, "MESSAGE").obj("data", "message")
	agentRoom := agent.room(roomID)
	agentSpeaker := jsonNum(t, agent.await(agent.private, "JOINED").obj("data", "profile"), "speakerId")
	list := agent.await(agent.private, "MESSAGE_LIST")
	if n := jsonNum(t, list.data()["messages"].([]any)[0].(map[string]any), "noReadCount"); n != 1 {
		t.Fatalf("the list sent on entering is the state before reading: %s", list.Raw)
	}
	read := agent.await(agentRoom, "READ_MESSAGE")
	if d := read.data(); jsonNum(t, d, "startId") > ids[0] || jsonNum(t, d, "endId") != jsonNum(t, notice, "id") ||
		jsonNum(t, d, "speakerId") != agentSpeaker || jsonStr(t, d, "roomId") != roomID {
		t.Fatalf("READ_MESSAGE of the assignee entering = %s", read.Raw)
	}
	if got := cust.await(custRoom, "READ_MESSAGE"); got.Raw != read.Raw {
		t.Fatalf("the customer got %s, the console %s", got.Raw, read.Raw)
	}
	cust.send("MESSAGE_LIST", map[string]any{})
	for _, raw := range cust.await(cust.private, "MESSAGE_LIST").data()["messages"].([]any) {
		m := raw.(map[string]any)
		if jsonNum(t, m, "isCustomer") == 1 && jsonNum(t, m, "noReadCount") != 0 {
			t.Fatalf("the customer's message is still unread after the counselor entered: %v", m)
		}
	}
	agent.send("ROOM_DETAIL", map[string]any{})
	if rd := agent.await(agent.private, "ROOM_DETAIL"); jsonNum(t, rd.obj("data", "room"), "memberNoReadCount") != 0 {
		t.Fatalf("room after the assignee entered: %s", rd.Raw)
	}

	// Another member opening the room only looks; the next READ_MESSAGE
	// on the room is the customer's own.
	observer := e.agent(e.agent2)
	observer.room(roomID)
	observer.await(observer.private, "MESSAGE_LIST")
	cust.send("READ_MESSAGE", map[string]any{"endId": 1 << 40})
	evs := cust.untilEvent(custRoom, "READ_MESSAGE", func(ev chatEvent) bool { return jsonNum(t, ev.data(), "speakerId") == custSpeaker })
	if countNamed(evs, "READ_MESSAGE") != 1 {
		t.Fatalf("an observer entering marked the room read: %v", eventNames(evs))
	}

	// Back in the room later: only what came meanwhile is read.
	if err := agent.unsubscribe(agentRoom); err != nil {
		t.Fatal(err)
	}
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "나가 계신 동안"})
	later := jsonNum(t, cust.await(custRoom, "MESSAGE").obj("data", "message"), "id")
	agentRoom = agent.room(roomID)
	agent.await(agent.private, "MESSAGE_LIST")
	if d := agent.await(agentRoom, "READ_MESSAGE").data(); jsonNum(t, d, "startId") != later || jsonNum(t, d, "endId") != later {
		t.Fatalf("READ_MESSAGE on entering again = %v, want %d..%d", d, later, later)
	}
	// Nothing new: entering reads nothing and tells nobody.
	if err := agent.unsubscribe(agentRoom); err != nil {
		t.Fatal(err)
	}
	agentRoom = agent.room(roomID)
	agent.await(agent.private, "MESSAGE_LIST")
	cust.send("READ_MESSAGE", map[string]any{"endId": 1 << 40})
	evs = agent.untilEvent(agentRoom, "READ_MESSAGE", anyEvent)
	if last := evs[len(evs)-1]; jsonNum(t, last.data(), "speakerId") != custSpeaker {
		t.Fatalf("entering with nothing unread sent %s", last.Raw)
	}
}

func TestNamelessCustomerShownByNumber(t *testing.T) {
	onEveryBackend(t, testNamelessCustomerShownByNumber)
}

// A customer that sent no name is shown by its member number wherever a
// name is shown: profiles, the room's name and customer, its messages, the
// lobby's events, the REST lists; rows stored before that rule too.
func testNamelessCustomerShownByNumber(t *testing.T, e *chatEnv) {
	agent := e.agent(e.agent1)
	lobby := agent.subscribe("/sub/socket/room/LOBBY1")
	agent.send("ROOM_DETAIL", map[string]any{}, "roomId", "999999") // the lobby subscription is active
	agent.await(agent.private, "ERROR")

	const number = "5501"
	cust, logined := e.customer(number, "")
	roomID := roomIDOf(t, logined)
	if name := jsonStr(t, logined.obj("data", "profile"), "name"); name != number {
		t.Fatalf("LOGINED profile name %q", name)
	}
	ready := agent.await(lobby, "RELOAD_READY")
	if jsonStr(t, ready.obj("data", "profile"), "name") != number || jsonStr(t, ready.obj("data", "room"), "roomName") != number ||
		jsonStr(t, ready.obj("data", "room", "customer"), "name") != number {
		t.Fatalf("RELOAD_READY of a nameless customer = %s", ready.Raw)
	}
	custRoom := cust.room(roomID)
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "이름 없이 보냅니다"})
	if m := cust.await(custRoom, "MESSAGE").obj("data", "message"); jsonStr(t, m, "speakerName") != number || jsonStr(t, m, "roomName") != number {
		t.Fatalf("MESSAGE of a nameless customer = %v", m)
	}
	if online := agent.await(lobby, "ONLINE"); jsonStr(t, online.obj("data", "profile"), "name") != number {
		t.Fatalf("ONLINE = %s", online.Raw)
	}
	agent.room(roomID)
	joined := agent.await(agent.private, "JOINED")
	if jsonStr(t, joined.obj("data", "room"), "roomName") != number || jsonStr(t, joined.obj("data", "room", "customer"), "name") != number {
		t.Fatalf("JOINED = %s", joined.Raw)
	}
	// The customer's JOINED of the counselor and its own of itself.
	cust.send("ROOM_DETAIL", map[string]any{})
	if rd := cust.await(cust.private, "ROOM_DETAIL"); jsonStr(t, rd.obj("data", "room", "customer"), "name") != number {
		t.Fatalf("ROOM_DETAIL = %s", rd.Raw)
	}
	var rooms []struct {
		RoomName string `json:"roomName"`
		Customer struct {
			Name string `json:"name"`
		} `json:"customer"`
	}
	resp, body := e.rest().call("GET", "/api/room?queryId=findIngState", e.token(e.agent1))
	if err := json.Unmarshal(body, &rooms); err != nil || resp.StatusCode != 200 || len(rooms) != 1 ||
		rooms[0].RoomName != number || rooms[0].Customer.Name != number {
		t.Fatalf("console room list: %d %s", resp.StatusCode, body)
	}

	// A name sent later is the name from then on; the room keeps the one
	// it was created with.
	named, _ := e.customer(number, "이제이름")
	named.send("MESSAGE", map[string]any{"messageType": 0, "message": "이름을 보냅니다"}, "roomId", roomID)
	said := cust.awaitMatch(custRoom, "MESSAGE", func(ev chatEvent) bool { return jsonNum(t, ev.obj("data", "message"), "isCustomer") == 1 })
	if m := said.obj("data", "message"); jsonStr(t, m, "speakerName") != "이제이름" || jsonStr(t, m, "roomName") != number {
		t.Fatalf("MESSAGE after a name was sent = %v", m)
	}

	// Rows stored without a name (before this rule) read the same.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old, err := e.store.EnsureCustomer(ctx, 1, "5502", "")
	if err != nil {
		t.Fatal(err)
	}
	oldRoom, _, err := e.store.OpenRoom(ctx, old, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	sp, err := e.store.CustomerSpeaker(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.AppendMessage(ctx, &chat.Message{RoomID: oldRoom.ID, CompanyID: 1, SpeakerID: sp.ID, Body: "예전 메시지", IsCustomer: true,
		CreateDate: e.clock.Now(), UpdateDate: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	oldID := strconv.FormatInt(oldRoom.ID, 10)
	agent.room(oldID)
	for {
		ev := agent.next(agent.private)
		if ev.Name != "MESSAGE_LIST" || jsonStr(t, ev.M, "roomId") != oldID {
			continue
		}
		m := ev.data()["messages"].([]any)[0].(map[string]any)
		if jsonStr(t, m, "speakerName") != "5502" || jsonStr(t, m, "roomName") != "5502" {
			t.Fatalf("a stored nameless message = %v", m)
		}
		break
	}
}
