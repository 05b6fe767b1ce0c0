package store

import (
	"fmt"
	rtmetrics "runtime/metrics"
	"testing"
)

// On MySQL a message context is read without a goroutine per query (which
// database/sql would start to close the rows of a cancellable query).
func TestMessageContextStartsNoGoroutine(t *testing.T) {
	s, e, f := mariaDBFixture(t)
	ctx := e.ctx
	appendOK(t, e, f.msg(f.customerSp, "안녕하세요"))
	if _, err := s.MessageContext(ctx, f.room.ID); err != nil { // the pool's connection is open
		t.Fatal(err)
	}
	created := func() uint64 {
		sample := []rtmetrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
		rtmetrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	const reads = 50
	before := created()
	for range reads {
		mc, err := s.MessageContext(ctx, f.room.ID)
		must(t, err)
		if !mc.LastFound || !mc.LastIsCustomer {
			t.Fatalf("context %+v: want the customer's last message", mc)
		}
	}
	if n := created() - before; n >= reads/5 {
		t.Fatalf("%d context reads started %d goroutines", reads, n)
	}
}

// A reader's own connection closed by the server while idle (wait_timeout,
// a restart) costs no message its context: the reader reconnects.
func TestMessageContextAfterReaderConnectionKilled(t *testing.T) {
	s, e, f := mariaDBFixture(t)
	ctx := e.ctx
	if _, err := s.MessageContext(ctx, f.room.ID); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := s.db.DB()
	must(t, err)
	var held []*contextConn
	for range contextReaders {
		held = append(held, <-s.contextConns)
	}
	killed := 0
	for _, cc := range held {
		if cc.conn == nil {
			continue
		}
		var id int64
		must(t, cc.conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id))
		if _, err := sqlDB.ExecContext(ctx, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			t.Fatal(err)
		}
		killed++
	}
	for _, cc := range held {
		s.contextConns <- cc
	}
	if killed == 0 {
		t.Fatal("no reader had a connection")
	}
	for range 2 * contextReaders {
		mc, err := s.MessageContext(ctx, f.room.ID)
		if err != nil {
			t.Fatalf("context after the readers' connections were killed: %v", err)
		}
		if mc.Room.ID != f.room.ID {
			t.Fatalf("context of room %d, want %d", mc.Room.ID, f.room.ID)
		}
	}
}
