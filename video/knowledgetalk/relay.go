package knowledgetalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/cstalk/cstalk/video"
)

// Rooms across nodes. With a cluster placement a room lives on one node,
// as the video server's other rooms do. A socket whose RoomJoin names a
// room placed on another node is relayed there: this node opens the video
// server's signed relay link to the room's node and passes the client's
// messages through as they came, and the room's node's messages back. On
// the room's node the link is a session like a socket's (its own licence
// checks, rate limits and idle timer), bound to that room, so the member
// is an ordinary member there: RoomJoin answers, Presence, the 1:1 SDP
// relay, the SFU with that node's addresses, screen sharing and the
// signalOp relays all work as for a socket on that node. The link ends
// when the member leaves (ExitRoom, a refused RoomJoin: the socket is in
// no room again), when the socket drops (a departure there), or when the
// room's node ends the session (the socket is closed, as it would be
// there) or dies (the socket is closed: the client rejoins, and the next
// join after the placement's lease opens the room on a live node).

// closeLeft is the close reason of a link whose member left its room.
const closeLeft = "left"

// conn is a session's client: a socket.io socket, or the link another
// node relays a socket's session through.
type conn interface {
	emit(m obj)
	// disconnect ends the connection after what was emitted.
	disconnect(reason string)
	// stuck reports writes that do not progress.
	stuck() bool
	transport() string
}

type socketConn struct{ sock *socket.Socket }

func (c socketConn) emit(m obj)        { _ = c.sock.Emit(event, m) }
func (c socketConn) disconnect(string) { c.sock.Disconnect(true) }
func (c socketConn) transport() string { return "socketio" }

// stuck: socket.io queues writes without bound behind one that does not
// finish.
func (c socketConn) stuck() bool {
	t := c.sock.Conn().Transport()
	return t != nil && !t.Writable()
}

// relayedConn is, on the room's node, the link of a session relayed from
// another node. Only the session's writer writes messages.
type relayedConn struct {
	ws      *websocket.Conn
	timeout time.Duration
}

func (c relayedConn) emit(m obj) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.timeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		_ = c.ws.Close() // the reader ends the session
	}
}

// disconnect closes the link with the reason; the relaying node answers
// the close, which ends the reader.
func (c relayedConn) disconnect(reason string) {
	deadline := time.Now().Add(c.timeout)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
		_ = c.ws.Close()
		return
	}
	_ = c.ws.SetReadDeadline(deadline)
}

// stuck: the write deadline closes a stuck link.
func (relayedConn) stuck() bool       { return false }
func (relayedConn) transport() string { return "relay" }

// serveRelay serves, on the room's node, a session another node relays
// for room key, until the link ends.
func (s *Server) serveRelay(ws *websocket.Conn, key video.RoomKey, r *http.Request) {
	defer ws.Close()
	lang := s.cfg.Language
	if l := r.URL.Query().Get("lang"); l == "en" || l == "ko" {
		lang = l
	}
	sess := newSession(s, relayedConn{ws: ws, timeout: s.cfg.WriteTimeout}, lang, "relay:"+r.RemoteAddr)
	sess.bound = &key
	defer sess.dropped()
	if !s.start(sess) {
		return
	}
	// A client message as the relaying node re-encoded it: about its size
	// (numbers may grow a little).
	ws.SetReadLimit(2 * int64(s.cfg.MaxMessageBytes))
	idle := 3 * s.cfg.PingInterval
	_ = ws.SetReadDeadline(time.Now().Add(idle))
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		select {
		case <-sess.closing:
			continue // what came after the member left is for the node it came from
		default:
		}
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			continue
		}
		sess.handle([]any{m})
		if !sess.inRoom() {
			sess.close(closeLeft)
		}
	}
}

func (sess *session) inRoom() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.part != nil
}

// link is, on the node a socket reached, its session's link to the room's
// node.
type link struct {
	ws  *websocket.Conn
	wmu sync.Mutex
	// ended: this side dropped the link (the socket went away).
	ended atomic.Bool
	// joined: the room's node answered the RoomJoin with 200.
	joined atomic.Bool
}

// abort drops the link: the room's node sees the member's socket drop.
func (l *link) abort() {
	l.ended.Store(true)
	_ = l.ws.Close()
}

// forward passes a client message to the room's node.
func (l *link) forward(sess *session, raw map[string]any) {
	// Unescaped, so the message stays about the size the client sent (the
	// room's node reads at most twice MaxMessageBytes).
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(raw); err != nil {
		return
	}
	l.wmu.Lock()
	_ = l.ws.SetWriteDeadline(time.Now().Add(sess.srv.cfg.WriteTimeout))
	err := l.ws.WriteMessage(websocket.TextMessage, buf.Bytes())
	l.wmu.Unlock()
	if err != nil {
		_ = l.ws.Close() // pump sees the link die and tells the client
	}
}

func (sess *session) linked() *link {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.link
}

// unlink ends the relay of l: the socket is in no room again.
func (sess *session) unlink(l *link) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.link == l {
		sess.link = nil
	}
}

// relayJoin links the session to the node at addr that hosts room key and
// sends it the client's RoomJoin; from then on handle passes every client
// message through.
func (sess *session) relayJoin(c *call, addr string, key video.RoomKey) {
	s := sess.srv
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.MediaTimeout)
	ws, err := s.rooms.DialRelay(ctx, addr, key, url.Values{"lang": {sess.lang}}, nil)
	cancel()
	if err != nil {
		// The room's node is unreachable (dead, until its lease runs out):
		// the client may try again, and the room moves.
		sess.log.Warn("relay to the room's node failed", "room", key.String(), "node", addr, "err", err)
		sess.answer(c.req, codeServerError, nil)
		return
	}
	l := &link{ws: ws}
	sess.mu.Lock()
	sess.link = l
	sess.mu.Unlock()
	select {
	case <-sess.gone:
		sess.unlink(l) // the socket went while the link opened
		l.abort()
		return
	case <-sess.closing:
		sess.unlink(l)
		l.abort()
		return
	default:
	}
	if !s.goOwned(nil, func() { sess.pump(l, key, addr) }) {
		sess.unlink(l)
		l.abort()
		sess.answer(c.req, codeServerError, nil)
		return
	}
	l.forward(sess, c.raw)
	sess.log.Debug("session relayed", "room", key.String(), "node", addr)
}

// pump passes the room's node's messages to the client until the link
// ends, then does what the end means, and keeps the link alive with pings
// (a node that vanishes without resetting the connection is noticed).
func (sess *session) pump(l *link, key video.RoomKey, addr string) {
	cfg := sess.srv.cfg
	ws := l.ws
	idle := 3 * cfg.PingInterval
	_ = ws.SetReadDeadline(time.Now().Add(idle))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(idle)) })
	stop, pinged := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pinged)
		t := time.NewTicker(cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout))
			}
		}
	}()
	defer func() { close(stop); <-pinged }()
	var err error
	for {
		var b []byte
		if _, b, err = ws.ReadMessage(); err != nil {
			break
		}
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		var m obj
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		// The member left (or never got in): the socket is free before the
		// client hears it, so what it sends next is this node's again.
		switch code, _ := m["code"].(string); m["eventOp"] {
		case opRoomJoin:
			if code == codeOK {
				l.joined.Store(true)
			} else if !l.joined.Load() {
				sess.unlink(l)
			}
		case opExitRoom:
			if code == codeOK {
				sess.unlink(l)
			}
		}
		sess.send(m)
	}
	_ = ws.Close()
	var ce *websocket.CloseError
	closed := errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure
	switch {
	case l.ended.Load():
		// The socket went away.
	case closed && ce.Text == closeLeft:
		sess.unlink(l)
	case closed:
		// The room's node ended the session (room closed, idle, shutdown):
		// so does this one.
		sess.unlink(l)
		sess.close(ce.Text)
	default:
		// The room's node went away: the client sees its connection end,
		// as it would on that node, and its rejoin moves the room.
		sess.log.Warn("the room's node dropped the relayed session", "room", key.String(), "node", addr, "err", err)
		sess.unlink(l)
		sess.close("room node gone")
	}
}
