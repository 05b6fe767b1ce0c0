package knowledgetalk

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/cstalk/cstalk/video"
)

// The session is its member's Signaler: the room's events, in the room's
// order, become this protocol's messages. The room calls these with its
// lock held; they only update the session's view and queue.

var _ video.Signaler = (*session)(nil)

// members is the room's member object: keyed by userId, NAME, VIDEO and
// AUDIO (true: off) as the client draws tiles from them.
func members(ms []video.Member) obj {
	out := make(obj, len(ms))
	for _, m := range ms {
		out[m.UserID] = obj{"NAME": m.Name, "VIDEO": !m.Video, "AUDIO": !m.Audio}
	}
	return out
}

// startSession is StartSession; count and layout carry the resolution
// policy for the room's size (the seed's count, cstalk's layout).
func startSession(ms []video.Member, sfu bool, who string, layout video.Layout) obj {
	mode := "N"
	if sfu {
		mode = "Y"
	}
	return obj{"eventOp": opStartSession, "members": members(ms), "useMediaSvr": mode, "who": who,
		"count": layout.Participants, "layout": layout}
}

// Welcome answers the RoomJoin and, when the joiner starts or joins an
// SFU call, tells it to publish (StartSession after the answer, as the
// client needs its userId first). In a 1:1 call only the member already
// there gets StartSession, so that one side offers.
func (sess *session) Welcome(w video.Welcome) {
	all := append([]video.Member{w.Self}, w.Others...)
	n := len(all)
	sess.mu.Lock()
	sess.userID = w.Self.UserID
	sess.peak = max(w.PeakBefore, n)
	roomID := sess.roomID
	sess.mu.Unlock()
	sess.send(obj{"eventOp": opRoomJoin, "code": codeOK, "message": codeText(codeOK, sess.lang),
		"userId": w.Self.UserID, "members": members(all), "roomId": roomID})
	switch wasSFU := w.PeakBefore > 2; {
	case !wasSFU && n <= 2:
	case !wasSFU:
		// The third member turns the call into an SFU call (changeView).
		m := startSession(all, true, w.Self.UserID, w.Layout)
		m["changeView"], m["host"] = true, true
		sess.send(m)
	default:
		m := startSession(all, true, w.Self.UserID, w.Layout)
		m["host"] = false
		sess.send(m)
	}
}

// Arrived: StartSession to the first member of a 1:1 call and to everyone
// when the call turns SFU; Presence join (with the members, which the
// client reads) in an SFU call already running.
func (sess *session) Arrived(a video.Arrival) {
	n := len(a.Members)
	sess.mu.Lock()
	sess.peak = max(sess.peak, a.PeakBefore, n)
	sess.mu.Unlock()
	who := a.Member.UserID
	switch wasSFU := a.PeakBefore > 2; {
	case !wasSFU && n <= 2:
		sess.send(startSession(a.Members, false, who, a.Layout))
	case !wasSFU:
		m := startSession(a.Members, true, who, a.Layout)
		m["changeView"], m["host"] = true, false
		sess.send(m)
	default:
		sess.send(obj{"signalOp": opPresence, "action": "join", "userId": who, "members": members(a.Members),
			"count": a.Layout.Participants, "layout": a.Layout})
	}
}

// Left is Presence exit, once per departure (ExitRoom or the socket's
// close, whichever comes first).
func (sess *session) Left(userID string, layout video.Layout) {
	sess.send(obj{"signalOp": opPresence, "action": "exit", "userId": userID, "count": layout.Participants, "layout": layout})
}

// VideoState and AudioState relay SetVideo / SetAudio (status true: off)
// to the others; the sender is not told (in a 1:1 call it would change
// the remote tile).
func (sess *session) VideoState(userID string, on bool) { sess.stateRelay(opSetVideo, userID, on) }
func (sess *session) AudioState(userID string, on bool) { sess.stateRelay(opSetAudio, userID, on) }

func (sess *session) stateRelay(op, userID string, on bool) {
	self, roomID := sess.self()
	if userID != self {
		sess.send(obj{"signalOp": op, "userId": userID, "roomId": roomID, "status": !on})
	}
}

func (sess *session) Renamed(userID, name string) {
	if self, _ := sess.self(); userID != self {
		sess.send(obj{"signalOp": opChangeName, "userId": userID, "name": name})
	}
}

// AppSignal delivers a message another member's session built (a 1:1
// SDP, a Chat, the end of a screen share).
func (sess *session) AppSignal(_ string, id string, data []byte) {
	if id != event {
		return
	}
	var m obj
	if err := json.Unmarshal(data, &m); err == nil {
		sess.send(m)
	}
}

// Published: the member's own camera feed opens the flow of the others'
// (the room sends those already there right after); another's feed is a
// ReceiveFeed the client answers with SendFeed.
func (sess *session) Published(f video.Feed) {
	sess.mu.Lock()
	self, roomID, announced := sess.userID, sess.roomID, sess.camAnnounced
	if f.UserID == self && f.Usage == video.UsageCam {
		sess.camAnnounced = true
	}
	sess.mu.Unlock()
	if f.UserID == self || !announced {
		return
	}
	sess.send(obj{"eventOp": opReceiveFeed, "roomId": roomID, "reqNo": reqNo(),
		"feeds": []obj{{"id": f.ID, "display": display(f), "usage": string(f.Usage)}}})
}

// Unpublished: ScreenShareConferenceEndSvr has told the others already.
func (sess *session) Unpublished(video.Feed) {}

// ScreenEnded: the sharer left; the others close their screen views.
func (sess *session) ScreenEnded(userID string) {
	_, roomID := sess.self()
	sess.send(obj{"eventOp": opScreenEndSvr, "userId": userID, "roomId": roomID, "code": codeOK, "message": codeText(codeOK, sess.lang)})
}

// Closed: the room was closed or the server is stopping.
func (sess *session) Closed(code string) {
	sess.log.Info("room closed under the member", "code", code)
	sess.close(code)
}

// reqNo is a fresh 7-digit request number, as the real server puts on
// ReceiveFeed (the client reads none).
func reqNo() string {
	n, err := rand.Int(rand.Reader, big.NewInt(9_000_000))
	if err != nil {
		return "1000000"
	}
	return fmt.Sprint(1_000_000 + n.Int64())
}
