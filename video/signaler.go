package video

import "github.com/pion/webrtc/v3"

// signaler is one participant's signaling front end as rooms see it: the
// seed-002 session here, other protocols (KnowledgeTalk's socket.io)
// through Signaler. Rooms call it with their lock held, in the order
// things happened, so it must queue and never block.
type signaler interface {
	// welcome gives a joiner the others, in join order.
	welcome(w Welcome)
	arrived(a Arrival)
	left(userID string, layout Layout)
	videoState(userID string, on bool)
	audioState(userID string, on bool)
	renamed(userID, name string)
	// appSignal relays an app-to-app signal (G0001…) from userID.
	appSignal(from, id string, data []byte)
	// published announces a feed (the participant's own too, first, when
	// it announces one); unpublished ends one.
	published(f Feed)
	unpublished(f Feed)
	// screenEnded: userID, who held the room's screen share, left.
	screenEnded(userID string)
	// candidate trickles one of the server's candidates for the peer
	// connection carrying target's media of usage (or the participant's
	// own).
	candidate(target string, usage Usage, c webrtc.ICECandidateInit)
	// restartOffer sends the server's ICE restart offer for that peer
	// connection; false when the front end cannot carry one.
	restartOffer(target string, usage Usage, sdpOffer string) bool
	// fail tells the client why it lost its place and ends the connection.
	fail(e *Error)
	// attach and detach bind the front end to a participant.
	attach(p *participant)
	detach(p *participant)
}

var _ signaler = (*session)(nil)

func (sess *session) welcome(w Welcome) {
	msg := existingParticipantsMsg{ID: msgExistingParticipants, Members: w.Others, Data: make([]string, 0, len(w.Others)),
		UserID: w.Self.UserID, ICEServers: w.ICEServers, Layout: w.Layout}
	ids := []string{w.Self.UserID}
	for _, m := range w.Others {
		msg.Data = append(msg.Data, m.UserID)
		ids = append(ids, m.UserID)
	}
	sess.sendIntroducing(ids, msg)
	for _, f := range w.Feeds {
		sess.published(f)
	}
}

func (sess *session) arrived(a Arrival) {
	m := a.Member
	sess.sendIntroducing([]string{m.UserID}, newParticipantMsg{ID: msgNewParticipantArrived, Member: m, Name: m.UserID, Layout: a.Layout})
}

func (sess *session) left(userID string, layout Layout) {
	sess.sendForgetting(userID, participantLeftMsg{ID: msgParticipantLeft, UserID: userID, Name: userID, Layout: layout})
}

func (sess *session) videoState(userID string, on bool) {
	sess.sendAbout(userID, videoStateMsg{ID: msgVideoStateAnswer, UserID: userID, Video: on})
}

func (sess *session) audioState(userID string, on bool) {
	sess.sendAbout(userID, audioStateMsg{ID: msgAudioStateAnswer, UserID: userID, Audio: on})
}

// renamed: seed 002 has no names.
func (sess *session) renamed(string, string) {}

func (sess *session) appSignal(from, id string, data []byte) {
	sess.sendAbout(from, appSignalMsg{ID: id, UserID: from, Data: data})
}

// published tells the client of another participant's screen; cameras
// come with newParticipantArrived.
func (sess *session) published(f Feed) {
	if f.Usage == UsageScreen {
		sess.sendScreenShare(f.UserID, true)
	}
}

func (sess *session) unpublished(f Feed) {
	if f.Usage == UsageScreen {
		sess.sendScreenShare(f.UserID, false)
	}
}

// sendScreenShare tells the client once that userID (someone it knows,
// not itself) started or stopped sharing its screen.
func (sess *session) sendScreenShare(userID string, started bool) {
	id := msgScreenShareStopped
	if started {
		id = msgScreenShareStarted
	}
	b := encode(screenShareMsg{ID: id, UserID: userID})
	sess.mu.Lock()
	defer sess.mu.Unlock()
	self := sess.part != nil && sess.part.ident.UserID == userID
	if self || !sess.told[userID] || sess.screens[userID] == started {
		return
	}
	sess.screens[userID] = started
	sess.enqueueLocked(b)
}

// screenEnded: unpublished has said it.
func (sess *session) screenEnded(string) {}

func (sess *session) candidate(target string, usage Usage, c webrtc.ICECandidateInit) {
	sess.sendAbout(target, iceCandidateMsg{ID: msgIceCandidate, UserID: target, Name: target, Usage: usage.wire(),
		Candidate: candidateJSON{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}})
}

func (sess *session) restartOffer(target string, usage Usage, sdpOffer string) bool {
	b := encode(restartOfferMsg{ID: msgICERestartOffer, UserID: target, Name: target, Usage: usage.wire(), SDPOffer: sdpOffer})
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closed || !sess.told[target] {
		return false
	}
	sess.enqueueLocked(b)
	return !sess.closed
}
