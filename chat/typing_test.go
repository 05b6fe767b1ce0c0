package chat_test

import (
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

func TestTyping(t *testing.T) { onEveryBackend(t, testTyping) }

// typingEvents reads sub until the MESSAGE with text marker and returns the
// TYPING events of customers (or of members) before it. The room
// destination also carries the reader's own TYPING, as it carries its own
// MESSAGE: pages skip those by their sessionId.
func typingEvents(t *testing.T, c *stompClient, sub *stomp.Subscription, marker string, ofCustomer bool) []chatEvent {
	var out []chatEvent
	for ev := c.next(sub); !isText(marker)(ev); ev = c.next(sub) {
		if ev.Name == "TYPING" && (jsonNum(t, ev.data(), "isCustomer") == 1) == ofCustomer {
			out = append(out, ev)
		}
	}
	return out
}

func testTyping(t *testing.T, e *chatEnv) {
	cust, logined := e.customer("8101", "입력고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")
	agent := e.agent(e.agent1)
	agentRoom := agent.room(roomID)
	agent.await(agent.private, "MESSAGE_LIST")
	admin := e.agent(e.admin1)
	admin.room(roomID)
	admin.await(admin.private, "MESSAGE_LIST")
	say := func(c *stompClient, text string) {
		c.send("MESSAGE", map[string]any{"messageType": 0, "message": text}, "roomId", roomID)
	}
	typing := func(c *stompClient, on bool, extra ...any) {
		data := map[string]any{"typing": on}
		for i := 0; i+1 < len(extra); i += 2 {
			data[extra[i].(string)] = extra[i+1]
		}
		c.send("TYPING", data, "roomId", roomID)
	}

	// The customer types: the room sees it once (a repeat within the
	// refresh changes nothing), then the stop.
	typing(cust, true)
	typing(cust, true)
	typing(cust, false)
	typing(cust, false)
	say(cust, "표시1")
	evs := typingEvents(t, agent, agentRoom, "표시1", true)
	if len(evs) != 2 || evs[0].data()["typing"] != true || evs[1].data()["typing"] != false {
		t.Fatalf("customer's TYPING seen by the counselor: %v", evs)
	}
	d := evs[0].data()
	if d["roomId"] != roomID || jsonNum(t, d, "isCustomer") != 1 || jsonNum(t, d, "speakerId") == 0 || evs[0].M["target"] != "BROADCAST" {
		t.Fatalf("TYPING = %s", evs[0].Raw)
	}

	// A burst: the clock stands still, so the bucket lets 4 through, and
	// each of their stops; nothing more.
	for range 20 {
		typing(agent, true)
		typing(agent, false)
	}
	say(agent, "표시2")
	evs = typingEvents(t, cust, custRoom, "표시2", false)
	if len(evs) != 8 {
		t.Fatalf("a burst of 40 TYPING relayed %d, want 4 starts and 4 stops", len(evs))
	}
	// Later the bucket has refilled.
	e.clock.Advance(2 * time.Second)
	typing(agent, true)
	say(agent, "표시3")
	if evs := typingEvents(t, cust, custRoom, "표시3", false); len(evs) != 1 || evs[0].data()["typing"] != true {
		t.Fatalf("after the refill: %v", evs)
	}

	// Typing a note: the members present learn it privately, the customer
	// never.
	typing(admin, true, "messageAdminType", 1)
	note := agent.await(agent.private, "TYPING")
	if note.M["target"] != "MEMBER" || note.data()["typing"] != true {
		t.Fatalf("note TYPING = %s", note.Raw)
	}
	typing(cust, true, "messageAdminType", 1)
	if ev := cust.await(cust.private, "ERROR"); ev.reason() == "" {
		t.Fatalf("customer's note TYPING: %s", ev.Raw)
	}
	say(admin, "표시4")
	if evs := typingEvents(t, cust, custRoom, "표시4", false); len(evs) != 0 {
		t.Fatalf("the customer saw a note being typed: %v", evs)
	}
	for _, ev := range drainEvents(cust.private) {
		if ev.Name == "TYPING" {
			t.Fatalf("the customer saw a note being typed: %s", ev.Raw)
		}
	}

	// Bad input is refused.
	cust.send("TYPING", map[string]any{}, "roomId", roomID)
	if ev := cust.await(cust.private, "ERROR"); ev.reason() == "" {
		t.Fatalf("TYPING without typing: %s", ev.Raw)
	}
	cust.send("TYPING", map[string]any{"typing": "maybe"}, "roomId", roomID)
	cust.await(cust.private, "ERROR")

	// Leaving clears the indicator: the customer types and goes away.
	typing(cust, true)
	fromCustomer := func(ev chatEvent) bool { return jsonNum(t, ev.data(), "isCustomer") == 1 }
	if ev := agent.awaitMatch(agentRoom, "TYPING", fromCustomer); ev.data()["typing"] != true {
		t.Fatalf("customer typing: %s", ev.Raw)
	}
	cust.conn.MustDisconnect()
	if ev := agent.awaitMatch(agentRoom, "TYPING", fromCustomer); ev.data()["typing"] != false {
		t.Fatalf("after the customer left: %s", ev.Raw)
	}
}
