package video

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// peer is one peer connection of a participant: its publication (target is
// its own id) or its subscription to target, the seed's receiveVideoFrom
// model of one connection per stream.
type peer struct {
	owner   *participant
	target  string
	usage   Usage
	publish bool
	pc      *webrtc.PeerConnection
	// key is the peer's key in owner.peers; id names a server-offered
	// subscription (0 for the others).
	key string
	id  uint64
	// trickle: the server's candidates go out one by one after the
	// answer; without it they are all in the SDP (front ends whose
	// clients do not trickle).
	trickle bool
	// screen is the forward track a screen publication feeds.
	screen *forwardTrack

	mu          sync.Mutex
	answered    bool                      // the answer is queued; candidates may follow it
	localCands  []webrtc.ICECandidateInit // gathered before the answer went out
	remoteCands int
	// the client's candidates that came before the offer, applied after
	// the answer
	pendingRemote []webrtc.ICECandidateInit
	closed        bool
	// restarting: the server offered an ICE restart after the
	// connection failed; restartTimer drops it if it does not reconnect.
	restarting   bool
	restartTimer *time.Timer

	// negMu serializes offers and answers on pc (the client's
	// renegotiations and the server's restarts).
	negMu sync.Mutex

	// down is a subscription's video track (nil for publications and
	// audio-only subscriptions); guarded by mu.
	down *downTrack
}

func (pe *peer) setDown(d *downTrack) {
	if d == nil {
		return
	}
	pe.mu.Lock()
	pe.down = d
	pe.mu.Unlock()
}

func (pe *peer) video() *downTrack {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	return pe.down
}

func (pe *peer) role() string {
	if pe.publish {
		return "publish"
	}
	return "subscribe"
}

// close ends the peer connection; safe to call more than once.
func (pe *peer) close() {
	pe.mu.Lock()
	if pe.closed {
		pe.mu.Unlock()
		return
	}
	pe.closed = true
	if pe.restartTimer != nil {
		pe.restartTimer.Stop()
	}
	pe.mu.Unlock()
	p := pe.owner
	s := p.room.srv
	if pe.publish {
		p.audio.clearSource(pe)
		p.video.clearSource(pe)
		if pe.screen != nil {
			pe.screen.clearSource(pe)
		}
	}
	if err := pe.pc.Close(); err != nil {
		s.log.Debug("close peer connection", "room", p.room.key.String(), "user", p.ident.UserID, "target", pe.target, "err", err)
	}
	s.metrics.peerConnections.WithLabelValues(pe.role()).Dec()
}

// onLocalCandidate trickles the server's candidates, held back until the
// answer is queued: a browser cannot add a candidate before the answer.
func (pe *peer) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // end of gathering; the seed's clients expect nothing
	}
	if !pe.trickle {
		return // the SDP carries them
	}
	init := c.ToJSON()
	pe.mu.Lock()
	if pe.closed {
		pe.mu.Unlock()
		return
	}
	if !pe.answered {
		pe.localCands = append(pe.localCands, init)
		pe.mu.Unlock()
		return
	}
	pe.mu.Unlock()
	pe.sendCandidate(init)
}

func (pe *peer) sendCandidate(c webrtc.ICECandidateInit) {
	sig := pe.owner.signaler()
	if sig == nil {
		return // within the reconnect grace; the client re-offers on resume
	}
	sig.candidate(pe.target, pe.usage, c)
}

// answerSent releases the candidates gathered so far.
func (pe *peer) answerSent() {
	pe.mu.Lock()
	pe.answered = true
	cands := pe.localCands
	pe.localCands = nil
	pe.mu.Unlock()
	for _, c := range cands {
		pe.sendCandidate(c)
	}
}

// addRemote applies a client candidate, within the per-peer cap.
func (pe *peer) addRemote(c webrtc.ICECandidateInit, limit int) *Error {
	pe.mu.Lock()
	if pe.remoteCands >= limit {
		pe.mu.Unlock()
		return clientError(CodeTooManyCandidates)
	}
	pe.remoteCands++
	pe.mu.Unlock()
	if err := pe.pc.AddICECandidate(c); err != nil {
		return clientError(CodeBadCandidate)
	}
	return nil
}

func (p *participant) signaler() signaler {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	return p.sess
}

// checkOffer rejects what is not worth handing to pion: oversized or
// unparsable SDP, or an offer without audio or video.
func checkOffer(offer string, maxBytes int) *Error {
	if offer == "" || len(offer) > maxBytes {
		return clientError(CodeBadSDP)
	}
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(offer); err != nil {
		return clientError(CodeBadSDP)
	}
	media := 0
	for _, m := range desc.MediaDescriptions {
		switch m.MediaName.Media {
		case "audio", "video":
			media++
		}
	}
	if media == 0 {
		return clientError(CodeBadSDP)
	}
	return nil
}

// receiveVideoFrom answers an offer: publishing p's own media of usage
// when target is p, subscribing to target's otherwise. A new offer for the
// same target and usage replaces the previous connection (what clients do
// after a reconnect). Without trickle the answer carries every candidate
// (ctx bounds the gathering). The caller sends the answer, then calls
// afterAnswer.
func (p *participant) receiveVideoFrom(ctx context.Context, target string, usage Usage, offer string, trickle bool) (string, *peer, *Error) {
	r := p.room
	s := r.srv
	if err := checkOffer(offer, s.cfg.MaxSDPBytes); err != nil {
		return "", nil, err
	}
	publish := target == p.ident.UserID
	if pe := p.peer(peerKey(target, usage)); pe != nil && pe.trickle == trickle && pe.sameConnection(offer) {
		answer, e := pe.renegotiate(ctx, offer)
		return answer, pe, e
	}
	var source *participant
	var fwds []*forwardTrack
	key := peerKey(target, usage)
	r.mu.Lock()
	if p.left {
		r.mu.Unlock()
		return "", nil, clientError(CodeNotJoined)
	}
	if !publish {
		if source = r.participants[target]; source == nil {
			r.mu.Unlock()
			return "", nil, clientError(CodeUnknownParticipant)
		}
		if fwds = source.tracksLocked(usage); fwds == nil {
			r.mu.Unlock()
			return "", nil, clientError(CodeNoScreenShare)
		}
	}
	var screen *forwardTrack
	reserved := false // this offer took the room's screen share
	if publish && usage == UsageScreen {
		var e *Error
		reserved = r.screen != p
		if screen, e = r.startScreenLocked(p); e != nil {
			r.mu.Unlock()
			return "", nil, e
		}
	}
	if publish && usage == UsageCam {
		if !p.publishing && r.publishersLocked() >= s.cfg.MaxPublishers {
			r.mu.Unlock()
			return "", nil, clientError(CodeTooManyPublishers)
		}
		p.publishing = true
	}
	r.mu.Unlock()
	if !publish {
		if e := p.checkSubscriptionLimit(key); e != nil {
			return "", nil, e
		}
	}

	// A failed camera offer gives back the publisher place it took,
	// unless an earlier publication still holds it.
	// A failed screen offer gives back the track and the share it took,
	// unless an earlier screen publication still holds them.
	unpublish := func() {
		if !publish {
			return
		}
		r.mu.Lock()
		p.mu.Lock()
		first := p.peers[key] == nil
		p.mu.Unlock()
		switch {
		case first && usage == UsageCam:
			p.publishing = false
		case first && p.screenFeed.ID == 0 && p.screen == screen:
			p.screen.stop()
			p.screen = nil
			if reserved && r.screen == p {
				r.screen = nil
			}
		}
		r.mu.Unlock()
	}
	pe, e := p.newPeer(target, usage, publish, trickle)
	if e != nil {
		unpublish()
		return "", nil, e
	}
	pe.screen = screen
	fail := func(code string) (string, *peer, *Error) {
		pe.close()
		unpublish()
		return "", nil, clientError(code)
	}
	pc := pe.pc
	if publish {
		pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { pe.forward(track) })
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		s.log.Debug("bad offer", "room", r.key.String(), "user", p.ident.UserID, "err", err)
		return fail(CodeBadSDP)
	}
	if !publish {
		kinds := map[webrtc.RTPCodecType]bool{}
		for _, t := range pc.GetTransceivers() {
			kinds[t.Kind()] = true
		}
		for _, fwd := range fwds {
			if !kinds[fwd.kind] {
				continue
			}
			if e := pe.addForwardTrack(fwd); e != nil {
				return fail(e.Code)
			}
		}
		if d := pe.video(); d != nil {
			d.setCap(offerVideoCap(offer))
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		s.log.Debug("create answer", "room", r.key.String(), "user", p.ident.UserID, "err", err)
		return fail(CodeBadSDP)
	}
	sdpAnswer, e := pe.setLocal(ctx, answer)
	if e != nil {
		return fail(e.Code)
	}
	if e := p.putPeer(pe); e != nil {
		return fail(e.Code)
	}
	return sdpAnswer, pe, nil
}

// newPeer makes a peer connection of p for target's media of usage (its
// own when publish), dropped from p's peers when it fails or closes.
func (p *participant) newPeer(target string, usage Usage, publish, trickle bool) (*peer, *Error) {
	r := p.room
	s := r.srv
	pc, err := s.media.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		s.log.Error("new peer connection", "room", r.key.String(), "user", p.ident.UserID, "err", err)
		return nil, clientError(CodeInternal)
	}
	pe := &peer{owner: p, target: target, usage: usage, publish: publish, pc: pc, key: peerKey(target, usage), trickle: trickle}
	s.metrics.peerConnections.WithLabelValues(pe.role()).Inc()
	pc.OnICECandidate(pe.onLocalCandidate)
	pc.OnConnectionStateChange(func(state webrtc.PeerConnectionState) {
		switch state {
		case webrtc.PeerConnectionStateConnected:
			pe.connected()
			if !publish {
				// So the new subscriber sees video at once.
				r.mu.Lock()
				var fwds []*forwardTrack
				if source := r.participants[target]; source != nil {
					fwds = source.tracksLocked(usage)
				}
				r.mu.Unlock()
				for _, fwd := range fwds {
					if fwd.kind == webrtc.RTPCodecTypeVideo {
						fwd.requestKeyframe()
					}
				}
			}
		case webrtc.PeerConnectionStateFailed:
			s.log.Info("peer connection failed", "room", r.key.String(), "user", p.ident.UserID, "target", target, "usage", usage)
			if !pe.failed() {
				pe.drop()
			}
		case webrtc.PeerConnectionStateClosed:
			pe.drop()
		}
	})
	return pe, nil
}

// drop takes pe out of its owner's peers (freeing a camera publication's
// place among the publishers) and closes it.
func (pe *peer) drop() {
	p := pe.owner
	r := p.room
	r.mu.Lock()
	p.mu.Lock()
	if p.peers[pe.key] == pe {
		delete(p.peers, pe.key)
		if pe.publish && pe.usage == UsageCam {
			p.publishing = false // its place among the publishers is free
		}
	}
	p.mu.Unlock()
	r.mu.Unlock()
	pe.close()
}

// peer returns p's peer connection of key, nil if none.
func (p *participant) peer(key string) *peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peers[key]
}

// addForwardTrack sends fwd on a subscription.
func (pe *peer) addForwardTrack(fwd *forwardTrack) *Error {
	s := pe.owner.room.srv
	tl, down, err := fwd.trackLocal()
	var sender *webrtc.RTPSender
	if err == nil {
		sender, err = pe.pc.AddTrack(tl)
	}
	if err != nil {
		s.log.Error("add track", "room", pe.owner.room.key.String(), "user", pe.owner.ident.UserID, "target", pe.target, "err", err)
		return clientError(CodeInternal)
	}
	pe.setDown(down)
	s.goRTCP(sender, fwd, down)
	return nil
}

// setLocal applies the server's answer or offer and returns the SDP to
// send: at once when trickling, else once ICE gathering is complete, with
// every candidate in it.
func (pe *peer) setLocal(ctx context.Context, desc webrtc.SessionDescription) (string, *Error) {
	s := pe.owner.room.srv
	var gathered <-chan struct{}
	if !pe.trickle {
		gathered = webrtc.GatheringCompletePromise(pe.pc)
	}
	if err := pe.pc.SetLocalDescription(desc); err != nil {
		s.log.Debug("set local description", "room", pe.owner.room.key.String(), "user", pe.owner.ident.UserID, "err", err)
		return "", clientError(CodeBadSDP)
	}
	if pe.trickle {
		return desc.SDP, nil
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", clientError(CodeInternal)
	}
	return pe.pc.LocalDescription().SDP, nil
}

// checkSubscriptionLimit refuses a new subscription (key not yet among
// p's peers) beyond MaxSubscriptions.
func (p *participant) checkSubscriptionLimit(key string) *Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	subs := 0
	for _, pe := range p.peers {
		if !pe.publish {
			subs++
		}
	}
	if _, again := p.peers[key]; !again && subs >= p.room.srv.cfg.MaxSubscriptions {
		return clientError(CodeTooManySubscription)
	}
	return nil
}

// putPeer makes pe p's peer connection of its key, closing the one it
// replaces, and takes over the candidates that came before it.
func (p *participant) putPeer(pe *peer) *Error {
	p.mu.Lock()
	if p.peersClosed {
		p.mu.Unlock()
		return clientError(CodeNotJoined)
	}
	pe.pendingRemote = p.pending[pe.key]
	delete(p.pending, pe.key)
	old := p.peers[pe.key]
	p.peers[pe.key] = pe
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
	return nil
}

// afterAnswer is called once the answer is on its way: the server's
// candidates may follow it now, and the client's that came before the
// offer are applied. It returns the errors of those.
func (pe *peer) afterAnswer() []*Error {
	pe.answerSent()
	pe.mu.Lock()
	pending := pe.pendingRemote
	pe.pendingRemote = nil
	pe.mu.Unlock()
	var errs []*Error
	for _, c := range pending {
		if err := pe.addRemote(c, pe.owner.room.srv.cfg.MaxCandidatesPerPeer); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// addCandidate applies a client candidate to its peer connection, or keeps
// it until the offer for target and usage arrives.
func (p *participant) addCandidate(target string, usage Usage, c webrtc.ICECandidateInit) *Error {
	r := p.room
	s := r.srv
	if target != p.ident.UserID {
		r.mu.Lock()
		known := r.participants[target] != nil
		r.mu.Unlock()
		if !known {
			return clientError(CodeUnknownParticipant)
		}
	}
	key := peerKey(target, usage)
	p.mu.Lock()
	pe := p.peers[key]
	if pe == nil {
		if len(p.pending[key]) >= s.cfg.MaxCandidatesPerPeer {
			p.mu.Unlock()
			return clientError(CodeTooManyCandidates)
		}
		if len(p.pending) >= 2*s.cfg.MaxParticipants && p.pending[key] == nil {
			p.mu.Unlock()
			return clientError(CodeTooManyCandidates)
		}
		p.pending[key] = append(p.pending[key], c)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if u := candidateUfrag(c.Candidate); u != "" && u != pe.remoteUfrag() {
		// Of a restart whose offer is still on its way: applied after
		// its answer.
		pe.mu.Lock()
		defer pe.mu.Unlock()
		if len(pe.pendingRemote) >= s.cfg.MaxCandidatesPerPeer {
			return clientError(CodeTooManyCandidates)
		}
		pe.pendingRemote = append(pe.pendingRemote, c)
		return nil
	}
	return pe.addRemote(c, s.cfg.MaxCandidatesPerPeer)
}

// forward reads a published track into the participant's forward track
// of the peer's usage. A second track of a kind already published on this
// connection, and audio on a screen share, are read and dropped.
func (pe *peer) forward(track *webrtc.TrackRemote) {
	p := pe.owner
	s := p.room.srv
	fwd := p.audio
	switch {
	case pe.screen != nil && track.Kind() == webrtc.RTPCodecTypeVideo:
		fwd = pe.screen
	case pe.screen != nil:
		drain(track)
		return
	case track.Kind() == webrtc.RTPCodecTypeVideo:
		fwd = p.video
	}
	pc := pe.pc
	ssrc := uint32(track.SSRC())
	fwd.kmu.Lock()
	taken := fwd.source == pe
	fwd.kmu.Unlock()
	video := track.Kind() == webrtc.RTPCodecTypeVideo
	if taken && (!video || track.RID() == "") {
		s.log.Info("extra track ignored", "room", p.room.key.String(), "user", p.ident.UserID, "kind", track.Kind().String())
		drain(track)
		return
	}
	var l *layer
	if video {
		// One layer, or one of a simulcast publication's (by rid).
		var first bool
		l, first = fwd.addLayer(pe, track.RID(), ssrc, func() {
			_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
		})
		if first {
			fwd.setSource(pe, func() {
				fwd.pliLayers(func(ssrcs []uint32) {
					pkts := make([]rtcp.Packet, len(ssrcs))
					for i, ssrc := range ssrcs {
						pkts[i] = &rtcp.PictureLossIndication{MediaSSRC: ssrc}
					}
					_ = pc.WriteRTCP(pkts)
				})
			})
		}
	} else {
		fwd.setSource(pe, func() {
			_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
		})
	}
	kind := track.Kind().String()
	s.metrics.publishedTracks.WithLabelValues(kind).Inc()
	s.log.Info("track published", "room", p.room.key.String(), "user", p.ident.UserID, "kind", kind, "codec", track.Codec().MimeType, "rid", track.RID())
	// Runs on pion's OnTrack goroutine until the connection closes.
	defer s.metrics.publishedTracks.WithLabelValues(kind).Dec()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "closed") {
				s.log.Debug("read track", "room", p.room.key.String(), "user", p.ident.UserID, "err", err)
			}
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if l != nil {
			fwd.writeLayer(l, &pkt, n)
		} else {
			fwd.write(&pkt, n)
		}
	}
}

// goRTCP reads a subscriber's RTCP for one sender: reading is what lets the
// interceptors answer NACKs and take receiver reports; PLI and FIR go on to
// the publisher (for video, of the layer the subscriber gets), REMB is
// the subscriber's estimate of its own link.
func (s *Server) goRTCP(sender *webrtc.RTPSender, fwd *forwardTrack, down *downTrack) {
	// When the server is closing the connection is about to be closed too.
	s.goOwned(func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, pkt := range pkts {
				switch pkt := pkt.(type) {
				case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
					if down != nil {
						down.requestKeyframe()
					} else {
						fwd.requestKeyframe()
					}
				case *rtcp.ReceiverEstimatedMaximumBitrate:
					if down != nil {
						down.setEstimate(int64(pkt.Bitrate), s.now())
					}
				}
			}
		}
	})
}

func drain(track *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := track.Read(buf); err != nil {
			return
		}
	}
}
