package video

import (
	"context"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// ICE restarts. A client whose network changed (Wi-Fi to LTE, a new
// address) sends a new offer from the same RTCPeerConnection with new ICE
// credentials (restartIce()); it is answered on the same server peer
// connection, so DTLS, SRTP, the tracks and the subscriptions stay and the
// media resumes on the new path. When the server's side of a connection
// fails while the client's signaling socket is still up, the server
// restarts ICE itself: it sends an offer with new credentials
// (iceRestartOffer) and the client answers (iceRestartAnswer). A
// connection that is not connected again within the restart window is
// dropped as before.

// sessionID is the o= line's session id of an SDP: the same for every
// offer and answer of one RTCPeerConnection, new for a new one.
func sessionID(s string) (uint64, bool) {
	var desc sdp.SessionDescription
	if err := desc.UnmarshalString(s); err != nil {
		return 0, false
	}
	return desc.Origin.SessionID, true
}

// sameConnection reports whether offer comes from the client connection
// pe already talks to (a renegotiation, typically an ICE restart).
func (pe *peer) sameConnection(offer string) bool {
	cur := pe.pc.RemoteDescription()
	if cur == nil {
		return false
	}
	a, ok1 := sessionID(cur.SDP)
	b, ok2 := sessionID(offer)
	return ok1 && ok2 && a == b
}

// restartWindow is how long a restarted connection has to connect again.
func (s *Server) restartWindow() time.Duration {
	return max(s.cfg.ICEDisconnectedTimeout+s.cfg.ICEFailedTimeout, 5*time.Second)
}

// renegotiate answers a new offer of the client connection pe serves (an
// ICE restart, or a change of direction) on the same peer connection.
// The server's candidates of a new ICE generation are held until the
// answer is on its way, like the first ones.
func (pe *peer) renegotiate(ctx context.Context, offer string) (string, *Error) {
	s := pe.owner.room.srv
	pe.negMu.Lock()
	defer pe.negMu.Unlock()
	if pe.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		// Glare with a restart of our own: the client's offer wins (the
		// server is the polite side) and carries new credentials anyway.
		if err := pe.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			s.log.Debug("rollback", "room", pe.owner.room.key.String(), "user", pe.owner.ident.UserID, "err", err)
			return "", clientError(CodeBadSDP)
		}
	}
	pe.newGeneration()
	if err := pe.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		s.log.Debug("bad renegotiation offer", "room", pe.owner.room.key.String(), "user", pe.owner.ident.UserID, "err", err)
		pe.answerSent()
		return "", clientError(CodeBadSDP)
	}
	answer, err := pe.pc.CreateAnswer(nil)
	if err != nil {
		s.log.Debug("create answer", "room", pe.owner.room.key.String(), "user", pe.owner.ident.UserID, "err", err)
		pe.answerSent()
		return "", clientError(CodeBadSDP)
	}
	sdpAnswer, e := pe.setLocal(ctx, answer)
	if e != nil {
		pe.answerSent()
		return "", e
	}
	s.log.Info("peer connection renegotiated", "room", pe.owner.room.key.String(), "user", pe.owner.ident.UserID, "target", pe.target, "usage", pe.usage)
	return sdpAnswer, nil
}

// newGeneration holds the server's candidates back until the next offer or
// answer is sent, and gives the client a fresh candidate allowance.
func (pe *peer) newGeneration() {
	pe.mu.Lock()
	pe.answered = false
	pe.remoteCands = 0
	pe.mu.Unlock()
}

// failed handles the server side of pe failing: true when an ICE restart
// is under way (the client's socket is up and its front end can carry
// the offer), false when pe is to be dropped.
func (pe *peer) failed() bool {
	p := pe.owner
	s := p.room.srv
	sig := p.signaler()
	pe.mu.Lock()
	if pe.closed || pe.restarting || sig == nil || !pe.trickle {
		pe.mu.Unlock()
		return false
	}
	pe.restarting = true
	pe.restartTimer = time.AfterFunc(s.restartWindow(), func() {
		pe.mu.Lock()
		still := pe.restarting
		pe.mu.Unlock()
		if still && pe.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
			s.log.Info("ice restart timed out", "room", p.room.key.String(), "user", p.ident.UserID, "target", pe.target)
			pe.drop()
		}
	})
	pe.mu.Unlock()
	return s.goOwned(func() {
		if !pe.offerRestart(sig) {
			pe.drop()
		}
	})
}

// offerRestart sends the client an offer with new ICE credentials.
func (pe *peer) offerRestart(sig signaler) bool {
	p := pe.owner
	s := p.room.srv
	pe.negMu.Lock()
	defer pe.negMu.Unlock()
	if pe.pc.SignalingState() != webrtc.SignalingStateStable {
		return false
	}
	pe.newGeneration()
	offer, err := pe.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		s.log.Debug("ice restart offer", "room", p.room.key.String(), "user", p.ident.UserID, "err", err)
		pe.answerSent()
		return false
	}
	sdpOffer, e := pe.setLocal(s.ctx, offer)
	if e != nil {
		pe.answerSent()
		return false
	}
	if !sig.restartOffer(pe.target, pe.usage, sdpOffer) {
		pe.answerSent()
		return false
	}
	s.log.Info("ice restart offered", "room", p.room.key.String(), "user", p.ident.UserID, "target", pe.target, "usage", pe.usage)
	pe.answerSent()
	return true
}

// restartAnswered applies the client's answer to the server's restart
// offer.
func (pe *peer) restartAnswered(answer string, maxBytes int) *Error {
	if answer == "" || len(answer) > maxBytes {
		return clientError(CodeBadSDP)
	}
	pe.negMu.Lock()
	defer pe.negMu.Unlock()
	if pe.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return clientError(CodeBadSDP)
	}
	if err := pe.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return clientError(CodeBadSDP)
	}
	return nil
}

// connected ends a restart: the connection is back.
func (pe *peer) connected() {
	pe.mu.Lock()
	pe.restarting = false
	if pe.restartTimer != nil {
		pe.restartTimer.Stop()
		pe.restartTimer = nil
	}
	pe.mu.Unlock()
}

// candidateUfrag is the ufrag a trickled candidate names ("... ufrag X"),
// "" when it names none.
func candidateUfrag(c string) string {
	f := strings.Fields(c)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "ufrag" {
			return f[i+1]
		}
	}
	return ""
}

// remoteUfrag is the client's current ICE username fragment.
func (pe *peer) remoteUfrag() string {
	d := pe.pc.RemoteDescription()
	if d == nil {
		return ""
	}
	if i := strings.Index(d.SDP, "a=ice-ufrag:"); i >= 0 {
		rest := d.SDP[i+len("a=ice-ufrag:"):]
		if j := strings.IndexAny(rest, "\r\n"); j >= 0 {
			return rest[:j]
		}
		return rest
	}
	return ""
}
