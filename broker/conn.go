package broker

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
)

// Header is the read side of a frame's headers.
type Header interface {
	Get(key string) string
	Contains(key string) (string, bool)
}

var _ Header = (*frame.Header)(nil)

// Conn is one STOMP connection, whatever transport carries it.
//
// Its reader goroutine parses and handles frames and calls the Application;
// a writer goroutine, started when frames are queued and gone when the queue
// is empty, owns the transport's write side. Whoever decides the connection
// must end calls fail, which queues the ERROR frame; the writer closes the
// transport after writing it, and the reader tears everything down.
type Conn struct {
	srv    *Server
	t      transport
	try    trySender // t, when it can write without blocking; else nil
	id     string
	remote string
	ctx    *connContext
	// stopParent stops the transport's context from cancelling ctx; nil
	// when the transport has none.
	stopParent func() bool
	done       chan struct{} // closed when teardown has finished

	// Owned by the reader goroutine.
	in      inputBuffer
	txs     map[string][]*frame.Frame
	txBytes int  // body bytes buffered by all open transactions
	notDone bool // the frame being handled was refused with ErrNotDone

	lastRead  atomic.Int64 // unix nanos of the last inbound bytes
	lastWrite atomic.Int64 // unix nanos of the last outbound message
	// frameStart is when the first byte of the unfinished frame in c.in
	// arrived (unix nanos), 0 while none is: onTimer enforces FrameTimeout.
	frameStart atomic.Int64

	mu        sync.Mutex
	version   version // set once at CONNECT, before anything else is queued
	principal any
	connected bool            // CONNECTED queued
	english   bool            // CONNECT asked for accept-language: en
	subs      []*subscription // at most MaxSubscriptions: a slice is smaller than a map
	queue     []outItem
	spare     []outItem
	writing   bool
	closing   bool          // the final frames are queued; the writer closes after them
	closed    bool          // torn down: nothing more is queued
	timer     *time.Timer   // nil while not armed
	timerDue  time.Time     // when timer fires; zero while it is stopped
	hbSend    time.Duration // how often the server must send something
	hbRecv    time.Duration // how often the client promised to send something
	nextMsgID uint64        // owned by the (single) writer
	unacked   map[uint64]*subscription
}

// outItem is one queued frame: a MESSAGE for sub (encoded by the writer,
// so a fan-out costs no allocation per subscriber), or, with sub nil, the
// pre-encoded frame in msg.suffix. Small, since idle connections keep their
// queue's backing array.
type outItem struct {
	sub *subscription
	msg *message
	cmd outCommand
}

type outCommand uint8

const (
	outMessage outCommand = iota
	outConnected
	outReceipt
	outError
	outHeartbeat
	outCommands
)

func (c outCommand) String() string {
	switch c {
	case outMessage:
		return "MESSAGE"
	case outConnected:
		return "CONNECTED"
	case outReceipt:
		return "RECEIPT"
	case outError:
		return "ERROR"
	default:
		return "HEARTBEAT"
	}
}

func (c *Conn) ID() string { return c.id } // STOMP session id (unique per node and cluster)

// Principal is what Authenticate returned (nil before CONNECT succeeded).
func (c *Conn) Principal() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.principal
}

// Transport names what carries the connection: "raw-websocket", "websocket",
// "xhr-streaming", "xhr-polling", "eventsource", "htmlfile", "jsonp".
func (c *Conn) Transport() string        { return c.t.Name() }
func (c *Conn) Context() context.Context { return c.ctx } // ends when the connection ends
func (c *Conn) RemoteAddr() string       { return c.remote }

// Close sends an ERROR frame with reason, then closes the connection.
func (c *Conn) Close(reason string) {
	c.fail(&protocolError{kind: "closed", message: reason, detail: reason}, "")
}

// HasSubscription reports whether the connection subscribes to dest, with
// or without its leading slash.
func (c *Conn) HasSubscription(dest string) bool {
	dest = normalizeDestination(dest)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.subs {
		if s.dest == dest {
			return true
		}
	}
	return false
}

// serve is the reader goroutine: it runs until the transport fails or
// closes, then tears the connection down.
func (c *Conn) serve() {
	defer c.teardown()
	for c.t.Receive(c) == nil {
	}
}

// received handles inbound bytes. Reader goroutine only.
func (c *Conn) received(data []byte) {
	c.lastRead.Store(time.Now().UnixNano())
	if !c.isClosing() {
		c.consume(data)
	}
}

// readMessage hands the bytes of one transport message to received, a
// pooled chunk at a time.
func (c *Conn) readMessage(r io.Reader) error {
	chunk := c.srv.chunks.Get().(*[]byte)
	defer c.srv.chunks.Put(chunk)
	for {
		n, err := r.Read(*chunk)
		if n > 0 {
			c.received((*chunk)[:n])
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// consume handles every complete frame in data, keeping an incomplete
// one for the next message.
func (c *Conn) consume(data []byte) {
	wasPending := len(c.in.pending) > 0
	handled, perr := c.in.feed(data, c.srv.limits, &c.version, func(raw []byte) bool {
		f, perr := c.srv.parse(raw, c.version)
		if perr != nil {
			c.fail(perr, "")
			return false
		}
		c.handleSafely(f)
		return !c.isClosing()
	})
	if perr == nil {
		perr = c.holdPending(wasPending && handled == 0)
	}
	if perr != nil {
		c.releasePending()
		c.fail(perr, "")
	}
}

// holdPending accounts for the unfinished frame c.in keeps: its buffer
// against the node's MaxPendingBytes, its age against FrameTimeout (a new
// frame's clock starts unless same says the old one is still unfinished).
func (c *Conn) holdPending(same bool) *protocolError {
	held := cap(c.in.pending)
	if delta := held - c.in.held; delta != 0 {
		c.in.held = held
		total := c.srv.pendingBytes.Add(int64(delta))
		c.srv.metrics.unfinished.Add(float64(delta))
		if delta > 0 && total > int64(c.srv.cfg.MaxPendingBytes) {
			return limitError("server busy", "unfinished frames already hold the server's limit of %d bytes; send frames whole", c.srv.cfg.MaxPendingBytes)
		}
	}
	switch {
	case len(c.in.pending) == 0:
		c.frameStart.Store(0)
	case !same || c.frameStart.Load() == 0:
		now := time.Now()
		c.frameStart.Store(now.UnixNano())
		c.mu.Lock()
		if due := now.Add(c.srv.cfg.FrameTimeout); !c.closing && (c.timerDue.IsZero() || c.timerDue.After(due)) {
			c.resetTimerLocked(c.srv.cfg.FrameTimeout)
		}
		c.mu.Unlock()
	}
	return nil
}

// releasePending drops the unfinished frame and gives its bytes back to
// the node's budget. Reader goroutine only.
func (c *Conn) releasePending() {
	c.in.pending = nil
	if c.in.held != 0 {
		c.srv.pendingBytes.Add(-int64(c.in.held))
		c.srv.metrics.unfinished.Sub(float64(c.in.held))
		c.in.held = 0
	}
	c.frameStart.Store(0)
}

// resetTimerLocked arms the timer; a connection holds one only while it
// is armed, so an idle connection without heart-beats keeps none.
func (c *Conn) resetTimerLocked(d time.Duration) {
	c.timerDue = time.Now().Add(d)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.onTimer)
		return
	}
	c.timer.Reset(d)
}

func (c *Conn) stopTimerLocked() {
	c.timerDue = time.Time{}
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// handleSafely handles f; a panic in the broker or an Application hook
// ends this connection with an ERROR frame instead of the whole node.
func (c *Conn) handleSafely(f *frame.Frame) {
	defer func() {
		if r := recover(); r != nil {
			c.srv.log.Error("panic while handling a frame", "session", c.id, "command", f.Command, "panic", r, "stack", string(debug.Stack()))
			c.fail(&protocolError{kind: "internal", message: "internal error", detail: "the server failed to handle the frame"}, "")
		}
	}()
	c.handle(f)
}

// inputBuffer holds the incomplete frame at the end of what a connection
// has received. It never exceeds the frame limit: scan refuses a frame that
// would.
type inputBuffer struct {
	pending []byte
	held    int  // cap(pending) as counted in the node's pendingBytes
	more    bool // while a frame is handled: bytes of another frame follow it
}

// feed scans data, appended to the pending bytes, and calls handle with
// every complete frame until handle returns false; it returns how many it
// handled. *v is read before each frame, since a CONNECT changes how the
// frames after it are scanned.
func (in *inputBuffer) feed(data []byte, l limits, v *version, handle func(raw []byte) bool) (handled int, _ *protocolError) {
	buf := data
	if len(in.pending) > 0 {
		in.pending = append(in.pending, data...)
		buf = in.pending
	}
	for len(buf) > 0 {
		skip, n, perr := l.scan(buf, *v)
		if perr != nil {
			in.pending = nil
			return handled, perr
		}
		buf = buf[skip:]
		if n == 0 {
			break
		}
		raw := buf[:n]
		buf = buf[n:]
		handled++
		in.more = len(buf) > 0
		if !handle(raw) {
			in.pending = nil
			return handled, nil
		}
	}
	switch {
	case len(buf) == 0:
		in.pending = nil // an idle connection holds no buffer
	case len(in.pending) > 0:
		in.pending = append(in.pending[:0], buf...)
	default:
		in.pending = append([]byte(nil), buf...)
	}
	return handled, nil
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// deliver queues a MESSAGE for sub. It never blocks: a connection whose
// queue is full is cut as a slow consumer.
func (c *Conn) deliver(sub *subscription, m *message) {
	c.mu.Lock()
	if c.closing || !sub.active.Load() {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= c.srv.cfg.OutboundQueue {
		c.failLocked(&protocolError{kind: "slow_consumer", message: "slow consumer",
			detail: "the connection did not read its messages fast enough"}, "")
		c.mu.Unlock()
		return
	}
	if !m.burst && !c.writing && len(c.queue) == 0 && c.try != nil && sub.ack == ackAuto {
		// Nothing waits before this frame: write it here if the socket
		// takes it at once (write_now.go), as the writer for now.
		c.writing = true
		v := c.version
		c.mu.Unlock()
		if c.writeNow(v, sub, m) {
			return
		}
		c.mu.Lock()
		c.queue = append(c.queue, outItem{sub: sub, msg: m})
		c.mu.Unlock()
		go c.writeLoop()
		return
	}
	c.queue = append(c.queue, outItem{sub: sub, msg: m})
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// send queues a pre-encoded frame.
func (c *Conn) send(raw []byte, cmd outCommand) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, outItem{msg: &message{suffix: raw}, cmd: cmd})
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

func (c *Conn) startWriterLocked() bool {
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

// fail is the one place that decides a connection ends: the ERROR frame is
// queued after everything already queued, and the writer closes the
// transport once it is written.
func (c *Conn) fail(e *protocolError, receiptID string) {
	c.mu.Lock()
	start := c.failLocked(e, receiptID)
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

func (c *Conn) failLocked(e *protocolError, receiptID string, extra ...string) (startWriter bool) {
	if c.closing {
		return false
	}
	c.closing = true
	if e.kind != "" {
		c.srv.metrics.errors.WithLabelValues(e.kind).Inc()
	}
	if e.kind != "" && e.kind != "closed" && e.kind != "shutdown" {
		c.srv.log.Debug("connection refused", "session", c.id, "kind", e.kind, "message", e.message, "detail", e.detail)
	}
	if e.kind == "slow_consumer" {
		clear(c.queue)
		c.queue = c.queue[:0]
	}
	v := c.version
	if v == 0 {
		v = v12
	}
	e = localized(e, c.english)
	if e.message != "" {
		c.queue = append(c.queue, outItem{msg: &message{suffix: encodeError(v, e, receiptID, extra...)}, cmd: outError})
	}
	// A writer stuck on a dead peer would hold the connection forever.
	time.AfterFunc(c.srv.cfg.WriteTimeout+closeGrace, c.t.Abort)
	if !c.writing {
		c.writing = true
		return true
	}
	return false
}

// closeQuietly ends the connection without an ERROR frame (DISCONNECT).
func (c *Conn) closeQuietly() {
	c.fail(&protocolError{}, "")
}

// writeBatchSize bounds one transport message when several frames are
// queued together.
const writeBatchSize = 32 << 10

// writeLoop drains the queue, several frames per transport message, and
// exits when the queue is empty; the next queued frame starts a new one, so
// an idle connection holds no writer goroutine.
func (c *Conn) writeLoop() {
	bufp := c.srv.buffers.Get().(*[]byte)
	defer c.srv.buffers.Put(bufp)
	var counts [outCommands]int
	for {
		// What a write at once left unwritten goes before anything else.
		if c.try != nil {
			if err := c.try.Flush(); err != nil {
				c.writeFailed(err)
				return
			}
		}
		c.mu.Lock()
		if c.closed || len(c.queue) == 0 {
			c.writing = false
			// An idle connection keeps its two queue arrays only while
			// they are small.
			if cap(c.queue) > 16 {
				c.queue = nil
			}
			if cap(c.spare) > 16 {
				c.spare = nil
			}
			closeNow := c.closing && !c.closed
			c.mu.Unlock()
			if closeNow {
				c.t.Close()
			}
			return
		}
		items := c.queue
		c.queue, c.spare = c.spare[:0], nil // items return as spare below
		v := c.version
		c.mu.Unlock()

		now := time.Now().UnixNano()
		buf := (*bufp)[:0]
		for i := range items {
			it := &items[i]
			if it.sub != nil {
				if !it.sub.active.Load() {
					continue
				}
				buf = c.appendMessage(buf, v, it.sub, it.msg)
				c.srv.metrics.latency.Observe(float64(now-it.msg.published) / 1e9)
			} else {
				buf = append(buf, it.msg.suffix...)
			}
			counts[it.cmd]++
			if len(buf) >= writeBatchSize || i == len(items)-1 {
				if err := c.t.Send(buf); err != nil {
					c.writeFailed(err)
					*bufp = buf[:0]
					return
				}
				buf = buf[:0]
			}
		}
		if len(buf) > 0 { // the last items were inactive subscriptions
			if err := c.t.Send(buf); err != nil {
				c.writeFailed(err)
				*bufp = buf[:0]
				return
			}
		}
		*bufp = buf[:0]
		c.lastWrite.Store(time.Now().UnixNano())
		for cmd, n := range counts {
			if n > 0 {
				c.srv.metrics.framesOut[cmd].Add(float64(n))
				counts[cmd] = 0
			}
		}
		clear(items)
		c.mu.Lock()
		if cap(items) <= 256 && !c.closed {
			c.spare = items[:0]
		}
		c.mu.Unlock()
	}
}

func (c *Conn) appendMessage(b []byte, v version, sub *subscription, m *message) []byte {
	c.nextMsgID++
	id := c.nextMsgID
	b = append(b, sub.prefix...)
	b = append(b, "message-id:"...)
	b = appendUint(b, id)
	b = append(b, '\n')
	if sub.ack != ackAuto {
		if v == v12 {
			b = append(b, "ack:"...)
			b = appendUint(b, id)
			b = append(b, '\n')
		}
		c.mu.Lock()
		if c.unacked == nil {
			c.unacked = make(map[uint64]*subscription)
		}
		c.unacked[id] = sub
		tooMany := len(c.unacked) > c.srv.cfg.OutboundQueue
		c.mu.Unlock()
		if tooMany {
			c.fail(&protocolError{kind: "slow_consumer", message: "slow consumer",
				detail: "too many messages are waiting for an ACK"}, "")
		}
	}
	return append(b, m.suffix...)
}

func (c *Conn) writeFailed(err error) {
	c.mu.Lock()
	c.writing = false
	c.closing = true
	c.queue = nil
	c.mu.Unlock()
	c.srv.metrics.errors.WithLabelValues("write").Inc()
	c.srv.log.Debug("write failed", "session", c.id, "err", err)
	c.t.Abort()
}

// onTimer enforces the CONNECT deadline and both heart-beat directions.
func (c *Conn) onTimer() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	connected := c.connected
	send, recv := c.hbSend, c.hbRecv
	c.timerDue = time.Time{}
	c.mu.Unlock()
	if !connected {
		c.fail(limitError("connect timeout", "no CONNECT frame within %s", c.srv.cfg.ConnectTimeout), "")
		return
	}
	now := time.Now().UnixNano()
	next := time.Duration(-1)
	if start := c.frameStart.Load(); start != 0 {
		left := c.srv.cfg.FrameTimeout - time.Duration(now-start)
		if left <= 0 {
			c.fail(limitError("frame timeout", "a frame was not completed within %s of its first byte", c.srv.cfg.FrameTimeout), "")
			return
		}
		next = left
	}
	if send > 0 {
		idle := time.Duration(now - c.lastWrite.Load())
		wait := send - idle
		if idle >= send*9/10 {
			c.send([]byte{'\n'}, outHeartbeat)
			wait = send
		}
		if next < 0 || wait < next {
			next = wait
		}
	}
	if recv > 0 {
		limit := recv + recv/2
		silent := time.Duration(now - c.lastRead.Load())
		if silent >= limit {
			c.fail(limitError("heart-beat timeout", "nothing received for %s; the client promised a heart-beat every %s", silent.Round(time.Millisecond), recv), "")
			return
		}
		if wait := limit - silent; next < 0 || wait < next {
			next = wait
		}
	}
	c.mu.Lock()
	switch {
	case next >= 0:
		// The reader may have armed the timer for a new frame meanwhile.
		if !c.closing && (c.timerDue.IsZero() || time.Until(c.timerDue) > next) {
			c.resetTimerLocked(next)
		}
	case c.timerDue.IsZero():
		c.timer = nil // fired, and nothing to wait for
	}
	c.mu.Unlock()
}

// teardown runs once, on the reader goroutine, after the transport is done.
func (c *Conn) teardown() {
	c.mu.Lock()
	c.closing = true
	c.closed = true
	c.queue = nil
	c.spare = nil
	c.unacked = nil
	c.stopTimerLocked()
	subs := c.subs
	c.subs = nil
	connected := c.connected
	c.mu.Unlock()
	c.t.Abort()
	c.releasePending()

	for _, s := range subs {
		c.srv.unsubscribe(s)
		c.safely("Unsubscribed", func() { c.srv.app.Unsubscribed(c.ctx, c, s.dest) })
	}
	if connected {
		c.safely("Disconnected", func() { c.srv.app.Disconnected(c.ctx, c) })
	}
	c.endContext()
	c.srv.removeConn(c)
	close(c.done)
}

// endContext ends the connection's context.
func (c *Conn) endContext() {
	if c.stopParent != nil {
		c.stopParent()
	}
	c.ctx.cancel(nil)
}

// safely runs an Application hook of the teardown, where a panic must not
// stop the rest of it or the node.
func (c *Conn) safely(hook string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			c.srv.metrics.errors.WithLabelValues("internal").Inc()
			c.srv.log.Error("panic in application hook", "session", c.id, "hook", hook, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	fn()
}
