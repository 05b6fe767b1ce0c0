package video

import "github.com/pion/webrtc/v3"

// signaler is one participant's signaling front end as rooms see it: the
// seed-002 session here, other protocols (KnowledgeTalk's socket.io) on
// the same rooms later. Rooms call it with their lock held, in the order
// things happened, so it must queue and never block.
type signaler interface {
	// welcome gives a joiner the others, in join order.
	welcome(self string, others []Member, ice []ICEServer, layout Layout)
	arrived(m Member, layout Layout)
	left(userID string, layout Layout)
	videoState(userID string, on bool)
	audioState(userID string, on bool)
	// appSignal relays an app-to-app signal (G0001…) from userID.
	appSignal(from, id string, data []byte)
	// candidate trickles one of the server's candidates for the peer
	// connection carrying target's media (or the participant's own).
	candidate(target string, c webrtc.ICECandidateInit)
	// fail tells the client why it lost its place and ends the connection.
	fail(e *Error)
	// attach and detach bind the front end to a participant.
	attach(p *participant)
	detach(p *participant)
}

var _ signaler = (*session)(nil)

func (sess *session) welcome(self string, others []Member, ice []ICEServer, layout Layout) {
	msg := existingParticipantsMsg{ID: msgExistingParticipants, Members: others, Data: make([]string, 0, len(others)),
		UserID: self, ICEServers: ice, Layout: layout}
	ids := []string{self}
	for _, m := range others {
		msg.Data = append(msg.Data, m.UserID)
		ids = append(ids, m.UserID)
	}
	sess.sendIntroducing(ids, msg)
}

func (sess *session) arrived(m Member, layout Layout) {
	sess.sendIntroducing([]string{m.UserID}, newParticipantMsg{ID: msgNewParticipantArrived, Member: m, Name: m.UserID, Layout: layout})
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

func (sess *session) appSignal(from, id string, data []byte) {
	sess.sendAbout(from, appSignalMsg{ID: id, UserID: from, Data: data})
}

func (sess *session) candidate(target string, c webrtc.ICECandidateInit) {
	sess.sendAbout(target, iceCandidateMsg{ID: msgIceCandidate, UserID: target, Name: target,
		Candidate: candidateJSON{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex}})
}
