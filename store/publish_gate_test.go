package store

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
)

// On a SQLite file the writer syncs a batch after its COMMIT. A pool read
// that comes in between waits for the sync, so nobody reads a message
// before it is durable, and reads it once it is.
func TestPoolReadWaitsForTheWritersSync(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	// The read skips the room bumps' flush, which would wait for the
	// writer itself.
	ctx := context.WithValue(e.ctx, writerCall{}, true)
	const body = "동기화 전 메시지"
	waiting := make(chan struct{}, 1)
	s.gate.onWait = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	counted := make(chan int64, 1)
	var once sync.Once
	s.afterCommit = func() { // on the writer, between COMMIT and the sync
		once.Do(func() {
			go func() {
				var n int64
				if err := s.db.WithContext(ctx).Model(&messageRow{}).Where("body = ?", body).Count(&n).Error; err != nil {
					t.Errorf("count: %v", err)
				}
				counted <- n
			}()
			select {
			case <-waiting:
			case n := <-counted:
				counted <- n
				t.Errorf("a pool read ran between a commit and its sync (it counted %d)", n)
			case <-ctx.Done():
				t.Error("the pool read neither waited nor returned")
			}
		})
	}
	appendOK(t, e, f.msg(f.customerSp, body))
	if n := <-counted; n != 1 {
		t.Fatalf("the read after the sync counted %d messages, want 1", n)
	}
}

// A transaction passes the gate once, after its BEGIN IMMEDIATE (its
// statements read that snapshot), and a pool transaction running beside
// the writer neither deadlocks nor fails.
func TestPoolTransactionsBesideTheWriter(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			appendOK(t, e, f.msg(f.customerSp, "writer"))
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			if _, err := s.MarkRead(e.ctx, f.room.ID, f.agentSp.ID, int64(i)); err != nil {
				t.Errorf("mark read beside the writer: %v", err)
				return
			}
			if _, err := s.Messages(e.ctx, f.room.ID, 0, 10, true); err != nil {
				t.Errorf("read beside the writer: %v", err)
				return
			}
		}
	}()
	wg.Wait()
}

// The writer never waits for a reader: a query opened and not yet read
// holds no batch up.
func TestWriterDoesNotWaitForReaders(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	ctx := context.WithValue(e.ctx, writerCall{}, true)
	rows, err := s.db.WithContext(ctx).Raw("SELECT id FROM messages").Rows()
	must(t, err)
	defer rows.Close()
	appendOK(t, e, f.msg(f.customerSp, "읽기 중에 저장"))
	for rows.Next() {
	}
	must(t, rows.Err())
}

// The writer's descriptor is the WAL SQLite writes.
func TestWriterSyncsTheWAL(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	// The answer comes from the writer, after it opened its connection.
	appendOK(t, e, f.msg(f.customerSp, "첫 메시지"))
	if s.sqliteW == nil {
		t.Fatal("the writer did not open its own connection")
	}
	synced, err := s.sqliteW.wal.Stat()
	must(t, err)
	onDisk, err := os.Stat(s.sqlitePath + "-wal")
	must(t, err)
	if !os.SameFile(synced, onDisk) {
		t.Fatal("the writer syncs a file other than the WAL")
	}
}

// A batch whose sync fails is refused to its senders and not stored again
// one by one, though its COMMIT went through.
func TestFailedWALSyncRefusesWithoutStoringTwice(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	// The answer comes from the writer, after it opened its connection.
	appendOK(t, e, f.msg(f.customerSp, "첫 메시지"))
	w := s.sqliteW
	// fdatasync fails on a pipe (EINVAL), as it would on a failing disk.
	r, pw, err := os.Pipe()
	must(t, err)
	defer pw.Close()
	wal := w.wal
	w.wal = r
	const body = "동기화에 실패한 메시지"
	m := f.msg(f.customerSp, body)
	m.ClientMessageID = "" // no unique key to stop a second insert
	if _, _, err := s.AppendMessage(e.ctx, m); !errors.Is(err, errWALSync) {
		t.Fatalf("append whose sync failed: err %v, want errWALSync", err)
	}
	w.wal = wal // the writer is idle again: its answer came first
	_ = r.Close()
	var n int64
	must(t, s.db.WithContext(e.ctx).Model(&messageRow{}).Where("body = ?", body).Count(&n).Error)
	if n > 1 {
		t.Fatalf("a batch whose sync failed was stored %d times", n)
	}
	appendOK(t, e, f.msg(f.customerSp, "다음 메시지"))
}
