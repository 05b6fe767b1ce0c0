package knowledgetalk

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"unicode/utf8"

	"github.com/cstalk/cstalk/video"
)

// call is one licensed request: the decoded fields, the object as sent
// (for relays) and the licence's company.
type call struct {
	req     *request
	raw     map[string]any
	company int64
}

// handlers are the requests that need a licence.
var handlers = map[string]func(*session, *call){
	opCreateRoom:  (*session).createRoom,
	opDestroyRoom: (*session).destroyRoom,
	opRoomJoin:    (*session).roomJoin,
	opSDP:         (*session).sdp,
	opSendFeed:    (*session).sendFeed,
	opReserve:     (*session).reserve,
	opReserveEnd:  (*session).reserveEnd,
	opScreenEnd:   (*session).screenEnd,
	opExitRoom:    (*session).exitRoom,
	opSetVideo:    (*session).setMute,
	opSetAudio:    (*session).setMute,
	opChangeName:  (*session).changeName,
	opChat:        (*session).chat,
}

var roomIDPattern = regexp.MustCompile(`^[0-9]{8}$`)

// newRoomID is a random 8-digit room number, not all zeros (the client's
// join box refuses 0).
func newRoomID() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(99_999_999))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%08d", n.Int64()+1), nil
}

func (sess *session) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(sess.srv.ctx, sess.srv.cfg.StoreTimeout)
}

func (sess *session) createRoom(c *call) {
	s := sess.srv
	capacity := s.cfg.RoomCapacity
	if c.req.Capacity != nil {
		if *c.req.Capacity < 2 {
			sess.answer(c.req, codeInvalid, nil)
			return
		}
		capacity = min(capacity, *c.req.Capacity)
	}
	ctx, cancel := sess.storeCtx()
	defer cancel()
	now := s.now()
	for range 10 {
		id, err := newRoomID()
		if err != nil {
			break
		}
		err = s.store.CreateKTRoom(ctx, &Room{ID: id, CompanyID: c.company, Capacity: capacity, CreatedAt: now, ActiveAt: now})
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			sess.log.Error("create room", "err", err)
			break
		}
		sess.answer(c.req, codeOK, obj{"roomId": id})
		return
	}
	sess.answer(c.req, codeServerError, nil)
}

// destroyRoom deletes a room nobody is in (the client does it when its
// user declines to enter the room it just made).
func (sess *session) destroyRoom(c *call) {
	id := string(c.req.RoomID)
	if id == "" {
		sess.answer(c.req, codeMissing, nil)
		return
	}
	ctx, cancel := sess.storeCtx()
	defer cancel()
	if _, err := sess.srv.store.KTRoom(ctx, c.company, id); errors.Is(err, ErrNotFound) {
		sess.answer(c.req, codeNoRoom, nil)
		return
	} else if err != nil {
		sess.log.Error("destroy room", "room", id, "err", err)
		sess.answer(c.req, codeServerError, nil)
		return
	}
	// Someone is in it: here, or on the node the cluster placed it on.
	key := roomKey(c.company, id)
	if _, self := sess.srv.rooms.Claim(key); !self || len(sess.srv.rooms.Participants(key)) > 0 {
		sess.answer(c.req, codePermission, nil)
		return
	}
	if err := sess.srv.store.DeleteKTRoom(ctx, id); err != nil {
		sess.log.Error("destroy room", "room", id, "err", err)
		sess.answer(c.req, codeServerError, nil)
		return
	}
	sess.answer(c.req, codeOK, obj{"roomId": id})
}

// roomJoin puts the socket into a room of the licence's company. The
// answer and StartSession come from the room (Welcome), in its order.
func (sess *session) roomJoin(c *call) {
	s := sess.srv
	id := string(c.req.RoomID)
	if id == "" {
		sess.answer(c.req, codeMissing, nil)
		return
	}
	sess.mu.Lock()
	busy := sess.roomID != ""
	sess.mu.Unlock()
	if busy {
		sess.answer(c.req, codeAlreadyInRoom, nil)
		return
	}
	// An unknown room gets 400 with useMediaSvr "N": the only answer the
	// deployed client turns into its "room has expired" dialog.
	absent := obj{"useMediaSvr": "N"}
	if !roomIDPattern.MatchString(id) {
		sess.answer(c.req, codeRoomJoinAbsent, absent)
		return
	}
	key := roomKey(c.company, id)
	capacity := s.cfg.RoomCapacity
	if len(s.rooms.Participants(key)) == 0 {
		ctx, cancel := sess.storeCtx()
		room, err := s.store.KTRoom(ctx, c.company, id)
		cancel()
		switch {
		case errors.Is(err, ErrNotFound):
			sess.answer(c.req, codeRoomJoinAbsent, absent)
			return
		case err != nil:
			sess.log.Error("room join", "room", id, "err", err)
			sess.answer(c.req, codeServerError, nil)
			return
		}
		capacity = room.Capacity
	}
	addr, self := s.rooms.Claim(key)
	switch {
	case sess.bound != nil && key != *sess.bound:
		// Relayed here for another room: the relaying node's licence
		// check named another company.
		sess.answer(c.req, codeNoRoom, nil)
		return
	case sess.bound != nil && !self:
		// The room moved since the relaying node looked: the client tries
		// again and reaches it where it is now.
		sess.answer(c.req, codeServerError, nil)
		return
	case !self:
		sess.relayJoin(c, addr, key)
		return
	}
	sess.mu.Lock()
	sess.roomID, sess.company = id, c.company
	sess.mu.Unlock()
	var p *video.Participant
	var err error
	for range 5 {
		var userID string
		if userID, err = newUserID(); err != nil {
			break
		}
		p, err = s.rooms.Join(video.JoinRequest{Room: key, Ident: video.Identity{UserID: userID, Name: defaultName,
			CommunityID: key.Company}, Video: true, Audio: true, FrontEnd: FrontEnd, Capacity: capacity, Signaler: sess, Placed: true})
		if !isVideoCode(err, video.CodeAlreadyJoined) {
			break
		}
	}
	if err != nil {
		sess.mu.Lock()
		sess.roomID, sess.company, sess.userID = "", 0, ""
		sess.mu.Unlock()
		code := codeServerError
		if isVideoCode(err, video.CodeRoomFull) {
			code = codeOverLimit
		}
		sess.answer(c.req, code, nil)
		return
	}
	sess.mu.Lock()
	sess.part = p
	sess.mu.Unlock()
	s.entered(id)
	ctx, cancel := sess.storeCtx()
	defer cancel()
	if err := s.store.TouchKTRooms(ctx, []string{id}, s.now()); err != nil {
		sess.log.Warn("mark room active", "room", id, "err", err)
	}
}

// defaultName is a member's NAME until ChangeName: "anonymous".
const defaultName = "익명"

// newUserID is "u" and 7 digits, the real server's user ids.
func newUserID() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(10_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("u%07d", n.Int64()), nil
}

func isVideoCode(err error, code string) bool {
	var e *video.Error
	return errors.As(err, &e) && e.Code == code
}

// member returns the socket's participant in the request's room, or
// answers why not: 421 without a roomId (unless optional), 441 for a room
// the socket is not in (or another company's).
func (sess *session) member(c *call, roomOptional bool) (*video.Participant, bool) {
	id := string(c.req.RoomID)
	if id == "" && !roomOptional {
		sess.answer(c.req, codeMissing, nil)
		return nil, false
	}
	sess.mu.Lock()
	p, in, company := sess.part, sess.roomID, sess.company
	sess.mu.Unlock()
	if p == nil || (id != "" && id != in) || company != c.company {
		sess.answer(c.req, codeNoRoom, nil)
		return nil, false
	}
	return p, true
}

// sfu reports whether the socket's room is an SFU call (it held more than
// two members at some point).
func (sess *session) sfu() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.peak > 2
}

func (sess *session) self() (userID, roomID string) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.userID, sess.roomID
}

// sdp relays a 1:1 call's SDP to the other member, or gives an SFU
// call's SDP to the SFU: an offer without pluginId publishes the usage,
// an answer with one completes that subscription.
func (sess *session) sdp(c *call) {
	p, ok := sess.member(c, false)
	if !ok {
		return
	}
	r := c.req
	if r.SDP == nil || r.SDP.Type == "" || r.SDP.SDP == "" {
		sess.answer(r, codeMissing, nil)
		return
	}
	if len(r.SDP.SDP) > sess.srv.cfg.MaxSDPBytes {
		sess.answer(r, codeOverLimit, nil)
		return
	}
	usage, okUsage := video.ParseUsage(r.Usage)
	if !okUsage || (r.SDP.Type != "offer" && r.SDP.Type != "answer") {
		sess.answer(r, codeInvalid, nil)
		return
	}
	userID, roomID := sess.self()
	if !sess.sfu() {
		// 1:1: the other member gets the message as sent, credentials
		// removed, with the sender and the mode.
		relayed := make(map[string]any, len(c.raw)+2)
		for k, v := range c.raw {
			relayed[k] = v
		}
		delete(relayed, "cpCode")
		delete(relayed, "authKey")
		relayed["eventOp"], relayed["userId"], relayed["usage"], relayed["useMediaSvr"] = opSDP, userID, string(usage), "N"
		sess.relay(p, relayed)
		return
	}
	if r.PluginID == "" && usage == video.UsageCam && r.Host == nil {
		// A camera SDP for the SFU carries the host flag StartSession gave
		// (the seed asks for it, the client always sends it); one without
		// is the 1:1 offer or answer the client was still sending when a
		// third member turned the call into an SFU call: a relay to a 1:1
		// call that is gone. Answering the offer would hand the client two
		// answers for its new publication.
		sess.log.Info("1:1 SDP in an SFU call dropped", "room", roomID, "user", userID, "type", r.SDP.Type)
		return
	}
	ctx, cancel := context.WithTimeout(sess.srv.ctx, sess.srv.cfg.MediaTimeout)
	defer cancel()
	switch {
	case r.SDP.Type == "offer" && r.PluginID == "":
		answer, err := p.Publish(ctx, usage, r.SDP.SDP)
		if err != nil {
			sess.answer(r, mediaCode(err), nil)
			return
		}
		sess.answer(r, codeOK, obj{"roomId": roomID})
		sess.send(obj{"eventOp": opSDP, "usage": string(usage), "userId": userID,
			"sdp": obj{"type": "answer", "sdp": answer}, "roomId": roomID, "useMediaSvr": "Y"})
		p.Announce(usage)
	case r.SDP.Type == "answer" && r.PluginID != "":
		if err := p.AnswerSubscription(idOf(r.PluginID), r.SDP.SDP); err != nil {
			sess.answer(r, mediaCode(err), nil)
			return
		}
		sess.answer(r, codeOK, obj{"roomId": roomID})
	default:
		sess.answer(r, codeInvalid, nil)
	}
}

// mediaCode is the code of an SFU refusal.
func mediaCode(err error) string {
	var e *video.Error
	if !errors.As(err, &e) {
		return codeMediaServer
	}
	switch e.Code {
	case video.CodeScreenShareTaken:
		return codeShareTaken
	case video.CodeTooManyPublishers, video.CodeTooManySubscription:
		return codeOverLimit
	case video.CodeBadSDP:
		return codeInvalid
	case video.CodeUnknownFeed, video.CodeUnknownSubscription:
		return codeNoData
	case video.CodeNotJoined:
		return codeNoRoom
	}
	return codeMediaServer
}

// relay hands msg to the other members of p's room, as is.
func (sess *session) relay(p *video.Participant, msg obj) {
	b, err := json.Marshal(msg)
	if err != nil {
		sess.log.Error("encode relay", "err", err)
		return
	}
	p.Relay(event, b)
}

// sendFeed subscribes to a feed of a ReceiveFeed: the SFU's offer comes
// back as an SDP with the subscription's pluginId.
func (sess *session) sendFeed(c *call) {
	p, ok := sess.member(c, false)
	if !ok {
		return
	}
	r := c.req
	if r.FeedID == "" {
		sess.answer(r, codeMissing, nil)
		return
	}
	ctx, cancel := context.WithTimeout(sess.srv.ctx, sess.srv.cfg.MediaTimeout)
	defer cancel()
	sub, err := p.Subscribe(ctx, idOf(r.FeedID))
	if err != nil {
		sess.answer(r, mediaCode(err), nil)
		return
	}
	_, roomID := sess.self()
	sess.answer(r, codeOK, nil)
	sess.send(obj{"eventOp": opSDP, "usage": string(sub.Feed.Usage), "sdp": obj{"type": "offer", "sdp": sub.Offer},
		"pluginId": sub.ID, "displayId": display(sub.Feed), "roomId": roomID, "useMediaSvr": "Y"})
}

// display is a feed's display: its publisher, with _screen for a screen
// (the client tells the usage by it). It is also the displayId of the
// subscription's offer: the client keys a camera's tile by the
// publisher's userId.
func display(f video.Feed) string {
	if f.Usage == video.UsageScreen {
		return f.UserID + "_screen"
	}
	return f.UserID
}

func (sess *session) reserve(c *call) {
	if p, ok := sess.member(c, false); ok {
		if !p.ReserveScreen() {
			sess.answer(c.req, codeShareTaken, nil)
			return
		}
		sess.answer(c.req, codeOK, nil)
	}
}

func (sess *session) reserveEnd(c *call) {
	if p, ok := sess.member(c, false); ok {
		if !p.ReleaseScreen() {
			sess.answer(c.req, codeShareTaken, nil)
			return
		}
		sess.answer(c.req, codeOK, nil)
	}
}

// screenEnd ends a share: its publication (if any) goes, the others close
// their screen views.
func (sess *session) screenEnd(c *call) {
	p, ok := sess.member(c, false)
	if !ok {
		return
	}
	userID, roomID := sess.self()
	p.StopScreen()
	sess.relay(p, obj{"eventOp": opScreenEndSvr, "userId": userID, "roomId": roomID})
	sess.answer(c.req, codeOK, obj{"roomId": roomID})
}

// exitRoom leaves the room; the others hear Presence exit now, once.
func (sess *session) exitRoom(c *call) {
	if _, ok := sess.member(c, true); !ok {
		return
	}
	sess.leave("leave")
	sess.answer(c.req, codeOK, nil)
}

// setMute records SetVideo / SetAudio (status true: off) and tells the
// others.
func (sess *session) setMute(c *call) {
	p, ok := sess.member(c, false)
	if !ok {
		return
	}
	if c.req.Status == nil {
		sess.answer(c.req, codeMissing, nil)
		return
	}
	if c.req.op() == opSetVideo {
		p.SetVideo(!*c.req.Status)
	} else {
		p.SetAudio(!*c.req.Status)
	}
}

func (sess *session) changeName(c *call) {
	p, ok := sess.member(c, false)
	if !ok {
		return
	}
	switch name := c.req.Name; {
	case name == nil:
		sess.answer(c.req, codeMissing, nil)
	case *name == "" || utf8.RuneCountInString(*name) > sess.srv.cfg.MaxNameRunes:
		sess.answer(c.req, codeInvalid, nil)
	default:
		p.SetName(*name)
	}
}

func (sess *session) chat(c *call) {
	p, ok := sess.member(c, false)
	if !ok {
		return
	}
	m := c.req.Message
	switch {
	case len(m) == 0 || string(m) == "null":
		sess.answer(c.req, codeMissing, nil)
		return
	case len(m) > sess.srv.cfg.MaxChatBytes:
		sess.answer(c.req, codeOverLimit, nil)
		return
	}
	userID, _ := sess.self()
	sess.relay(p, obj{"signalOp": opChat, "userId": userID, "message": c.raw["message"]})
}
