package broker

import (
	"context"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"
)

// transport is what a connection needs from whatever carries its bytes:
// a raw WebSocket or any SockJS transport look the same behind it.
type transport interface {
	// Name is the transport's metrics label: "raw-websocket", "websocket",
	// "xhr-streaming", ...
	Name() string
	// NextReader blocks until the next inbound message and returns its bytes.
	// STOMP frames may span messages or share one.
	NextReader() (io.Reader, error)
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
// STOMP frames per text message.
type wsTransport struct {
	ws           *websocket.Conn
	writeTimeout time.Duration
	closeOnce    sync.Once

	// Writing at once (write_now.go): raw is the socket (nil when the
	// connection offers none); wmu orders every write, gorilla's control
	// frames included; rest is what a TrySend left for Flush; frames
	// lends the buffer a frame is built in.
	raw    syscall.RawConn
	wmu    sync.Mutex
	rest   []byte
	frames *sync.Pool

	// The write TrySend hands raw.Write, bound once (a closure made for
	// each write would be allocated for each write), with its frame and
	// results; all under wmu.
	writeFn  func(fd uintptr) bool
	writeBuf []byte
	written  int
	writeErr error
}

// closeGrace is how long a closing raw WebSocket waits for the peer's close
// frame, so the peer reads the ERROR frame before the TCP connection goes.
const closeGrace = 2 * time.Second

func (t *wsTransport) Name() string { return "raw-websocket" }

// Context is nil: the connection's own context is the only one needed.
func (t *wsTransport) Context() context.Context { return nil }

func (t *wsTransport) NextReader() (io.Reader, error) {
	for {
		kind, r, err := t.ws.NextReader()
		if err != nil {
			return nil, err
		}
		if kind == websocket.TextMessage || kind == websocket.BinaryMessage {
			return r, nil
		}
	}
}

func (t *wsTransport) Send(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if err := t.flushLocked(); err != nil {
		return err
	}
	if err := t.ws.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
		return err
	}
	// A text message must be valid UTF-8 or browsers drop the connection;
	// a body that is not goes out as a binary message, which STOMP clients
	// read the same way.
	kind := websocket.TextMessage
	if !utf8.Valid(p) {
		kind = websocket.BinaryMessage
	}
	return t.ws.WriteMessage(kind, p)
}

func (t *wsTransport) Close() {
	t.closeOnce.Do(func() {
		t.wmu.Lock()
		defer t.wmu.Unlock()
		if err := t.flushLocked(); err != nil {
			_ = t.ws.Close()
			return
		}
		deadline := time.Now().Add(closeGrace)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := t.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
			_ = t.ws.Close()
			return
		}
		// The reader sees the peer's close frame, or this deadline.
		_ = t.ws.SetReadDeadline(deadline)
	})
}

func (t *wsTransport) Abort() { _ = t.ws.Close() }

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

func (t *sockjsTransport) NextReader() (io.Reader, error) {
	msg, err := t.s.RecvCtx(t.s.Context())
	if err != nil {
		return nil, err
	}
	return strings.NewReader(msg), nil
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
