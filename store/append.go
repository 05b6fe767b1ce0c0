package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

// Group commit. A transaction's commit (an fsync) costs far more than
// inserting one row, so AppendMessage does not write itself: it queues the
// message for the Store's writer goroutine, which takes everything queued
// (up to maxBatch), stores it with one multi-row INSERT in one transaction,
// bumps each touched room once, commits, and only then answers each caller.
// Under load the batches grow by themselves; an idle store commits a lone
// message at once, without waiting for company.
//
// One writer per Store, deliberately: a node's messages then become visible
// in ID order, and SQLite has a single write lock anyway. (Two writers
// overlapping one batch's fsync with the next batch's INSERT measured no
// clear gain on MariaDB.)

const (
	appendQueueSize = 4096
	maxBatch        = 256
	// maxInsertBytes bounds one INSERT statement well below MySQL's default
	// max_allowed_packet (16 MiB); bigger batches use several statements.
	maxInsertBytes = 4 << 20
	// batchTimeout bounds one batch, its one-by-one fallback included.
	batchTimeout = 30 * time.Second
	// precheckAfterDuplicate is how many batches look client message ids
	// up before inserting after one hit a duplicate.
	precheckAfterDuplicate = 64
	// closeGrace is how long Close lets the writer store what is queued
	// before cancelling its database calls.
	closeGrace = 15 * time.Second
)

type appendRequest struct {
	ctx      context.Context
	row      messageRow
	done     chan appendResult // buffered: the writer never blocks on a caller
	queued   time.Time
	deadline time.Time // the call's own (SetCallTimeout); zero for none
}

// expired tells whether the call has outlived its own deadline at now.
func (r *appendRequest) expired(now time.Time) bool {
	return !r.deadline.IsZero() && !now.Before(r.deadline)
}

// gone is why the writer must not store r: its caller has left (its
// context ended or its deadline passed), and storing it would only surprise
// a retry. nil while the caller still waits.
func (r *appendRequest) gone(now time.Time) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if r.expired(now) {
		return context.DeadlineExceeded
	}
	return nil
}

type appendResult struct {
	msg       *chat.Message
	duplicate bool
	err       error
}

// clientKey identifies a message for idempotency: the same client message
// id from the same speaker in the same room is the same message.
type clientKey struct {
	roomID, speakerID int64
	clientID          string
}

func keyOf(r *messageRow) (clientKey, bool) {
	if r.ClientMessageID == nil {
		return clientKey{}, false
	}
	return clientKey{r.RoomID, r.SpeakerID, *r.ClientMessageID}, true
}

// AppendMessage stores m, setting m.ID, m.CompanyID (from the room when 0)
// and its dates (now when zero), and bumps the room's UpdateDate and
// LastMessageID. When the speaker already stored m.ClientMessageID in that
// room it stores nothing and returns the earlier message with duplicate set.
//
// An error means the message may not have been stored; never the reverse.
// If ctx ends while the message is being committed the caller gets ctx's
// error, and retrying with the same ClientMessageID is safe.
func (s *Store) AppendMessage(ctx context.Context, m *chat.Message) (*chat.Message, bool, error) {
	row, err := newMessageRow(m, s.now())
	if err != nil {
		return nil, false, invalid(appendWhat(m.RoomID), err)
	}
	queued := time.Now()
	req := &appendRequest{ctx: ctx, row: row, done: make(chan appendResult, 1), queued: queued}
	// The call's own deadline (SetCallTimeout) is kept by the writer, which
	// drops a request past it, and by the shared deadlineClock while
	// waiting, instead of a context.WithTimeout per message.
	var expired <-chan struct{} // nil (never ready) without a deadline
	if d := time.Duration(s.callTimeout.Load()); d > 0 {
		req.deadline = queued.Add(d)
		expired = s.deadlines.at(req.deadline)
	}
	select {
	case <-s.stop:
		return nil, false, fmt.Errorf("%s: %w", appendWhat(m.RoomID), errClosed)
	default:
	}
	for queuing := true; queuing; {
		select {
		case s.appends <- req:
			queuing = false
		case <-s.stop:
			return nil, false, fmt.Errorf("%s: %w", appendWhat(m.RoomID), errClosed)
		case <-ctx.Done():
			return nil, false, fmt.Errorf("store: %s: not queued: %w", appendWhat(m.RoomID), ctx.Err())
		case <-expired:
			if req.expired(time.Now()) {
				return nil, false, fmt.Errorf("store: %s: not queued: %w", appendWhat(m.RoomID), context.DeadlineExceeded)
			}
			expired = s.deadlines.at(req.deadline)
		}
	}
	var res appendResult
	for waiting := true; waiting; {
		select {
		case res = <-req.done:
			waiting = false
		case <-ctx.Done():
			return nil, false, fmt.Errorf("store: %s: gave up waiting for the commit (retry with the same client message id): %w", appendWhat(m.RoomID), ctx.Err())
		case <-expired:
			if req.expired(time.Now()) {
				return nil, false, fmt.Errorf("store: %s: gave up waiting for the commit (retry with the same client message id): %w", appendWhat(m.RoomID), context.DeadlineExceeded)
			}
			expired = s.deadlines.at(req.deadline)
		case <-s.writerEnd:
			select {
			case res = <-req.done:
				waiting = false
			default:
				// Queued after the writer's last drain: never stored.
				return nil, false, fmt.Errorf("%s: %w", appendWhat(m.RoomID), errClosed)
			}
		}
	}
	s.metrics.appendSeconds.Observe(time.Since(req.queued).Seconds())
	if res.err != nil {
		return nil, false, res.err
	}
	if !res.duplicate {
		m.ID, m.CompanyID = res.msg.ID, res.msg.CompanyID
		m.CreateDate, m.UpdateDate = res.msg.CreateDate, res.msg.UpdateDate
	}
	return res.msg, res.duplicate, nil
}

// appendWhat names an append in its errors; only a failed one pays for it.
func appendWhat(roomID int64) string {
	return fmt.Sprintf("append message to room %d", roomID)
}

// runWriter is the writer goroutine: it owns the batches and exits after
// Close, once it has stored everything queued before Close.
func (s *Store) runWriter(ctx context.Context) {
	defer close(s.writerEnd)
	// The deadline clock serves callers until the writer stops answering.
	clockStop, clockEnd := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(clockEnd)
		s.deadlines.run(clockStop)
	}()
	defer func() {
		close(clockStop)
		<-clockEnd
	}()
	defer func() {
		if s.sqliteW != nil {
			s.sqliteW.close()
		}
		s.closeInserts()
	}()
	// The writer's own database calls do not wait for its room bumps.
	ctx = context.WithValue(ctx, writerCall{}, true)
	batch := make([]*appendRequest, 0, maxBatch)
	var lastStart time.Time
	spacing := time.NewTimer(time.Hour)
	spacing.Stop()
	var bumpsDue <-chan time.Time // the room bumps' timer, on SQLite files
	if s.bumps != nil {
		bumpsDue = s.bumps.timer.C
	}
	for {
		select {
		case done := <-s.bumpFlushes():
			s.writeRoomBumps(ctx, append(batch[:0], s.fill(nil)...), done)
		case <-bumpsDue:
			s.writeRoomBumps(ctx, s.fill(batch[:0]), nil)
		case req := <-s.appends:
			// The first request of a burst wakes the writer at once; let
			// the other runnable callers queue theirs before the batch is
			// cut, or a batch of one goes first and the rest wait for its
			// commit. An idle server has nobody to yield to.
			runtime.Gosched()
			batch = s.gather(s.fill(append(batch[:0], req)), lastStart, spacing)
			lastStart = time.Now()
			s.commitBatch(ctx, batch)
			s.restartWAL()
		case <-s.stop:
			for {
				batch = s.fill(batch[:0])
				if len(batch) == 0 {
					s.writeRoomBumps(ctx, nil, nil)
					return
				}
				s.commitBatch(ctx, batch)
			}
		}
	}
}

// bumpFlushes is where readers ask for the room bumps; nil (never ready)
// without them.
func (s *Store) bumpFlushes() chan chan struct{} {
	if s.bumps == nil {
		return nil
	}
	return s.bumps.flushes
}

// writeRoomBumps writes the pending room bumps, with batch when it is not
// empty, then tells done and every other reader waiting.
func (s *Store) writeRoomBumps(ctx context.Context, batch []*appendRequest, done chan struct{}) {
	if s.bumps == nil {
		return
	}
	waiting := []chan struct{}{}
	if done != nil {
		waiting = append(waiting, done)
	}
	for more := true; more; {
		select {
		case d := <-s.bumps.flushes:
			waiting = append(waiting, d)
		default:
			more = false
		}
	}
	s.bumps.wanted = true
	if len(batch) > 0 {
		s.commitBatch(ctx, batch)
	}
	if len(s.bumps.rooms) > 0 {
		s.writeBumpsAlone()
	}
	s.bumps.wanted = false
	for _, d := range waiting {
		close(d)
	}
}

// writeBumpsAlone writes the pending room bumps in a transaction of their
// own. On failure they stay pending: a later batch or Migrate after a
// restart writes them.
func (s *Store) writeBumpsAlone() {
	w := s.sqliteBatchWriter()
	if w == nil {
		return
	}
	if err := s.storeSQLite(w, nil, true); err != nil {
		s.log.Warn("room bumps not written", "rooms", len(s.bumps.rooms), "err", err)
		return
	}
	s.metrics.syncs.Inc()
	s.notifyCommit()
}

// While messages keep coming, batches start at least the store's commit
// spacing apart: a commit and its statements then serve whatever arrived in
// that time, not only what came during the previous commit, which on a fast
// disk is next to nothing. It pays only under load: after a quiet moment the
// first message goes at once, and a batch of spacingFull goes at once too.
// The spacing is also part of every message's wait, its slowest included:
//   - On a SQLite file a commit is the writer's own prepared statements and
//     one fdatasync, and 1 ms is enough. Against 2 ms, at 2,000 messages/s
//     on one core, it took the delivery p99 from 4.9 – 8.4 to 3.8 – 4.7 ms
//     and the median from 3.0 – 3.2 to 2.2 – 2.3 ms, for 83 – 87 instead of
//     71 – 79 µs of CPU per message (3 messages a batch instead of 5.5).
//   - On MySQL a commit also costs the database server a transaction and a
//     round trip: 1 ms took cstalk + mysqld from 141 – 145 to 184 – 185 µs
//     per message, so it keeps 2 ms.
//
// The runtime's timers wake an idle process in whole milliseconds (its
// network poller's unit), so a batch starts up to a millisecond after its
// spacing; a timerfd in the poller would be exact, but at 2 ms it cost
// 96 – 104 µs per message, more than 1 ms does, for a worse p99.
const (
	sqliteCommitSpacing = time.Millisecond
	mysqlCommitSpacing  = 2 * time.Millisecond
	spacingFull         = 64
)

// gather waits for more requests until the commit spacing after lastStart.
func (s *Store) gather(batch []*appendRequest, lastStart time.Time, timer *time.Timer) []*appendRequest {
	wait := time.Until(lastStart.Add(s.commitSpacing))
	if wait <= 0 || len(batch) >= spacingFull {
		return batch
	}
	timer.Reset(wait)
	defer timer.Stop()
	for len(batch) < spacingFull {
		select {
		case req := <-s.appends:
			batch = append(batch, req)
		case <-timer.C:
			return batch
		case <-s.stop:
			return batch
		}
	}
	return batch
}

// fill adds whatever is queued right now, up to maxBatch.
func (s *Store) fill(batch []*appendRequest) []*appendRequest {
	for len(batch) < maxBatch {
		select {
		case req := <-s.appends:
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch stores batch and answers every request in it exactly once.
func (s *Store) commitBatch(ctx context.Context, batch []*appendRequest) {
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	live := make([]*appendRequest, 0, len(batch))
	now := time.Now()
	for _, req := range batch {
		if err := req.gone(now); err != nil {
			req.done <- appendResult{err: fmt.Errorf("store: %s: not stored: %w", appendWhat(req.row.RoomID), err)}
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	// Looking every client message id up costs as much as inserting the
	// batch, and retries are rare: insert optimistically and let the unique
	// key object. After a duplicate, look up first for a while, since
	// retries come in bursts (a node restart, a network blip).
	precheck := s.precheckBatches > 0
	if precheck {
		s.precheckBatches--
	}
	start := time.Now()
	defer func() { s.metrics.commitSeconds.Observe(time.Since(start).Seconds()) }()
	results, err := s.storeBatch(ctx, live, precheck)
	if err != nil && !precheck && s.isDuplicate(err) {
		s.precheckBatches = precheckAfterDuplicate
		results, err = s.storeBatch(ctx, live, true)
	}
	if err == nil {
		for i, req := range live {
			req.done <- results[i]
		}
		return
	}
	if errors.Is(err, errWALSync) {
		// Committed, so storing the messages one by one would store them
		// twice; unsynced, so none is acknowledged. Their senders see an
		// error, as after a failed commit.
		s.log.Error("the disk did not sync a committed batch; its messages were refused but may be stored", "messages", len(live), "err", err)
		for _, req := range live {
			req.done <- appendResult{err: fmt.Errorf("store: %s: %w", appendWhat(req.row.RoomID), err)}
		}
		return
	}
	// A unique violation despite the lookup comes from a message another
	// node committed meanwhile. Store one by one so only the culprit is
	// affected.
	if len(live) > 1 {
		s.log.Warn("group commit failed, storing its messages one by one", "messages", len(live), "err", err)
	}
	for _, req := range live {
		req.done <- s.storeOne(ctx, req)
	}
}

// storeOne stores a single message in its own transaction, resolving a
// duplicate client message id that the pre-check could not see.
func (s *Store) storeOne(ctx context.Context, req *appendRequest) appendResult {
	what := appendWhat(req.row.RoomID)
	results, err := s.storeBatch(ctx, []*appendRequest{req}, true)
	if err == nil {
		return results[0]
	}
	if key, ok := keyOf(&req.row); ok && s.isDuplicate(err) {
		found, lookupErr := s.findByClientID(s.db.WithContext(ctx), []clientKey{key})
		if lookupErr != nil {
			return appendResult{err: s.fail(what, lookupErr)}
		}
		if r, ok := found[key]; ok {
			return appendResult{msg: r.toChat(), duplicate: true}
		}
	}
	return appendResult{err: s.fail(what, err)}
}

// storeBatch stores reqs in one transaction and returns one result per
// request. Requests refused on their own (unknown room, speaker of another
// company) get an error result without failing the others; a database
// error fails the whole batch and nothing is stored. precheck looks the
// client message ids up before inserting; without it a stored duplicate
// fails the batch with a unique violation.
func (s *Store) storeBatch(ctx context.Context, reqs []*appendRequest, precheck bool) ([]appendResult, error) {
	if !precheck && s.multiRowInsert && s.batchDB != nil && fitsOneInsert(reqs) {
		// MySQL: the whole transaction in one round trip.
		return s.storeBatchDirect(ctx, reqs, func(rows []messageRow) error { return s.insertBatch(ctx, rows) })
	}
	if w := s.sqliteBatchWriter(); !precheck && w != nil {
		// SQLite: prepared statements on the writer's own connection.
		return s.storeBatchDirect(ctx, reqs, func(rows []messageRow) error {
			if err := s.storeSQLite(w, rows, s.bumps.wanted); err != nil {
				return fmt.Errorf("insert %d messages: %w", len(rows), err)
			}
			return nil
		})
	}
	if s.bumps != nil && len(s.bumps.rooms) > 0 {
		// The bumps go before this batch's own: a room's last message
		// is then never newer than a message whose bump is pending.
		s.writeBumpsAlone()
	}
	var plan *batchPlan
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rooms, err := s.roomCompanies(tx, reqs)
		if err != nil {
			return err
		}
		speakers, err := s.speakerCompanies(tx, reqs)
		if err != nil {
			return err
		}
		existing := map[clientKey]*messageRow{}
		if precheck {
			var keys []clientKey
			for _, req := range reqs {
				if key, ok := keyOf(&req.row); ok {
					keys = append(keys, key)
				}
			}
			if existing, err = s.findByClientID(tx, keys); err != nil {
				return err
			}
		}
		plan = planBatch(reqs, rooms, speakers, existing)
		if len(plan.rows) == 0 {
			return nil
		}
		if s.beforeInsert != nil {
			s.beforeInsert()
		}
		if err := s.insertMessages(tx, plan.rows); err != nil {
			return err
		}
		query, args := bumpRooms(plan.rows, false)
		if err := tx.Exec(query, args...).Error; err != nil {
			return fmt.Errorf("bump rooms: %w", err)
		}
		return nil
	})
	if err != nil {
		if plan != nil {
			s.forgetAppended(plan.rows)
		}
		return nil, err
	}
	s.committed(plan.rows)
	return plan.finish(), nil
}

// committed follows a batch that stored rows in one transaction.
func (s *Store) committed(rows []messageRow) {
	if len(rows) == 0 {
		return
	}
	s.cacheAppended(rows)
	s.metrics.batchMessages.Observe(float64(len(rows)))
	if s.sqlitePath != "" {
		s.metrics.syncs.Inc() // the writer syncs the WAL after each commit (append_sqlite.go)
		s.notifyCommit()
	}
}

// storeBatchDirect is storeBatch without a duplicate pre-check, where
// insert writes the rows in one transaction of its own and sets their IDs.
func (s *Store) storeBatchDirect(ctx context.Context, reqs []*appendRequest, insert func([]messageRow) error) ([]appendResult, error) {
	db := s.db.WithContext(ctx)
	rooms, err := s.roomCompanies(db, reqs)
	if err != nil {
		return nil, err
	}
	speakers, err := s.speakerCompanies(db, reqs)
	if err != nil {
		return nil, err
	}
	plan := planBatch(reqs, rooms, speakers, nil)
	if len(plan.rows) == 0 {
		return plan.results, nil
	}
	if s.beforeInsert != nil {
		s.beforeInsert()
	}
	if err := insert(plan.rows); err != nil {
		s.forgetAppended(plan.rows)
		return nil, err
	}
	s.committed(plan.rows)
	return plan.finish(), nil
}

// batchPlan is what a batch inserts, decided before anything is written.
type batchPlan struct {
	results []appendResult
	rows    []messageRow
	owners  []int       // owners[n]: the request of rows[n]
	sameAs  map[int]int // request -> earlier request with its client key
}

// planBatch checks every request against the companies of its room and
// speaker and against the stored client keys in existing, and keeps the
// rows to insert: one per client key.
func planBatch(reqs []*appendRequest, rooms, speakers map[int64]int64, existing map[clientKey]*messageRow) *batchPlan {
	p := &batchPlan{results: make([]appendResult, len(reqs)), sameAs: map[int]int{}}
	firstInBatch := map[clientKey]int{} // key -> request storing it
	for i, req := range reqs {
		row := req.row
		companyID, ok := rooms[row.RoomID]
		if !ok {
			p.results[i].err = fmt.Errorf("store: %s: room: %w", appendWhat(row.RoomID), chat.ErrNotFound)
			continue
		}
		if row.CompanyID == 0 {
			row.CompanyID = companyID
		}
		speakerCompany, ok := speakers[row.SpeakerID]
		switch {
		case row.CompanyID != companyID:
			p.results[i].err = invalid(appendWhat(row.RoomID), fmt.Errorf("message of company %d in a room of company %d", row.CompanyID, companyID))
			continue
		case !ok:
			p.results[i].err = fmt.Errorf("store: %s: speaker %d: %w", appendWhat(row.RoomID), row.SpeakerID, chat.ErrNotFound)
			continue
		case speakerCompany != companyID:
			p.results[i].err = invalid(appendWhat(row.RoomID), fmt.Errorf("speaker %d of company %d in a room of company %d", row.SpeakerID, speakerCompany, companyID))
			continue
		}
		if key, ok := keyOf(&row); ok {
			if r, ok := existing[key]; ok {
				p.results[i] = appendResult{msg: r.toChat(), duplicate: true}
				continue
			}
			if first, ok := firstInBatch[key]; ok {
				p.sameAs[i] = first
				continue
			}
			firstInBatch[key] = i
		}
		p.rows = append(p.rows, row)
		p.owners = append(p.owners, i)
	}
	return p
}

// finish answers the requests whose rows were stored (and have their IDs).
func (p *batchPlan) finish() []appendResult {
	rowOf := make(map[int]int, len(p.owners)) // request -> its row
	for n, i := range p.owners {
		p.results[i] = appendResult{msg: p.rows[n].toChat()}
		rowOf[i] = n
	}
	for i, first := range p.sameAs {
		p.results[i] = appendResult{msg: p.rows[rowOf[first]].toChat(), duplicate: true}
	}
	return p.results
}

// maxKnownCompanies bounds each of the writer's company caches; a full
// cache starts over.
const maxKnownCompanies = 1 << 16

// roomCompanies maps each requested room to its company. Rooms are never
// deleted and never change company, so the writer remembers what it found
// and a steady stream of messages to the same rooms costs no lookup. The
// lookup takes no lock: the rooms are locked only by bumpRooms at the end
// of the transaction, in ID order, so batches of several nodes (and
// AssignRoom) wait for each other only briefly and never deadlock.
func (s *Store) roomCompanies(tx *gorm.DB, reqs []*appendRequest) (map[int64]int64, error) {
	return s.companies(tx, "rooms", s.roomCompany, reqs, func(r *messageRow) int64 { return r.RoomID })
}

// speakerCompanies is roomCompanies for the speakers, which are never
// deleted nor change company either.
func (s *Store) speakerCompanies(tx *gorm.DB, reqs []*appendRequest) (map[int64]int64, error) {
	return s.companies(tx, "speakers", s.speakerCompany, reqs, func(r *messageRow) int64 { return r.SpeakerID })
}

// companies maps the ids that idOf picks from reqs to their company in
// table, reading only those known does not hold and remembering them. An
// unknown id is left out. known belongs to the writer goroutine.
func (s *Store) companies(tx *gorm.DB, table string, known map[int64]int64, reqs []*appendRequest, idOf func(*messageRow) int64) (map[int64]int64, error) {
	found := make(map[int64]int64, len(reqs))
	var missing []int64
	for _, req := range reqs {
		id := idOf(&req.row)
		if company, ok := known[id]; ok {
			found[id] = company
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return found, nil
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	var rows []struct {
		ID        int64
		CompanyID int64
	}
	if err := tx.Table(table).Select("id", "company_id").Where("id IN ?", missing).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	if len(known)+len(rows) > maxKnownCompanies {
		clear(known)
	}
	for _, r := range rows {
		found[r.ID] = r.CompanyID
		known[r.ID] = r.CompanyID
	}
	return found, nil
}

// findByClientID returns the stored messages with the given keys. One
// equality group per key lets both databases probe the unique index per key
// instead of scanning whole rooms.
func (s *Store) findByClientID(db *gorm.DB, keys []clientKey) (map[clientKey]*messageRow, error) {
	found := map[clientKey]*messageRow{}
	if len(keys) == 0 {
		return found, nil
	}
	var where strings.Builder
	args := make([]any, 0, 3*len(keys))
	for i, k := range keys {
		if i > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(room_id = ? AND speaker_id = ? AND client_message_id = ?)")
		args = append(args, k.roomID, k.speakerID, k.clientID)
	}
	var rows []messageRow
	if err := db.Where(where.String(), args...).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("find client message ids: %w", err)
	}
	for i := range rows {
		if key, ok := keyOf(&rows[i]); ok {
			found[key] = &rows[i]
		}
	}
	return found, nil
}

// insertMessages inserts rows, setting their IDs, with as few statements as
// the statement size limit allows (one for ordinary batches).
func (s *Store) insertMessages(tx *gorm.DB, rows []messageRow) error {
	if !s.multiRowInsert {
		for i := range rows {
			if err := tx.Create(&rows[i]).Error; err != nil {
				return fmt.Errorf("insert message: %w", err)
			}
		}
		return nil
	}
	start, size := 0, 0
	for i := range rows {
		size += len(rows[i].Body) + len(rows[i].Detail) + len(rows[i].Thumbnail) + 256
		if size >= maxInsertBytes || i == len(rows)-1 {
			chunk := rows[start : i+1]
			if err := tx.Create(&chunk).Error; err != nil {
				return fmt.Errorf("insert %d messages: %w", len(chunk), err)
			}
			if err := checkConsecutive(chunk); err != nil {
				return err
			}
			start, size = i+1, 0
		}
	}
	return nil
}

// checkConsecutive guards the mapping of IDs to rows: one INSERT under the
// table's write lock gets consecutive IDs in row order, so anything else
// means the IDs cannot be trusted and the batch must not commit.
func checkConsecutive(rows []messageRow) error {
	for i := range rows {
		if rows[i].ID != rows[0].ID+int64(i) || rows[i].ID <= 0 {
			return errors.New("insert messages: the database returned non-consecutive IDs")
		}
	}
	return nil
}

// bumpRooms builds the statement that moves each touched room's
// LastMessageID and UpdateDate forward: a room keeps a higher LastMessageID
// (or later UpdateDate) that another node's batch already wrote. With
// idsPending it runs right after the rows' multi-row INSERT, before their
// IDs are known here: rows[i] then has LAST_INSERT_ID() + i.
func bumpRooms(rows []messageRow, idsPending bool) (string, []any) {
	type bump struct {
		last int64 // the room's newest row: its ID, or its index with idsPending
		date time.Time
	}
	bumps := map[int64]bump{}
	for i, r := range rows {
		b := bumps[r.RoomID]
		if idsPending {
			b.last = int64(i)
		} else {
			b.last = max(b.last, r.ID)
		}
		if r.CreateDate.After(b.date) {
			b.date = r.CreateDate
		}
		bumps[r.RoomID] = b
	}
	ids := make([]int64, 0, len(bumps))
	for id := range bumps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	last := "?"
	if idsPending {
		last = "LAST_INSERT_ID() + ?"
	}
	var lastCase, dateCase, in strings.Builder
	lastCase.Grow(len(ids) * (64 + 2*len(last)))
	dateCase.Grow(len(ids) * 72)
	in.Grow(len(ids) * 3)
	lastArgs := make([]any, 0, 3*len(ids))
	dateArgs := make([]any, 0, 3*len(ids))
	inArgs := make([]any, 0, len(ids))
	for n, id := range ids {
		b := bumps[id]
		lastCase.WriteString(" WHEN ? THEN CASE WHEN last_message_id < " + last + " THEN " + last + " ELSE last_message_id END")
		lastArgs = append(lastArgs, id, b.last, b.last)
		dateCase.WriteString(" WHEN ? THEN CASE WHEN update_date < ? THEN ? ELSE update_date END")
		dateArgs = append(dateArgs, id, b.date, b.date)
		if n > 0 {
			in.WriteString(", ")
		}
		in.WriteString("?")
		inArgs = append(inArgs, id)
	}
	query := "UPDATE rooms SET last_message_id = CASE id" + lastCase.String() + " ELSE last_message_id END, " +
		"update_date = CASE id" + dateCase.String() + " ELSE update_date END WHERE id IN (" + in.String() + ")"
	return query, append(append(lastArgs, dateArgs...), inArgs...)
}
