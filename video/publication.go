package video

import "github.com/pion/webrtc/v3"

// Usage names one of a participant's publications: its camera (with its
// microphone) or its screen. A participant publishes at most one of each;
// a room has at most one screen share at a time.
type Usage string

const (
	UsageCam    Usage = "cam"
	UsageScreen Usage = "screen"
)

// ParseUsage reads a usage from the wire: "" and "cam" are the camera.
func ParseUsage(s string) (Usage, bool) {
	switch s {
	case "", string(UsageCam):
		return UsageCam, true
	case string(UsageScreen):
		return UsageScreen, true
	}
	return "", false
}

// wire is the usage as seed-002 messages carry it: absent for the camera.
func (u Usage) wire() string {
	if u == UsageScreen {
		return string(UsageScreen)
	}
	return ""
}

// Feed is a publication others may subscribe to, announced once its offer
// was answered. ID is unique in the room; a camera keeps its feed from its
// first publication to its owner's leaving (a republish continues it), a
// screen share gets a new one each time.
type Feed struct {
	ID     uint64
	UserID string
	Usage  Usage
}

// peerKey keys a participant's peer connection for target's media of
// usage (its own publications have target = itself). User ids hold no
// control characters, so the screen's key never collides with an id.
func peerKey(target string, usage Usage) string {
	if usage == UsageScreen {
		return target + "\x00screen"
	}
	return target
}

// tracksLocked returns the forward tracks of p's publication usage, nil
// when p shares no screen.
func (p *participant) tracksLocked(usage Usage) []*forwardTrack {
	if usage == UsageScreen {
		if p.screen == nil {
			return nil
		}
		return []*forwardTrack{p.screen}
	}
	return []*forwardTrack{p.audio, p.video}
}

func (p *participant) feedLocked(usage Usage) *Feed {
	if usage == UsageScreen {
		return &p.screenFeed
	}
	return &p.camFeed
}

// feedsLocked lists the announced feeds of everyone but p, in join order.
func (r *room) feedsLocked(p *participant) []Feed {
	var out []Feed
	for _, o := range r.othersLocked(p) {
		for _, f := range []Feed{o.camFeed, o.screenFeed} {
			if f.ID != 0 {
				out = append(out, f)
			}
		}
	}
	return out
}

// reserveScreen gives p the room's one screen share; false while another
// holds it. Holding it again is fine.
func (r *room) reserveScreen(p *participant) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.left || (r.screen != nil && r.screen != p) {
		return false
	}
	r.screen = p
	return true
}

// releaseScreen gives up p's screen share reservation; false when p did
// not hold it. Its publication, if any, stays until stopScreen.
func (r *room) releaseScreen(p *participant) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.screen != p {
		return false
	}
	r.screen = nil
	return true
}

// startScreenLocked reserves the screen share for p (if free) and returns
// the forward track its screen publication feeds.
func (r *room) startScreenLocked(p *participant) (*forwardTrack, *Error) {
	if r.screen != nil && r.screen != p {
		return nil, clientError(CodeScreenShareTaken)
	}
	r.screen = p
	if p.screen == nil {
		s := r.srv
		fwd, err := newForwardTrack(s.media.videoCodec, webrtc.RTPCodecTypeVideo, p.ident.UserID+"_screen", s.metrics, s.cfg)
		if err != nil {
			s.log.Error("create screen track", "room", r.key.String(), "err", err)
			return nil, clientError(CodeInternal)
		}
		p.screen = fwd
	}
	return p.screen, nil
}

// announce makes p's publication usage a feed, once: the others hear of
// it; p hears of it first and then, for its camera, of the feeds already
// there. Front ends call it after the publication's answer is on its way,
// so a client learns of feeds only after its own answer.
func (r *room) announce(p *participant, usage Usage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := p.feedLocked(usage)
	if p.left || f.ID != 0 || (usage == UsageScreen && p.screen == nil) {
		return
	}
	r.nextID++
	*f = Feed{ID: r.nextID, UserID: p.ident.UserID, Usage: usage}
	for _, o := range r.othersLocked(p) {
		if o.sess != nil {
			o.sess.published(*f)
		}
	}
	if p.sess == nil {
		return
	}
	p.sess.published(*f)
	if usage == UsageCam {
		for _, other := range r.feedsLocked(p) {
			p.sess.published(other)
		}
	}
}

// stopScreen ends p's screen publication (its subscriptions close, the
// others hear the feed is gone) and, with release, its reservation.
func (r *room) stopScreen(p *participant, release bool) {
	r.mu.Lock()
	toClose := r.endScreenLocked(p)
	if release && r.screen == p {
		r.screen = nil
	}
	r.mu.Unlock()
	closePeers(toClose)
}

// endScreenLocked withdraws p's screen feed and returns the peer
// connections that carried it.
func (r *room) endScreenLocked(p *participant) []*peer {
	if f := p.screenFeed; f.ID != 0 {
		p.screenFeed = Feed{}
		for _, o := range r.othersLocked(nil) {
			if o.sess != nil {
				o.sess.unpublished(f)
			}
		}
	}
	key := peerKey(p.ident.UserID, UsageScreen)
	toClose := p.takePeers(key)
	for _, o := range r.participants {
		if o != p {
			toClose = append(toClose, o.takePeers(key)...)
		}
	}
	if p.screen != nil {
		p.screen.stop()
		p.screen = nil
	}
	return toClose
}
