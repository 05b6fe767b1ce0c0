package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus"
	"github.com/cstalk/cstalk/chat"
)

// feedNode is a MySQL store caching its contexts with a Redis room feed,
// and a channel told each time it applies other nodes' changes.
type feedNode struct {
	s       *Store
	bus     *redisbus.Bus
	applied chan struct{}
}

// feedPrefix is a Redis channel prefix of the test's own.
func feedPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cstalk-store-test-" + hex.EncodeToString(b[:]) + ":"
}

// startFeedNode opens dsn as a node whose feed reaches Redis at addr. Its
// entries live for the test: only the feed (or a lost feed) changes them.
func startFeedNode(t *testing.T, dsn, addr, prefix, name string) *feedNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := redisbus.New(ctx, redisbus.Options{URL: "redis://" + addr + "/0", Prefix: prefix, NodeID: name, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("redis bus: %v", err)
	}
	s := openForTest(t, dsn)
	t.Cleanup(func() { _ = bus.Close() }) // after the store's Close
	n := &feedNode{s: s, bus: bus, applied: make(chan struct{}, 16)}
	s.afterFeed = func() { n.applied <- struct{}{} }
	must(t, s.CacheRoomContexts(ctx, bus))
	s.roomCache.ttl = time.Hour
	return n
}

// awaitApplied waits until n has applied one payload of other nodes' news.
func (n *feedNode) awaitApplied(t *testing.T, what string) {
	t.Helper()
	select {
	case <-n.applied:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the other node's change never reached this one", what)
	}
}

// cached reports whether n holds roomID's context.
func (n *feedNode) cached(roomID int64) bool {
	c := n.s.roomCache
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.rooms[roomID]
	return ok
}

func (n *feedNode) context(t *testing.T, ctx context.Context, roomID int64) *chat.MessageContext {
	t.Helper()
	mc, err := n.s.MessageContext(ctx, roomID)
	must(t, err)
	return mc
}

// Two nodes on one MariaDB with the Redis feed: what one commits to a room
// (a message, a read position, an assignment, a reassignment, the end)
// reaches the context the other keeps in memory, without its reading the
// database again.
func TestRoomFeedTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MariaDB and Redis")
	}
	dsn := newMariaDBDSN(t)
	prefix := feedPrefix()
	a := startFeedNode(t, dsn, "127.0.0.1:6379", prefix, "a")
	b := startFeedNode(t, dsn, "127.0.0.1:6379", prefix, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := env{s: a.s, dsn: dsn, ctx: ctx}
	f := newFixture(t, e)
	room := f.room.ID

	if mc := b.context(t, ctx, room); mc.Room.Status != chat.StatusWaiting || mc.Room.LastMessageID != 0 {
		t.Fatalf("fresh context %+v", mc.Room)
	}
	if !b.cached(room) {
		t.Fatal("the context was not cached")
	}
	// Each step: a change on a, then b's next context. A message and a read
	// position move b's entry; a change of the room's row drops it.
	step := func(what string, change func(), check func(*chat.MessageContext) bool) {
		t.Helper()
		change()
		b.awaitApplied(t, what)
		if moved := what == "message" || what == "read"; b.cached(room) != moved {
			t.Fatalf("%s: entry cached %v, want %v", what, !moved, moved)
		}
		if mc := b.context(t, ctx, room); !check(mc) {
			t.Fatalf("%s: the other node's context %+v (positions %v)", what, mc.Room, mc.Positions)
		}
	}
	var last *chat.Message
	step("message", func() { last = appendOK(t, e, f.msg(f.customerSp, "다른 노드에서")) }, func(mc *chat.MessageContext) bool {
		return mc.Room.LastMessageID == last.ID && mc.LastFound && mc.LastIsCustomer && mc.LastAdminType == 0
	})
	step("read", func() {
		if changed, err := a.s.MarkRead(ctx, room, f.agentSp.ID, last.ID); err != nil || !changed {
			t.Fatalf("MarkRead: %v, %v", changed, err)
		}
	}, func(mc *chat.MessageContext) bool { return mc.Positions[f.agentSp.ID] == last.ID })
	step("transfer", func() {
		_, err := a.s.TransferRoom(ctx, room, nil, f.agent.ID, t0)
		must(t, err)
	}, func(mc *chat.MessageContext) bool {
		return mc.Room.Status == chat.StatusInProgress && mc.Room.MemberID != nil && *mc.Room.MemberID == f.agent.ID && mc.AssigneeFound
	})
	step("reassign", func() {
		from := f.agent.ID
		_, err := a.s.TransferRoom(ctx, room, &from, f.agent2.ID, t0)
		must(t, err)
	}, func(mc *chat.MessageContext) bool { return mc.Room.MemberID != nil && *mc.Room.MemberID == f.agent2.ID })
	step("end", func() {
		_, _, err := a.s.EndRoom(ctx, room, t0.Add(time.Hour))
		must(t, err)
	}, func(mc *chat.MessageContext) bool { return mc.Room.Status == chat.StatusEnded })

	// And the other way round: b's own message moves a's entry.
	a.context(t, ctx, room)
	var note *chat.Message
	bEnv := env{s: b.s, dsn: dsn, ctx: ctx}
	m := f.msg(f.agent2Sp, "메모")
	m.AdminType = 1
	note = appendOK(t, bEnv, m)
	a.awaitApplied(t, "note")
	if mc := a.context(t, ctx, room); mc.Room.LastMessageID != note.ID || mc.LastAdminType != 1 || mc.LastIsCustomer {
		t.Fatalf("a's context after b's note: %+v, last admin type %d", mc.Room, mc.LastAdminType)
	}
}

// A node whose feed connection is lost serves nothing from its cache until
// it is back, and drops every entry when it is: whatever other nodes
// changed meanwhile, its next context has it.
func TestRoomFeedLost(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MariaDB and Redis")
	}
	dsn := newMariaDBDSN(t)
	prefix := feedPrefix()
	proxy := startRedisProxy(t, "127.0.0.1:6379")
	a := startFeedNode(t, dsn, "127.0.0.1:6379", prefix, "a")
	b := startFeedNode(t, dsn, proxy.addr(), prefix, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := env{s: a.s, dsn: dsn, ctx: ctx}
	f := newFixture(t, e)
	room := f.room.ID
	feedIs := func(up bool) uint64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			gen, ok := b.bus.Continuity()
			if ok == up {
				return gen
			}
			if time.Now().After(deadline) {
				t.Fatalf("b's feed never became up=%v", up)
			}
			time.Sleep(10 * time.Millisecond) // nothing to await: the bus reconnects by itself
		}
	}

	// Lost while b reads: what a changes meanwhile is read from the database.
	b.context(t, ctx, room)
	before := feedIs(true)
	proxy.cut(true)
	feedIs(false)
	_, err := a.s.TransferRoom(ctx, room, nil, f.agent.ID, t0)
	must(t, err)
	if mc := b.context(t, ctx, room); mc.Room.MemberID == nil || *mc.Room.MemberID != f.agent.ID {
		t.Fatalf("context while the feed is down: assignee %v, want %d", mc.Room.MemberID, f.agent.ID)
	}
	proxy.cut(false)
	if feedIs(true) == before {
		t.Fatal("the feed's continuity did not change across the loss")
	}

	// Lost and back before b reads again: the entry from before is dropped.
	b.context(t, ctx, room)
	if !b.cached(room) {
		gen, ok := b.bus.Continuity()
		t.Fatalf("the context was not cached once the feed was back (feed %d %v, cache %d)", gen, ok, b.s.roomCache.gen)
	}
	before = feedIs(true)
	proxy.cut(true)
	feedIs(false)
	_, _, err = a.s.EndRoom(ctx, room, t0.Add(time.Hour))
	must(t, err)
	proxy.cut(false)
	if feedIs(true) == before {
		t.Fatal("the feed's continuity did not change across the loss")
	}
	if mc := b.context(t, ctx, room); mc.Room.Status != chat.StatusEnded {
		t.Fatalf("context after the feed came back: %s, want ENDED", mc.Room.Status)
	}
}

// redisProxy forwards TCP connections to Redis until cut.
type redisProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	isCut  bool
	conns  []net.Conn
}

func startRedisProxy(t *testing.T, target string) *redisProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &redisProxy{ln: ln, target: target}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.serve(c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		p.cut(true)
	})
	return p
}

func (p *redisProxy) addr() string { return p.ln.Addr().String() }

// serve pipes c to the target, or closes it while the proxy is cut.
func (p *redisProxy) serve(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isCut {
		_ = c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.conns = append(p.conns, c, up)
	go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
	go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
}

// cut closes every connection and refuses new ones, or lets them through
// again.
func (p *redisProxy) cut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = cut
	if cut {
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
	}
}
