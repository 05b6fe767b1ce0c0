package store

import (
	"context"
	"testing"
	"time"
)

// roomOnFile reads a room's last message id on a connection of its own,
// past the pool and so without asking the writer for its bumps, as
// another process would.
func roomOnFile(t *testing.T, s *Store, roomID int64) int64 {
	t.Helper()
	c, err := openSQLiteConn(s.sqlitePath, sqlitePragmas()...)
	must(t, err)
	defer c.close()
	st, err := c.prepare("SELECT last_message_id FROM rooms WHERE id = ?", false)
	must(t, err)
	defer st.finalize()
	must(t, st.bind([]any{roomID}))
	row, err := st.step()
	must(t, err)
	if !row {
		t.Fatalf("room %d not found", roomID)
	}
	return st.int64Column(0)
}

// onSQLiteFile opens a store on a SQLite file with the contract's fixture.
func onSQLiteFile(t *testing.T) (*Store, env, fixture) {
	s, dsn := backend{newDSN: newSQLiteDSN}.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	e := env{s: s, dsn: dsn, ctx: ctx}
	return s, e, newFixture(t, e)
}

// On a SQLite file a batch's commit leaves its rooms to the writer's
// bumps; whoever reads through the store sees them at once, and the file
// has them within roomBumpEvery even when nobody reads.
func TestRoomBumpsReachReadersAndTheFile(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	ctx := e.ctx
	stored := appendOK(t, e, f.msg(f.customerSp, "첫 문의"))
	room, err := s.Room(ctx, f.room.ID)
	must(t, err)
	if room.LastMessageID != stored.ID {
		t.Fatalf("room's last message %d right after the append, want %d", room.LastMessageID, stored.ID)
	}
	later := appendOK(t, e, f.msg(f.agentSp, "답변"))
	for roomOnFile(t, s, f.room.ID) != later.ID {
		select {
		case <-ctx.Done():
			t.Fatalf("the file's room is not at message %d long after roomBumpEvery", later.ID)
		case <-time.After(20 * time.Millisecond): // another process polls the file
		}
	}
}

// Bumps lost in a crash are recovered from the messages at the next start.
func TestMigrateRepairsRoomsBehindTheirMessages(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	ctx := e.ctx
	first := appendOK(t, e, f.msg(f.customerSp, "첫 문의"))
	_, err := s.Room(ctx, f.room.ID) // a read: the writer writes its bump
	must(t, err)
	// A message committed without its bump, as when the process dies
	// before the writer wrote it.
	c, err := openSQLiteConn(s.sqlitePath, sqlitePragmas()...)
	must(t, err)
	when := time.Now().UTC().Add(time.Hour).Truncate(time.Millisecond)
	m := f.msg(f.customerSp, "마지막")
	m.CreateDate = when
	row, err := newMessageRow(m, when)
	must(t, err)
	row.CompanyID = f.company.ID
	must(t, c.exec("BEGIN IMMEDIATE"))
	ins, err := c.prepare("INSERT INTO messages ("+messageColumns+") VALUES "+messagePlaceholders, false)
	must(t, err)
	must(t, ins.run(messageValues(&row)...))
	ins.finalize()
	lost := c.lastInsertID()
	must(t, c.exec("COMMIT"))
	c.close()
	if got := roomOnFile(t, s, f.room.ID); got != first.ID {
		t.Fatalf("room at %d before the repair, want %d", got, first.ID)
	}
	must(t, s.Migrate(ctx))
	room, err := s.Room(ctx, f.room.ID)
	must(t, err)
	if room.LastMessageID != lost || !room.UpdateDate.Equal(when) {
		t.Fatalf("room after the repair: last %d updated %v, want %d %v", room.LastMessageID, room.UpdateDate, lost, when)
	}
}
