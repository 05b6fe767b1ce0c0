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
	// frontEnd names the signaling front end of the room's participants
	// (the metrics label); capacity is its most participants.
	frontEnd string
	capacity int
	// placed: the room is placed in the cluster (Placement), renewed
	// while it lives here and released when it closes.
	placed bool

	mu           sync.Mutex
	participants map[string]*participant // by user id
	nextSeq      uint64
	closed       bool // no longer in the registry; joiners retry
	// peak is the most participants the room has held at once.
	peak int
	// screen is the participant holding the room's one screen share, nil
	// while nobody does.
	screen *participant
	// nextID numbers feeds and server-offered subscriptions, unique in
	// the room.
	nextID uint64
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
	// exclusive: a join with the same user id is refused instead of
	// resuming or evicting this participant (front ends that assign ids).
	exclusive bool

	// guarded by room.mu
	sess       signaler // nil within the reconnect grace
	name       string
	videoOn    bool
	audioOn    bool
	publishing bool
	left       bool
	grace      *time.Timer
	// camFeed and screenFeed are the feeds of p's publications once
	// announced (zero before); screen is the screen's forward track while
	// p shares its screen.
	camFeed    Feed
	screenFeed Feed
	screen     *forwardTrack

	mu          sync.Mutex // guards peers, pending and peersClosed
	peersClosed bool       // left: no new peer connections
	peers       map[string]*peer
	pending     map[string][]webrtc.ICECandidateInit // candidates before their offer
}

func (p *participant) member() Member {
	return Member{UserID: p.ident.UserID, Name: p.name, Video: p.videoOn, Audio: p.audioOn}
}

// membersLocked lists everyone in join order.
func (r *room) membersLocked() []Member {
	all := r.othersLocked(nil)
	out := make([]Member, len(all))
	for i, p := range all {
		out[i] = p.member()
	}
	return out
}

// layoutLocked is the resolution policy for the room as it is now.
func (r *room) layoutLocked() Layout {
	return layoutFor(len(r.participants), r.screen != nil)
}

// applyLayoutLocked bounds the simulcast layer subscribers get of each
// camera by the layout's width.
func (r *room) applyLayoutLocked(l Layout) {
	for _, p := range r.participants {
		p.video.maxWidth.Store(int32(l.MaxWidth))
	}
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

// welcomeLocked sends the joiner the others; peakBefore is the room's peak
// before the join.
func (r *room) welcomeLocked(p *participant, peakBefore int) {
	others := r.othersLocked(p)
	members := make([]Member, 0, len(others))
	for _, o := range others {
		members = append(members, o.member())
	}
	p.sess.welcome(Welcome{Self: p.member(), Others: members, ICEServers: r.srv.iceServers(p.ident.UserID),
		Layout: r.layoutLocked(), PeakBefore: peakBefore, Feeds: r.feedsLocked(p)})
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
	// The others hear that the share ended before they hear p left.
	if r.screen == p {
		r.screen = nil
		for _, o := range r.participants {
			if o != p && o.sess != nil {
				o.sess.screenEnded(p.ident.UserID)
			}
		}
	}
	toClose = r.endScreenLocked(p)
	delete(r.participants, p.ident.UserID)
	layout := r.layoutLocked()
	r.applyLayoutLocked(layout)
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
	r.srv.metrics.participants.WithLabelValues(r.frontEnd).Dec()
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

// takePeer removes and returns p's peer connections for target (camera
// and screen), and any candidates kept for them.
func (p *participant) takePeer(target string) []*peer {
	return p.takePeers(peerKey(target, UsageCam), peerKey(target, UsageScreen))
}

// takePeers removes and returns p's peer connections of keys.
func (p *participant) takePeers(keys ...string) []*peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*peer
	for _, k := range keys {
		delete(p.pending, k)
		if pe := p.peers[k]; pe != nil {
			delete(p.peers, k)
			out = append(out, pe)
		}
	}
	return out
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
	return s.joinRoom(joinRequest{sess: sess, ident: ident, token: token, key: key, video: videoOn, audio: audioOn,
		frontEnd: FrontEndSignal, placed: true})
}

// joinRequest is one join, from whichever front end.
type joinRequest struct {
	sess         signaler
	ident        Identity
	token        string
	key          RoomKey
	video, audio bool
	frontEnd     string
	// capacity caps a room the join opens (0: MaxParticipants).
	capacity int
	// exclusive refuses the join when the user id is in the room already.
	exclusive bool
	// placed: the front end claimed the room (Server.Claim) for this node.
	placed bool
}

func (s *Server) joinRoom(req joinRequest) (*participant, *Error) {
	for {
		r, opened, err := s.roomFor(req)
		if err != nil {
			return nil, err
		}
		p, retry, err := r.join(req, opened)
		if retry {
			continue
		}
		return p, err
	}
}

// roomFor returns the open room of req, creating it.
func (s *Server) roomFor(req joinRequest) (*room, bool, *Error) {
	if !req.key.valid() {
		s.log.Error("join with an incomplete room key", "room", req.key.String())
		return nil, false, fatalError(CodeInternal)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, fatalError(CodeShutdown)
	}
	if r := s.rooms[req.key]; r != nil {
		return r, false, nil
	}
	capacity := s.cfg.MaxParticipants
	if req.capacity > 0 {
		capacity = min(capacity, req.capacity)
	}
	r := &room{key: req.key, srv: s, openedAt: s.now(), participants: map[string]*participant{},
		frontEnd: req.frontEnd, capacity: capacity, placed: req.placed}
	s.rooms[req.key] = r
	s.metrics.rooms.WithLabelValues(r.frontEnd).Inc()
	return r, true, nil
}

func (r *room) join(req joinRequest, opened bool) (_ *participant, retry bool, _ *Error) {
	s := r.srv
	sess, ident, token := req.sess, req.ident, req.token
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, true, nil
	}
	var toClose []*peer
	var replaced signaler
	var evicted *participant
	if old := r.participants[ident.UserID]; old != nil {
		if req.exclusive || old.exclusive {
			empty := len(r.participants) == 0
			r.mu.Unlock()
			if empty {
				r.closeIfEmpty()
			}
			return nil, false, clientError(CodeAlreadyJoined)
		}
		if old.token == token {
			// Resume: the others never saw it leave.
			replaced = old.sess
			old.sess = sess
			if old.grace != nil {
				old.grace.Stop()
				old.grace = nil
			}
			sess.attach(old)
			r.welcomeLocked(old, r.peak)
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
	if len(r.participants) >= r.capacity {
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
		exclusive: req.exclusive, sess: sess, name: ident.Name, videoOn: req.video, audioOn: req.audio,
		peers: map[string]*peer{}, pending: map[string][]webrtc.ICECandidateInit{}}
	r.participants[ident.UserID] = p
	peakBefore := r.peak
	r.peak = max(r.peak, len(r.participants))
	sess.attach(p)
	r.welcomeLocked(p, peakBefore)
	arrival := Arrival{Member: p.member(), Members: r.membersLocked(), Layout: r.layoutLocked(), PeakBefore: peakBefore}
	r.applyLayoutLocked(arrival.Layout)
	for _, o := range r.othersLocked(p) {
		if o.sess != nil {
			o.sess.arrived(arrival)
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
	s.metrics.participants.WithLabelValues(r.frontEnd).Inc()
	r.mu.Unlock()

	if evicted != nil {
		if replaced != nil {
			replaced.fail(fatalError(CodeReplaced))
		}
		closePeers(toClose)
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
		s.metrics.rooms.WithLabelValues(r.frontEnd).Dec()
		s.release(r)
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

// setState records p's mute state or name and tells everyone, p included.
func (r *room) setState(p *participant, video, audio *bool, name *string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left {
		return
	}
	if name != nil {
		p.name = *name
		for _, sig := range r.signalersLocked() {
			sig.renamed(p.ident.UserID, *name)
		}
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
	// A room closed for shutdown moves with its participants' rejoins:
	// the events say so, so the call is not taken for ended.
	reason, closedReason := "closed", ""
	if code == CodeShutdown {
		reason, closedReason = CodeShutdown, CodeShutdown
	}
	parts := r.othersLocked(nil)
	for _, p := range parts {
		if p.sess != nil {
			sessions = append(sessions, p.sess)
			p.sess.detach(p)
		}
		toClose = append(toClose, r.removeLocked(p)...)
		s.events.emit(Event{Kind: EventLeft, Room: r.key, User: p.ident, At: now, Duration: now.Sub(p.joinedAt), Reason: reason})
	}
	s.events.emit(Event{Kind: EventRoomClosed, Room: r.key, At: now, Duration: now.Sub(r.openedAt), Reason: closedReason})
	r.mu.Unlock()
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.fail(fatalError(code))
	}
	closePeers(toClose)
	s.metrics.rooms.WithLabelValues(r.frontEnd).Dec()
	s.release(r)
	return len(parts)
}
