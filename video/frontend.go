package video

import (
	"context"
	"sync"

	"github.com/pion/webrtc/v3"
)

// Front ends other than seed 002's /signal (KnowledgeTalk's socket.io)
// use rooms and the SFU through this API: Join with a Signaler, then the
// Participant's methods. It is narrow on purpose — join, publish,
// subscribe, leave, state, relay — so that a room living on another node
// can sit behind it.

// FrontEndSignal labels rooms of seed 002's /signal (and guides) in the
// metrics; other front ends pass their own name in JoinRequest.
const FrontEndSignal = "signal"

// Welcome is what a joiner hears of the room.
type Welcome struct {
	Self Member
	// Others are the other participants in join order.
	Others     []Member
	ICEServers []ICEServer
	Layout     Layout
	// PeakBefore is the most participants the room held before this join.
	PeakBefore int
	// Feeds are the others' announced feeds.
	Feeds []Feed
}

// Arrival is what the others hear when someone joins.
type Arrival struct {
	Member Member
	// Members is everyone, the newcomer included, in join order.
	Members    []Member
	Layout     Layout
	PeakBefore int
}

// Signaler is a front end's side of one participant. The room calls it
// with its lock held, in the order things happen in the room, so it must
// queue what it sends and never block or call back into the room.
// Non-trickle by contract: every SDP the server sends it holds all the
// server's candidates.
type Signaler interface {
	// Welcome comes once, to the joiner, before anything else.
	Welcome(w Welcome)
	Arrived(a Arrival)
	Left(userID string, layout Layout)
	VideoState(userID string, on bool)
	AudioState(userID string, on bool)
	Renamed(userID, name string)
	// AppSignal is Relay of another participant.
	AppSignal(from, id string, data []byte)
	// Published announces a feed: the participant's own (first, when it
	// announces one) and the others'. Unpublished withdraws one.
	Published(f Feed)
	Unpublished(f Feed)
	// ScreenEnded: userID left while holding the room's screen share.
	ScreenEnded(userID string)
	// Closed: the participant lost its place (code: CodeRoomClosed,
	// CodeShutdown); the front end should end its connection.
	Closed(code string)
}

// frontEnd adapts a Signaler to the rooms' signaler.
type frontEnd struct{ s Signaler }

var _ signaler = frontEnd{}

func (f frontEnd) welcome(w Welcome)                   { f.s.Welcome(w) }
func (f frontEnd) arrived(a Arrival)                   { f.s.Arrived(a) }
func (f frontEnd) left(userID string, layout Layout)   { f.s.Left(userID, layout) }
func (f frontEnd) videoState(userID string, on bool)   { f.s.VideoState(userID, on) }
func (f frontEnd) audioState(userID string, on bool)   { f.s.AudioState(userID, on) }
func (f frontEnd) renamed(userID, name string)         { f.s.Renamed(userID, name) }
func (f frontEnd) appSignal(from, id string, d []byte) { f.s.AppSignal(from, id, d) }
func (f frontEnd) published(feed Feed)                 { f.s.Published(feed) }
func (f frontEnd) unpublished(feed Feed)               { f.s.Unpublished(feed) }
func (f frontEnd) screenEnded(userID string)           { f.s.ScreenEnded(userID) }
func (f frontEnd) fail(e *Error)                       { f.s.Closed(e.Code) }
func (f frontEnd) attach(*participant)                 {}
func (f frontEnd) detach(*participant)                 {}

// candidate: never called, the peers of these front ends do not trickle.
func (f frontEnd) candidate(string, Usage, webrtc.ICECandidateInit) {}

// restartOffer: these front ends have no message for it; a failed
// connection is dropped and their clients publish or subscribe anew.
func (f frontEnd) restartOffer(string, Usage, string) bool { return false }

// JoinRequest is a join from a front end other than /signal.
type JoinRequest struct {
	Room     RoomKey
	Ident    Identity
	Video    bool
	Audio    bool
	FrontEnd string
	// Capacity caps the room when this join opens it (0: MaxParticipants,
	// which also bounds it).
	Capacity int
	Signaler Signaler
	// Placed: the front end claimed the room for this node (Claim); the
	// room is renewed while it lives here and released when it closes.
	Placed bool
}

// Participant is a front end's handle on one participant.
type Participant struct{ p *participant }

// Join puts a participant in a room (opening it). The front end assigns
// user ids: one already in the room is refused with CodeAlreadyJoined,
// never resumed. A full room is CodeRoomFull. Welcome reaches the
// Signaler before Join returns.
func (s *Server) Join(req JoinRequest) (*Participant, error) {
	if req.FrontEnd == "" || req.Signaler == nil || !validUserID(req.Ident.UserID) {
		return nil, clientError(CodeBadMessage)
	}
	p, e := s.joinRoom(joinRequest{sess: frontEnd{req.Signaler}, ident: req.Ident, key: req.Room,
		video: req.Video, audio: req.Audio, frontEnd: req.FrontEnd, capacity: req.Capacity, exclusive: true, placed: req.Placed})
	if e != nil {
		return nil, e
	}
	return &Participant{p: p}, nil
}

// UserID is the participant's id in its room.
func (h *Participant) UserID() string { return h.p.ident.UserID }

// Leave takes the participant out of its room; the others hear Left.
// reason is "leave" or "dropped" (the events' reason).
func (h *Participant) Leave(reason string) { h.p.room.leave(h.p, reason) }

// SetVideo, SetAudio and SetName record the participant's state and tell
// everyone, the participant included.
func (h *Participant) SetVideo(on bool)             { h.p.room.setState(h.p, &on, nil, nil) }
func (h *Participant) SetAudio(on bool)             { h.p.room.setState(h.p, nil, &on, nil) }
func (h *Participant) SetName(name string)          { h.p.room.setState(h.p, nil, nil, &name) }
func (h *Participant) Relay(id string, data []byte) { h.p.room.relay(h.p, id, data) }

// ReserveScreen takes the room's one screen share (true also when the
// participant holds it); ReleaseScreen gives it back (false when it did
// not hold it). Neither touches a publication.
func (h *Participant) ReserveScreen() bool { return h.p.room.reserveScreen(h.p) }
func (h *Participant) ReleaseScreen() bool { return h.p.room.releaseScreen(h.p) }

// StopScreen ends the participant's screen publication, if any; the
// others get Unpublished.
func (h *Participant) StopScreen() { h.p.room.stopScreen(h.p, false) }

// Publish answers the participant's offer to publish usage (a screen needs
// the room's screen share, which it takes when free). The answer holds all
// the server's candidates. Call Announce once the answer is on its way.
func (h *Participant) Publish(ctx context.Context, usage Usage, offer string) (string, error) {
	answer, _, e := h.p.receiveVideoFrom(ctx, h.p.ident.UserID, usage, offer, false)
	if e != nil {
		return "", e
	}
	return answer, nil
}

// Announce makes a publication a feed (see room.announce); again is a
// no-op.
func (h *Participant) Announce(usage Usage) { h.p.room.announce(h.p, usage) }

// Subscription is a server-offered subscription to a feed.
type Subscription struct {
	ID    uint64
	Feed  Feed
	Offer string
}

// Subscribe offers the participant the media of feed feedID (the server's
// offer holds all its candidates); the client's answer goes to
// AnswerSubscription with the subscription's ID. Subscribing to a feed
// again replaces the earlier subscription.
func (h *Participant) Subscribe(ctx context.Context, feedID uint64) (Subscription, error) {
	sub, e := h.p.subscribe(ctx, feedID)
	if e != nil {
		return Subscription{}, e
	}
	return sub, nil
}

// AnswerSubscription applies the client's answer to subscription id.
func (h *Participant) AnswerSubscription(id uint64, answer string) error {
	if e := h.p.answerSubscription(id, answer); e != nil {
		return e
	}
	return nil
}

// subscribe makes a server-offered subscription to feed feedID.
func (p *participant) subscribe(ctx context.Context, feedID uint64) (Subscription, *Error) {
	r := p.room
	r.mu.Lock()
	if p.left {
		r.mu.Unlock()
		return Subscription{}, clientError(CodeNotJoined)
	}
	var feed Feed
	var fwds []*forwardTrack
	for _, o := range r.othersLocked(p) {
		for _, f := range []Feed{o.camFeed, o.screenFeed} {
			if f.ID == feedID && f.ID != 0 {
				feed, fwds = f, o.tracksLocked(f.Usage)
			}
		}
	}
	r.nextID++
	id := r.nextID
	r.mu.Unlock()
	if fwds == nil {
		return Subscription{}, clientError(CodeUnknownFeed)
	}
	if e := p.checkSubscriptionLimit(peerKey(feed.UserID, feed.Usage)); e != nil {
		return Subscription{}, e
	}
	pe, e := p.newPeer(feed.UserID, feed.Usage, false, false)
	if e != nil {
		return Subscription{}, e
	}
	pe.id = id
	fail := func(e *Error) (Subscription, *Error) {
		pe.close()
		return Subscription{}, e
	}
	for _, fwd := range fwds {
		tl, down, err := fwd.trackLocal()
		var tr *webrtc.RTPTransceiver
		if err == nil {
			tr, err = pe.pc.AddTransceiverFromTrack(tl, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		}
		if err != nil {
			r.srv.log.Error("add transceiver", "room", r.key.String(), "user", p.ident.UserID, "target", feed.UserID, "err", err)
			return fail(clientError(CodeInternal))
		}
		pe.setDown(down)
		r.srv.goRTCP(tr.Sender(), fwd, down)
	}
	offer, err := pe.pc.CreateOffer(nil)
	if err != nil {
		r.srv.log.Error("create offer", "room", r.key.String(), "user", p.ident.UserID, "err", err)
		return fail(clientError(CodeInternal))
	}
	sdp, e := pe.setLocal(ctx, offer)
	if e != nil {
		return fail(e)
	}
	if e := p.putPeer(pe); e != nil {
		return fail(e)
	}
	return Subscription{ID: id, Feed: feed, Offer: sdp}, nil
}

// answerSubscription applies the client's answer to subscription id.
func (p *participant) answerSubscription(id uint64, answer string) *Error {
	if e := checkOffer(answer, p.room.srv.cfg.MaxSDPBytes); e != nil {
		return e
	}
	var pe *peer
	p.mu.Lock()
	for _, c := range p.peers {
		if c.id == id && id != 0 {
			pe = c
		}
	}
	p.mu.Unlock()
	if pe == nil {
		return clientError(CodeUnknownSubscription)
	}
	if err := pe.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.room.srv.log.Debug("bad subscription answer", "room", p.room.key.String(), "user", p.ident.UserID, "err", err)
		return clientError(CodeBadSDP)
	}
	return nil
}

// SignalingConnection counts an open signaling connection of a front
// end's transport (cstalk_video_signaling_connections); call done once
// when it closes.
func (s *Server) SignalingConnection(transport string) (done func()) {
	g := s.metrics.connections.WithLabelValues(transport)
	g.Inc()
	var once sync.Once
	return func() { once.Do(g.Dec) }
}

// SignalingError counts an error answered to a client of a front end
// (cstalk_video_signaling_errors_total).
func (s *Server) SignalingError(frontEnd, code string) {
	s.metrics.errors.WithLabelValues(frontEnd, code).Inc()
}
