package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// On a SQLite file the writer stores batches through its own connection
// with prepared statements; what it writes reads back through GORM like
// anything else, rooms follow through the trigger, and a duplicate client
// message id still comes back as the earlier message.
func TestSQLiteWriterOwnConnection(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	ctx := e.ctx
	m := f.msg(f.customerSp, "안녕하세요 👋")
	m.ClientMessageID = "c-1"
	m.CreateDate = t0.Add(time.Minute)
	stored := appendOK(t, e, m)
	// The writer answered after storing: what it set is visible here.
	if s.sqliteW == nil {
		t.Fatal("the writer did not use its own connection")
	}
	got, err := s.Message(ctx, stored.ID)
	must(t, err)
	if got.Body != m.Body || got.ClientMessageID != "c-1" || !got.CreateDate.Equal(t0.Add(time.Minute)) || !got.IsCustomer || got.IsEmployee {
		t.Fatalf("read back %+v", got)
	}
	room, err := s.Room(ctx, f.room.ID)
	must(t, err)
	if room.LastMessageID != stored.ID || !room.UpdateDate.Equal(t0.Add(time.Minute)) {
		t.Fatalf("room after append: last %d update %v, want %d %v", room.LastMessageID, room.UpdateDate, stored.ID, t0.Add(time.Minute))
	}
	again := f.msg(f.customerSp, "다시")
	again.ClientMessageID = "c-1"
	dup, isDup, err := s.AppendMessage(ctx, again)
	must(t, err)
	if !isDup || dup.ID != stored.ID || dup.Body != m.Body {
		t.Fatalf("retry = %+v duplicate %v, want message %d", dup, isDup, stored.ID)
	}
}

// No commit checkpoints: the checkpointer copies the WAL back by itself
// once messages were committed, and counts its syncs.
func TestCheckpointsOffTheCommitPath(t *testing.T) {
	s, dsn := backend{newDSN: newSQLiteDSN}.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := env{s: s, dsn: dsn, ctx: ctx}
	f := newFixture(t, e)
	var auto int
	must(t, s.db.Raw("PRAGMA wal_autocheckpoint").Scan(&auto).Error)
	if auto != 0 {
		t.Fatalf("wal_autocheckpoint %d on the pool, want 0", auto)
	}
	for i := range 20 {
		appendOK(t, e, f.msg(f.agentSp, "답변 "+string(rune('가'+i))))
	}
	syncsBefore := testutil.ToFloat64(s.metrics.syncs)
	for testutil.ToFloat64(s.metrics.checkpoints) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no checkpoint within a minute of the commits")
		case <-time.After(50 * time.Millisecond): // polling a counter
		}
	}
	if after := testutil.ToFloat64(s.metrics.syncs); after < syncsBefore+2 {
		t.Fatalf("syncs %v after the checkpoint, want at least %v", after, syncsBefore+2)
	}
	// Every append and batch was timed, and the checkpoint too.
	if n := samples(t, s.metrics.appendSeconds); n < 20 {
		t.Fatalf("%d appends timed, want at least 20", n)
	}
	if n, batches := samples(t, s.metrics.commitSeconds), samples(t, s.metrics.batchMessages); n != batches || n == 0 {
		t.Fatalf("%d batches timed, %d committed", n, batches)
	}
	if n := samples(t, s.metrics.checkpointSec); n == 0 {
		t.Fatal("the checkpoint was not timed")
	}
	var busy, log, copied int
	must(t, s.db.Raw("PRAGMA wal_checkpoint(PASSIVE)").Row().Scan(&busy, &log, &copied))
	if log != copied {
		t.Fatalf("WAL holds %d frames, %d copied back", log, copied)
	}
}

// Once the WAL holds walRestartFrames the writer lets it start over between
// two batches, even while messages keep coming, so the file stops growing
// (a growing WAL makes every commit's sync write the file's inode too).
func TestWALStartsOverInPlace(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	const frames = 64
	s.walRestartFrames.Store(frames)
	wal := strings.TrimPrefix(e.dsn, "sqlite:") + "-wal"
	// Appenders that never pause keep the writer committing, so the
	// checkpointer alone never finds the WAL copied back to its end.
	stop := make(chan struct{})
	var appenders sync.WaitGroup
	for i := range 8 {
		appenders.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := s.AppendMessage(e.ctx, f.msg(f.customerSp, fmt.Sprintf("문의 %d-%d", i, n))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer func() {
		close(stop)
		appenders.Wait()
	}()
	// The WAL header counts the times the WAL started over.
	var hdr [16]byte
	for restarts := uint32(0); restarts < 3; restarts = binary.BigEndian.Uint32(hdr[12:]) {
		select {
		case <-e.ctx.Done():
			t.Fatalf("the WAL started over %d times in 30 s", restarts)
		case <-time.After(20 * time.Millisecond): // polling a file
		}
		fh, err := os.Open(wal)
		must(t, err)
		_, err = io.ReadFull(fh, hdr[:])
		fh.Close()
		must(t, err)
	}
	// Each start over happened within a checkpointer's period of the
	// request, so the file holds the frames of about that long.
	info, err := os.Stat(wal)
	must(t, err)
	var stored int64
	must(t, s.db.Raw("SELECT count(*) FROM messages").Scan(&stored).Error)
	if frameSize := int64(4096 + 24); info.Size() >= stored*frameSize/2 {
		t.Fatalf("WAL of %d bytes after %d messages: it grew instead of starting over", info.Size(), stored)
	}
}

// samples is how many observations histogram h holds.
func samples(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	must(t, h.Write(&m))
	return m.GetHistogram().GetSampleCount()
}

// The partial client message id key still serves the duplicate lookup.
func TestClientIDLookupUsesItsKey(t *testing.T) {
	s, _ := backend{newDSN: newSQLiteDSN}.open(t)
	var plan []struct {
		ID      int
		Parent  int
		Notused int
		Detail  string
	}
	must(t, s.db.Raw("EXPLAIN QUERY PLAN SELECT * FROM messages WHERE (room_id = ? AND speaker_id = ? AND client_message_id = ?) OR (room_id = ? AND speaker_id = ? AND client_message_id = ?)",
		1, 2, "a", 3, 4, "b").Scan(&plan).Error)
	for _, p := range plan {
		if strings.Contains(p.Detail, "SCAN") {
			t.Fatalf("the lookup scans: %+v", plan)
		}
	}
	if len(plan) == 0 || !strings.Contains(fmt.Sprint(plan), "uq_messages_client") {
		t.Fatalf("the lookup does not use uq_messages_client: %+v", plan)
	}
}

// A store on a SQLite file commits with fdatasync, as SQLite's own Linux
// build does.
func TestSQLiteSyncsDataOnly(t *testing.T) {
	backend{newDSN: newSQLiteDSN}.open(t)
	tls := libc.NewTLS()
	defer tls.Close()
	if got := sqlite3.Xmodernc_fdatasync(tls, -1); got != 1 {
		t.Fatalf("fdatasync switch = %d, want 1", got)
	}
}

// TestAppendCallTimeout: callers wait for a stuck writer no longer than the
// store's call timeout, and a message whose caller gave up while it was
// still queued is not stored afterwards (a retry would not expect it).
func TestAppendCallTimeout(t *testing.T) {
	s, e, f := onSQLiteFile(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// Runs on the writer goroutine: the first batch waits for release.
	s.beforeInsert = func() {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	const timeout = 300 * time.Millisecond
	s.SetCallTimeout(timeout)
	stuck := make(chan error, 1)
	go func() {
		_, _, err := s.AppendMessage(e.ctx, f.msg(f.agentSp, "막힌 배치"))
		stuck <- err
	}()
	<-entered
	start := time.Now()
	_, _, err := s.AppendMessage(e.ctx, f.msg(f.customerSp, "늦은 메시지"))
	waited := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued behind a stuck writer: err %v, want the call's deadline", err)
	}
	if waited < timeout || waited > timeout+2*time.Second {
		t.Fatalf("waited %v for a call timeout of %v", waited, timeout)
	}
	if err := <-stuck; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller of the stuck batch: err %v, want the call's deadline", err)
	}
	close(release)
	s.SetCallTimeout(0)
	// The writer takes this one after the late message: once it is stored,
	// the late one has been dropped or stored.
	appendOK(t, e, f.msg(f.customerSp, "다음 메시지"))
	var late int64
	must(t, s.db.WithContext(e.ctx).Model(&messageRow{}).Where("body = ?", "늦은 메시지").Count(&late).Error)
	if late != 0 {
		t.Fatal("a message was stored after its caller had given up on it")
	}
}
