package chat_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/redisbus"
	"github.com/cstalk/cstalk/chat"
)

// TestCluster runs a consultation across two nodes sharing one store, over
// the in-process bus network and over the real Redis: the customer on one
// node, counselors on both. Presence is shared, as a cluster-wide Presence
// would be, so internal notes reach counselors on the other node and still
// never the customer.
func TestCluster(t *testing.T) {
	for name, newBuses := range clusterBuses {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			presence := chat.NewMemoryPresence()
			busA, busB := newBuses(t)
			a, b := e.via(e.startNode(busA, presence)), e.via(e.startNode(busB, presence))

			lobbyAgent := b.agent(e.agent2)
			lobby := lobbyAgent.subscribe("/sub/socket/room/LOBBY1")
			lobbyAgent.send("ROOM_DETAIL", map[string]any{}, "roomId", "424242")
			lobbyAgent.await(lobbyAgent.private, "ERROR")

			cust, logined := a.customer("7777", "클러스터")
			roomID := roomIDOf(t, logined)
			lobbyAgent.await(lobby, "RELOAD")
			custRoom := cust.room(roomID)
			cust.await(cust.private, "WELCOME_MESSAGE")

			agent := b.agent(e.agent1)
			agentRoom := agent.room(roomID)
			agent.await(agent.private, "MESSAGE_LIST")
			// The assignment is seen across nodes: the counselor's JOINED and
			// the new ROOM_DETAIL reach the customer privately through the
			// shared presence.
			if j := cust.await(cust.private, "JOINED"); jsonStr(t, j.obj("data", "profile"), "loginName") != "agent1" {
				t.Fatalf("JOINED across nodes: %s", j.Raw)
			}
			cust.await(cust.private, "ROOM_DETAIL")

			cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "다른 노드로"})
			got := agent.awaitMatch(agentRoom, "MESSAGE", isText("다른 노드로"))
			if jsonNum(t, got.obj("data", "message"), "isOnline") != 1 {
				t.Fatalf("isOnline across nodes: %s", got.Raw)
			}
			// A counselor on the customer's node writes a note: it reaches
			// the counselor on the other node privately.
			watcher := a.agent(e.admin1)
			watcher.room(roomID)
			watcher.await(watcher.private, "MESSAGE_LIST")
			watcher.send("MESSAGE", map[string]any{"messageType": 0, "message": "노드 간 메모", "messageAdminType": 1})
			agent.awaitMatch(agent.private, "MESSAGE", isText("노드 간 메모"))
			agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "답변"})
			var seen []chatEvent
			for ev := cust.next(custRoom); !isText("답변")(ev); ev = cust.next(custRoom) {
				seen = append(seen, ev)
			}
			for _, ev := range append(seen, drainEvents(cust.private)...) {
				if strings.Contains(ev.Raw, "노드 간 메모") {
					t.Fatalf("customer got the note: %s", ev.Raw)
				}
			}
			agent.send("END", map[string]any{})
			cust.await(custRoom, "END")
			lobbyAgent.awaitMatch(lobby, "RELOAD_READY", func(ev chatEvent) bool {
				return jsonStr(t, ev.obj("data", "room"), "status") == "ENDED"
			})
		})
	}
}

// clusterBuses make the buses of two nodes: the in-process network and the
// real Redis (a key prefix of the test's own).
var clusterBuses = map[string]func(t *testing.T) (broker.Bus, broker.Bus){
	"memory": func(*testing.T) (broker.Bus, broker.Bus) {
		network := broker.NewMemoryNetwork()
		return network.Node(), network.Node()
	},
	"redis": func(t *testing.T) (broker.Bus, broker.Bus) {
		if testing.Short() {
			t.Skip("needs Redis on 127.0.0.1:6379")
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		prefix := "cstalk-chat-test-" + hex.EncodeToString(b[:]) + ":"
		open := func(node string) broker.Bus {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			bus, err := redisbus.New(ctx, redisbus.Options{URL: "redis://127.0.0.1:6379/0", Prefix: prefix, NodeID: node})
			if err != nil {
				t.Fatalf("redis bus: %v", err)
			}
			return bus
		}
		return open("a"), open("b")
	},
}
