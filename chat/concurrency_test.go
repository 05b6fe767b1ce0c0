package chat_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

// TestConcurrentRooms: customers write at the same time in their own rooms
// while one counselor follows all of them; every message arrives once, in
// each sender's order, with ids that only grow.
func TestConcurrentRooms(t *testing.T) {
	const customers, perCustomer = 8, 15
	e := newEnv(t)
	agent := e.agent(e.agent1)
	type room struct {
		id   string
		cust *stompClient
		sub  *stomp.Subscription
	}
	rooms := make([]room, customers)
	for i := range rooms {
		c, logined := e.customer(fmt.Sprint(10000+i), fmt.Sprintf("동시%d", i))
		rooms[i] = room{id: roomIDOf(t, logined), cust: c}
		rooms[i].sub = agent.room(rooms[i].id)
		agent.await(agent.private, "MESSAGE_LIST")
		// The assignment notice, so only customer messages follow.
		agent.awaitMatch(rooms[i].sub, "MESSAGE", func(ev chatEvent) bool {
			return jsonNum(t, ev.obj("data", "message"), "isSystemMessage") == 1
		})
	}

	var wg sync.WaitGroup
	errs := make(chan error, customers)
	for i := range rooms {
		wg.Add(1)
		go func(r room) {
			defer wg.Done()
			for n := 0; n < perCustomer; n++ {
				body, _ := json.Marshal(map[string]any{"eventName": "MESSAGE", "data": map[string]any{
					"messageType": 0, "message": fmt.Sprintf("%s-%d", r.id, n), "clientMessageId": fmt.Sprint(n)}})
				if err := r.cust.conn.Send("/pub/socket/message", "application/json", body, stomp.SendOpt.Receipt); err != nil {
					errs <- fmt.Errorf("room %s message %d: %w", r.id, n, err)
					return
				}
			}
		}(rooms[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, r := range rooms {
		var last int64
		for n := 0; n < perCustomer; n++ {
			ev := agent.await(r.sub, "MESSAGE")
			m := ev.obj("data", "message")
			if want := fmt.Sprintf("%s-%d", r.id, n); jsonStr(t, m, "message") != want {
				t.Fatalf("room %s: got %q, want %q", r.id, m["message"], want)
			}
			if id := jsonNum(t, m, "id"); id <= last {
				t.Fatalf("room %s: id %d after %d", r.id, id, last)
			} else {
				last = id
			}
		}
	}
}
