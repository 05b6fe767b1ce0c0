package redispresence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/cstalk/cstalk/chat"
)

const (
	sharedRedis = "redis://127.0.0.1:6379/0"
	waitTimeout = 10 * time.Second
)

func uniquePrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cstalk-presence-test-" + hex.EncodeToString(b[:]) + ":"
}

// open starts a Presence for node on url; it is closed when the test ends.
func open(t *testing.T, url, prefix, node string, heartbeat time.Duration) *Presence {
	t.Helper()
	return openTTL(t, url, prefix, node, heartbeat, 3*heartbeat)
}

func openTTL(t *testing.T, url, prefix, node string, heartbeat, ttl time.Duration) *Presence {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := New(ctx, Options{URL: url, Prefix: prefix, NodeID: node, Heartbeat: heartbeat, TTL: ttl})
	if err != nil {
		t.Fatalf("Redis is required: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func attendees(t *testing.T, p *Presence, room int64) []chat.Attendee {
	t.Helper()
	got, err := p.Attendees(context.Background(), room)
	if err != nil {
		t.Fatalf("Attendees(%d) on %s: %v", room, p.NodeID(), err)
	}
	return got
}

func sessions(as []chat.Attendee) string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.SessionID
	}
	return strings.Join(ids, ",")
}

// waitSessions polls until p sees exactly want (comma-separated, sorted) in room.
func waitSessions(t *testing.T, p *Presence, room int64, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := sessions(attendees(t, p, room))
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s, room %d: sessions %q, want %q", p.NodeID(), room, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustEnter(t *testing.T, p *Presence, room int64, a chat.Attendee) {
	t.Helper()
	if err := p.Enter(context.Background(), room, a); err != nil {
		t.Fatalf("Enter: %v", err)
	}
}

func mustLeave(t *testing.T, p *Presence, room int64, session string) {
	t.Helper()
	if err := p.Leave(context.Background(), room, session); err != nil {
		t.Fatalf("Leave: %v", err)
	}
}

// TestSharedAcrossNodes: what one node records, the other sees at once, with
// the attendee's speaker and role intact; leaving shows up at once too.
func TestSharedAcrossNodes(t *testing.T) {
	prefix := uniquePrefix(t)
	a := open(t, sharedRedis, prefix, "a", time.Second)
	b := open(t, sharedRedis, prefix, "b", time.Second)

	customer := chat.Attendee{SessionID: "s-2", SpeakerID: 20, IsMember: false}
	counselor := chat.Attendee{SessionID: "s-1", SpeakerID: 10, IsMember: true}
	mustEnter(t, a, 7, customer)
	mustEnter(t, b, 7, counselor)
	mustEnter(t, b, 8, chat.Attendee{SessionID: "s-3", SpeakerID: 10, IsMember: true})

	want := []chat.Attendee{counselor, customer}
	for _, p := range []*Presence{a, b} {
		if got := attendees(t, p, 7); !reflect.DeepEqual(got, want) {
			t.Fatalf("node %s sees %+v, want %+v", p.NodeID(), got, want)
		}
	}
	if got := sessions(attendees(t, a, 8)); got != "s-3" {
		t.Fatalf("room 8 on a: %q", got)
	}
	if got := attendees(t, a, 9); len(got) != 0 {
		t.Fatalf("empty room: %+v", got)
	}

	mustLeave(t, a, 7, "s-2")
	mustLeave(t, a, 7, "s-2") // twice is harmless
	mustLeave(t, a, 7, "never-entered")
	if got := sessions(attendees(t, b, 7)); got != "s-1" {
		t.Fatalf("after leaving, b sees %q", got)
	}
	// a has nobody left in room 7, so it is no longer one of its nodes.
	members, err := a.client.SMembers(context.Background(), a.roomKey(7)).Result()
	if err != nil || !reflect.DeepEqual(members, []string{"b"}) {
		t.Fatalf("room 7 nodes = %v, %v", members, err)
	}
}

// commandCounter counts the commands a client sends.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestPresent: a speaker connected to this node is present without a Redis
// round trip (every message asks); one connected elsewhere is found through
// Redis; anyone else, or any other room, is not.
func TestPresent(t *testing.T) {
	prefix := uniquePrefix(t)
	a := open(t, sharedRedis, prefix, "a", time.Minute)
	b := open(t, sharedRedis, prefix, "b", time.Minute)
	mustEnter(t, a, 7, chat.Attendee{SessionID: "s-2", SpeakerID: 20})
	mustEnter(t, b, 7, chat.Attendee{SessionID: "s-1", SpeakerID: 10, IsMember: true})
	counter := &commandCounter{}
	a.client.AddHook(counter)

	present := func(room, speaker int64) bool {
		t.Helper()
		ok, err := a.Present(context.Background(), room, speaker)
		if err != nil {
			t.Fatalf("Present(%d, %d): %v", room, speaker, err)
		}
		return ok
	}
	if !present(7, 20) {
		t.Fatal("a's own connection is not present")
	}
	if n := counter.n.Load(); n != 0 {
		t.Fatalf("a's own connection took %d Redis commands", n)
	}
	if !present(7, 10) {
		t.Fatal("b's connection is not present on a")
	}
	if counter.n.Load() == 0 {
		t.Fatal("b's connection was answered without Redis")
	}
	if present(7, 99) || present(8, 20) || present(8, 10) {
		t.Fatal("a speaker without a connection in the room is present")
	}
	mustLeave(t, b, 7, "s-1")
	if present(7, 10) {
		t.Fatal("b's connection is still present after leaving")
	}
	_ = a.Close()
	if _, err := a.Present(context.Background(), 7, 20); err != ErrClosed {
		t.Fatalf("Present after Close: %v", err)
	}
}

// halt stops p the way SIGKILL would: no more heartbeats, nothing removed.
func halt(t *testing.T, p *Presence) {
	t.Helper()
	p.mu.Lock()
	p.cancel()
	p.mu.Unlock()
	p.wg.Wait()
}

// TestDeadNodeExpires: the entries of a node that stops without Close count
// until their TTL, then readers ignore them and drop the node from the room.
func TestDeadNodeExpires(t *testing.T) {
	prefix := uniquePrefix(t)
	// The TTL leaves a loaded machine room for late heartbeats.
	a := openTTL(t, sharedRedis, prefix, "a", 100*time.Millisecond, time.Second)
	b := openTTL(t, sharedRedis, prefix, "b", 100*time.Millisecond, time.Second)
	mustEnter(t, a, 1, chat.Attendee{SessionID: "on-a", SpeakerID: 1})
	mustEnter(t, b, 1, chat.Attendee{SessionID: "on-b", SpeakerID: 2, IsMember: true})

	// Heartbeats keep a's entry well past its TTL while a lives.
	deadline := time.Now().Add(2 * a.ttl)
	for time.Now().Before(deadline) {
		if got := sessions(attendees(t, b, 1)); got != "on-a,on-b" {
			t.Fatalf("live node's entry lost: %q", got)
		}
		time.Sleep(a.heartbeat / 2)
	}

	halt(t, a)
	waitSessions(t, b, 1, "on-b")
	members, err := b.client.SMembers(context.Background(), b.roomKey(1)).Result()
	if err != nil || !reflect.DeepEqual(members, []string{"b"}) {
		t.Fatalf("dead node still listed in the room: %v, %v", members, err)
	}
	// With every node gone nothing is left behind.
	halt(t, b)
	waitKeysGone(t, b.client, prefix)
}

// TestDeadNodeAnnounced: the connections of a node that dies without Close
// are handed to Gone on a live node once, about TTL later; a node that
// closes cleanly announces nothing that way (chat told its lobby itself).
func TestDeadNodeAnnounced(t *testing.T) {
	prefix := uniquePrefix(t)
	type departure struct {
		room   int64
		a      chat.Attendee
		listed bool // still among the room's attendees when announced
	}
	departed := make(chan departure, 16)
	var observer atomic.Pointer[Presence]
	gone := func(ctx context.Context, room int64, a chat.Attendee) {
		d := departure{room: room, a: a}
		if obs := observer.Load(); obs != nil {
			list, _ := obs.Attendees(ctx, room)
			d.listed = slices.ContainsFunc(list, func(x chat.Attendee) bool { return x.SessionID == a.SessionID })
		}
		departed <- d
	}
	ctx := context.Background()
	open := func(node string) *Presence {
		p, err := New(ctx, Options{URL: sharedRedis, Prefix: prefix, NodeID: node,
			Heartbeat: 100 * time.Millisecond, TTL: time.Second, Gone: gone})
		if err != nil {
			t.Fatalf("Redis is required: %v", err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	a, b, c := open("a"), open("b"), open("c")
	observer.Store(openTTL(t, sharedRedis, prefix, "observer", time.Minute, 2*time.Minute))
	customer := chat.Attendee{SessionID: "a-cust", SpeakerID: 7}
	counselor := chat.Attendee{SessionID: "a-memb", SpeakerID: 8, IsMember: true}
	mustEnter(t, a, 1, customer)
	mustEnter(t, a, 2, counselor)
	mustEnter(t, a, 2, chat.Attendee{SessionID: "a-left", SpeakerID: 9})
	mustLeave(t, a, 2, "a-left")
	mustEnter(t, c, 1, chat.Attendee{SessionID: "c-cust", SpeakerID: 10})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	halt(t, a)
	got := map[departure]int{}
	timeout := time.After(waitTimeout)
	for len(got) < 2 {
		select {
		case d := <-departed:
			got[d]++
		case <-timeout:
			t.Fatalf("departures after the node died: %v", got)
		}
	}
	want := map[departure]int{{room: 1, a: customer}: 1, {room: 2, a: counselor}: 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("departures %v, want %v", got, want)
	}
	// Nothing more comes: the dead node was claimed once.
	mustEnter(t, b, 3, chat.Attendee{SessionID: "b-1"})
	deadline := time.Now().Add(3 * b.heartbeat)
	for time.Now().Before(deadline) {
		select {
		case d := <-departed:
			t.Fatalf("departure announced again: %v", d)
		default:
			time.Sleep(b.heartbeat / 2)
		}
	}
}

func waitKeysGone(t *testing.T, client *redis.Client, prefix string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		keys, err := client.Keys(context.Background(), prefix+"*").Result()
		if err != nil {
			t.Fatalf("KEYS: %v", err)
		}
		if len(keys) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys left behind: %v", keys)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCloseRemovesEntries: a node that shuts down cleanly takes its entries
// with it at once; calls after Close fail.
func TestCloseRemovesEntries(t *testing.T) {
	prefix := uniquePrefix(t)
	a := open(t, sharedRedis, prefix, "a", time.Minute)
	b := open(t, sharedRedis, prefix, "b", time.Minute)
	mustEnter(t, a, 3, chat.Attendee{SessionID: "x", SpeakerID: 1})
	mustEnter(t, a, 4, chat.Attendee{SessionID: "y", SpeakerID: 1})
	if got := sessions(attendees(t, b, 3)); got != "x" {
		t.Fatalf("b sees %q", got)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, room := range []int64{3, 4} {
		if got := attendees(t, b, room); len(got) != 0 {
			t.Fatalf("room %d after Close: %+v", room, got)
		}
	}
	if err := a.Enter(context.Background(), 3, chat.Attendee{SessionID: "z"}); err != ErrClosed {
		t.Fatalf("Enter after Close: %v", err)
	}
	if _, err := a.Attendees(context.Background(), 3); err != ErrClosed {
		t.Fatalf("Attendees after Close: %v", err)
	}
	_ = b.Close()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	waitKeysGone(t, client, prefix)
}

// TestRedisRestart: while Redis is down each node serves its own connections
// without errors; once Redis is back (empty, as after a crash) the heartbeat,
// probing often while Redis is unreachable, rewrites every node's current
// entries, changes made meanwhile included.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	// Heartbeats far apart: only the probing during the outage can bring
	// the entries back within the test's waits.
	a, err := New(ctx, Options{URL: srv.URL(), NodeID: "a", Heartbeat: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := open(t, srv.URL(), "", "b", time.Hour)

	mustEnter(t, a, 1, chat.Attendee{SessionID: "a-1", SpeakerID: 1})
	mustEnter(t, a, 1, chat.Attendee{SessionID: "a-2", SpeakerID: 2, IsMember: true})
	mustEnter(t, b, 1, chat.Attendee{SessionID: "b-1", SpeakerID: 3, IsMember: true})
	waitSessions(t, b, 1, "a-1,a-2,b-1")
	if v := metricValue(t, reg, "cstalk_presence_redis_up"); v != 1 {
		t.Fatalf("redis_up = %v", v)
	}

	srv.Kill()
	// Each node still answers, from what it knows itself.
	mustLeave(t, a, 1, "a-1")
	mustEnter(t, a, 2, chat.Attendee{SessionID: "a-3", SpeakerID: 1})
	waitSessions(t, a, 1, "a-2")
	waitSessions(t, b, 1, "b-1")
	if v := metricValue(t, reg, "cstalk_presence_redis_up"); v != 0 {
		t.Fatalf("redis_up during the outage = %v", v)
	}

	srv.Restart()
	waitSessions(t, b, 1, "a-2,b-1")
	waitSessions(t, b, 2, "a-3")
	waitSessions(t, a, 1, "a-2,b-1")
	if v := metricValue(t, reg, "cstalk_presence_redis_up"); v != 1 {
		t.Fatalf("redis_up after the outage = %v", v)
	}
	if v := metricValue(t, reg, "cstalk_presence_local_attendees"); v != 2 {
		t.Fatalf("local_attendees = %v", v)
	}
	if v := metricValue(t, reg, "cstalk_presence_redis_errors_total"); v < 1 {
		t.Fatalf("redis_errors_total = %v", v)
	}
	if v := metricValue(t, reg, "cstalk_presence_rewrites_total"); v < 2 {
		t.Fatalf("rewrites = %v, want both rooms", v)
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name || len(f.GetMetric()) != 1 {
			continue
		}
		m := f.GetMetric()[0]
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestTTLMustExceedHeartbeat: a TTL no longer than the heartbeat would let
// live entries expire between beats.
func TestTTLMustExceedHeartbeat(t *testing.T) {
	_, err := New(context.Background(), Options{URL: sharedRedis, Heartbeat: time.Second, TTL: time.Second})
	if err == nil || !strings.Contains(err.Error(), "TTL") {
		t.Fatalf("New = %v", err)
	}
}

func TestDecodeAttendee(t *testing.T) {
	for _, v := range []string{"", "m", "x:1", "m:", "c:abc"} {
		if _, err := decodeAttendee("s", v); err == nil {
			t.Errorf("decodeAttendee(%q) accepted", v)
		}
	}
	want := chat.Attendee{SessionID: "s", SpeakerID: 42, IsMember: true}
	if got, err := decodeAttendee("s", encodeAttendee(want)); err != nil || got != want {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}
