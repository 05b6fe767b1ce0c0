package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/igm/sockjs-go/v3/sockjs"

	"github.com/cstalk/cstalk/broker/rawconn"
)

// transport is what a connection needs from whatever carries its bytes:
// a raw WebSocket or any SockJS transport look the same behind it.
type transport interface {
	// Name is the transport's metrics label: "raw-websocket", "websocket",
	// "xhr-streaming", ...
	Name() string
	// Receive blocks until inbound bytes arrive and hands them to
	// c.received; STOMP frames may span transport messages or share one.
	// An error ends the connection.
	Receive(c *Conn) error
	// Send writes one outbound message; only one goroutine sends at a time.
	Send(p []byte) error
	// Close starts an orderly close that lets the peer read what was sent;
	// NextReader fails once the close completes.
	Close()
	// Abort drops the connection at once.
	Abort()
	// Context ends when the underlying connection is gone; nil when the
	// transport has no context of its own.
	Context() context.Context
}

// wsTransport is the raw WebSocket at {Path}/websocket: one or more plain
// STOMP frames per text message. gorilla answers the handshake; the frames
// are then read and written on the socket here (ws_frames.go), so that an
// idle connection holds no read buffer and no WebSocket state beyond a few
// fields: a read takes a pooled chunk only once the socket has bytes.
type wsTransport struct {
	nc           net.Conn
	writeTimeout time.Duration
	closeOnce    sync.Once
	chunks       *sync.Pool // *[]byte read buffers, shared by the server's readers
	in           wsReader   // reader goroutine only

	// The read Receive hands raw.Read, bound once, with its buffer and
	// results; reader goroutine only. The buffer is taken when the socket
	// has bytes, not while waiting for them.
	readFn  func(fd uintptr) bool
	readBuf *[]byte
	readN   int
	readErr error

	// Writing at once (write_now.go): raw is the socket (nil when the
	// connection offers none); wmu orders every write, control frames
	// included; rest is what a TrySend left for Flush; frames lends the
	// buffer a frame is built in; closeSent is set once the close frame is
	// written, after which nothing else may be.
	raw       syscall.RawConn
	wmu       sync.Mutex
	rest      []byte
	frames    *sync.Pool
	closeSent bool

	// The write TrySend hands raw.Write, bound once (a closure made for
	// each write would be allocated for each write), with its frame and
	// results; all under wmu.
	writeFn  func(fd uintptr) bool
	writeBuf []byte
	written  int
	writeErr error

	// With the node's readPoller (poller_linux.go) no goroutine waits for
	// the socket's bytes: readable starts readReady when they come, and
	// rstate says whether a reader runs. conn is set before the socket is
	// registered; poller and pollID are set once it is.
	conn   atomic.Pointer[Conn]
	rstate atomic.Int32
	poller *readPoller
	pollID uint64
}

// A polled raw WebSocket's reader states.
const (
	readIdle    int32 = iota // no reader: the socket had no bytes left
	readRunning              // a reader runs (or the connection is being set up, or it has ended)
	readAgain                // a reader runs, and bytes came since it last found none
)

// errWouldBlock is a polled Receive's answer when the socket has no bytes.
var errWouldBlock = errors.New("broker: the socket has no bytes yet")

// closeGrace is how long a closing raw WebSocket waits for the peer's close
// frame, so the peer reads the ERROR frame before the TCP connection goes.
const closeGrace = 2 * time.Second

// errCloseSent refuses a write after the close frame.
var errCloseSent = errors.New("broker: websocket close frame already sent")

func (t *wsTransport) Name() string { return "raw-websocket" }

// Context is nil: the connection's own context is the only one needed.
func (t *wsTransport) Context() context.Context { return nil }

// Receive reads what the socket has, once it has something, and hands the
// messages' payload bytes to c; control frames are answered here.
func (t *wsTransport) Receive(c *Conn) error {
	var n int
	var err error
	if t.raw != nil {
		if err = t.raw.Read(t.readFn); err == nil {
			n, err = t.readN, t.readErr
		}
	} else {
		t.readBuf = t.chunks.Get().(*[]byte)
		n, err = t.nc.Read(*t.readBuf)
	}
	bufp := t.readBuf
	t.readBuf, t.readN, t.readErr = nil, 0, nil
	if bufp != nil {
		defer t.chunks.Put(bufp)
	}
	if n > 0 {
		data, derr := t.decode((*bufp)[:n])
		if len(data) > 0 {
			c.received(data)
		}
		if derr != nil {
			return derr
		}
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	return err
}

// readNow is a polled Receive's read: it never waits for the socket.
func (t *wsTransport) readNow(fd uintptr) bool {
	if !t.readOnce(fd) {
		t.readErr = errWouldBlock
	}
	return true
}

// readable says the socket has bytes (or has ended): it starts a reader
// unless one runs, which is then told to read again before it ends.
func (t *wsTransport) readable() {
	for {
		switch t.rstate.Load() {
		case readIdle:
			if t.rstate.CompareAndSwap(readIdle, readRunning) {
				t.poller.read(t)
				return
			}
		case readRunning:
			if t.rstate.CompareAndSwap(readRunning, readAgain) {
				return
			}
		default:
			return
		}
	}
}

// readReady is a polled connection's turn on one of the poller's readers:
// it reads until the socket has no bytes left; when the connection ends it
// tears it down, as serve does, and keeps the reader's role for good.
func (t *wsTransport) readReady() {
	c := t.conn.Load()
	for {
		err := t.Receive(c)
		if err == nil {
			continue
		}
		if errors.Is(err, errWouldBlock) {
			if t.releaseReader() {
				return
			}
			continue
		}
		t.poller.remove(t)
		c.teardown()
		return
	}
}

// releaseReader ends the reader's turn, false when bytes came since the
// socket was last found empty and it must read again.
func (t *wsTransport) releaseReader() bool {
	if t.rstate.CompareAndSwap(readRunning, readIdle) {
		return true
	}
	t.rstate.Store(readRunning)
	return false
}

// readOnce is Receive's read: it takes a chunk only when the socket has
// bytes for it; false (EAGAIN) has raw.Read wait for them.
func (t *wsTransport) readOnce(fd uintptr) bool {
	if t.readBuf == nil {
		t.readBuf = t.chunks.Get().(*[]byte)
	}
	for {
		t.readN, t.readErr = rawconn.SocketRead(int(fd), *t.readBuf)
		if t.readErr != syscall.EINTR {
			break
		}
	}
	if t.readErr == syscall.EAGAIN {
		t.chunks.Put(t.readBuf)
		t.readBuf, t.readN, t.readErr = nil, 0, nil
		return false
	}
	if t.readN < 0 {
		t.readN = 0
	}
	return true
}

func (t *wsTransport) Send(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if err := t.flushLocked(); err != nil {
		return err
	}
	if t.closeSent {
		return errCloseSent
	}
	if err := t.nc.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
		return err
	}
	bufp := t.frames.Get().(*[]byte)
	defer t.frames.Put(bufp)
	f := appendFrame((*bufp)[:0], p)
	*bufp = f[:0]
	_, err := t.nc.Write(f)
	return err
}

// writeControlLocked writes a control frame (RFC 6455 5.5) within
// deadline; a close frame is the last thing written.
func (t *wsTransport) writeControlLocked(opcode byte, payload []byte, deadline time.Time) error {
	if err := t.flushLocked(); err != nil {
		return err
	}
	if t.closeSent {
		return errCloseSent
	}
	if err := t.nc.SetWriteDeadline(deadline); err != nil {
		return err
	}
	var b [2 + maxControlPayload]byte
	b[0] = 0x80 | opcode
	b[1] = byte(copy(b[2:], payload))
	if opcode == opClose {
		t.closeSent = true
	}
	_, err := t.nc.Write(b[:2+int(b[1])])
	return err
}

func (t *wsTransport) Close() {
	t.closeOnce.Do(func() {
		t.wmu.Lock()
		defer t.wmu.Unlock()
		deadline := time.Now().Add(closeGrace)
		if err := t.writeControlLocked(opClose, closePayload(closeNormal), deadline); err != nil {
			t.Abort() // which a polled reader must hear of
			return
		}
		// The reader sees the peer's close frame, or this deadline; a
		// polled one waits for no deadline, so the socket is closed then.
		_ = t.nc.SetReadDeadline(deadline)
		if t.conn.Load() != nil {
			time.AfterFunc(closeGrace, t.Abort)
		}
	})
}

func (t *wsTransport) Abort() {
	_ = t.nc.Close()
	if t.conn.Load() != nil {
		// Closing takes the socket out of the epoll set without a word:
		// the reader learns here that it has ended.
		t.readable()
	}
}

// sockjsTransport adapts a sockjs-go session (websocket, xhr-streaming,
// xhr-polling, eventsource, htmlfile, jsonp).
type sockjsTransport struct {
	s     sockjs.Session
	name  string
	polls *pollTracker
}

func newSockJSTransport(s sockjs.Session, polls *pollTracker) *sockjsTransport {
	return &sockjsTransport{s: s, name: receiverName(s.ReceiverType()), polls: polls}
}

func receiverName(r sockjs.ReceiverType) string {
	switch r {
	case sockjs.ReceiverTypeWebsocket:
		return "websocket"
	case sockjs.ReceiverTypeXHRStreaming:
		return "xhr-streaming"
	case sockjs.ReceiverTypeXHR:
		return "xhr-polling"
	case sockjs.ReceiverTypeEventSource:
		return "eventsource"
	case sockjs.ReceiverTypeHtmlFile:
		return "htmlfile"
	case sockjs.ReceiverTypeJSONP:
		return "jsonp"
	case sockjs.ReceiverTypeRawWebsocket:
		return "sockjs-raw-websocket"
	default:
		return "sockjs"
	}
}

func (t *sockjsTransport) Name() string             { return t.name }
func (t *sockjsTransport) Context() context.Context { return t.s.Context() }

func (t *sockjsTransport) Receive(c *Conn) error {
	msg, err := t.s.RecvCtx(t.s.Context())
	if err != nil {
		return err
	}
	return c.readMessage(strings.NewReader(msg))
}

func (t *sockjsTransport) Send(p []byte) error { return t.s.Send(string(p)) }

// Close lets a WebSocket session go at once; an HTTP session first hands
// its client what sockjs-go still buffers (see pollTracker). SockJS close
// code 3000 is the protocol's "go away".
func (t *sockjsTransport) Close() {
	switch t.s.ReceiverType() {
	case sockjs.ReceiverTypeWebsocket, sockjs.ReceiverTypeRawWebsocket:
		t.Abort()
	default:
		t.polls.closeWhenDelivered(t.s.ID(), t.Abort)
	}
}

func (t *sockjsTransport) Abort() { _ = t.s.Close(3000, "Go away!") }
