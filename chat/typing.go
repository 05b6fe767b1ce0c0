package chat

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// TYPING: a connection says it is (or stopped) writing in a room. Nothing
// is stored. Conversation typing goes to the room destination; typing of
// an internal note (messageAdminType 1) goes where notes go, the members
// present, so a customer never learns a note is being written.
//
// A console sends typing:true while keys are pressed and typing:false when
// it stops or sends; relaying each would be traffic for nothing. A
// connection's TYPING is relayed only when it changes what others see:
// typing:true when it was not shown (or last refreshed typingRefresh ago,
// so viewers may hide an indicator after about twice that), typing:false
// when true was shown. The trues are limited per connection by a token
// bucket; a false that clears a true shown always passes, so there are
// never more of them than trues. What is not relayed is dropped without an
// ERROR: an indicator is best effort. Leaving a room (LEAVE, UNSUBSCRIBE,
// disconnect) clears what the connection showed there.

const (
	typingRefresh = 3 * time.Second
	typingRate    = 4 // relayed typing:true per second and connection
	typingBurst   = 4
	// typingRooms bounds the indicators one connection may show at once.
	typingRooms = 64
)

// typingKey is one indicator: a room, and whether it is a note's.
type typingKey struct {
	room int64
	note bool
}

// typingState is what a connection's TYPING showed, guarded by its
// principal's mutex.
type typingState struct {
	limiter *rate.Limiter
	shown   map[typingKey]time.Time // typing:true relayed, and when
}

// typingWanted reports whether TYPING would change what others see, before
// the room is looked up (most TYPING events change nothing).
func (p *principal) typingWanted(k typingKey, typing bool, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, shown := p.typing.shown[k]
	if !typing {
		return shown
	}
	return (!shown || now.Sub(at) >= typingRefresh) && (shown || len(p.typing.shown) < typingRooms)
}

// typingRelay records a TYPING that will be relayed, or reports that the
// connection's bucket refuses it.
func (p *principal) typingRelay(k typingKey, typing bool, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !typing {
		if _, shown := p.typing.shown[k]; !shown {
			return false
		}
		delete(p.typing.shown, k)
		return true
	}
	if p.typing.limiter == nil {
		p.typing.limiter = rate.NewLimiter(typingRate, typingBurst)
		p.typing.shown = make(map[typingKey]time.Time)
	}
	if !p.typing.limiter.AllowN(now, 1) {
		return false
	}
	p.typing.shown[k] = now
	return true
}

// typingShownIn takes the indicators the connection shows in room (every
// room for 0) off its books and returns them.
func (p *principal) typingShownIn(room int64) []typingKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []typingKey
	for k := range p.typing.shown {
		if room == 0 || k.room == room {
			out = append(out, k)
			delete(p.typing.shown, k)
		}
	}
	return out
}

func (s *Service) handleTyping(ctx context.Context, r *request) error {
	var d struct {
		Typing           flexInt `json:"typing"`
		MessageAdminType flexInt `json:"messageAdminType"`
	}
	if err := r.decode(&d); err != nil {
		return err
	}
	switch {
	case !d.Typing.set:
		return reason("missing_field", "typing")
	case d.Typing.v != 0 && d.Typing.v != 1:
		return reason("invalid_field", "typing")
	case d.MessageAdminType.v != 0 && d.MessageAdminType.v != 1:
		return reason("invalid_field", "messageAdminType")
	case d.MessageAdminType.v == 1 && !r.p.isMember():
		return reason("members_only")
	}
	id, err := r.targetRoomID()
	if err != nil {
		return err
	}
	k, typing, now := typingKey{room: id, note: d.MessageAdminType.v == 1}, d.Typing.v == 1, s.now()
	if !r.p.typingWanted(k, typing, now) {
		return nil
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	if typing && room.Status == StatusEnded {
		return reason("room_ended")
	}
	if !r.p.typingRelay(k, typing, now) {
		s.log.Debug("typing dropped", "session", r.sessionID, "room", room.ID)
		return nil
	}
	return s.relayTyping(ctx, r.sessionID, r.p, room.ID, k.note, typing)
}

// relayTyping sends TYPING as a message of the same kind would go: on the
// room, or for a note to the members present.
func (s *Service) relayTyping(ctx context.Context, sessionID string, p *principal, roomID int64, note bool, typing bool) error {
	kind := 0
	if note {
		kind = 1
	}
	room := &Room{ID: roomID, CompanyID: p.company.ID}
	return s.deliver(ctx, sessionID, room, &Message{AdminType: kind}, &Envelope{
		EventName: EventTyping, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{
			"roomId": idString(room.ID), "speakerId": p.speaker.ID, "isCustomer": flag(!p.isMember()), "typing": typing,
		},
		SessionID: sessionID,
	})
}

// typingLeft clears what the connection showed in room (every room for 0)
// when it leaves.
func (s *Service) typingLeft(ctx context.Context, sessionID string, p *principal, room int64) {
	for _, k := range p.typingShownIn(room) {
		if err := s.relayTyping(ctx, sessionID, p, k.room, k.note, false); err != nil {
			s.log.Warn("typing not cleared", "session", sessionID, "room", k.room, "err", err)
		}
	}
}
