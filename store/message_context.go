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

// On SQLite one process owns the database (several nodes need MySQL), and
// every change to what a context holds goes through this Store: so the
// contexts it has read stay in memory and its own writes keep them current
// (roomCache), and a MESSAGE costs no query. Whoever changes a room, its
// read positions or its messages updates or forgets its entry after the
// change is committed; a read that fills the cache holds the cache's lock
// across its query, so a change it may have missed is applied after it.
// MySQL is shared by several nodes, whose writes this one never sees: there
// every context is read.
type roomCache struct {
	mu    sync.RWMutex
	rooms map[int64]*roomContext
}

// maxCachedRooms bounds the cache; a full cache starts over.
const maxCachedRooms = 1 << 16

func (c *roomCache) get(roomID int64) (*chat.MessageContext, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	rc, ok := c.rooms[roomID]
	if !ok {
		return nil, false
	}
	return rc.forCaller(), true
}

// forgetRoom drops a room whose row changed (status, assignee, review):
// AssignRoom, AutoAssignRoom, TransferRoom, EndRoom and SetReview call it
// once their change is committed.
func (s *Store) forgetRoom(roomID int64) {
	if c := s.roomCache; c != nil {
		c.mu.Lock()
		delete(c.rooms, roomID)
		c.mu.Unlock()
	}
}

// cacheAppended moves the rooms of rows, just committed, to their newest
// message, as the database did.
func (s *Store) cacheAppended(rows []messageRow) {
	c := s.roomCache
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range rows {
		r := &rows[i]
		rc, ok := c.rooms[r.RoomID]
		if !ok {
			continue
		}
		rc.moveTo(roomBump{last: r.ID, date: r.CreateDate, adminType: r.AdminType, isCustomer: r.IsCustomer})
	}
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

// cacheRead moves a cached read position forward to lastID.
func (s *Store) cacheRead(roomID, speakerID, lastID int64) {
	c := s.roomCache
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.rooms[roomID]; ok && rc.positions[speakerID] < lastID {
		rc.positions[speakerID] = lastID
	}
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
	if c := s.roomCache; c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	// On a SQLite file the rooms' newest bumps may still be the writer's:
	// those taken before the query are applied to what it reads; those
	// committed later reach the cache after this fill (cacheAppended).
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
	if c := s.roomCache; c != nil && err == nil {
		if len(c.rooms)+len(found) > maxCachedRooms {
			clear(c.rooms)
		}
		for id, rc := range found {
			c.rooms[id] = rc
		}
	}
	for _, req := range batch {
		what := fmt.Sprintf("message context of room %d", req.roomID)
		switch c, ok := found[req.roomID]; {
		case req.ctx.Err() != nil:
			req.done <- contextResult{err: fmt.Errorf("store: %s: %w", what, req.ctx.Err())}
		case err != nil:
			req.done <- contextResult{err: s.fail(what, err)}
		case !ok:
			req.done <- contextResult{err: s.fail(what, gorm.ErrRecordNotFound)}
		default:
			req.done <- contextResult{mc: c.forCaller()}
		}
	}
}

// roomContext is what one query found about one room.
type roomContext struct {
	room               roomRow
	lastID, assigneeID sql.NullInt64
	lastAdminType      sql.NullInt64
	lastIsCustomer     sql.NullBool
	positions          map[int64]int64
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
