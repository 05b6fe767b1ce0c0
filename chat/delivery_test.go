package chat_test

import (
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/chat"
)

// untilEvent reads sub up to and including the first event named name and
// matching match, returning everything read. Events on one destination
// arrive in order, so whatever the server queued there before that event
// is among them: this is how a test sees that something did not come.
func (c *stompClient) untilEvent(sub *stomp.Subscription, name string, match func(chatEvent) bool) []chatEvent {
	c.t.Helper()
	var evs []chatEvent
	for {
		ev := c.next(sub)
		evs = append(evs, ev)
		if ev.Name == name && match(ev) {
			return evs
		}
	}
}

func countNamed(evs []chatEvent, name string) int {
	n := 0
	for _, ev := range evs {
		if ev.Name == name {
			n++
		}
	}
	return n
}

func anyEvent(chatEvent) bool { return true }

func TestJoinedReachesOthersOnly(t *testing.T) { onEveryBackend(t, testJoinedReachesOthersOnly) }

// JOINED: the subscriber gets it privately, once; the others present get it
// privately with their own view of the room; nobody gets it on the room
// destination, so the joiner never sees its own JOINED twice.
func testJoinedReachesOthersOnly(t *testing.T, e *chatEnv) {
	p := e.pair("5201", e.agent1)
	watcher := e.agent(e.agent2)
	watcherRoom := watcher.room(p.roomID)
	own := watcher.untilEvent(watcher.private, "MESSAGE_LIST", anyEvent)
	if countNamed(own, "JOINED") != 1 || jsonStr(t, own[0].M, "target") != "SELF" {
		t.Fatalf("watcher's private events on joining: %v", eventNames(own))
	}

	isWatcher := func(ev chatEvent) bool { return jsonStr(t, ev.obj("data", "profile"), "loginName") == "agent2" }
	cj := p.cust.awaitMatch(p.cust.private, "JOINED", isWatcher)
	if jsonStr(t, cj.M, "target") != "CUSTOMER" || jsonStr(t, cj.M, "sessionId") != jsonStr(t, cj.obj("data", "profile"), "sessionId") {
		t.Fatalf("customer's JOINED of the watcher = %s", cj.Raw)
	}
	aj := p.agent.awaitMatch(p.agent.private, "JOINED", isWatcher)
	if jsonStr(t, aj.M, "target") != "MEMBER" || jsonStr(t, aj.obj("data", "room"), "status") != "IN_PROGRESS" {
		t.Fatalf("counselor's JOINED of the watcher = %s", aj.Raw)
	}

	// Nothing named JOINED on the room destination, for anyone.
	watcher.send("MESSAGE", map[string]any{"messageType": 0, "message": "장벽"})
	for _, c := range []struct {
		client *stompClient
		sub    *stomp.Subscription
	}{{watcher, watcherRoom}, {p.agent, p.agentRoom}, {p.cust, p.custRoom}} {
		if evs := c.client.untilEvent(c.sub, "MESSAGE", isText("장벽")); countNamed(evs, "JOINED") != 0 {
			t.Fatalf("%s got JOINED on the room destination: %v", c.client.name, eventNames(evs))
		}
	}
}

func TestJoinedCarriesTheCustomersUnreadCount(t *testing.T) {
	onEveryBackend(t, testJoinedCarriesTheCustomersUnreadCount)
}

// A customer's JOINED shows the room with its own noReadCount, as its
// ROOM_DETAIL does; the counselor sees the assignee's count.
func testJoinedCarriesTheCustomersUnreadCount(t *testing.T, e *chatEnv) {
	p := e.pair("5301", e.agent1)
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "첫 답변"})
	p.cust.awaitMatch(p.custRoom, "MESSAGE", isText("첫 답변"))
	// The customer's app comes back on another connection: the notice and
	// the answer are unread for it, nothing is unread for the counselor.
	again, logined := e.customer("5301", "고객5301")
	again.room(roomIDOf(t, logined))
	joined := again.await(again.private, "JOINED")
	room := joined.obj("data", "room")
	if jsonNum(t, room, "noReadCount") != 2 || jsonNum(t, room, "customerNoReadCount") != 2 || jsonNum(t, room, "memberNoReadCount") != 0 {
		t.Fatalf("customer's JOINED room = %s", joined.Raw)
	}
	if rd := again.await(again.private, "ROOM_DETAIL"); jsonNum(t, rd.obj("data", "room"), "noReadCount") != 2 {
		t.Fatalf("customer's ROOM_DETAIL = %s", rd.Raw)
	}
	// The counselor learns of it with the counselor's count.
	aj := p.agent.awaitMatch(p.agent.private, "JOINED", func(ev chatEvent) bool {
		return jsonStr(t, ev.obj("data", "profile"), "sessionId") == jsonStr(t, joined.obj("data", "profile"), "sessionId")
	})
	if jsonNum(t, aj.obj("data", "room"), "noReadCount") != 0 {
		t.Fatalf("counselor's JOINED of the customer = %s", aj.Raw)
	}
}

func TestRoomDetailOnChangeIsPrivate(t *testing.T) {
	onEveryBackend(t, testRoomDetailOnChangeIsPrivate)
}

// A status or assignee change sends ROOM_DETAIL privately to each connection
// in the room with its own noReadCount, not one shared copy on the room.
func testRoomDetailOnChangeIsPrivate(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("5401", "변경고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "하나"})
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "둘"})

	// Assigned from the lobby: the counselor is not in the room; its answer
	// is its own ROOM_DETAIL.
	agent := e.agent(e.agent1)
	agent.subscribe("/sub/socket/room/LOBBY1")
	agent.send("ASSIGN", map[string]any{"roomId": roomID})
	reply := agent.await(agent.private, "ROOM_DETAIL")
	if r := reply.obj("data", "room"); jsonStr(t, r, "status") != "IN_PROGRESS" || jsonNum(t, r, "noReadCount") != 2 {
		t.Fatalf("ASSIGN answer = %s", reply.Raw)
	}
	rd := cust.await(cust.private, "ROOM_DETAIL")
	for rd.obj("data", "room")["status"] != "IN_PROGRESS" {
		rd = cust.await(cust.private, "ROOM_DETAIL")
	}
	r := rd.obj("data", "room")
	if jsonStr(t, rd.M, "target") != "CUSTOMER" || jsonNum(t, r, "noReadCount") != 1 ||
		jsonNum(t, r, "customerNoReadCount") != 1 || jsonNum(t, r, "memberNoReadCount") != 2 {
		t.Fatalf("customer's ROOM_DETAIL after assignment = %s", rd.Raw)
	}

	// The counselor enters and ends the room: both present get ENDED.
	agentRoom := agent.room(roomID)
	agent.await(agent.private, "MESSAGE_LIST")
	agent.send("END", map[string]any{})
	agent.await(agentRoom, "END")
	ended := agent.await(agent.private, "ROOM_DETAIL")
	if jsonStr(t, ended.obj("data", "room"), "status") != "ENDED" || jsonStr(t, ended.M, "target") != "MEMBER" {
		t.Fatalf("counselor's ROOM_DETAIL after END = %s", ended.Raw)
	}
	ce := cust.awaitMatch(cust.private, "ROOM_DETAIL", func(ev chatEvent) bool { return ev.obj("data", "room")["status"] == "ENDED" })
	if jsonNum(t, ce.obj("data", "room"), "noReadCount") != jsonNum(t, ce.obj("data", "room"), "customerNoReadCount") {
		t.Fatalf("customer's ROOM_DETAIL after END = %s", ce.Raw)
	}

	// None of it went to the room destination.
	cust.send("READ_MESSAGE", map[string]any{"endId": 1 << 40})
	customerSpeaker := jsonNum(t, logined.obj("data", "profile"), "speakerId")
	if evs := cust.untilEvent(custRoom, "READ_MESSAGE", func(ev chatEvent) bool {
		return jsonNum(t, ev.data(), "speakerId") == customerSpeaker
	}); countNamed(evs, "ROOM_DETAIL") != 0 || countNamed(evs, "END") != 1 {
		t.Fatalf("room destination: %v", eventNames(evs))
	}
}

func TestRefusedSubscriptionOutsideSub(t *testing.T) {
	onEveryBackend(t, testRefusedSubscriptionOutsideSub)
}

// A destination the broker does not serve (/topic/x, pub/...) is refused
// like any other: an ERROR event on the private destination, and the
// connection goes on.
func testRefusedSubscriptionOutsideSub(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("5501", "구독고객", "accept-language", "en")
	for _, dest := range []string{"/topic/x", "queue/y", "/pub/socket/message"} {
		if _, err := cust.conn.Subscribe(dest, stomp.AckAuto); err != nil {
			t.Fatalf("subscribe %s: %v", dest, err)
		}
		if ev := cust.await(cust.private, "ERROR"); ev.reason() != chat.English.T("destination_forbidden") {
			t.Fatalf("subscribe %s: %s", dest, ev.Raw)
		}
	}
	cust.room(roomIDOf(t, logined))
	cust.await(cust.private, "WELCOME_MESSAGE")

	// Without a private subscription: an ERROR frame.
	bare := e.mustDial("bare", map[string]string{"companyId": "1", "gasappMemberNumber": "5502"})
	sub := bare.subscribe("/topic/x")
	select {
	case msg := <-sub.C:
		if msg == nil || msg.Err == nil || !strings.Contains(msg.Err.Error(), chat.Korean.T("destination_forbidden")) {
			t.Fatalf("want an ERROR frame, got %+v", msg)
		}
	case <-timeAfter():
		t.Fatal("no ERROR frame")
	}
}
