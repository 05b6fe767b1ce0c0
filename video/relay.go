package video

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Signaling relay. A client's signaling may reach any node; its room lives
// on one (see Placement). The node the client reached opens a WebSocket to
// the room's node at RelayPath and from the joinRoom on passes the client's
// messages through it as they came, and the room's node's messages back as
// they are: on the room's node the relayed connection is a signaling
// session like any other (its own authorization, rate limits, reconnect
// grace), so every seed-002 message works across nodes and the client's
// media goes to the room's node, whose candidates the answers carry.

// RelayPath is where a node takes the signaling its peers relay to it.
const RelayPath = "/video/relay"

const (
	relayAuthHeader  = "X-Cstalk-Relay"
	relayTokenHeader = "X-Cstalk-Relay-Token"
	// relayClockSkew is how far apart two nodes' clocks may be.
	relayClockSkew = time.Minute
	// relayReadLimit bounds one message from the room's node (its own
	// messages: an SDP answer is the largest).
	relayReadLimit = 1 << 20
)

// relayMAC signs a relay request for room at ts with the cluster's secret.
func relayMAC(secret []byte, ts int64, room string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10) + "\n" + room))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) relayAuth(key RoomKey) string {
	ts := s.now().Unix()
	return strconv.FormatInt(ts, 10) + "." + relayMAC(s.cfg.RelaySecret, ts, key.String())
}

// relayAuthorized checks a relay request's signature: only nodes of the
// cluster may open sessions that skip the placement.
func (s *Server) relayAuthorized(v string, key RoomKey) bool {
	tsText, mac, ok := strings.Cut(v, ".")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if !ok || err != nil {
		return false
	}
	if d := s.now().Sub(time.Unix(ts, 0)); d > relayClockSkew || d < -relayClockSkew {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(relayMAC(s.cfg.RelaySecret, ts, key.String())))
}

// relayTransport is a relayed connection on the room's node.
type relayTransport struct{ *wsTransport }

func (relayTransport) Name() string { return "relay" }

// serveRelay takes a connection another node relays for room
// ?company=&kind=&name=.
func (s *Server) serveRelay(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := RoomKey{Company: q.Get("company"), Kind: RoomKind(q.Get("kind")), Name: q.Get("name")}
	if s.cfg.Placement == nil {
		http.NotFound(w, r)
		return
	}
	if !key.valid() || !s.relayAuthorized(r.Header.Get(relayAuthHeader), key) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "websocket upgrade expected", http.StatusUpgradeRequired)
		return
	}
	s.mu.Lock()
	handler := s.relays[key.Kind]
	s.mu.Unlock()
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	if handler != nil {
		handler(ws, key, r)
		return
	}
	sess := s.newSession(relayTransport{newWSTransport(ws, s.cfg)}, r)
	sess.urlToken = r.Header.Get(relayTokenHeader)
	sess.bound = &key
	sess.serve()
}

// RelayHandler serves, on the room's node, a connection another node
// relays for room key of a front end's own kind (the signature checked).
// It owns ws and returns when the connection ends.
type RelayHandler func(ws *websocket.Conn, key RoomKey, r *http.Request)

// HandleRelay makes h serve the relayed connections of rooms of kind
// (another front end's: KnowledgeTalk's k). Call it before serving.
func (s *Server) HandleRelay(kind RoomKind, h RelayHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.relays[kind] = h
}

// DialRelay opens a signed relay link to the node at addr (from Claim)
// that hosts room key; q and h travel with the request (q's room fields
// are set here).
func (s *Server) DialRelay(ctx context.Context, addr string, key RoomKey, q url.Values, h http.Header) (*websocket.Conn, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("company", key.Company)
	q.Set("kind", string(key.Kind))
	q.Set("name", key.Name)
	if h == nil {
		h = http.Header{}
	}
	h.Set(relayAuthHeader, s.relayAuth(key))
	d := websocket.Dialer{HandshakeTimeout: s.cfg.AuthTimeout, ReadBufferSize: 4096, WriteBufferSize: 4096}
	ws, resp, err := d.DialContext(ctx, "ws://"+addr+RelayPath+"?"+q.Encode(), h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("relay to %s: %w", addr, err)
	}
	ws.SetReadLimit(relayReadLimit)
	return ws, nil
}

// relayLink is a session's link to the node hosting its room.
type relayLink struct {
	ws  *websocket.Conn
	wmu sync.Mutex
	// ended: this side closed the link (the client left the room or went
	// away), so its end is no news for the client.
	ended atomic.Bool
}

func (l *relayLink) send(msg []byte, timeout time.Duration) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.ws.SetWriteDeadline(time.Now().Add(timeout))
	return l.ws.WriteMessage(websocket.TextMessage, msg)
}

// leave closes the link after the client's leaveRoom: the room's node
// answers the close once it has handled what came before.
func (l *relayLink) leave(timeout time.Duration) {
	l.ended.Store(true)
	deadline := time.Now().Add(timeout)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := l.ws.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
		_ = l.ws.Close()
		return
	}
	_ = l.ws.SetReadDeadline(deadline)
}

// abort drops the link: the room's node sees the client's socket drop.
func (l *relayLink) abort() {
	l.ended.Store(true)
	_ = l.ws.Close()
}

// relayJoin links sess to the node at addr that hosts room key, and sends
// it the client's joinRoom; from then on handle passes messages through.
func (sess *session) relayJoin(addr string, key RoomKey, join []byte) *Error {
	s := sess.srv
	q := url.Values{"lang": {sess.lang}}
	h := http.Header{}
	if sess.urlToken != "" {
		h.Set(relayTokenHeader, sess.urlToken)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.AuthTimeout)
	defer cancel()
	ws, err := s.DialRelay(ctx, addr, key, q, h)
	if err != nil {
		// The room's node is unreachable (dead, until its lease runs out,
		// or draining): the client comes back and the room moves.
		sess.log.Warn("relay to the room's node failed", "room", key.String(), "node", addr, "err", err)
		return fatalError(CodeShutdown)
	}
	link := &relayLink{ws: ws}
	if err := link.send(join, s.cfg.WriteTimeout); err != nil {
		_ = ws.Close()
		sess.log.Warn("relay join", "room", key.String(), "node", addr, "err", err)
		return fatalError(CodeShutdown)
	}
	sess.mu.Lock()
	if sess.closed {
		sess.mu.Unlock()
		_ = ws.Close()
		return nil
	}
	sess.link = link
	sess.relayed = true
	sess.mu.Unlock()
	s.metrics.relayed.Inc()
	if !s.goOwned(func() {
		defer s.metrics.relayed.Dec()
		sess.pump(link, key, addr)
	}) {
		s.metrics.relayed.Dec()
		link.abort()
		return fatalError(CodeShutdown)
	}
	sess.log.Debug("signaling relayed", "room", key.String(), "node", addr)
	return nil
}

// relaying returns the session's link to its room's node, nil when the
// room (if any) is here.
func (sess *session) relaying() *relayLink {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.link
}

// forward passes a client message to the room's node.
func (sess *session) forward(link *relayLink, id string, raw []byte) {
	if err := link.send(raw, sess.srv.cfg.WriteTimeout); err != nil {
		// pump sees the link die and tells the client.
		_ = link.ws.Close()
		return
	}
	if id == msgLeaveRoom {
		link.leave(sess.srv.cfg.WriteTimeout)
	}
}

// pump passes the room's node's messages to the client until the link
// ends, then tells the client what the end means.
func (sess *session) pump(link *relayLink, key RoomKey, addr string) {
	cfg := sess.srv.cfg
	ws := link.ws
	idle := 3 * cfg.PingInterval
	_ = ws.SetReadDeadline(time.Now().Add(idle))
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	var err error
	for {
		var msg []byte
		if _, msg, err = ws.ReadMessage(); err != nil {
			break
		}
		if !link.ended.Load() {
			_ = ws.SetReadDeadline(time.Now().Add(idle))
		}
		sess.mu.Lock()
		sess.enqueueLocked(msg)
		sess.mu.Unlock()
	}
	_ = ws.Close()
	sess.mu.Lock()
	if sess.link == link {
		sess.link = nil
	}
	sess.mu.Unlock()
	switch {
	case link.ended.Load():
		// The client left the room (it may join again) or went away.
	case websocket.IsCloseError(err, websocket.CloseNormalClosure):
		// The room's node told the client why and closed; so does this one.
		sess.mu.Lock()
		sess.closeLocked("error")
		sess.mu.Unlock()
	default:
		// The room's node went away: the client rejoins and the room moves.
		sess.log.Warn("the room's node dropped the relayed signaling", "room", key.String(), "node", addr, "err", err)
		sess.fail(fatalError(CodeShutdown))
	}
}
