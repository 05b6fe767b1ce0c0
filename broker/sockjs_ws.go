package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// The SockJS websocket transport ({Path}/{server}/{session}/websocket) is
// served here rather than by sockjs-go, which decodes every inbound message
// whole and without a size limit, writes one message per frame and keeps
// two goroutines per session. The framing is small: "o" on open, "h"
// heart-beats, a["..."] for messages both ways, c[code,"reason"] on close.
// sockjs-go still serves /info, the iframe page and the HTTP transports.

// errMessageTooLarge is returned by nextReader for an inbound transport
// message over the limit; the connection answers with an ERROR frame.
var errMessageTooLarge = errors.New("broker: transport message too large")

// isSockJSWebSocket reports whether path, below the prefix, is
// /{server}/{session}/websocket.
func isSockJSWebSocket(path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	return len(parts) == 3 && parts[2] == "websocket" && parts[0] != "" && parts[1] != "" &&
		!strings.Contains(parts[0], ".") && !strings.Contains(parts[1], ".")
}

func (s *Server) serveSockJSWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.isShutdown() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ws, err := s.sockjsUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	t := &sockjsWSTransport{ws: ws, writeTimeout: s.cfg.WriteTimeout, maxMessage: s.maxPostBody(), beatEvery: s.cfg.SockJSHeartbeat, buffers: &s.buffers}
	if err := t.writeRaw([]byte("o")); err != nil {
		_ = ws.Close()
		return
	}
	c := s.newConn(t, r.RemoteAddr)
	if c == nil {
		t.Close()
		_ = ws.Close()
		return
	}
	t.heartbeat = time.AfterFunc(t.beatEvery, t.beat)
	go func() { // see serveRaw
		c.serve()
		t.heartbeat.Stop()
		_ = ws.Close()
	}()
}

type sockjsWSTransport struct {
	ws           *websocket.Conn
	writeTimeout time.Duration
	maxMessage   int64
	beatEvery    time.Duration

	pending   []string   // decoded inbound messages not yet read
	buffers   *sync.Pool // *[]byte, shared by the server's writers
	wmu       sync.Mutex
	lastWrite time.Time
	heartbeat *time.Timer
	closeOnce sync.Once
}

func (t *sockjsWSTransport) Name() string             { return "websocket" }
func (t *sockjsWSTransport) Context() context.Context { return nil }

func (t *sockjsWSTransport) Receive(c *Conn) error {
	r, err := t.nextReader()
	if errors.Is(err, errMessageTooLarge) {
		c.fail(limitError("frame too large", "a transport message exceeds the limit"), "")
		return nil
	}
	if err != nil {
		return err
	}
	return c.readMessage(r)
}

// nextReader returns the next decoded SockJS message.
func (t *sockjsWSTransport) nextReader() (io.Reader, error) {
	for len(t.pending) == 0 {
		kind, r, err := t.ws.NextReader()
		if err != nil {
			return nil, err
		}
		if kind != websocket.TextMessage && kind != websocket.BinaryMessage {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(r, t.maxMessage+1))
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > t.maxMessage {
			return nil, errMessageTooLarge // the rest is skipped by the next nextReader
		}
		if len(data) == 0 {
			continue
		}
		// sockjs-client sends an array of strings; a lone string is valid too.
		if data[0] == '"' {
			var one string
			if err := json.Unmarshal(data, &one); err != nil {
				return nil, fmt.Errorf("broker: sockjs message: %w", err)
			}
			t.pending = append(t.pending, one)
			continue
		}
		if err := json.Unmarshal(data, &t.pending); err != nil {
			return nil, fmt.Errorf("broker: sockjs message: %w", err)
		}
	}
	msg := t.pending[0]
	t.pending[0] = ""
	t.pending = t.pending[1:]
	if len(t.pending) == 0 {
		t.pending = nil
	}
	return strings.NewReader(msg), nil
}

// Send writes p, one or more STOMP frames, as one SockJS message.
func (t *sockjsWSTransport) Send(p []byte) error {
	bufp := t.buffers.Get().(*[]byte)
	defer t.buffers.Put(bufp)
	b := append((*bufp)[:0], 'a', '[')
	b = appendJSONString(b, p)
	b = append(b, ']')
	*bufp = b[:0]
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.writeLocked(b)
}

func (t *sockjsWSTransport) writeRaw(p []byte) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.writeLocked(p)
}

func (t *sockjsWSTransport) writeLocked(p []byte) error {
	if err := t.ws.SetWriteDeadline(time.Now().Add(t.writeTimeout)); err != nil {
		return err
	}
	t.lastWrite = time.Now()
	return t.ws.WriteMessage(websocket.TextMessage, p)
}

// beat sends the SockJS heart-beat when nothing else was written lately;
// it keeps proxies from closing a quiet connection.
func (t *sockjsWSTransport) beat() {
	t.wmu.Lock()
	idle := time.Since(t.lastWrite)
	t.wmu.Unlock()
	if idle >= t.beatEvery*9/10 {
		if err := t.writeRaw([]byte("h")); err != nil {
			return
		}
		idle = 0
	}
	t.heartbeat.Reset(t.beatEvery - idle)
}

func (t *sockjsWSTransport) Close() {
	t.closeOnce.Do(func() {
		if err := t.writeRaw([]byte(`c[3000,"Go away!"]`)); err != nil {
			_ = t.ws.Close()
			return
		}
		deadline := time.Now().Add(closeGrace)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := t.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
			_ = t.ws.Close()
			return
		}
		_ = t.ws.SetReadDeadline(deadline)
	})
}

func (t *sockjsWSTransport) Abort() { _ = t.ws.Close() }

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as a WebSocket text message must be valid UTF-8; U+2028 and
// U+2029 are escaped for JavaScript's sake.
func appendJSONString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
