package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

var _ chat.MessageContextStore = (*Store)(nil)

// messageContextQuery reads rooms, each with its last message's kind,
// whether its assignee exists and its read positions: one row per read
// position (one row with NULL positions when there is none). A room has a handful of
// positions (its customer and the counselors who read it), so the repeated
// room columns cost less than further round trips.
const messageContextQuery = `SELECT r.id, r.company_id, r.customer_id, r.member_id, r.status, r.name,
	r.review_score, r.last_message_id, r.create_date, r.update_date, r.end_date, r.assign_date,
	lm.id, lm.admin_type, lm.is_customer,
	m.id,
	rp.speaker_id, rp.last_read_id
FROM rooms r
LEFT JOIN messages lm ON lm.id = r.last_message_id
LEFT JOIN members m ON m.id = r.member_id
LEFT JOIN read_positions rp ON rp.room_id = r.id
WHERE r.id IN ?`

// The MESSAGE path reads one context per message, and every query costs the
// server a write and a read on the database connection (on SQLite, parsing
// the statement): a third of its CPU at a few thousand messages/s. So, as
// with appends, callers do not query themselves: they queue their room for
// a reader goroutine, which takes everything queued (up to maxContextBatch)
// and reads it with one query. An idle store reads a lone request at once.
// Two readers let one batch's round trip overlap the next.
const (
	contextReaders     = 2
	contextQueueSize   = 4096
	maxContextBatch    = 128
	contextReadTimeout = 30 * time.Second
)

type contextRequest struct {
	ctx    context.Context
	roomID int64
	done   chan contextResult // buffered: a reader never blocks on a caller
}

type contextResult struct {
	mc  *chat.MessageContext
	err error
}

// The contexts a Store has read stay in memory (roomCache), kept current by
// the changes committed to them, so a MESSAGE to a known room costs no
// query. Whoever changes a room, its read positions or its messages, through
// this Store, updates or forgets its entry once the change is committed.
//
// On SQLite one process owns the database, so that is every change. On MySQL
// several nodes may share the database: then each tells the others what it
// committed through a RoomFeed (room_feed.go) and applies what they tell it,
// and an entry lives at most roomCacheTTL, as the safety net for changes made
// outside any node (a CLI command, a hand-written UPDATE) or whose news was
// lost (a node dying between its commit and its publish). Without a feed
// (CacheRoomContexts) a MySQL Store reads every context.
//
// Why that is correct: a node commits a change, then publishes it, and every
// other node applies it when it arrives. A MESSAGE that another node handles
// in between sees the room as it was before the change, exactly as it would
// have had it read the database just before the commit, which the uncached
// path allowed too: its read and its own commit were never one transaction,
// so a message could always be stored right after a change it did not see.
// What must never happen is a node missing a change for good, and that is
// what the rules below rule out:
//   - A fill (the query that puts a room in the cache) registers before it
//     queries; a change applied while it runs taints its room, which is then
//     answered but not cached. A change whose news arrived before the fill
//     registered was committed before it, so the query sees it.
//   - News is only ever applied forward (a newer last message, a higher read
//     position) or by forgetting, so news arriving late or twice is harmless.
//   - While the feed cannot deliver, nothing is cached or served from the
//     cache; when it may have missed something (its connection was replaced)
//     every entry is dropped.
type roomCache struct {
	mu    sync.RWMutex
	rooms map[int64]*roomContext
	// ttl bounds an entry's life from its fill (0: for ever, on SQLite).
	ttl time.Duration
	// fills are the fills in flight.
	fills []*cacheFill
	// feed, when set, brings other nodes' changes; gen is its continuity
	// when the entries were read.
	feed RoomFeed
	gen  uint64
}

// roomCacheTTL bounds how long a MySQL node trusts what it read of a room
// without hearing of every change to it: the staleness of a change made
// outside any node, or whose news was lost.
const roomCacheTTL = 5 * time.Second

// maxCachedRooms bounds the cache; a full cache starts over.
const maxCachedRooms = 1 << 16

// cacheFill is a fill in flight: the rooms it reads, those changed since it
// registered (tainted), and the feed's continuity when it did.
type cacheFill struct {
	ids     []int64 // sorted
	tainted map[int64]bool
	reset   bool // every room may have changed unseen
	gen     uint64
	at      time.Time
}

// live reports whether entries may be served and filled now, dropping them
// all when the feed may have missed news since they were read. c.mu is held.
func (c *roomCache) live() bool {
	if c.feed == nil {
		return true
	}
	gen, ok := c.feed.Continuity()
	if gen != c.gen {
		clear(c.rooms)
		c.gen = gen
	}
	return ok
}

func (c *roomCache) get(roomID int64) (*chat.MessageContext, bool) {
	c.mu.RLock()
	rc, ok := c.rooms[roomID]
	fresh := ok && (c.ttl == 0 || time.Since(rc.filled) < c.ttl)
	if fresh && c.feed != nil {
		gen, up := c.feed.Continuity()
		fresh = up && gen == c.gen
	}
	if fresh {
		defer c.mu.RUnlock()
		return rc.forCaller(), true
	}
	c.mu.RUnlock()
	if ok && c.feed != nil {
		c.mu.Lock()
		c.live() // drops everything if the feed lost news
		c.mu.Unlock()
	}
	return nil, false
}

// startFill registers a fill of ids (sorted, distinct); nil when nothing may
// be cached now.
func (c *roomCache) startFill(ids []int64) *cacheFill {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live() {
		return nil
	}
	f := &cacheFill{ids: ids, gen: c.gen, at: time.Now()}
	c.fills = append(c.fills, f)
	return f
}

// endFill unregisters f and caches what it found, but for its tainted
// rooms, unless the feed lost news meanwhile.
func (c *roomCache) endFill(f *cacheFill, found map[int64]*roomContext, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fills = slices.DeleteFunc(c.fills, func(g *cacheFill) bool { return g == f })
	if err != nil || f.reset || !c.live() || c.gen != f.gen {
		return
	}
	if len(c.rooms)+len(found) > maxCachedRooms {
		clear(c.rooms)
	}
	for id, rc := range found {
		if !f.tainted[id] {
			rc.filled = f.at
			c.rooms[id] = rc
		}
	}
}

// touch taints roomID in the fills in flight; c.mu is held.
func (c *roomCache) touch(roomID int64) {
	for _, f := range c.fills {
		if _, ok := slices.BinarySearch(f.ids, roomID); ok {
			if f.tainted == nil {
				f.tainted = map[int64]bool{}
			}
			f.tainted[roomID] = true
		}
	}
}

// forget drops roomID; c.mu is held.
func (c *roomCache) forget(roomID int64) {
	c.touch(roomID)
	delete(c.rooms, roomID)
}

// forgetAll drops every room; c.mu is held.
func (c *roomCache) forgetAll() {
	for _, f := range c.fills {
		f.reset = true
	}
	clear(c.rooms)
}

// appended moves roomID forward to the message of b; c.mu is held.
func (c *roomCache) appended(roomID int64, b roomBump) {
	c.touch(roomID)
	if rc, ok := c.rooms[roomID]; ok {
		rc.moveTo(b)
	}
}

// read moves speakerID's position in roomID forward to lastID; c.mu is held.
func (c *roomCache) read(roomID, speakerID, lastID int64) {
	c.touch(roomID)
	if rc, ok := c.rooms[roomID]; ok && rc.positions[speakerID] < lastID {
		rc.positions[speakerID] = lastID
	}
}

// forgetRoom drops a room whose row changed (status, assignee, review):
// AssignRoom, AutoAssignRoom, TransferRoom, EndRoom and SetReview call it
// once their change is committed, and the other nodes hear of it before
// it returns.
func (s *Store) forgetRoom(ctx context.Context, roomID int64) {
	c := s.roomCache
	if c == nil {
		return
	}
	c.mu.Lock()
	c.forget(roomID)
	c.mu.Unlock()
	s.tellRoom(ctx, feedForget, roomID, 0, 0)
}

// cacheAppended moves the rooms of rows, just committed, to their newest
// message, as the database did, and tells the other nodes.
func (s *Store) cacheAppended(rows []messageRow) {
	c := s.roomCache
	if c == nil {
		return
	}
	c.mu.Lock()
	for i := range rows {
		r := &rows[i]
		c.appended(r.RoomID, roomBump{last: r.ID, date: r.CreateDate, adminType: r.AdminType, isCustomer: r.IsCustomer})
	}
	c.mu.Unlock()
	s.tellAppended(rows)
}

// forgetAppended drops the rooms of rows after a batch that may or may not
// have been committed (its commit unconfirmed, or its IDs unknown), and
// tells the other nodes without waiting: the writer must not wait for them.
func (s *Store) forgetAppended(rows []messageRow) {
	c := s.roomCache
	if c == nil {
		return
	}
	c.mu.Lock()
	for i := range rows {
		c.forget(rows[i].RoomID)
	}
	c.mu.Unlock()
	s.tellForgotten(rows)
}

// moveTo moves the room forward to the message of b.
func (rc *roomContext) moveTo(b roomBump) {
	if b.date.After(rc.room.UpdateDate) {
		rc.room.UpdateDate = b.date
	}
	if b.last > rc.room.LastMessageID {
		rc.room.LastMessageID = b.last
		rc.lastID = sql.NullInt64{Int64: b.last, Valid: true}
		rc.lastAdminType = sql.NullInt64{Int64: int64(b.adminType), Valid: true}
		rc.lastIsCustomer = sql.NullBool{Bool: b.isCustomer, Valid: true}
	}
}

// cacheRead moves a cached read position forward to lastID, and tells the
// other nodes before it returns.
func (s *Store) cacheRead(ctx context.Context, roomID, speakerID, lastID int64) {
	c := s.roomCache
	if c == nil {
		return
	}
	c.mu.Lock()
	c.read(roomID, speakerID, lastID)
	c.mu.Unlock()
	s.tellRoom(ctx, feedRead, roomID, speakerID, lastID)
}

// MessageContext returns what chat needs to store and render a MESSAGE to
// roomID; an unknown room wraps chat.ErrNotFound. Concurrent calls share
// one query (see contextReaders); each caller gets its own copy.
func (s *Store) MessageContext(ctx context.Context, roomID int64) (*chat.MessageContext, error) {
	// A cached context waits for nothing: it needs neither the call's
	// deadline (a timer) nor the text of errors it cannot have.
	if c := s.roomCache; c != nil {
		if mc, ok := c.get(roomID); ok {
			return mc, nil
		}
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("message context of room %d", roomID)
	req := &contextRequest{ctx: ctx, roomID: roomID, done: make(chan contextResult, 1)}
	select {
	case <-s.stop:
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	default:
	}
	select {
	case s.contexts <- req:
	case <-s.stop:
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("store: %s: not queued: %w", what, ctx.Err())
	}
	var res contextResult
	select {
	case res = <-req.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("store: %s: %w", what, ctx.Err())
	case <-s.readersEnd:
		select {
		case res = <-req.done:
		default:
			// Queued after the readers' last look: never read.
			return nil, fmt.Errorf("%s: %w", what, errClosed)
		}
	}
	return res.mc, res.err
}

// runContextReader is one reader goroutine; it exits after Close, having
// answered everything queued.
func (s *Store) runContextReader(ctx context.Context) {
	batch := make([]*contextRequest, 0, maxContextBatch)
	for {
		select {
		case req := <-s.contexts:
			runtime.Gosched() // as the writer does: let a burst queue up
			batch = s.fillContexts(append(batch[:0], req))
			s.readContexts(ctx, batch)
		case <-s.stop:
			// Nothing can be stored any more: a context is of no use.
			for {
				batch = s.fillContexts(batch[:0])
				if len(batch) == 0 {
					return
				}
				for _, req := range batch {
					req.done <- contextResult{err: fmt.Errorf("message context of room %d: %w", req.roomID, errClosed)}
				}
			}
		}
	}
}

// fillContexts adds whatever is queued right now, up to maxContextBatch.
func (s *Store) fillContexts(batch []*contextRequest) []*contextRequest {
	for len(batch) < maxContextBatch {
		select {
		case req := <-s.contexts:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// readContexts answers every request of batch exactly once.
func (s *Store) readContexts(ctx context.Context, batch []*contextRequest) {
	ids := make([]int64, 0, len(batch))
	for _, req := range batch {
		if req.ctx.Err() == nil { // a caller that left needs no answer
			ids = append(ids, req.roomID)
		}
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ctx, cancel := context.WithTimeout(ctx, contextReadTimeout)
	defer cancel()
	// Registered before anything is read: see roomCache.
	var fill *cacheFill
	if c := s.roomCache; c != nil {
		fill = c.startFill(ids)
	}
	// On a SQLite file the rooms' newest bumps may still be the writer's:
	// those taken before the query are applied to what it reads; those
	// committed later taint the fill.
	var pending map[int64]roomBump
	if s.bumps != nil {
		pending = s.bumps.of(ids)
		ctx = context.WithValue(ctx, writerCall{}, true)
	}
	found, err := s.readRoomContexts(ctx, ids)
	for id, b := range pending {
		if rc, ok := found[id]; ok {
			rc.moveTo(b)
		}
	}
	// Each caller gets its copy before the cache shares found.
	results := make([]contextResult, len(batch))
	for i, req := range batch {
		what := fmt.Sprintf("message context of room %d", req.roomID)
		switch c, ok := found[req.roomID]; {
		case req.ctx.Err() != nil:
			results[i].err = fmt.Errorf("store: %s: %w", what, req.ctx.Err())
		case err != nil:
			results[i].err = s.fail(what, err)
		case !ok:
			results[i].err = s.fail(what, gorm.ErrRecordNotFound)
		default:
			results[i].mc = c.forCaller()
		}
	}
	if fill != nil {
		s.roomCache.endFill(fill, found, err)
	}
	for i, req := range batch {
		req.done <- results[i]
	}
}

// roomContext is what one query found about one room.
type roomContext struct {
	room               roomRow
	lastID, assigneeID sql.NullInt64
	lastAdminType      sql.NullInt64
	lastIsCustomer     sql.NullBool
	positions          map[int64]int64
	// filled is when the fill that cached it registered.
	filled time.Time
}

// forCaller builds a MessageContext sharing nothing with c or with another
// caller's: chat updates the room it is given.
func (c *roomContext) forCaller() *chat.MessageContext {
	room := c.room.toChat()
	if room.MemberID != nil {
		id := *room.MemberID
		room.MemberID = &id
	}
	if room.ReviewScore != nil {
		score := *room.ReviewScore
		room.ReviewScore = &score
	}
	if room.EndDate != nil {
		end := *room.EndDate
		room.EndDate = &end
	}
	return &chat.MessageContext{
		Room:           room,
		LastFound:      c.lastID.Valid,
		LastAdminType:  int(c.lastAdminType.Int64),
		LastIsCustomer: c.lastIsCustomer.Bool,
		AssigneeFound:  c.assigneeID.Valid,
		Positions:      maps.Clone(c.positions),
	}
}

// readRoomContexts reads the contexts of rooms ids in one query. It scans
// the rows itself: GORM's reflective scanning cost a tenth of the server's
// CPU at a few thousand messages/s.
func (s *Store) readRoomContexts(ctx context.Context, ids []int64) (map[int64]*roomContext, error) {
	if s.dialect == dialectMySQL {
		return s.readRoomContextsDirect(ctx, ids)
	}
	rows, err := s.db.WithContext(ctx).Raw(messageContextQuery, ids).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[int64]*roomContext, len(ids))
	for rows.Next() {
		var sc contextScan
		if err := rows.Scan(sc.dest()...); err != nil {
			return nil, err
		}
		sc.addTo(found)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return found, nil
}

// contextScan is one row of messageContextQuery.
type contextScan struct {
	c                         roomContext
	readSpeakerID, readLastID sql.NullInt64
}

// dest are the row's destinations in the query's column order.
func (sc *contextScan) dest() []any {
	c, r := &sc.c, &sc.c.room
	return []any{&r.ID, &r.CompanyID, &r.CustomerID, &r.MemberID, &r.Status, &r.Name,
		&r.ReviewScore, &r.LastMessageID, &r.CreateDate, &r.UpdateDate, &r.EndDate, &r.AssignDate,
		&c.lastID, &c.lastAdminType, &c.lastIsCustomer, &c.assigneeID, &sc.readSpeakerID, &sc.readLastID}
}

// addTo adds the row to the rooms found so far.
func (sc *contextScan) addTo(found map[int64]*roomContext) {
	known, ok := found[sc.c.room.ID]
	if !ok {
		known = &roomContext{}
		*known = sc.c
		known.positions = make(map[int64]int64, 2)
		found[known.room.ID] = known
	}
	if sc.readSpeakerID.Valid && sc.readLastID.Valid {
		known.positions[sc.readSpeakerID.Int64] = sc.readLastID.Int64
	}
}
