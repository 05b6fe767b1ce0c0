package video

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/igm/sockjs-go/v3/sockjs"
)

// transport is what a signaling session needs from whatever carries its
// messages: the plain WebSocket, the SockJS WebSocket framing and every
// SockJS HTTP transport look the same behind it.
type transport interface {
	// Name is the metrics label.
	Name() string
	// Recv returns the next inbound message; errTooLarge for one over the
	// limit (the transport stays usable).
	Recv() ([]byte, error)
	// Send writes one message; only the session's writer calls it.
	Send(p []byte) error
	// Ping keeps an idle connection alive and probes a dead one.
	Ping() error
	// Close ends the connection after what was sent is delivered.
	Close()
	// Abort drops the connection at once.
	Abort()
}

// errTooLarge marks an inbound message over Config.MaxMessageBytes.
var errTooLarge = errors.New("video: message too large")

// wsTransport is the plain WebSocket: one JSON message per text frame.
type wsTransport struct {
	ws           *websocket.Conn
	maxMessage   int
	writeTimeout time.Duration
	idleTimeout  time.Duration
	wmu          sync.Mutex // Send and Ping
	closeOnce    sync.Once
}

func newWSTransport(ws *websocket.Conn, cfg Config) *wsTransport {
	t := &wsTransport{ws: ws, maxMessage: cfg.MaxMessageBytes, writeTimeout: cfg.WriteTimeout, idleTimeout: 3 * cfg.PingInterval}
	_ = ws.SetReadDeadline(time.Now().Add(t.idleTimeout))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(t.idleTimeout)) })
	return t
}

func (t *wsTransport) Name() string { return "websocket" }

func (t *wsTransport) Recv() ([]byte, error) {
	return readLimited(t.ws, t.maxMessage, t.idleTimeout)
}

// readLimited reads one data message of at most max bytes; a larger one is
// skipped without being held in memory.
func readLimited(ws *websocket.Conn, max int, idle time.Duration) ([]byte, error) {
	for {
		kind, r, err := ws.NextReader()
		if err != nil {
			return nil, err
		}
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		if kind != websocket.TextMessage && kind != websocket.BinaryMessage {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
		if err != nil {
			return nil, err
		}
		if len(data) > max {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return nil, err
			}
			return nil, errTooLarge
		}
		return data, nil
	}
}

func (t *wsTransport) Send(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	_ = t.ws.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	return t.ws.WriteMessage(websocket.TextMessage, p)
}

func (t *wsTransport) Ping() error {
	return t.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(t.writeTimeout))
}

// Close sends a close frame and gives the peer a moment to answer it, so
// an error message written before is read.
func (t *wsTransport) Close() {
	t.closeOnce.Do(func() {
		deadline := time.Now().Add(2 * time.Second)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := t.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
			_ = t.ws.Close()
			return
		}
		_ = t.ws.SetReadDeadline(deadline)
	})
}

func (t *wsTransport) Abort() { _ = t.ws.Close() }

// sockjsWSTransport is SockJS framing over a WebSocket
// (/signal/{server}/{session}/websocket): "o" on open, "h" heart-beats,
// a["..."] messages both ways, c[code,"reason"] on close. Served here, not
// by sockjs-go, because sockjs-go reads inbound frames without a limit.
type sockjsWSTransport struct {
	*wsTransport
	pending []string
}

func (t *sockjsWSTransport) Name() string { return "sockjs-websocket" }

func (t *sockjsWSTransport) Recv() ([]byte, error) {
	for len(t.pending) == 0 {
		// JSON string escaping can double a message's size in the frame.
		frame, err := readLimited(t.ws, 2*t.maxMessage+64, t.idleTimeout)
		if err != nil {
			return nil, err
		}
		var msgs []string
		if err := json.Unmarshal(frame, &msgs); err != nil {
			// A frame SockJS would reject: hand it on as one message so the
			// session answers badMessage.
			return frame, nil
		}
		t.pending = msgs
	}
	msg := t.pending[0]
	t.pending = t.pending[1:]
	if len(msg) > t.maxMessage {
		return nil, errTooLarge
	}
	return []byte(msg), nil
}

func (t *sockjsWSTransport) Send(p []byte) error {
	frame, err := json.Marshal([]string{string(p)})
	if err != nil {
		return err
	}
	return t.wsTransport.Send(append([]byte("a"), frame...))
}

// Ping sends a SockJS heart-beat for the client and a WebSocket ping whose
// pong (browsers answer on their own) keeps the read deadline moving:
// SockJS clients send nothing while idle.
func (t *sockjsWSTransport) Ping() error {
	if err := t.wsTransport.Ping(); err != nil {
		return err
	}
	return t.wsTransport.Send([]byte("h"))
}

func (t *sockjsWSTransport) Close() {
	_ = t.wsTransport.Send([]byte(`c[3000,"Go away!"]`))
	t.wsTransport.Close()
}

// sockjsTransport is a sockjs-go session (xhr-streaming, xhr-polling,
// eventsource, htmlfile, jsonp); sockjs-go heart-beats it.
type sockjsTransport struct {
	s          sockjs.Session
	maxMessage int
	closeTimer *time.Timer
	mu         sync.Mutex
}

func (t *sockjsTransport) Name() string { return "sockjs-http" }

func (t *sockjsTransport) Recv() ([]byte, error) {
	msg, err := t.s.RecvCtx(t.s.Context())
	if err != nil {
		return nil, err
	}
	if len(msg) > t.maxMessage {
		return nil, errTooLarge
	}
	return []byte(msg), nil
}

func (t *sockjsTransport) Send(p []byte) error { return t.s.Send(string(p)) }
func (t *sockjsTransport) Ping() error         { return nil }

// Close waits a little before closing: a polling client fetches what was
// queued for it (an error message) only on its next request.
func (t *sockjsTransport) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closeTimer == nil {
		t.closeTimer = time.AfterFunc(time.Second, t.Abort)
	}
}

func (t *sockjsTransport) Abort() { _ = t.s.Close(3000, "Go away!") }

// isSockJSWebSocket reports whether path, below /signal, is
// /{server}/{session}/websocket.
func isSockJSWebSocket(path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	return len(parts) == 3 && parts[2] == "websocket" && parts[0] != "" && parts[1] != "" &&
		!strings.Contains(parts[0], ".") && !strings.Contains(parts[1], ".")
}
