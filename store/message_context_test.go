package store

import (
	"context"
	"reflect"
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
