package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// A room's last message and update date on a SQLite file. Bumping them with
// every batch rewrote the room's row and its two update-date index entries
// in every commit: two thirds of the pages a batch of five messages wrote
// to the WAL (and synced). So the writer keeps the bumps of what it
// committed in memory and writes them all at once, in the transaction of a
// later batch or one of their own: at most roomBumpEvery after the first,
// and before anyone else reads the database. Every other access to the file
// goes through the pool, which asks the writer to write pending bumps
// first (flushingPool), so nobody reads a room behind its messages. A
// crash may lose pending bumps, never messages: Migrate repairs the rooms
// from the messages written after the newest bump (repairRoomBumps).

// roomBumpEvery bounds how long the writer keeps bumps to itself.
const roomBumpEvery = time.Second

// roomBump moves a room's last message and update date forward; it keeps
// what a message context needs of the last message too.
type roomBump struct {
	last       int64
	date       time.Time
	adminType  int
	isCustomer bool
}

// roomBumps is what the writer has committed and not yet bumped. The
// writer goroutine owns it; context reads look at rooms under mu.
type roomBumps struct {
	mu      sync.Mutex // the writer changes rooms under it
	rooms   map[int64]roomBump
	since   time.Time          // when the oldest pending bump was committed
	wanted  bool               // a reader waits: the batch in hand writes them
	pending atomic.Bool        // rooms is not empty
	flushes chan chan struct{} // readers asking for the bumps, closed when written
	timer   *time.Timer        // fires roomBumpEvery after since
}

func newRoomBumps() *roomBumps {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &roomBumps{rooms: map[int64]roomBump{}, flushes: make(chan chan struct{}, 64), timer: t}
}

// add merges the bumps of stored rows (with their IDs).
func (b *roomBumps) add(rows []messageRow) {
	if len(rows) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.rooms) == 0 {
		b.since = time.Now()
		b.timer.Reset(roomBumpEvery)
		b.pending.Store(true)
	}
	for i := range rows {
		r := &rows[i]
		bump := b.rooms[r.RoomID]
		if r.ID > bump.last {
			bump.last, bump.adminType, bump.isCustomer = r.ID, r.AdminType, r.IsCustomer
		}
		if r.CreateDate.After(bump.date) {
			bump.date = r.CreateDate
		}
		b.rooms[r.RoomID] = bump
	}
}

// of returns the pending bumps of rooms ids.
func (b *roomBumps) of(ids []int64) map[int64]roomBump {
	b.mu.Lock()
	defer b.mu.Unlock()
	found := map[int64]roomBump{}
	for _, id := range ids {
		if bump, ok := b.rooms[id]; ok {
			found[id] = bump
		}
	}
	return found
}

// due reports that pending bumps have waited long enough.
func (b *roomBumps) due() bool {
	return len(b.rooms) > 0 && time.Since(b.since) >= roomBumpEvery
}

// written forgets the bumps a committed transaction wrote.
func (b *roomBumps) written() {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.rooms)
	b.timer.Stop()
	b.pending.Store(false)
}

// flushRoomBumps waits until the writer has written the bumps pending now;
// at once when none are. The writer's own database calls never wait.
func (s *Store) flushRoomBumps(ctx context.Context) {
	if !s.bumps.pending.Load() || ctx.Value(writerCall{}) != nil {
		return
	}
	done := make(chan struct{})
	select {
	case s.bumps.flushes <- done:
	case <-s.writerEnd:
		return
	case <-ctx.Done():
		return // the caller's own call meets ctx's end
	}
	select {
	case <-done:
	case <-s.writerEnd:
	case <-ctx.Done():
	}
}

// writerCall marks the context of database calls that need no bumps
// written first: the writer's own, and the message context reads, which
// take the pending bumps from memory (and hold the room cache, which the
// writer needs after each commit).
type writerCall struct{}

// flushingPool is the GORM pool of a SQLite file: each query, and each
// transaction before it begins (it takes the write lock at once), first
// has the writer write its pending room bumps.
type flushingPool struct {
	db     *sql.DB
	gate   *publishGate // the writer's, between a commit and its sync
	before func(context.Context)
}

var (
	_ gorm.ConnPool       = (*flushingPool)(nil)
	_ gorm.TxBeginner     = (*flushingPool)(nil)
	_ gorm.GetDBConnector = (*flushingPool)(nil)
)

func (p *flushingPool) flush(ctx context.Context) {
	if p.before != nil {
		p.before(ctx)
	}
}

func (p *flushingPool) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	p.flush(ctx)
	return p.db.PrepareContext(ctx, query)
}

func (p *flushingPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	p.flush(ctx)
	return p.db.ExecContext(ctx, query, args...)
}

func (p *flushingPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	p.flush(ctx)
	return p.db.QueryContext(ctx, query, args...)
}

func (p *flushingPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.flush(ctx)
	return p.db.QueryRowContext(ctx, query, args...)
}

func (p *flushingPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	p.flush(ctx)
	return p.db.BeginTx(ctx, opts)
}

func (p *flushingPool) GetDBConn() (*sql.DB, error) { return p.db, nil }

// repairRoomBumps brings forward the rooms of the messages stored after
// the newest bump written: the writer writes all its pending bumps at once
// and before any other path bumps a room, so those are the messages whose
// bumps a crash lost.
const repairRoomBumps = `UPDATE rooms SET
	last_message_id = b.last,
	update_date = CASE WHEN rooms.update_date < b.date THEN b.date ELSE rooms.update_date END
FROM (SELECT room_id, max(id) AS last, max(create_date) AS date FROM messages
	WHERE id > (SELECT coalesce(max(last_message_id), 0) FROM rooms) GROUP BY room_id) AS b
WHERE rooms.id = b.room_id AND rooms.last_message_id < b.last`

func (s *Store) repairRooms(db *gorm.DB) error {
	res := db.Exec(repairRoomBumps)
	if res.Error != nil {
		return fmt.Errorf("store: bring rooms up to their last messages: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		s.log.Warn("rooms brought up to their last messages after an unclean stop", "rooms", res.RowsAffected)
	}
	return nil
}
