package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// On SQLite the writer stores a batch through a connection of its own whose
// statements are prepared once (sqlite_conn.go): BEGIN IMMEDIATE, one
// INSERT per message, the rooms' pending bumps when they are due
// (room_bumps.go), COMMIT, and a sync of the WAL. Checkpoints are the
// checkpointer's (below), never a commit's.
//
// The writer syncs the WAL itself rather than through SQLite's
// synchronous=FULL (its connection runs with synchronous=OFF; every other
// connection keeps FULL): a sync inside SQLite is a blocking system call
// to the Go runtime, and on a node with one P (one core) each one made the
// runtime hand the P to another thread and poll every 20 µs afterwards,
// which cost about a sixth of the server's CPU per message. On one P the
// writer syncs without giving the P up (wal_sync_linux.go); the node then
// waits for the disk with it, as its messages do. Until the sync returns the
// pool hands out nothing that holds the batch (publish_gate.go), so nobody
// sees a message before it is durable, as under FULL.

// messageTriggerName is the trigger that keeps rooms.last_message_id and
// rooms.update_date current as messages are inserted on MySQL; on SQLite
// it did until migration 202612080001.
const messageTriggerName = "messages_bump_room"

// sqlitePragmas set up every connection to the file alike: the pool's
// (through its DSN) and the writer's and checkpointer's own.
func sqlitePragmas() []string {
	return []string{
		"PRAGMA foreign_keys = ON",
		fmt.Sprintf("PRAGMA busy_timeout = %d", sqliteBusyTimeout.Milliseconds()),
		"PRAGMA journal_mode = WAL",
		// FULL syncs the WAL at every commit: an acknowledged message
		// survives a power cut, not only a crash.
		"PRAGMA synchronous = FULL",
		// The checkpointer copies the WAL back; no commit does it.
		"PRAGMA wal_autocheckpoint = 0",
	}
}

// syncDataOnly makes SQLite commit with fdatasync(2) instead of fsync(2),
// as SQLite built by its own configure script does on Linux: the data and
// the file's size reach the disk alike, only its timestamps wait for the
// next metadata flush, so a commit does not push them through the journal.
// The library transpiled from the amalgamation keeps fsync unless told.
// The switch is the library's and process-wide, and the same for every
// SQLite file, so setting it again is harmless; where fdatasync does not
// exist the library keeps fsync.
func syncDataOnly() {
	tls := libc.NewTLS()
	defer tls.Close()
	sqlite3.Xmodernc_fdatasync(tls, 1)
}

// sqliteWriter is the writer goroutine's connection with its statements.
type sqliteWriter struct {
	conn                                              *sqliteConn
	begin, insert, bump, commit, rollback, checkpoint *sqliteStmt
	syncFull, syncOff                                 *sqliteStmt // around the writer's own checkpoints
	args                                              []any       // one insert's, reused
	wal                                               *os.File    // synced after each commit
	gate                                              *publishGate
	afterCommit                                       func() // the Store's test hook
}

func openSQLiteWriter(path string, gate *publishGate) (*sqliteWriter, error) {
	c, err := openSQLiteConn(path, append(sqlitePragmas(), "PRAGMA synchronous = OFF")...)
	if err != nil {
		return nil, err
	}
	// The WAL lives as long as any connection to the file, the writer's
	// included, so this descriptor stays the WAL's.
	wal, err := os.Open(path + "-wal") // fdatasync needs no write access
	if err != nil {
		c.close()
		return nil, fmt.Errorf("open the WAL to sync it: %w", err)
	}
	w := &sqliteWriter{conn: c, wal: wal, gate: gate}
	for _, st := range []struct {
		stmt **sqliteStmt
		sql  string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.insert, "INSERT INTO messages (" + messageColumns + ") VALUES " + messagePlaceholders},
		// A room keeps a higher last message, or later update date, that
		// it already has.
		{&w.bump, "UPDATE rooms SET last_message_id = CASE WHEN last_message_id < ?1 THEN ?1 ELSE last_message_id END, " +
			"update_date = CASE WHEN update_date < ?2 THEN ?2 ELSE update_date END WHERE id = ?3"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.checkpoint, "PRAGMA wal_checkpoint(PASSIVE)"},
		{&w.syncFull, "PRAGMA synchronous = FULL"},
		{&w.syncOff, "PRAGMA synchronous = OFF"},
	} {
		if *st.stmt, err = c.prepare(st.sql, true); err != nil {
			w.close()
			return nil, err
		}
	}
	return w, nil
}

func (w *sqliteWriter) close() {
	for _, st := range []*sqliteStmt{w.begin, w.insert, w.bump, w.commit, w.rollback, w.checkpoint, w.syncFull, w.syncOff} {
		if st != nil {
			st.finalize()
		}
	}
	w.conn.close()
	_ = w.wal.Close()
}

// store inserts rows in one transaction, setting their IDs; with bumps
// it also bumps the rooms of rows and those of bumps. An error leaves
// nothing stored, or (a failed sync) nothing acknowledged.
func (w *sqliteWriter) store(rows []messageRow, bumps map[int64]roomBump) error {
	if err := w.begin.run(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer clear(w.args) // hold no message past its batch
	for i := range rows {
		w.args = appendMessageArgs(w.args[:0], &rows[i])
		if err := w.insert.run(w.args...); err != nil {
			_ = w.rollback.run()
			return fmt.Errorf("insert message: %w", err)
		}
		rows[i].ID = w.conn.lastInsertID()
	}
	if bumps != nil {
		for id, b := range bumps {
			if err := w.bump.run(b.last, b.date, id); err != nil {
				_ = w.rollback.run()
				return fmt.Errorf("bump room %d: %w", id, err)
			}
		}
		for i := range rows {
			if err := w.bump.run(rows[i].ID, rows[i].CreateDate, rows[i].RoomID); err != nil {
				_ = w.rollback.run()
				return fmt.Errorf("bump room %d: %w", rows[i].RoomID, err)
			}
		}
	}
	w.gate.close()
	defer w.gate.open()
	if err := w.commit.run(); err != nil {
		// A failed COMMIT leaves the transaction open (SQLITE_BUSY) or
		// already rolled back; either way nothing is stored.
		_ = w.rollback.run()
		return fmt.Errorf("commit: %w", err)
	}
	if w.afterCommit != nil {
		w.afterCommit()
	}
	if err := syncData(w.wal); err != nil {
		return fmt.Errorf("%w: %w", errWALSync, err)
	}
	return nil
}

// errWALSync is a batch committed whose sync failed: its rows are in the
// database, perhaps not on the disk. Nobody was answered yet, and nobody
// may store them again (commitBatch).
var errWALSync = errors.New("sync the WAL after commit")

// checkpointSynced runs the writer's checkpoint under synchronous=FULL:
// a checkpoint syncs the database file before it lets the WAL start over,
// and the writer's connection otherwise syncs nothing itself.
func (w *sqliteWriter) checkpointSynced(s *Store) (walFrames, copied int64, err error) {
	if err := w.syncFull.run(); err != nil {
		return 0, 0, fmt.Errorf("synchronous=FULL for a checkpoint: %w", err)
	}
	walFrames, copied, err = s.checkpointOnce(w.checkpoint)
	if offErr := w.syncOff.run(); offErr != nil && err == nil {
		err = fmt.Errorf("synchronous=OFF after a checkpoint: %w", offErr)
	}
	return walFrames, copied, err
}

// storeSQLite stores rows through w. The rooms' bumps, the rows' own
// included, go with them when due or wanted (flush); else the rows' wait
// in s.bumps.
func (s *Store) storeSQLite(w *sqliteWriter, rows []messageRow, flush bool) error {
	defer func() { s.walGrown.Add(w.pagesWritten()) }()
	if !flush && !s.bumps.due() {
		if err := w.store(rows, nil); err != nil {
			return err
		}
		s.bumps.add(rows)
		return nil
	}
	if err := w.store(rows, s.bumps.rooms); err != nil {
		return err
	}
	s.bumps.written()
	return nil
}

// pagesWritten is how many pages w wrote to the WAL since the last call.
func (w *sqliteWriter) pagesWritten() int64 {
	c := w.conn
	if sqlite3.Xsqlite3_db_status(c.tls, c.db, sqlite3.SQLITE_DBSTATUS_CACHE_WRITE, c.out, c.out+4, 1) != sqlite3.SQLITE_OK {
		return 0
	}
	return int64(*(*int32)(cmem(c.out)))
}

// sqliteBatchWriter returns the writer's connection, opening it on first
// use (after the migrations); nil when the batch must take the GORM path.
// Called on the writer goroutine only.
func (s *Store) sqliteBatchWriter() *sqliteWriter {
	if s.sqlitePath == "" || s.sqliteW != nil || time.Now().Before(s.sqliteRetryAt) {
		return s.sqliteW
	}
	w, err := openSQLiteWriter(s.sqlitePath, s.gate)
	if err != nil {
		s.log.Debug("message writer uses the shared pool for now", "err", err)
		s.sqliteRetryAt = time.Now().Add(time.Second)
		return nil
	}
	w.afterCommit = s.afterCommit
	s.sqliteW = w
	return w
}

// The checkpointer copies the WAL back into the database file from a
// connection of its own, so no commit waits for a checkpoint's writes and
// syncs (a PASSIVE checkpoint never blocks the writer nor readers). It
// copies once the writer has written walRestartFrames pages since its last
// pass, or once the writer has paused for a checkpointLook, not at a fixed
// pace: each pass syncs the database file, and a commit's sync that meets
// it waits for those writes too; the fewer the passes, the more often a
// page the WAL holds many times (a busy index page) is written once.
const checkpointLook = 250 * time.Millisecond

// A WAL that is never started over grows for as long as messages keep
// coming (145 MB after 25 s at 2,000 messages/s), and every commit's
// fdatasync writes the file's inode for its new size. SQLite starts the
// WAL over at the beginning of a write transaction that finds all of it
// copied back, which a checkpointer running beside the writer hardly ever
// leaves behind: the writer appends while it copies. So after a pass that
// found walRestartFrames in the WAL the checkpointer asks, and the writer
// copies back the little committed since, between two batches: its next
// transaction then starts the WAL over, and the file keeps its size.
const (
	walRestartFrames = 4096 // about 16 MiB of 4 KiB pages
	// walRestartPatience is how long the writer waits for a moment with
	// nothing queued before it copies back anyway.
	walRestartPatience = 100 * time.Millisecond
)

// runCheckpointer is the checkpointer goroutine (above).
func (s *Store) runCheckpointer(ctx context.Context) {
	defer close(s.checkpointerEnd)
	var c *sqliteConn
	var stmt *sqliteStmt
	defer func() {
		if stmt != nil {
			stmt.finalize()
		}
		if c != nil {
			c.close()
		}
	}()
	tick := time.NewTicker(checkpointLook)
	defer tick.Stop()
	var lastLog, lastDone, lastGrown int64
	pending := false // committed since the last pass
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		busy := false
		select {
		case <-s.commits:
			busy, pending = true, true
		default:
		}
		grown := s.walGrown.Load()
		if !pending || (busy && grown-lastGrown < s.walRestartFrames.Load()) {
			continue
		}
		if c == nil {
			var err error
			if c, err = openSQLiteConn(s.sqlitePath, sqlitePragmas()...); err != nil {
				s.log.Warn("checkpointer: open", "err", err)
				c = nil
				continue
			}
			if stmt, err = c.prepare("PRAGMA wal_checkpoint(PASSIVE)", true); err != nil {
				s.log.Warn("checkpointer: prepare", "err", err)
				c.close()
				c = nil
				continue
			}
		}
		walFrames, copied, err := s.checkpointOnce(stmt)
		if err != nil {
			s.log.Warn("checkpoint failed", "err", err)
			continue
		}
		lastGrown, pending = grown, false
		if walFrames >= s.walRestartFrames.Load() {
			s.walRestartAt.CompareAndSwap(0, time.Now().UnixNano())
		}
		// Pages were copied (a sync of the WAL, then one of the database)
		// when more frames are done than last time, or any in a new WAL.
		if copied > 0 && (copied > lastDone || walFrames < lastLog) {
			s.metrics.checkpoints.Inc()
			s.metrics.syncs.Add(2)
		}
		lastLog, lastDone = walFrames, copied
	}
}

// checkpointOnce runs a prepared PASSIVE checkpoint, timing it, and returns
// the WAL's frames and how many of them are copied back.
func (s *Store) checkpointOnce(stmt *sqliteStmt) (walFrames, copied int64, err error) {
	start := time.Now()
	row, err := stmt.step()
	s.metrics.checkpointSec.Observe(time.Since(start).Seconds())
	if err != nil {
		return 0, 0, err
	}
	if !row {
		return 0, 0, errors.New("store: wal_checkpoint returned no row")
	}
	walFrames, copied = stmt.int64Column(1), stmt.int64Column(2)
	stmt.reset()
	return walFrames, copied, nil
}

// restartWAL copies the WAL back on the writer's connection when the
// checkpointer asked for it and nothing is queued (or it asked a while
// ago), so that the writer's next transaction starts the WAL over.
func (s *Store) restartWAL() {
	at := s.walRestartAt.Load()
	if at == 0 || s.sqliteW == nil || (len(s.appends) > 0 && time.Since(time.Unix(0, at)) < walRestartPatience) {
		return
	}
	// Asked once: on any failure the checkpointer asks again after its
	// next pass, rather than every batch trying.
	s.walRestartAt.Store(0)
	walFrames, copied, err := s.sqliteW.checkpointSynced(s)
	if err != nil {
		s.log.Warn("checkpoint before a WAL restart failed", "err", err)
		return
	}
	if copied > 0 {
		s.metrics.checkpoints.Inc()
		s.metrics.syncs.Add(2)
	}
	if copied < walFrames {
		s.log.Debug("WAL not restarted: readers hold frames", "frames", walFrames, "copied", copied)
	}
}

// notifyCommit tells the checkpointer that the WAL grew.
func (s *Store) notifyCommit() {
	select {
	case s.commits <- struct{}{}:
	default:
	}
}
