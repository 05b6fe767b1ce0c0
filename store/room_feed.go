package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// RoomFeed carries the room changes each node commits to the other nodes
// sharing its MySQL database, so each can keep its message contexts in
// memory (see roomCache). A broker.Bus of its own over Redis is one
// (redisbus.Bus); the store knows only this.
type RoomFeed interface {
	// Publish sends payload on topic to the other nodes (never back to
	// this one), returning once it is on its way to each of them.
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe returns once every later Publish on topic reaches Run.
	Subscribe(ctx context.Context, topic string) error
	// Run hands deliver what other nodes publish, in order, until ctx ends.
	Run(ctx context.Context, deliver func(topic string, payload []byte)) error
	// Continuity's gen changes whenever something published may have been
	// missed since; ok is false while nothing can be delivered.
	Continuity() (gen uint64, ok bool)
}

// roomFeedTopic is the one topic of room changes: every node needs them all.
const roomFeedTopic = "room-changes"

// A payload is a sequence of records, each a kind byte and its varints.
const (
	feedAppended byte = iota + 1 // room, message id, create date (µs), admin type, is customer
	feedRead                     // room, speaker, last read id
	feedForget                   // room
	feedReset                    // every room: news was lost
)

const (
	// feedPublishTimeout bounds one publish; a room change waits for its
	// publish at most this long.
	feedPublishTimeout = 2 * time.Second
	// feedRetry is how soon a failed publish is followed by a reset.
	feedRetry = time.Second
	// maxFeedBuffer bounds what waits for the publisher; past it the
	// records are dropped for a reset.
	maxFeedBuffer = 1 << 20
)

// feedOut is what the node committed and has not published yet; appends are
// published in the background (the writer never waits for Redis), room
// changes before their call returns.
type feedOut struct {
	feed    RoomFeed
	mu      sync.Mutex
	buf     []byte
	waiters []chan struct{} // closed once buf is published or given up
	lost    bool            // records were lost: the next payload starts with a reset
	stopped bool            // the publisher has taken its last payload
	wake    chan struct{}
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// CacheRoomContexts keeps the message contexts of a MySQL store in memory
// (as they always are on SQLite, where it does nothing). feed carries this
// node's changes to the other nodes sharing the database and theirs to it;
// nil declares this node the database's only one. Call it once, before the
// store is used.
func (s *Store) CacheRoomContexts(ctx context.Context, feed RoomFeed) error {
	if s.dialect != dialectMySQL {
		return nil
	}
	if s.roomCache != nil {
		return errors.New("store: room contexts are already cached")
	}
	c := &roomCache{rooms: map[int64]*roomContext{}, ttl: roomCacheTTL}
	if feed != nil {
		if err := feed.Subscribe(ctx, roomFeedTopic); err != nil {
			return fmt.Errorf("store: room feed: %w", err)
		}
		c.feed = feed
		c.gen, _ = feed.Continuity()
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		o := &feedOut{feed: feed, wake: make(chan struct{}, 1), cancel: cancel}
		// Set before the goroutines start: the first change from another
		// node may come at once.
		s.roomCache, s.feedOut = c, o
		o.done.Go(func() { o.publish(runCtx, s) })
		o.done.Go(func() {
			err := feed.Run(runCtx, func(_ string, payload []byte) { s.applyFeed(payload) })
			if err != nil && runCtx.Err() == nil {
				s.log.Error("room feed stopped: message contexts are read again", "err", err)
				c.mu.Lock()
				c.feed = closedFeed{}
				c.mu.Unlock()
			}
		})
		return nil
	}
	s.roomCache = c
	return nil
}

// closedFeed is the feed of a cache whose feed stopped: nothing is cached.
type closedFeed struct{ RoomFeed }

func (closedFeed) Continuity() (uint64, bool) { return 0, false }

// stopFeed publishes what is left and stops the feed's goroutines.
func (s *Store) stopFeed() {
	if o := s.feedOut; o != nil {
		o.cancel()
		o.done.Wait()
	}
}

// tellAppended queues the rooms' bumps by rows for the other nodes.
func (s *Store) tellAppended(rows []messageRow) {
	o := s.feedOut
	if o == nil {
		return
	}
	o.mu.Lock()
	for i := range rows {
		r := &rows[i]
		o.buf = append(o.buf, feedAppended)
		o.buf = binary.AppendVarint(o.buf, r.RoomID)
		o.buf = binary.AppendVarint(o.buf, r.ID)
		o.buf = binary.AppendVarint(o.buf, r.CreateDate.UnixMicro())
		o.buf = binary.AppendVarint(o.buf, int64(r.AdminType))
		o.buf = append(o.buf, boolByte(r.IsCustomer))
	}
	o.checkSize()
	o.mu.Unlock()
	o.signal()
}

// tellForgotten queues the forgetting of the rooms of rows for the other
// nodes, without waiting.
func (s *Store) tellForgotten(rows []messageRow) {
	o := s.feedOut
	if o == nil {
		return
	}
	o.mu.Lock()
	for i := range rows {
		o.buf = append(o.buf, feedForget)
		o.buf = binary.AppendVarint(o.buf, rows[i].RoomID)
	}
	o.checkSize()
	o.mu.Unlock()
	o.signal()
}

// tellRoom publishes a room change (feedRead, feedForget) and waits until
// it is on its way, the publish gave up, or ctx ends.
func (s *Store) tellRoom(ctx context.Context, kind byte, roomID, speakerID, lastID int64) {
	o := s.feedOut
	if o == nil {
		return
	}
	published := make(chan struct{})
	o.mu.Lock()
	if o.stopped { // closing: nobody publishes any more
		o.mu.Unlock()
		return
	}
	o.buf = append(o.buf, kind)
	o.buf = binary.AppendVarint(o.buf, roomID)
	if kind == feedRead {
		o.buf = binary.AppendVarint(o.buf, speakerID)
		o.buf = binary.AppendVarint(o.buf, lastID)
	}
	o.checkSize()
	o.waiters = append(o.waiters, published)
	o.mu.Unlock()
	o.signal()
	select {
	case <-published:
	case <-ctx.Done():
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// checkSize drops the records for a reset when the publisher is far behind;
// o.mu is held.
func (o *feedOut) checkSize() {
	if len(o.buf) > maxFeedBuffer {
		o.buf, o.lost = o.buf[:0], true
	}
}

func (o *feedOut) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// publish is the publisher goroutine: each payload carries everything
// queued since the last one. Once ctx ends it publishes what is left.
func (o *feedOut) publish(ctx context.Context, s *Store) {
	var spare []byte
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for stopping := false; ; {
		select {
		case <-o.wake:
		case <-retry.C:
		case <-ctx.Done():
			stopping = true
		}
		o.mu.Lock()
		payload, waiters, lost := o.buf, o.waiters, o.lost
		o.buf, o.waiters, o.lost, o.stopped = spare[:0], nil, false, stopping
		o.mu.Unlock()
		if lost {
			payload = append([]byte{feedReset}, payload...)
		}
		if len(payload) > 0 {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), feedPublishTimeout)
			err := o.feed.Publish(pctx, roomFeedTopic, payload)
			cancel()
			if err != nil {
				// The other nodes may keep what this changed until their
				// entries expire; they drop everything once the reset
				// gets through.
				s.log.Warn("room changes not published to other nodes", "bytes", len(payload), "err", err)
				o.mu.Lock()
				o.lost = true
				o.mu.Unlock()
				retry.Reset(feedRetry)
			}
		}
		spare = payload
		for _, w := range waiters {
			close(w)
		}
		if stopping {
			return
		}
	}
}

// applyFeed applies another node's changes to the cache.
func (s *Store) applyFeed(payload []byte) {
	c := s.roomCache
	c.mu.Lock()
	if err := applyRecords(c, payload); err != nil {
		s.log.Warn("undecodable room changes from another node: every room is read again", "err", err)
		c.forgetAll()
	}
	c.mu.Unlock()
	if s.afterFeed != nil {
		s.afterFeed()
	}
}

// applyRecords applies the records of payload in order; c.mu is held.
func applyRecords(c *roomCache, p []byte) error {
	for len(p) > 0 {
		kind := p[0]
		p = p[1:]
		var n int
		switch kind {
		case feedReset:
			c.forgetAll()
			continue
		case feedAppended:
			n = 4
		case feedRead:
			n = 3
		case feedForget:
			n = 1
		default:
			return fmt.Errorf("record kind %d", kind)
		}
		var v [4]int64
		for i := range n {
			x, size := binary.Varint(p)
			if size <= 0 {
				return errors.New("truncated record")
			}
			v[i], p = x, p[size:]
		}
		switch kind {
		case feedAppended:
			if len(p) == 0 {
				return errors.New("truncated record")
			}
			c.appended(v[0], roomBump{last: v[1], date: time.UnixMicro(v[2]).UTC(), adminType: int(v[3]), isCustomer: p[0] == 1})
			p = p[1:]
		case feedRead:
			c.read(v[0], v[1], v[2])
		case feedForget:
			c.forget(v[0])
		}
	}
	return nil
}
