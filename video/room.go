package video

import (
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pion/webrtc/v3"
)

func validUserID(id string) bool {
	if id == "" || len(id) > 128 || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// room is one video room: its participants and who publishes. Its mutex
// orders joins, leaves and state changes, and the announcements of them,
// so every participant sees the same sequence.
type room struct {
	key      RoomKey
	srv      *Server
	openedAt time.Time

	mu           sync.Mutex
	participants map[string]*participant // by user id
	nextSeq      uint64
	closed       bool // no longer in the registry; joiners retry
}

// participant is one user in a room. Its forward tracks live as long as it
// is in the room; its peer connections come and go with offers.
type participant struct {
	room     *room
	ident    Identity
	token    string
	seq      uint64
	joinedAt time.Time
	audio    *forwardTrack
	video    *forwardTrack

	// guarded by room.mu
	sess       signaler // nil within the reconnect grace
	videoOn    bool
	audioOn    bool
	publishing bool
	left       bool
	grace      *time.Timer

	mu          sync.Mutex // guards peers, pending and peersClosed
	peersClosed bool       // left: no new peer connections
	peers       map[string]*peer
	pending     map[string][]webrtc.ICECandidateInit // candidates before their offer
}

func (p *participant) member() Member {
	return Member{UserID: p.ident.UserID, Video: p.videoOn, Audio: p.audioOn}
}

// othersLocked returns the other participants in join order.
func (r *room) othersLocked(except *participant) []*participant {
	out := make([]*participant, 0, len(r.participants))
	for _, p := range r.participants {
		if p != except {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *participant) int { return int(a.seq) - int(b.seq) })
	return out
}

// welcomeLocked sends the joiner the others.
func (r *room) welcomeLocked(p *participant) {
	others := r.othersLocked(p)
	members := make([]Member, 0, len(others))
	for _, o := range others {
		members = append(members, o.member())
	}
	p.sess.welcome(p.ident.UserID, members, r.srv.iceServers(p.ident.UserID), layoutFor(len(r.participants)))
}

// signalersLocked returns the front ends of everyone with a socket.
func (r *room) signalersLocked() []signaler {
	out := make([]signaler, 0, len(r.participants))
	for _, o := range r.participants {
		if o.sess != nil {
			out = append(out, o.sess)
		}
	}
	return out
}

// removeLocked takes p out of the room and tells the others. The caller
// closes the returned peer connections outside the lock.
func (r *room) removeLocked(p *participant) (toClose []*peer) {
	if p.left {
		return nil
	}
	p.left = true
	if p.grace != nil {
		p.grace.Stop()
		p.grace = nil
	}
	delete(r.participants, p.ident.UserID)
	layout := layoutFor(len(r.participants))
	for _, o := range r.participants {
		if o.sess != nil {
			o.sess.left(p.ident.UserID, layout)
		}
		toClose = append(toClose, o.takePeer(p.ident.UserID)...)
	}
	toClose = append(toClose, p.takeAllPeers()...)
	if p.publishing {
		p.publishing = false
	}
	p.audio.stop()
	p.video.stop()
	return toClose
}

// publishersLocked counts participants that publish.
func (r *room) publishersLocked() int {
	n := 0
	for _, p := range r.participants {
		if p.publishing {
			n++
		}
	}
	return n
}

// takePeer removes and returns p's peer connection for target, and any
// candidates kept for it.
func (p *participant) takePeer(target string) []*peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, target)
	if pe := p.peers[target]; pe != nil {
		delete(p.peers, target)
		return []*peer{pe}
	}
	return nil
}

func (p *participant) takeAllPeers() []*peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*peer, 0, len(p.peers))
	for _, pe := range p.peers {
		out = append(out, pe)
	}
	p.peers = map[string]*peer{}
	p.pending = map[string][]webrtc.ICECandidateInit{}
	p.peersClosed = true
	return out
}

func closePeers(peers []*peer) {
	for _, pe := range peers {
		pe.close()
	}
}

// join puts sess's user into room key: a new participant, or, when the
// same user joins with the same token while its place is held (socket
// dropped, or a second tab taking over), the existing one resumed.
func (s *Server) join(sess signaler, ident Identity, token string, key RoomKey, videoOn, audioOn bool) (*participant, *Error) {
	for {
		r, opened, err := s.roomFor(key)
		if err != nil {
			return nil, err
		}
		p, retry, err := r.join(sess, ident, token, videoOn, audioOn, opened)
		if retry {
			continue
		}
		return p, err
	}
}

// roomFor returns the open room key, creating it.
func (s *Server) roomFor(key RoomKey) (*room, bool, *Error) {
	if !key.valid() {
		s.log.Error("join with an incomplete room key", "room", key.String())
		return nil, false, fatalError(CodeInternal)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, fatalError(CodeShutdown)
	}
	if r := s.rooms[key]; r != nil {
		return r, false, nil
	}
	r := &room{key: key, srv: s, openedAt: s.now(), participants: map[string]*participant{}}
	s.rooms[key] = r
	s.metrics.rooms.Inc()
	return r, true, nil
}

func (r *room) join(sess signaler, ident Identity, token string, videoOn, audioOn, opened bool) (_ *participant, retry bool, _ *Error) {
	s := r.srv
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, true, nil
	}
	var toClose []*peer
	var replaced signaler
	var evicted *participant
	if old := r.participants[ident.UserID]; old != nil {
		if old.token == token {
			// Resume: the others never saw it leave.
			replaced = old.sess
			old.sess = sess
			if old.grace != nil {
				old.grace.Stop()
				old.grace = nil
			}
			sess.attach(old)
			r.welcomeLocked(old)
			r.mu.Unlock()
			if replaced != nil {
				replaced.fail(fatalError(CodeReplaced))
			}
			s.log.Info("participant resumed", "room", r.key.String(), "user", ident.UserID)
			return old, false, nil
		}
		// The same user with another token: the old place is given up.
		evicted = old
		replaced = old.sess
		toClose = r.removeLocked(old)
	}
	if len(r.participants) >= s.cfg.MaxParticipants {
		empty := len(r.participants) == 0
		r.mu.Unlock()
		closePeers(toClose)
		if empty {
			r.closeIfEmpty()
		}
		return nil, false, clientError(CodeRoomFull)
	}
	audio, err := newForwardTrack(opusCodec.RTPCodecCapability, webrtc.RTPCodecTypeAudio, ident.UserID, s.metrics, s.cfg)
	var video *forwardTrack
	if err == nil {
		video, err = newForwardTrack(s.media.videoCodec, webrtc.RTPCodecTypeVideo, ident.UserID, s.metrics, s.cfg)
	}
	if err != nil {
		r.mu.Unlock()
		s.log.Error("create forward tracks", "room", r.key.String(), "err", err)
		closePeers(toClose)
		r.closeIfEmpty()
		return nil, false, fatalError(CodeInternal)
	}
	now := s.now()
	r.nextSeq++
	p := &participant{room: r, ident: ident, token: token, seq: r.nextSeq, joinedAt: now, audio: audio, video: video,
		sess: sess, videoOn: videoOn, audioOn: audioOn,
		peers: map[string]*peer{}, pending: map[string][]webrtc.ICECandidateInit{}}
	r.participants[ident.UserID] = p
	sess.attach(p)
	r.welcomeLocked(p)
	layout := layoutFor(len(r.participants))
	for _, o := range r.othersLocked(p) {
		if o.sess != nil {
			o.sess.arrived(p.member(), layout)
		}
	}
	// Events are queued under the lock so their order is the room's.
	if evicted != nil {
		s.events.emit(Event{Kind: EventLeft, Room: r.key, User: evicted.ident, At: now, Duration: now.Sub(evicted.joinedAt), Reason: "replaced"})
	}
	if opened {
		s.events.emit(Event{Kind: EventRoomOpened, Room: r.key, At: r.openedAt})
	}
	s.events.emit(Event{Kind: EventJoined, Room: r.key, User: ident, At: now})
	r.mu.Unlock()
	s.metrics.participants.Inc()

	if evicted != nil {
		if replaced != nil {
			replaced.fail(fatalError(CodeReplaced))
		}
		closePeers(toClose)
		s.metrics.participants.Dec()
	}
	s.log.Info("participant joined", "room", r.key.String(), "user", ident.UserID, "customer", ident.Customer)
	return p, false, nil
}

// leave takes p out of its room for reason ("leave", "dropped", "closed").
func (r *room) leave(p *participant, reason string) {
	r.mu.Lock()
	if p.left {
		r.mu.Unlock()
		return
	}
	toClose := r.removeLocked(p)
	s := r.srv
	now := s.now()
	s.events.emit(Event{Kind: EventLeft, Room: r.key, User: p.ident, At: now, Duration: now.Sub(p.joinedAt), Reason: reason})
	r.mu.Unlock()
	closePeers(toClose)
	s.metrics.participants.Dec()
	s.log.Info("participant left", "room", r.key.String(), "user", p.ident.UserID, "reason", reason)
	r.closeIfEmpty()
}

// closeIfEmpty drops an empty room from the registry.
func (r *room) closeIfEmpty() {
	s := r.srv
	s.mu.Lock()
	r.mu.Lock()
	empty := len(r.participants) == 0 && !r.closed
	if empty {
		r.closed = true
		if s.rooms[r.key] == r {
			delete(s.rooms, r.key)
		}
		// Under s.mu: a room of the same id opened next is reported after.
		now := s.now()
		s.events.emit(Event{Kind: EventRoomClosed, Room: r.key, At: now, Duration: now.Sub(r.openedAt)})
	}
	r.mu.Unlock()
	s.mu.Unlock()
	if empty {
		s.metrics.rooms.Dec()
	}
}

// dropped is called when p's socket sess is gone: p keeps its place for
// the reconnect grace, then leaves.
func (r *room) dropped(p *participant, sess signaler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left || p.sess != sess {
		return
	}
	p.sess = nil
	grace := r.srv.cfg.ReconnectGrace
	p.grace = time.AfterFunc(grace, func() {
		r.mu.Lock()
		expired := p.sess == nil && !p.left
		r.mu.Unlock()
		if expired {
			r.leave(p, "dropped")
		}
	})
}

// setState records p's mute state and tells everyone, p included.
func (r *room) setState(p *participant, video, audio *bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left {
		return
	}
	if video != nil {
		p.videoOn = *video
		for _, sig := range r.signalersLocked() {
			sig.videoState(p.ident.UserID, *video)
		}
	}
	if audio != nil {
		p.audioOn = *audio
		for _, sig := range r.signalersLocked() {
			sig.audioState(p.ident.UserID, *audio)
		}
	}
}

// relay hands an app signal from p to everyone else in the room.
func (r *room) relay(p *participant, id string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left {
		return
	}
	for _, o := range r.participants {
		if o != p && o.sess != nil {
			o.sess.appSignal(p.ident.UserID, id, data)
		}
	}
}

// closeAll ends the room: every participant is told code and disconnected.
func (r *room) closeAll(code string) int {
	s := r.srv
	s.mu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		s.mu.Unlock()
		return 0
	}
	r.closed = true
	if s.rooms[r.key] == r {
		delete(s.rooms, r.key)
	}
	var toClose []*peer
	var sessions []signaler
	now := s.now()
	parts := r.othersLocked(nil)
	for _, p := range parts {
		if p.sess != nil {
			sessions = append(sessions, p.sess)
			p.sess.detach(p)
		}
		toClose = append(toClose, r.removeLocked(p)...)
		s.events.emit(Event{Kind: EventLeft, Room: r.key, User: p.ident, At: now, Duration: now.Sub(p.joinedAt), Reason: "closed"})
	}
	s.events.emit(Event{Kind: EventRoomClosed, Room: r.key, At: now, Duration: now.Sub(r.openedAt)})
	r.mu.Unlock()
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.fail(fatalError(code))
	}
	closePeers(toClose)
	s.metrics.participants.Sub(float64(len(parts)))
	s.metrics.rooms.Dec()
	return len(parts)
}
