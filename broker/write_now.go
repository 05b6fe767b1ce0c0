package broker

import (
	"encoding/binary"
	"errors"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/cstalk/cstalk/broker/rawconn"
)

// Writing a delivery at once. A connection's writer goroutine starts when
// something is queued and ends when the queue is empty, so an idle
// connection holds none; but at a few messages per second per connection
// that meant a goroutine started for nearly every delivery. On a raw
// WebSocket the publisher now writes the frame itself when the socket takes
// it at once (one non-blocking write); a socket that cannot take it leaves
// the delivery to the writer goroutine as before, so a slow reader never
// holds up a publisher. A delivery of a burst (message.burst: its publisher
// sent more frames in the same read) goes to the writer too, which then
// writes what queued meanwhile at once: written one at a time, a busy
// subscriber's deliveries took about four times the CPU.

// trySender is a transport that can write a message without blocking.
type trySender interface {
	// TrySend writes p as one message if the socket takes it now. sent
	// reports that p is written or in hand: pending that part of it waits
	// for Flush, which must come before anything else is written.
	TrySend(p []byte) (sent, pending bool, err error)
	// Flush writes what TrySend left pending, blocking up to the write
	// timeout.
	Flush() error
}

// newWSTransport takes over ws's socket after the handshake; gorilla's
// connection, with its buffers, is not used again. It writes at once when
// its socket allows.
func (s *Server) newWSTransport(ws *websocket.Conn) *wsTransport {
	t := &wsTransport{nc: ws.NetConn(), writeTimeout: s.cfg.WriteTimeout, chunks: &s.chunks, frames: &s.buffers}
	if sc, ok := t.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			t.raw = raw
			t.writeFn = t.writeOnce
			t.readFn = t.readOnce
		}
	}
	return t
}

func (t *wsTransport) TrySend(p []byte) (sent, pending bool, err error) {
	if t.raw == nil || !t.wmu.TryLock() {
		return false, false, nil
	}
	defer t.wmu.Unlock()
	if len(t.rest) > 0 || t.closeSent {
		return false, false, nil // the writer has bytes to finish first
	}
	bufp := t.frames.Get().(*[]byte)
	defer t.frames.Put(bufp)
	f := appendFrame((*bufp)[:0], p)
	*bufp = f[:0]
	// A deadline left by an earlier write may have passed; this write
	// never waits, so it needs none.
	if err := t.nc.SetWriteDeadline(time.Time{}); err != nil {
		return false, false, err
	}
	t.writeBuf = f
	err = t.raw.Write(t.writeFn)
	n, werr := t.written, t.writeErr
	t.writeBuf, t.writeErr = nil, nil
	if err != nil {
		return false, false, err
	}
	switch {
	case errors.Is(werr, syscall.EAGAIN):
		return false, false, nil
	case werr != nil:
		return false, false, werr
	case n < len(f):
		t.rest = append(t.rest[:0], f[n:]...)
		return true, true, nil
	}
	return true, false, nil
}

// writeOnce is TrySend's write: never wait for the socket, that is the
// writer goroutine's job.
func (t *wsTransport) writeOnce(fd uintptr) bool {
	t.written, t.writeErr = rawconn.SocketWrite(int(fd), t.writeBuf)
	return true
}

func (t *wsTransport) Flush() error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.flushLocked()
}

func (t *wsTransport) flushLocked() error {
	if len(t.rest) == 0 {
		return nil
	}
	if err := t.nc.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
		return err
	}
	_, err := t.nc.Write(t.rest)
	t.rest = nil
	return err
}

// appendFrame appends p as one unmasked, unfragmented WebSocket message
// (RFC 6455 5.2): text when it is UTF-8, else binary, as Send does.
func appendFrame(b, p []byte) []byte {
	opcode := byte(websocket.TextMessage)
	if !utf8.Valid(p) {
		opcode = byte(websocket.BinaryMessage)
	}
	b = append(b, 0x80|opcode)
	switch n := len(p); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// writeNow writes a MESSAGE for sub at once when the transport takes it
// without blocking; false when nothing was written. The caller holds the
// writer's role (c.writing) and keeps it when false is returned.
func (c *Conn) writeNow(v version, sub *subscription, m *message) bool {
	bufp := c.srv.buffers.Get().(*[]byte)
	defer c.srv.buffers.Put(bufp)
	buf := c.appendMessage((*bufp)[:0], v, sub, m)
	*bufp = buf[:0]
	sent, pending, err := c.try.TrySend(buf)
	if err != nil {
		c.writeFailed(err)
		return true
	}
	if !sent {
		return false
	}
	now := time.Now().UnixNano()
	c.lastWrite.Store(now)
	c.srv.metrics.latency.Observe(float64(now-m.published) / 1e9)
	c.srv.metrics.framesOut[outMessage].Inc()
	c.mu.Lock()
	if pending || len(c.queue) > 0 || (c.closing && !c.closed) {
		// Whatever came meanwhile, the rest of this frame or the close is
		// the writer goroutine's.
		c.mu.Unlock()
		go c.writeLoop()
		return true
	}
	c.writing = false
	c.mu.Unlock()
	return true
}
