package knowledgetalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/cstalk/cstalk/video"
)

// session is one socket on /SignalServer. socket.io hands it the client's
// events one at a time, in order (handle); its writer (run) owns the
// outbound queue, the idle and stuck-write timers, and the leaving of the
// room when the socket goes.
type session struct {
	srv  *Server
	conn conn
	log  *slog.Logger
	lang string
	// bound is the room of a session another node relays here: it may
	// join that room alone, and never relays again.
	bound *video.RoomKey

	out     chan obj
	closing chan struct{} // closed: flush, then disconnect
	gone    chan struct{} // closed when the socket disconnected
	lastIn  atomic.Int64  // unix nanos of the last client message

	// bucket is used only by handle (socket.io runs it one event at a
	// time)
	bucket video.TokenBucket

	mu          sync.Mutex
	closeOnce   sync.Once
	goneOnce    sync.Once
	closeReason string // set once by close, before closing
	// link relays the socket's session to the node hosting its room, from
	// a RoomJoin of a room placed elsewhere until the member leaves it.
	link *link
	// the room, set by RoomJoin (roomID and company before the join, so
	// the welcome can name them) and cleared by ExitRoom
	roomID  string
	company int64
	part    *video.Participant
	userID  string
	// peak is the most members the room has held: above two it is an
	// SFU call for good.
	peak int
	// camAnnounced: this member's camera is a feed, so it is told of the
	// others' feeds as they come (before, it hears them all at once).
	camAnnounced bool
}

func newSession(s *Server, c conn, lang, id string) *session {
	sess := &session{srv: s, conn: c, lang: lang,
		out: make(chan obj, s.cfg.SendQueue), closing: make(chan struct{}), gone: make(chan struct{}),
		bucket: video.NewTokenBucket(s.cfg.MessageRate, s.cfg.MessageBurst, s.now())}
	sess.lastIn.Store(s.now().UnixNano())
	sess.log = s.log.With("socket", id)
	return sess
}

// dropped tells the session its client is gone.
func (sess *session) dropped() { sess.goneOnce.Do(func() { close(sess.gone) }) }

// handshakeLanguage picks "en" when the client asks (?lang=en or an
// Accept-Language starting with en).
func handshakeLanguage(h *socket.Handshake, def string) string {
	if v, ok := h.Query["lang"]; ok {
		if l := fmt.Sprint(v); strings.Contains(l, "en") {
			return "en"
		} else if strings.Contains(l, "ko") {
			return "ko"
		}
	}
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Accept-Language") && strings.HasPrefix(strings.ToLower(strings.Trim(fmt.Sprint(v), "[]")), "en") {
			return "en"
		}
	}
	return def
}

// run writes until the socket is gone or the session closes it, then
// takes the member out of its room (a dropped socket is a departure: no
// grace, no resume).
func (sess *session) run() {
	s := sess.srv
	done := s.rooms.SignalingConnection(sess.conn.transport())
	defer done()
	idle := time.NewTimer(s.cfg.IdleTimeout)
	defer idle.Stop()
	check := time.NewTicker(s.cfg.WriteTimeout / 4)
	defer check.Stop()
	var stuckSince time.Time
loop:
	for {
		select {
		case m := <-sess.out:
			sess.conn.emit(m)
		case <-idle.C:
			silent := s.now().Sub(time.Unix(0, sess.lastIn.Load()))
			if silent >= s.cfg.IdleTimeout {
				sess.log.Info("session idle; closing", "silent", silent)
				sess.close("idle")
				continue
			}
			idle.Reset(s.cfg.IdleTimeout - silent)
		case <-check.C:
			// socket.io queues writes without bound behind one that does
			// not finish: a client that stopped reading is cut off.
			if sess.conn.stuck() {
				if stuckSince.IsZero() {
					stuckSince = s.now()
				} else if s.now().Sub(stuckSince) > s.cfg.WriteTimeout {
					sess.log.Warn("client does not read; closing")
					sess.conn.disconnect("slow")
					break loop
				}
			} else {
				stuckSince = time.Time{}
			}
		case <-sess.closing:
			for {
				select {
				case m := <-sess.out:
					sess.conn.emit(m)
				default:
					sess.conn.disconnect(sess.closeReason)
					break loop
				}
			}
		case <-sess.gone:
			break loop
		}
	}
	sess.leave("dropped")
}

// close ends the session after what is queued is sent.
func (sess *session) close(reason string) {
	sess.closeOnce.Do(func() {
		sess.log.Info("closing session", "reason", reason)
		sess.closeReason = reason
		close(sess.closing)
	})
}

// send queues m; a client whose queue is full does not read and is
// closed.
func (sess *session) send(m obj) {
	select {
	case sess.out <- m:
	default:
		sess.log.Warn("client too slow; closing", "queue", cap(sess.out))
		sess.close("slow")
	}
}

// answer sends r's answer: its op, code and message, r's reqNo, and
// extra fields.
func (sess *session) answer(r *request, code string, extra obj) {
	m := obj{r.opKey(): r.op(), "code": code, "message": codeText(code, sess.lang)}
	if len(r.ReqNo) > 0 {
		var v any
		if json.Unmarshal(r.ReqNo, &v) == nil {
			m["reqNo"] = v
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	if code != codeOK {
		sess.srv.rooms.SignalingError(FrontEnd, code)
	}
	sess.send(m)
}

// handle runs one client event. A panic (a pathological SDP deep in pion)
// costs this request, never the process or the room.
func (sess *session) handle(args []any) {
	s := sess.srv
	sess.lastIn.Store(s.now().UnixNano())
	if l := sess.linked(); l != nil {
		// The room lives on another node: its session there answers.
		if raw, ok := firstObject(args); ok {
			l.forward(sess, raw)
		}
		return
	}
	var r request
	defer func() {
		if v := recover(); v != nil {
			sess.log.Error("knowledgetalk handler panic", "op", r.op(), "panic", v)
			sess.answer(&r, codeServerError, nil)
		}
	}()
	raw, ok := firstObject(args)
	if !ok {
		sess.answer(&r, codeBadRequest, nil)
		return
	}
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if r.isAck() {
		return // acknowledgements pass without a check or an answer
	}
	op := r.op()
	if !sess.allow(sess.cost(op)) {
		sess.answer(&r, codeOverLimit, nil)
		return
	}
	if err != nil {
		sess.answer(&r, codeInvalid, nil)
		return
	}
	switch op {
	case opKeepAlive:
		sess.answer(&r, codeOK, nil)
		return
	case opStartSession, opCandidate, opReceiveFeed, opPresence, opScreenEndSvr:
		// The server's own ops: a client never asks them (it acknowledges
		// them, above); answering with the same op would read as a new one.
		return
	case "":
		sess.answer(&r, codeBadRequest, nil)
		return
	}
	h, known := handlers[op]
	if !known {
		sess.answer(&r, codeBadRequest, nil)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StoreTimeout)
	company, err := s.licences.check(ctx, r.CPCode, r.AuthKey)
	cancel()
	switch {
	case errors.Is(err, errBadLicence):
		sess.log.Info("licence refused", "op", op, "cp_code", r.CPCode)
		sess.answer(&r, codeUnauthorized, nil)
		return
	case err != nil:
		sess.log.Error("licence check", "op", op, "err", err)
		sess.answer(&r, codeServerError, nil)
		return
	}
	h(sess, &call{req: &r, raw: raw, company: company})
}

// firstObject returns the event's JSON object.
func firstObject(args []any) (map[string]any, bool) {
	if len(args) == 0 {
		return nil, false
	}
	m, ok := args[0].(map[string]any)
	return m, ok
}

// cost is what op takes from the bucket: building a peer connection or
// writing the store costs more.
func (sess *session) cost(op string) float64 {
	switch op {
	case opCreateRoom, opRoomJoin, opSDP, opSendFeed, opDestroyRoom:
		return sess.srv.cfg.HeavyCost
	}
	return 1
}

// allow takes cost tokens from the bucket.
func (sess *session) allow(cost float64) bool { return sess.bucket.Allow(sess.srv.now(), cost) }

// leave takes the member out of its room, if in one; a link to the
// room's node is dropped (there, the member's socket dropped).
func (sess *session) leave(reason string) {
	sess.mu.Lock()
	if sess.link != nil {
		sess.link.abort()
		sess.link = nil
	}
	p, id, company := sess.part, sess.roomID, sess.company
	sess.part, sess.roomID, sess.userID, sess.peak, sess.camAnnounced = nil, "", "", 0, false
	sess.mu.Unlock()
	if p == nil {
		return
	}
	p.Leave(reason)
	sess.srv.exited(company, id)
}
