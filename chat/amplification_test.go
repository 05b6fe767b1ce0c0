package chat_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/chat"
)

// TestLobbyStatesCoalesced: a burst of lobby changes made on two nodes at
// once (rooms created, a customer starting over and over, customers
// entering and leaving their rooms in a loop) reaches a console as at most
// one RELOAD, and one event per room state, in each window, however many
// nodes published them; the last state of each always arrives.
func TestLobbyStatesCoalesced(t *testing.T) {
	for name, newBuses := range clusterBuses {
		t.Run(name, func(t *testing.T) { testLobbyStatesCoalesced(t, newBuses) })
	}
}

func testLobbyStatesCoalesced(t *testing.T, newBuses func(t *testing.T) (broker.Bus, broker.Bus)) {
	e := newEnv(t)
	e.lobbyWindow = time.Second
	presence := chat.NewMemoryPresence()
	busA, busB := newBuses(t)
	nodes := []*chatEnv{e.via(e.startNode(busA, presence)), e.via(e.startNode(busB, presence))}
	console := nodes[1].agent(e.agent2)
	lobby := console.subscribe("/sub/socket/room/LOBBY1")
	console.send("ROOM_DETAIL", map[string]any{}, "roomId", "424242") // the subscription is active once this is answered
	console.await(console.private, "ERROR")

	start := time.Now()
	var wg sync.WaitGroup
	// Rooms are created on both nodes.
	for i := range 10 {
		wg.Go(func() { nodes[i%2].customer(strconv.Itoa(8200+i), "") })
	}
	// One customer starts its consultation 30 times at once.
	starter, _ := nodes[0].customer("8300", "")
	for range 30 {
		wg.Go(func() { starter.send("START_MESSAGE", map[string]any{}) })
	}
	// Customers enter and leave their rooms in a loop, ending outside.
	churnRooms := make([]string, 4)
	for i := range churnRooms {
		c, logined := nodes[i%2].customer(strconv.Itoa(8400+i), "")
		churnRooms[i] = roomIDOf(t, logined)
		wg.Go(func() {
			for range 15 {
				sub := c.room(churnRooms[i])
				c.await(c.private, "WELCOME_MESSAGE")
				if err := c.unsubscribe(sub); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	// Everything published by now reaches the console within a window.
	var events []chatEvent
	for {
		ev, ok := nextWithin(console, lobby, 3*e.lobbyWindow)
		if !ok {
			break
		}
		events = append(events, ev)
	}
	elapsed := time.Since(start)
	limit := 2 + int(elapsed/e.lobbyWindow)
	counts := map[string]int{}
	lastPresence := map[string]string{}
	for _, ev := range events {
		room, _ := ev.M["roomId"].(string)
		switch ev.Name {
		case "RELOAD":
			counts["RELOAD"]++
		case "ONLINE", "OFFLINE":
			counts["presence "+room]++
			lastPresence[room] = ev.Name
		case "RELOAD_READY":
			counts["room "+room]++
		}
	}
	for key, n := range counts {
		if n > limit {
			t.Errorf("%s: %d lobby events in %s, more than one per %s window", key, n, elapsed.Round(time.Millisecond), e.lobbyWindow)
		}
	}
	if counts["RELOAD"] == 0 {
		t.Error("no RELOAD at all")
	}
	for _, room := range churnRooms {
		if lastPresence[room] != "OFFLINE" {
			t.Errorf("room %s: last presence %q, want OFFLINE (its customer left)", room, lastPresence[room])
		}
	}
	t.Logf("%d lobby events in %s: %v", len(events), elapsed.Round(time.Millisecond), counts)
}

// nextWithin returns the next event on sub, or false when none comes
// within wait.
func nextWithin(c *stompClient, sub *stomp.Subscription, wait time.Duration) (chatEvent, bool) {
	select {
	case msg, ok := <-sub.C:
		if !ok {
			c.t.Fatalf("%s: subscription %s closed", c.name, sub.Destination())
		}
		return c.decode(sub, msg), true
	case <-time.After(wait):
		return chatEvent{}, false
	}
}

// TestChatEventAllowance: a connection's events past its allowance are
// refused with ERROR rate_limited and no receipt (nothing is stored), the
// connection stays, and the allowance is per connection.
func TestChatEventAllowance(t *testing.T) {
	e := newEnv(t, func(cfg *chat.Config, _ *chat.Company) { cfg.EventRate, cfg.EventBurst = 0.01, 5 })
	p := e.pair("8501", e.agent1)
	// Without receipts: a refused event gets none.
	for i := range 8 {
		body := fmt.Sprintf(`{"eventName":"MESSAGE","data":{"message":"m%d"}}`, i)
		if err := p.cust.conn.Send("/pub/socket/message", "application/json", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var stored []string
	limited := 0
	for len(stored)+limited < 8 {
		select {
		case msg := <-p.custRoom.C:
			if ev := p.cust.decode(p.custRoom, msg); ev.Name == "MESSAGE" {
				if text := jsonStr(t, ev.obj("data", "message"), "message"); strings.HasPrefix(text, "m") {
					stored = append(stored, text)
				}
			}
		case msg := <-p.cust.private.C:
			if ev := p.cust.decode(p.cust.private, msg); ev.Name == "ERROR" {
				if ev.reason() != chat.Korean.T("rate_limited") {
					t.Fatalf("ERROR %s", ev.Raw)
				}
				limited++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("after %v stored and %d refused, nothing more", stored, limited)
		}
	}
	if fmt.Sprint(stored) != "[m0 m1 m2 m3 m4]" || limited != 3 {
		t.Fatalf("stored %v, %d rate_limited; want the burst of 5 and 3 refusals", stored, limited)
	}
	// The counselor's connection has its own allowance, and the customer's
	// connection is still there to read it.
	p.agent.send("MESSAGE", map[string]any{"message": "from the counselor"})
	if m := p.cust.await(p.custRoom, "MESSAGE").obj("data", "message"); jsonStr(t, m, "message") != "from the counselor" {
		t.Fatalf("customer got %v", m)
	}
}
