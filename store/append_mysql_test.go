package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// Every batch size the MySQL writer prepares an INSERT for stores its rows
// with the right IDs and values, and the trigger moves each room to its
// newest message; bigger batches, split into several INSERTs, are stored
// alike.
func TestPreparedInsertShapes(t *testing.T) {
	s, e, f := mariaDBFixture(t)
	ctx := e.ctx
	customer2, err := s.EnsureCustomer(ctx, f.company.ID, "1002", "박고객")
	must(t, err)
	room2, _, err := s.OpenRoom(ctx, customer2, t0)
	must(t, err)
	rooms := []int64{f.room.ID, room2.ID}

	// Called directly, as the writer does; the writer itself is idle.
	stored := map[int64][]messageRow{}
	at := t0.Add(time.Minute)
	var sizes []int
	for n := 1; n <= maxPreparedRows; n++ {
		sizes = append(sizes, n)
	}
	for _, n := range append(sizes, maxPreparedRows+1, 2*maxPreparedRows, 2*maxPreparedRows+3) {
		rows := make([]messageRow, n)
		for i := range rows {
			at = at.Add(1234 * time.Microsecond)
			m := f.msg(f.customerSp, fmt.Sprintf("모양 %d 행 %d", n, i))
			m.RoomID, m.CompanyID = rooms[(n+i)%2], f.company.ID
			if i%3 == 0 {
				m.ClientMessageID = fmt.Sprintf("c-%d-%d", n, i)
			}
			if rows[i], err = newMessageRow(m, at); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.insertBatch(ctx, rows); err != nil {
			t.Fatalf("batch of %d: %v", n, err)
		}
		for i := range rows {
			if rows[i].ID != rows[0].ID+int64(i) {
				t.Fatalf("batch of %d: row %d has ID %d after %d", n, i, rows[i].ID, rows[0].ID)
			}
			stored[rows[i].RoomID] = append(stored[rows[i].RoomID], rows[i])
		}
		if n <= maxPreparedRows && s.mysqlInserts.bySize[n] == nil {
			t.Fatalf("batch of %d: no prepared INSERT", n)
		}

		for _, id := range rooms {
			want := stored[id]
			if len(want) == 0 {
				continue
			}
			room, err := s.Room(ctx, id)
			must(t, err)
			last := want[len(want)-1]
			if room.LastMessageID != last.ID || !room.UpdateDate.Equal(last.CreateDate) {
				t.Fatalf("after the batch of %d room %d has last message %d at %v, want %d at %v",
					n, id, room.LastMessageID, room.UpdateDate, last.ID, last.CreateDate)
			}
		}
	}

	for _, id := range rooms {
		want := stored[id]
		var got []chat.Message
		for after := int64(0); ; {
			page, err := s.MessagesAfter(ctx, id, after, 1000, true)
			must(t, err)
			if len(page) == 0 {
				break
			}
			got, after = append(got, page...), page[len(page)-1].ID
		}
		if len(got) != len(want) {
			t.Fatalf("room %d holds %d messages, want %d", id, len(got), len(want))
		}
		for i := range want {
			w := want[i].toChat()
			g := got[i]
			if g.ID != w.ID || g.Body != w.Body || g.ClientMessageID != w.ClientMessageID || !g.CreateDate.Equal(w.CreateDate) ||
				g.SpeakerID != w.SpeakerID || g.SpeakerName != w.SpeakerName || !g.IsCustomer || g.IsEmployee || g.CompanyID != f.company.ID {
				t.Fatalf("room %d message %d reads back as %+v, want %+v", id, i, g, *w)
			}
		}
	}
}

// mariaDBFixture opens a migrated MariaDB store with the contract tests'
// fixture in it.
func mariaDBFixture(t *testing.T) (*Store, env, fixture) {
	t.Helper()
	b := backend{name: "mariadb", newDSN: newMariaDBDSN}
	s, dsn := b.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e := env{s: s, dsn: dsn, ctx: ctx}
	return s, e, newFixture(t, e)
}

// The store's own connections (the writer's, the context readers') notice
// a connection the server has closed while it sat idle (its idle timeout, a
// restart) before they send anything on it, so database/sql dials anew and
// the caller sees no error, as the driver's own liveness check would do.
func TestOwnConnectionClosedByServer(t *testing.T) {
	s, e, _ := mariaDBFixture(t)
	tg, err := parseDSN(e.dsn)
	must(t, err)
	db, err := tg.openOwnDB(1, false)
	must(t, err)
	t.Cleanup(func() { _ = db.Close() })

	var first int64
	must(t, db.QueryRowContext(e.ctx, "SELECT CONNECTION_ID()").Scan(&first))
	must(t, s.db.WithContext(e.ctx).Exec(fmt.Sprintf("KILL CONNECTION %d", first)).Error)
	// KILL only marks the connection; wait until the server has closed it.
	for {
		var left int64
		must(t, s.db.WithContext(e.ctx).Raw("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", first).Row().Scan(&left))
		if left == 0 {
			break
		}
		select {
		case <-e.ctx.Done():
			t.Fatalf("killed connection %d still open", first)
		case <-time.After(10 * time.Millisecond):
		}
	}

	var second int64
	if err := db.QueryRowContext(e.ctx, "SELECT CONNECTION_ID()").Scan(&second); err != nil {
		t.Fatalf("first query after the server closed the idle connection: %v", err)
	}
	if second == first {
		t.Fatalf("still on connection %d, which the server closed", first)
	}
}
