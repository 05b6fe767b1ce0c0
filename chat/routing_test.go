package chat_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/redisbus"
	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/chat/redispresence"
)

func autoAssignOn(_ *chat.Config, c *chat.Company) { c.AutoAssign = true }

// console connects m's console to its lobby after m chose AVAILABLE, and
// waits until the lobby says so.
func (e *chatEnv) console(m *chat.Member) (*stompClient, *stomp.Subscription) {
	e.t.Helper()
	if _, err := e.svc.SetMemberStatus(e.t.Context(), m, chat.MemberAvailable); err != nil {
		e.t.Fatalf("status of %s: %v", m.LoginName, err)
	}
	c := e.agent(m)
	lobby := c.subscribe(fmt.Sprintf("/sub/socket/room/LOBBY%d", m.CompanyID))
	c.awaitMatch(lobby, "MEMBER_STATUS", memberStatusIs(m.ID, "AVAILABLE"))
	return c, lobby
}

func memberStatusIs(id int64, status string) func(chatEvent) bool {
	return func(ev chatEvent) bool {
		d := ev.data()
		return d["memberId"] == float64(id) && d["status"] == status
	}
}

// writes connects a customer of company 1 who writes once in its room, and
// returns it with its room subscription and room ID.
func (e *chatEnv) writes(number, text string) (*stompClient, *stomp.Subscription, string) {
	e.t.Helper()
	cust, logined := e.customer(number, "고객"+number)
	roomID := roomIDOf(e.t, logined)
	sub := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": text})
	return cust, sub, roomID
}

func (e *chatEnv) roomOf(roomID string) *chat.Room {
	e.t.Helper()
	r, err := e.store.Room(e.t.Context(), mustInt(e.t, roomID))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *chatEnv) assigneeOf(roomID string) int64 {
	e.t.Helper()
	r := e.roomOf(roomID)
	if r.MemberID == nil {
		return 0
	}
	return *r.MemberID
}

func TestAutoAssign(t *testing.T) { onEveryBackend(t, testAutoAssign, autoAssignOn) }

func testAutoAssign(t *testing.T, e *chatEnv) {
	a1, lobby1 := e.console(e.agent1)
	a2, lobby2 := e.console(e.agent2)

	// The first message assigns the room as ASSIGN would: the notice on
	// the room, ROOM_DETAIL to the customer, RELOAD and RELOAD_READY.
	cust, custRoom, room1 := e.writes("5001", "가스 요금이 이상해요")
	notice := cust.awaitMatch(custRoom, "MESSAGE", func(ev chatEvent) bool { return jsonNum(t, ev.obj("data", "message"), "isSystemMessage") == 1 })
	if !strings.Contains(notice.Raw, "김상담 상담사가 상담을 시작합니다.") {
		t.Fatalf("assignment notice = %s", notice.Raw)
	}
	if rd := cust.await(cust.private, "ROOM_DETAIL"); jsonStr(t, rd.obj("data", "room"), "status") != "IN_PROGRESS" {
		t.Fatalf("customer's ROOM_DETAIL = %s", rd.Raw)
	}
	ready := a1.awaitMatch(lobby1, "RELOAD_READY", func(ev chatEvent) bool {
		return ev.M["roomId"] == room1 && ev.obj("data", "room", "member") != nil
	})
	if jsonNum(t, ready.obj("data", "room", "member"), "id") != e.agent1.ID || jsonNum(t, ready.obj("data", "profile"), "id") != e.agent1.ID {
		t.Fatalf("RELOAD_READY of the auto-assignment = %s", ready.Raw)
	}
	// The longest wait took the first room, the fewest rooms the second.
	_, _, room2 := e.writes("5002", "점검 예약")
	if got := e.assigneeOf(room2); got != e.agent2.ID {
		t.Fatalf("second room went to %d, want agent2", got)
	}
	// Capacity: agent2 may have one room; the third goes to agent1.
	if _, err := e.svc.SetMemberCapacity(t.Context(), e.admin1, e.agent2.ID, 1); err != nil {
		t.Fatal(err)
	}
	_, _, room3 := e.writes("5003", "세 번째")
	if got := e.assigneeOf(room3); got != e.agent1.ID {
		t.Fatalf("third room went to %d, want agent1 (agent2 at capacity)", got)
	}
	// Nobody can take one: agent1 AWAY, agent2 full. The room waits and
	// goes to whoever has room first: agent2 when its room ends.
	if _, err := e.svc.SetMemberStatus(t.Context(), e.agent1, chat.MemberAway); err != nil {
		t.Fatal(err)
	}
	a1.awaitMatch(lobby1, "MEMBER_STATUS", memberStatusIs(e.agent1.ID, "AWAY"))
	cust4, cust4Room, room4 := e.writes("5004", "아무도 없나요")
	if got := e.roomOf(room4); got.Status != chat.StatusWaiting || got.MemberID != nil {
		t.Fatalf("room with nobody available: %+v", got)
	}
	if err := e.svc.EndRoom(t.Context(), e.admin1, mustInt(t, room2)); err != nil {
		t.Fatal(err)
	}
	if got := e.assigneeOf(room4); got != e.agent2.ID {
		t.Fatalf("after agent2's room ended, the waiting room went to %d", got)
	}
	cust4.awaitMatch(cust4Room, "MESSAGE", func(ev chatEvent) bool {
		return strings.Contains(ev.Raw, "이상담 상담사가 상담을 시작합니다.")
	})

	// A console that goes away takes its member out of routing and the
	// team sees it OFFLINE; back, it takes the waiting room at once.
	if _, err := e.svc.SetMemberStatus(t.Context(), e.agent1, chat.MemberAvailable); err != nil {
		t.Fatal(err)
	}
	a1.conn.MustDisconnect()
	a2.awaitMatch(lobby2, "MEMBER_STATUS", memberStatusIs(e.agent1.ID, "OFFLINE"))
	_, _, room5 := e.writes("5005", "다섯 번째")
	if got := e.roomOf(room5); got.MemberID != nil {
		t.Fatalf("room given to a member without a console: %+v", got)
	}
	states, err := e.svc.MemberStates(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.ID == e.agent1.ID && (s.Status != chat.MemberOffline || s.OpenRooms != 2) {
			t.Fatalf("agent1 without a console: %+v", s)
		}
	}
	back := e.agent(e.agent1)
	back.subscribe("/sub/socket/room/LOBBY1")
	a2.awaitMatch(lobby2, "MEMBER_STATUS", memberStatusIs(e.agent1.ID, "AVAILABLE"))
	// The console's subscription routes the room after telling the lobby.
	eventually(t, "agent1 back takes the waiting room", func() bool { return e.assigneeOf(room5) == e.agent1.ID })
	_ = cust
}

// eventually polls cond until it holds, failing after waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countingStore counts the store calls routing makes.
type countingStore struct {
	chat.Store
	autoAssigns atomic.Int64
	companies   atomic.Int64
}

func (c *countingStore) AutoAssignRoom(ctx context.Context, roomID int64, speakers []int64, now time.Time) (*chat.Room, error) {
	c.autoAssigns.Add(1)
	return c.Store.AutoAssignRoom(ctx, roomID, speakers, now)
}

func (c *countingStore) Company(ctx context.Context, id int64) (*chat.Company, error) {
	c.companies.Add(1)
	return c.Store.Company(ctx, id)
}

// TestAutoAssignOnlyAtFirstMessage: routing is tried at a room's first
// customer message only; the messages after it cost routing nothing, even
// while nobody can take the room.
func TestAutoAssignOnlyAtFirstMessage(t *testing.T) {
	e := newEnv(t, autoAssignOn)
	counting := &countingStore{Store: e.store}
	e.chatStore = counting
	n := e.via(e.startNode(broker.NewMemoryBus(), nil))
	cust, _, roomID := n.writes("6001", "처음")
	if got := counting.autoAssigns.Load(); got != 0 {
		t.Fatalf("no console connected, yet %d AutoAssignRoom calls", got)
	}
	agent := n.agent(e.agent1)
	agent.subscribe("/sub/socket/room/LOBBY1") // connected, but OFFLINE
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "두 번째"})
	before := counting.companies.Load()
	for i := range 5 {
		cust.send("MESSAGE", map[string]any{"messageType": 0, "message": fmt.Sprint("이어서 ", i)})
	}
	if got := counting.autoAssigns.Load(); got != 0 {
		t.Fatalf("later messages of the run tried routing %d times", got)
	}
	if got := counting.companies.Load() - before; got != 0 {
		t.Fatalf("later messages read the company %d times", got)
	}
	// The member becoming AVAILABLE routes the room (one decision).
	if _, err := n.svc.SetMemberStatus(t.Context(), e.agent1, chat.MemberAvailable); err != nil {
		t.Fatal(err)
	}
	if got := e.assigneeOf(roomID); got != e.agent1.ID {
		t.Fatalf("room went to %d", got)
	}
	if got := counting.autoAssigns.Load(); got != 1 {
		t.Fatalf("%d AutoAssignRoom calls for one room", got)
	}
	for i := range 3 {
		cust.send("MESSAGE", map[string]any{"messageType": 0, "message": fmt.Sprint("배정 후 ", i)})
	}
	if got := counting.autoAssigns.Load(); got != 1 {
		t.Fatalf("messages in an assigned room tried routing (%d calls)", got)
	}
}

// TestAutoAssignTwoNodes: two nodes decide the same waiting rooms at once
// (each drains them when its member becomes AVAILABLE); every room is given
// once, with one notice, and nobody gets more than its capacity. Over the
// in-process bus network with a shared presence, and over the real Redis
// (bus and presence, one of each per node).
func TestAutoAssignTwoNodes(t *testing.T) {
	onEveryBackend(t, func(t *testing.T, e *chatEnv) {
		presence := chat.NewMemoryPresence()
		network := broker.NewMemoryNetwork()
		twoNodesDecide(t, e, e.via(e.startNode(network.Node(), presence)), e.via(e.startNode(network.Node(), presence)))
	}, autoAssignOn)
	t.Run("redis", func(t *testing.T) {
		if testing.Short() {
			t.Skip("needs Redis on 127.0.0.1:6379")
		}
		e := newEnv(t, autoAssignOn)
		prefix := redisTestPrefix()
		node := func(name string) *chatEnv {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			bus, err := redisbus.New(ctx, redisbus.Options{URL: "redis://127.0.0.1:6379/0", Prefix: prefix, NodeID: name})
			if err != nil {
				t.Fatalf("redis bus: %v", err)
			}
			p, err := redispresence.New(ctx, redispresence.Options{URL: "redis://127.0.0.1:6379/0", Prefix: prefix, NodeID: name})
			if err != nil {
				t.Fatalf("redis presence: %v", err)
			}
			t.Cleanup(func() { _ = p.Close() })
			return e.via(e.startNode(bus, p))
		}
		twoNodesDecide(t, e, node("a"), node("b"))
	})
}

func redisTestPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cstalk-chat-test-" + hex.EncodeToString(b[:]) + ":"
}

func twoNodesDecide(t *testing.T, e, a, b *chatEnv) {
	var rooms []string
	for i := range 6 {
		_, _, roomID := a.writes(fmt.Sprint(7000+i), "기다립니다")
		rooms = append(rooms, roomID)
	}
	extra := e.member(t.Context(), 1, "agent9", "구상담", false)
	members := []*chat.Member{e.agent1, e.agent2, extra}
	nodes := []*chatEnv{a, b, a}
	for i, m := range members {
		if _, err := e.svc.SetMemberCapacity(t.Context(), e.admin1, m.ID, 2); err != nil {
			t.Fatal(err)
		}
		c := nodes[i].agent(m)
		c.subscribe("/sub/socket/room/LOBBY1")
		c.send("ROOM_DETAIL", map[string]any{}, "roomId", rooms[0]) // the lobby subscription is in place
		c.await(c.private, "ROOM_DETAIL")
	}
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			if _, err := nodes[i].svc.SetMemberStatus(context.Background(), m, chat.MemberAvailable); err != nil {
				t.Errorf("status of %s: %v", m.LoginName, err)
			}
		})
	}
	wg.Wait()
	per := map[int64]int{}
	for _, roomID := range rooms {
		id := e.assigneeOf(roomID)
		if id == 0 {
			t.Fatalf("room %s left waiting", roomID)
		}
		per[id]++
		msgs, err := e.store.Messages(t.Context(), mustInt(t, roomID), 0, 100, true)
		if err != nil {
			t.Fatal(err)
		}
		notices := 0
		for _, m := range msgs {
			if m.IsSystem && strings.Contains(m.Body, "상담을 시작합니다") {
				notices++
			}
		}
		if notices != 1 {
			t.Fatalf("room %s has %d assignment notices", roomID, notices)
		}
	}
	for id, n := range per {
		if n != 2 {
			t.Fatalf("member %d has %d rooms (capacity 2): %v", id, n, per)
		}
	}
}

// TestConsoleOfDeadNode: a console whose node died without a word is
// reported by the cluster-wide presence; its member, with no other
// console, is OFFLINE for the team.
func TestConsoleOfDeadNode(t *testing.T) {
	e := newEnv(t)
	watcher, lobby := e.console(e.agent2)
	if _, err := e.svc.SetMemberStatus(t.Context(), e.agent1, chat.MemberAvailable); err != nil {
		t.Fatal(err)
	}
	// Without a console here the choice reads OFFLINE at once.
	watcher.awaitMatch(lobby, "MEMBER_STATUS", memberStatusIs(e.agent1.ID, "OFFLINE"))
	sp, err := e.store.MemberSpeaker(t.Context(), e.agent1)
	if err != nil {
		t.Fatal(err)
	}
	// The dead node's entry has expired; the presence reports it gone.
	e.svc.AttendeeGone(t.Context(), -1, chat.Attendee{SessionID: "dead-node-session", SpeakerID: sp.ID, IsMember: true})
	watcher.awaitMatch(lobby, "MEMBER_STATUS", memberStatusIs(e.agent1.ID, "OFFLINE"))
}
