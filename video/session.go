package video

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v3"
)

// session is one signaling connection. Its reader (serve) handles client
// messages one at a time, in order; its writer owns the socket's writes,
// fed by a bounded queue. Whoever decides to close calls fail or abort.
type session struct {
	srv      *Server
	t        transport
	log      *slog.Logger
	lang     string
	urlToken string // a token from the URL, for clients that cannot put one in joinRoom

	out     chan []byte
	closing chan struct{} // closed: the writer flushes and closes
	done    chan struct{} // closed when the writer has finished

	bucket TokenBucket // used only by the reader
	// raw is the message being handled (reader only), relayed as it came.
	raw []byte
	// bound is the room of a connection another node relays here: it may
	// join that room only, and only while it lives here.
	bound *RoomKey

	mu          sync.Mutex
	told        map[string]bool // ids the client knows are in the room
	screens     map[string]bool // ids whose screen share the client was told of
	part        *participant
	closed      bool
	closeReason string

	// link (guarded by mu) carries the session's signaling to its room's
	// node while the room lives on another node; relayed: it ever did.
	link    *relayLink
	relayed bool
}

func (s *Server) newSession(t transport, r *http.Request) *session {
	sess := &session{srv: s, t: t, lang: requestLanguage(r, s.cfg.Language),
		out: make(chan []byte, s.cfg.SendQueue), closing: make(chan struct{}), done: make(chan struct{}),
		told: map[string]bool{}, bucket: NewTokenBucket(s.cfg.MessageRate, s.cfg.MessageBurst, s.now())}
	if r != nil {
		sess.urlToken = r.URL.Query().Get("token")
		if sess.urlToken == "" {
			sess.urlToken, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
	}
	sess.log = s.log.With("transport", t.Name())
	return sess
}

// requestLanguage picks "en" when the client asks for it (?lang=en or an
// Accept-Language starting with en), else def.
func requestLanguage(r *http.Request, def string) string {
	if r == nil {
		return def
	}
	if l := r.URL.Query().Get("lang"); l == "en" || l == "ko" {
		return l
	}
	if al := strings.ToLower(r.Header.Get("Accept-Language")); strings.HasPrefix(al, "en") {
		return "en"
	}
	return def
}

// serve runs the session until the connection ends; it returns after the
// writer has stopped.
func (sess *session) serve() {
	s := sess.srv
	if !s.addSession(sess) {
		sess.fail(fatalError(CodeShutdown))
		sess.writer()
		return
	}
	s.metrics.connections.WithLabelValues(sess.t.Name()).Inc()
	defer func() {
		// Gauge first: Close returns once the session is removed.
		s.metrics.connections.WithLabelValues(sess.t.Name()).Dec()
		s.removeSession(sess)
	}()

	joinTimer := time.AfterFunc(s.cfg.JoinTimeout, func() {
		if sess.participant() == nil && !sess.everJoined() {
			sess.fail(fatalError(CodeJoinTimeout))
		}
	})
	defer joinTimer.Stop()

	go sess.writer()
	for {
		msg, err := sess.t.Recv()
		if errors.Is(err, errTooLarge) {
			sess.sendError(clientError(CodeTooLarge), "")
			continue
		}
		if err != nil {
			break
		}
		sess.handle(msg)
	}
	// The socket is gone: stop the writer, then give up the place after
	// the grace.
	sess.abort()
	<-sess.done
	sess.t.Abort()
	sess.mu.Lock()
	p, link := sess.part, sess.link
	sess.part, sess.link = nil, nil
	sess.mu.Unlock()
	if link != nil {
		// The room's node sees the socket drop and keeps the place for
		// the grace.
		link.abort()
	}
	if p != nil {
		if s.cfg.ReconnectGrace == 0 {
			p.room.leave(p, "dropped")
		} else {
			p.room.dropped(p, sess)
		}
	}
}

func (sess *session) writer() {
	defer close(sess.done)
	ping := time.NewTicker(sess.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case msg := <-sess.out:
			if err := sess.t.Send(msg); err != nil {
				sess.t.Abort()
				return
			}
		case <-ping.C:
			if err := sess.t.Ping(); err != nil {
				sess.t.Abort()
				return
			}
		case <-sess.closing:
			for {
				select {
				case msg := <-sess.out:
					if err := sess.t.Send(msg); err != nil {
						sess.t.Abort()
						return
					}
				default:
					if sess.closeReason == "abort" {
						sess.t.Abort()
					} else {
						sess.t.Close()
					}
					return
				}
			}
		}
	}
}

// enqueue queues an encoded message; a full queue means the client does
// not read, and it is dropped. Called with sess.mu held.
func (sess *session) enqueueLocked(b []byte) {
	if sess.closed {
		return
	}
	select {
	case sess.out <- b:
	default:
		sess.log.Warn("signaling client too slow; closing", "queue", cap(sess.out))
		sess.closeLocked("abort")
	}
}

func (sess *session) closeLocked(reason string) {
	if sess.closed {
		return
	}
	sess.closed = true
	sess.closeReason = reason
	close(sess.closing)
}

func encode(msg any) []byte {
	b, err := json.Marshal(msg)
	if err != nil {
		panic("video: encode " + err.Error()) // only our own types are encoded
	}
	return b
}

// send queues msg.
func (sess *session) send(msg any) {
	b := encode(msg)
	sess.mu.Lock()
	sess.enqueueLocked(b)
	sess.mu.Unlock()
}

// sendIntroducing queues msg, which tells the client about ids.
func (sess *session) sendIntroducing(ids []string, msg any) {
	b := encode(msg)
	sess.mu.Lock()
	for _, id := range ids {
		sess.told[id] = true
	}
	sess.enqueueLocked(b)
	sess.mu.Unlock()
}

// sendAbout queues msg only if the client knows id: the seed's clients
// fail on a message about a participant they were never told of.
func (sess *session) sendAbout(id string, msg any) {
	b := encode(msg)
	sess.mu.Lock()
	if sess.told[id] {
		sess.enqueueLocked(b)
	}
	sess.mu.Unlock()
}

// sendForgetting queues msg (participantLeft) if the client knows id, and
// forgets id.
func (sess *session) sendForgetting(id string, msg any) {
	b := encode(msg)
	sess.mu.Lock()
	if sess.told[id] {
		delete(sess.told, id)
		sess.enqueueLocked(b)
	}
	sess.mu.Unlock()
}

func (sess *session) sendError(e *Error, request string) {
	sess.srv.metrics.errors.WithLabelValues(FrontEndSignal, e.Code).Inc()
	sess.send(errorMsg{ID: msgError, Code: e.Code, Message: text(e.Code, sess.lang), Request: request})
	if e.Close {
		sess.mu.Lock()
		sess.closeLocked("error")
		sess.mu.Unlock()
	}
}

// fail tells the client why and closes the connection.
func (sess *session) fail(e *Error) {
	e = &Error{Code: e.Code, Close: true}
	sess.sendError(e, "")
}

func (sess *session) abort() {
	sess.mu.Lock()
	sess.closeLocked("abort")
	sess.mu.Unlock()
}

func (sess *session) attach(p *participant) {
	sess.mu.Lock()
	sess.part = p
	sess.told = map[string]bool{}
	sess.screens = map[string]bool{}
	sess.mu.Unlock()
}

// detach forgets p (the room closed around it).
func (sess *session) detach(p *participant) {
	sess.mu.Lock()
	if sess.part == p {
		sess.part = nil
	}
	sess.mu.Unlock()
}

func (sess *session) participant() *participant {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.part
}

func (sess *session) everJoined() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return len(sess.told) > 0 || sess.relayed
}

// handle runs one client message. A panic in it (pion on a pathological
// SDP) costs this request, never the process or the room.
func (sess *session) handle(raw []byte) {
	var m inbound
	defer func() {
		if v := recover(); v != nil {
			sess.log.Error("signaling handler panic", "id", m.ID, "panic", v)
			sess.sendError(clientError(CodeInternal), m.ID)
		}
	}()
	if !sess.allow(1) {
		sess.sendError(clientError(CodeRateLimited), "")
		return
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.ID == "" {
		sess.sendError(clientError(CodeBadMessage), "")
		return
	}
	if m.ID == msgReceiveVideoFrom || m.ID == msgJoinRoom {
		if !sess.allow(sess.srv.cfg.OfferCost - 1) {
			sess.sendError(clientError(CodeRateLimited), m.ID)
			return
		}
	}
	if link := sess.relaying(); link != nil {
		sess.forward(link, m.ID, raw)
		return
	}
	sess.raw = raw
	if e := sess.dispatch(&m); e != nil {
		sess.sendError(e, m.ID)
	}
}

// allow takes cost tokens from the connection's bucket.
func (sess *session) allow(cost float64) bool { return sess.bucket.Allow(sess.srv.now(), cost) }

func (sess *session) dispatch(m *inbound) *Error {
	switch m.ID {
	case msgJoinRoom:
		return sess.join(m)
	case msgReceiveVideoFrom, msgOnIceCandidate, msgLeaveRoom, msgVideoStateFrom, msgAudioStateFrom, msgStopScreenShare,
		msgICERestartAnswer, msgSelectLayer:
	default:
		if !isAppSignal(m.ID) {
			return clientError(CodeUnknownMessage)
		}
	}
	p := sess.participant()
	if p == nil || p.signaler() != signaler(sess) {
		// Never joined, left, or replaced by a newer connection of the
		// same user that now owns the place.
		return clientError(CodeNotJoined)
	}
	if room := m.room(); room != "" && room != p.room.key.ID() {
		return clientError(CodeWrongRoom)
	}
	switch m.ID {
	case msgReceiveVideoFrom:
		target, usage, e := m.connection()
		if e != nil {
			return e
		}
		answer, pe, e := p.receiveVideoFrom(sess.srv.ctx, target, usage, m.SDPOffer, true)
		if e != nil {
			return e
		}
		sess.sendAbout(target, answerMsg{ID: msgReceiveVideoAnswer, UserID: target, Name: target, Usage: usage.wire(), SDPAnswer: answer})
		for _, e := range pe.afterAnswer() {
			sess.sendError(e, msgOnIceCandidate)
		}
		if target == p.ident.UserID {
			p.room.announce(p, usage)
		}
		return nil
	case msgOnIceCandidate:
		target, usage, e := m.connection()
		if e != nil {
			return e
		}
		c := m.Candidate
		if c == nil || len(c.Candidate) > 1024 || (c.SDPMid != nil && len(*c.SDPMid) > 64) {
			return clientError(CodeBadCandidate)
		}
		return p.addCandidate(target, usage, webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex})
	case msgICERestartAnswer:
		target, usage, e := m.connection()
		if e != nil {
			return e
		}
		pe := p.peer(peerKey(target, usage))
		if pe == nil {
			return clientError(CodeUnknownParticipant)
		}
		return pe.restartAnswered(m.SDPAnswer, sess.srv.cfg.MaxSDPBytes)
	case msgSelectLayer:
		target, usage, e := m.connection()
		if e != nil {
			return e
		}
		if len(m.RID) > 16 || m.MaxBitrate < 0 {
			return clientError(CodeBadMessage)
		}
		pe := p.peer(peerKey(target, usage))
		if pe == nil || pe.publish || pe.video() == nil {
			return clientError(CodeUnknownParticipant)
		}
		rid := m.RID
		if rid == "auto" {
			rid = ""
		}
		pe.video().selectLayer(rid, m.MaxBitrate)
		return nil
	case msgStopScreenShare:
		p.room.stopScreen(p, true)
		return nil
	case msgLeaveRoom:
		sess.detach(p)
		p.room.leave(p, "leave")
		return nil
	case msgVideoStateFrom, msgAudioStateFrom:
		return sess.setState(p, m)
	default:
		if len(m.Data) > maxAppSignalData {
			return clientError(CodeBadMessage)
		}
		p.room.relay(p, m.ID, m.Data)
		return nil
	}
}

// connection reads the peer connection a message is about: its userId
// and usage.
func (m *inbound) connection() (string, Usage, *Error) {
	target := m.user()
	if !validUserID(target) {
		return "", "", clientError(CodeBadUser)
	}
	usage, ok := ParseUsage(m.Usage)
	if !ok {
		return "", "", clientError(CodeBadMessage)
	}
	return target, usage, nil
}

// setState applies videoStateFrom / audioStateFrom.
func (sess *session) setState(p *participant, m *inbound) *Error {
	if u := m.user(); u != "" && u != p.ident.UserID {
		return clientError(CodeBadUser)
	}
	var video, audio *bool
	if m.ID == msgVideoStateFrom {
		if m.Video == nil {
			return clientError(CodeBadMessage)
		}
		v := bool(*m.Video)
		video = &v
	} else {
		if m.Audio == nil {
			return clientError(CodeBadMessage)
		}
		a := bool(*m.Audio)
		audio = &a
	}
	p.room.setState(p, video, audio, nil)
	return nil
}

func (sess *session) join(m *inbound) *Error {
	if sess.participant() != nil {
		return clientError(CodeAlreadyJoined)
	}
	s := sess.srv
	roomID, userID := m.room(), m.user()
	if !validRoomID(roomID) {
		return clientError(CodeBadRoom)
	}
	if !validUserID(userID) {
		return clientError(CodeBadUser)
	}
	token := m.Token
	if token == "" {
		token = sess.urlToken
	}
	ctx, cancel := contextWithTimeout(s.ctx, s.cfg.AuthTimeout)
	ident, err := s.auth.AuthorizeJoin(ctx, token, userID, string(m.CommunityID), roomID)
	cancel()
	if err != nil {
		e := authError(err)
		if e.Code == CodeInternal {
			sess.log.Error("authorize join", "room", roomID, "user", userID, "err", err)
		} else {
			sess.log.Info("join refused", "room", roomID, "user", userID, "code", e.Code)
		}
		return e
	}
	if ident.UserID == "" {
		ident.UserID = userID
	}
	// The room is the authorizer's company's, whatever communityId the
	// client sent: company 2's c-1 is not company 1's.
	key, ok := RoomKeyOf(ident.CommunityID, roomID)
	if !ok {
		sess.log.Error("authorizer vouched for no company", "room", roomID, "user", userID, "company", ident.CommunityID)
		return clientError(CodeInternal)
	}
	if sess.bound != nil {
		// Relayed here by a node that found the room here: it must still
		// be, or the client rejoins wherever it is now.
		if key != *sess.bound {
			return clientError(CodeWrongRoom)
		}
		if _, self := s.claim(key); !self {
			return fatalError(CodeShutdown)
		}
	} else if addr, self := s.claim(key); !self {
		return sess.relayJoin(addr, key, sess.raw)
	}
	// Kurento's clients send no state and always publish both.
	videoOn, audioOn := m.kurentoNames(), m.kurentoNames()
	if m.Video != nil {
		videoOn = bool(*m.Video)
	}
	if m.Audio != nil {
		audioOn = bool(*m.Audio)
	}
	if _, e := s.join(sess, ident, token, key, videoOn, audioOn); e != nil {
		return e
	}
	return nil
}
