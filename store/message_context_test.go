package store

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

func TestMessageContext(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, dsn := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			testMessageContext(t, env{s: s, dsn: dsn, ctx: ctx})
		})
	}
}

func testMessageContext(t *testing.T, e env) {
	f := newFixture(t, e)
	get := func() *chat.MessageContext {
		t.Helper()
		mc, err := e.s.MessageContext(e.ctx, f.room.ID)
		must(t, err)
		room, err := e.s.Room(e.ctx, f.room.ID)
		must(t, err)
		if !reflect.DeepEqual(mc.Room, *room) {
			t.Fatalf("context room %+v, Room %+v", mc.Room, *room)
		}
		return mc
	}

	_, err := e.s.MessageContext(e.ctx, f.room.ID+1000)
	wantErr(t, err, chat.ErrNotFound)

	mc := get()
	if mc.LastFound || mc.AssigneeFound || len(mc.Positions) != 0 {
		t.Fatalf("fresh room: %+v, want no last message, no assignee, no positions", mc)
	}

	first := appendOK(t, e, f.msg(f.customerSp, "안녕하세요"))
	mc = get()
	if !mc.LastFound || mc.LastAdminType != 0 || !mc.LastIsCustomer || mc.Room.LastMessageID != first.ID {
		t.Fatalf("after a customer's message: %+v", mc)
	}

	_, _, err = e.s.AssignRoom(e.ctx, f.room.ID, f.agent.ID, t0.Add(time.Minute))
	must(t, err)
	note := f.msg(f.agentSp, "내부 메모")
	note.AdminType = 1
	appendOK(t, e, note)
	reply := appendOK(t, e, f.msg(f.agentSp, "답변"))
	_, err = e.s.MarkRead(e.ctx, f.room.ID, f.customerSp.ID, reply.ID)
	must(t, err)
	_, err = e.s.MarkRead(e.ctx, f.room.ID, f.agentSp.ID, first.ID)
	must(t, err)
	mc = get()
	if !mc.AssigneeFound || !mc.LastFound || mc.LastAdminType != 0 || mc.LastIsCustomer {
		t.Fatalf("after the counselor's reply: %+v", mc)
	}
	want := map[int64]int64{f.customerSp.ID: reply.ID, f.agentSp.ID: first.ID}
	if !reflect.DeepEqual(mc.Positions, want) {
		t.Fatalf("positions %v, want %v", mc.Positions, want)
	}
	positions, err := e.s.ReadPositions(e.ctx, f.room.ID)
	must(t, err)
	if !reflect.DeepEqual(mc.Positions, positions) {
		t.Fatalf("positions %v, ReadPositions %v", mc.Positions, positions)
	}

	note2 := f.msg(f.agentSp, "두 번째 메모")
	note2.AdminType = 1
	appendOK(t, e, note2)
	if mc = get(); !mc.LastFound || mc.LastAdminType != 1 {
		t.Fatalf("after an internal note: %+v, want the note's kind", mc)
	}
}

// Concurrent callers share the readers' queries: each still gets its own
// room's context (an unknown room its own error), and a copy nobody else
// sees changes to, since chat updates the room it is given.
func TestMessageContextConcurrent(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, dsn := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e := env{s: s, dsn: dsn, ctx: ctx}
			f := newFixture(t, e)
			first := appendOK(t, e, f.msg(f.customerSp, "첫 메시지"))
			_, _, err := s.AssignRoom(ctx, f.room.ID, f.agent.ID, t0.Add(time.Minute))
			must(t, err)
			_, err = s.MarkRead(ctx, f.room.ID, f.customerSp.ID, first.ID)
			must(t, err)
			other, err := s.EnsureCustomer(ctx, f.company.ID, "2002", "이고객")
			must(t, err)
			otherRoom, _, err := s.OpenRoom(ctx, other, t0)
			must(t, err)

			rooms := []int64{f.room.ID, otherRoom.ID, f.room.ID + otherRoom.ID + 1000}
			const callers = 60
			got := make([]*chat.MessageContext, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() { got[i], errs[i] = s.MessageContext(ctx, rooms[i%len(rooms)]) })
			}
			wg.Wait()
			for i := range callers {
				switch i % len(rooms) {
				case 0:
					must(t, errs[i])
					mc := got[i]
					if mc.Room.ID != f.room.ID || mc.Room.MemberID == nil || *mc.Room.MemberID != f.agent.ID ||
						!mc.AssigneeFound || !mc.LastFound || mc.Room.LastMessageID != first.ID ||
						!reflect.DeepEqual(mc.Positions, map[int64]int64{f.customerSp.ID: first.ID}) {
						t.Fatalf("caller %d: %+v", i, mc)
					}
				case 1:
					must(t, errs[i])
					if mc := got[i]; mc.Room.ID != otherRoom.ID || mc.LastFound || mc.AssigneeFound || len(mc.Positions) != 0 {
						t.Fatalf("caller %d: %+v", i, mc)
					}
				case 2:
					wantErr(t, errs[i], chat.ErrNotFound)
				}
			}

			// The first caller changes everything it was given.
			mine := got[0]
			*mine.Room.MemberID = -1
			mine.Room.LastMessageID = -1
			mine.Positions[f.customerSp.ID] = -1
			for i := len(rooms); i < callers; i += len(rooms) {
				if mc := got[i]; *mc.Room.MemberID != f.agent.ID || mc.Room.LastMessageID != first.ID || mc.Positions[f.customerSp.ID] != first.ID {
					t.Fatalf("caller %d sees caller 0's changes: %+v", i, mc)
				}
			}
		})
	}
}

// A caller that gives up is answered at once; after Close nobody waits.
func TestMessageContextCancelAndClose(t *testing.T) {
	b := backends()[0]
	s, dsn := b.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := newFixture(t, env{s: s, dsn: dsn, ctx: ctx})

	gone, leave := context.WithCancel(ctx)
	leave()
	if _, err := s.MessageContext(gone, f.room.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: error %v, want context.Canceled", err)
	}
	must(t, s.Close())
	if _, err := s.MessageContext(ctx, f.room.ID); !errors.Is(err, errClosed) {
		t.Fatalf("after Close: error %v, want errClosed", err)
	}
}

// A context read once (kept in memory on SQLite, and on MySQL once cached)
// follows every later change of its room: a review, a transfer, a message
// after a retry, a read position, the end.
func TestMessageContextFollowsRoomChanges(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, dsn := b.open(t)
			testContextFollowsRoomChanges(t, s, dsn)
		})
	}
	// A MySQL node alone on its database keeps its contexts current through
	// its own writes: entries live for the test, so a stale one would show.
	t.Run("mariadb-cached", func(t *testing.T) {
		t.Parallel()
		s, dsn := backend{name: "mariadb", newDSN: newMariaDBDSN}.open(t)
		must(t, s.CacheRoomContexts(context.Background(), nil))
		s.roomCache.ttl = time.Hour
		testContextFollowsRoomChanges(t, s, dsn)
	})
}

func testContextFollowsRoomChanges(t *testing.T, s *Store, dsn string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := env{s: s, dsn: dsn, ctx: ctx}
	f := newFixture(t, e)
	same := func(what string) *chat.MessageContext {
		t.Helper()
		mc, err := e.s.MessageContext(e.ctx, f.room.ID)
		must(t, err)
		room, err := e.s.Room(e.ctx, f.room.ID)
		must(t, err)
		if !reflect.DeepEqual(mc.Room, *room) {
			t.Fatalf("%s: context room %+v, Room %+v", what, mc.Room, *room)
		}
		return mc
	}
	same("fresh")
	must(t, e.s.SetReview(e.ctx, f.room.ID, 4, t0))
	if mc := same("after a review"); mc.Room.ReviewScore == nil || *mc.Room.ReviewScore != 4 {
		t.Fatalf("review score %v, want 4", mc.Room.ReviewScore)
	}
	_, err := e.s.TransferRoom(e.ctx, f.room.ID, nil, f.agent.ID, t0)
	must(t, err)
	if mc := same("after a transfer"); mc.Room.MemberID == nil || *mc.Room.MemberID != f.agent.ID {
		t.Fatalf("assignee %v after the transfer, want %d", mc.Room.MemberID, f.agent.ID)
	}
	m := f.msg(f.customerSp, "처음")
	m.ClientMessageID = "again"
	first := appendOK(t, e, m)
	retry := f.msg(f.customerSp, "처음")
	retry.ClientMessageID = "again"
	if _, dup, err := e.s.AppendMessage(e.ctx, retry); err != nil || !dup {
		t.Fatalf("retry: duplicate %v, %v", dup, err)
	}
	if mc := same("after a retry"); mc.Room.LastMessageID != first.ID {
		t.Fatalf("last message %d, want %d", mc.Room.LastMessageID, first.ID)
	}
	if changed, err := e.s.MarkRead(e.ctx, f.room.ID, f.agentSp.ID, first.ID); err != nil || !changed {
		t.Fatalf("MarkRead: %v, %v", changed, err)
	}
	if mc := same("after a read"); mc.Positions[f.agentSp.ID] != first.ID {
		t.Fatalf("positions %v after MarkRead, want %d read", mc.Positions, first.ID)
	}
	_, _, err = e.s.EndRoom(e.ctx, f.room.ID, t0.Add(time.Hour))
	must(t, err)
	if mc := same("after the end"); mc.Room.Status != chat.StatusEnded {
		t.Fatalf("status %s after EndRoom", mc.Room.Status)
	}
}
