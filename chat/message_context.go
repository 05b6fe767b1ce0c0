package chat

import (
	"context"
	"fmt"
)

// MessageContext is what storing and rendering one MESSAGE needs from the
// database besides the message itself, read in a single round trip: the
// room, what its last message was, whether its assignee still exists, and
// the read positions that noReadCount is computed from.
type MessageContext struct {
	Room Room
	// LastFound reports that the row of Room.LastMessageID exists; then
	// LastAdminType and LastIsCustomer describe it.
	LastFound      bool
	LastAdminType  int
	LastIsCustomer bool
	// AssigneeFound reports that the member of Room.MemberID exists (false
	// while unassigned, or for a deleted counselor).
	AssigneeFound bool
	// Positions maps speaker ID to the last message ID it has read.
	Positions map[int64]int64
}

// MessageContextStore is implemented by a Store that can read a
// MessageContext in one query. The MESSAGE path uses it when present and
// falls back to the separate Store lookups otherwise.
type MessageContextStore interface {
	// MessageContext returns the context of a MESSAGE to roomID; an unknown
	// room wraps ErrNotFound.
	MessageContext(ctx context.Context, roomID int64) (*MessageContext, error)
}

// messageTarget is the room a MESSAGE goes to, with what the one-query path
// already knows about it (nil context on the fallback path).
type messageTarget struct {
	room *Room
	mc   *MessageContext
}

// messageTarget resolves and authorizes the room of a MESSAGE like
// targetRoom, reading the whole MessageContext in the same query when the
// store can.
func (s *Service) messageTarget(ctx context.Context, r *request) (*messageTarget, error) {
	mcs, ok := s.store.(MessageContextStore)
	if !ok || r.room != nil {
		room, err := r.targetRoom(ctx)
		if err != nil {
			return nil, err
		}
		return &messageTarget{room: room}, nil
	}
	id, err := r.targetRoomID()
	if err != nil {
		return nil, err
	}
	mc, err := mcs.MessageContext(ctx, id)
	if err != nil {
		return nil, s.roomLoadError(id, err)
	}
	room := &mc.Room
	if err := usableBy(r.p, room); err != nil {
		return nil, err
	}
	r.room = room
	return &messageTarget{room: room, mc: mc}, nil
}

// previousIsCustomers reports whether the room's newest conversation message
// before this one was written by the customer, as lastConversationMessage
// would find it; the context answers unless the last message is an internal
// note or gone.
func (s *Service) previousIsCustomers(ctx context.Context, t *messageTarget) (bool, error) {
	if mc := t.mc; mc != nil {
		switch {
		case mc.Room.LastMessageID == 0:
			return false, nil
		case mc.LastFound && mc.LastAdminType == 0:
			return mc.LastIsCustomer, nil
		}
	}
	previous, err := s.lastConversationMessage(ctx, t.room)
	if err != nil {
		return false, err
	}
	return previous != nil && previous.IsCustomer, nil
}

// messagePeople is the roomPeople a MESSAGE payload needs (its
// noReadCount): from the context and the speaker cache when both know
// enough, else loaded as everywhere else. Speaker IDs never change once
// created, so the cache is safe across nodes. A duplicate is rendered with
// freshly read positions, as it always was.
func (s *Service) messagePeople(ctx context.Context, t *messageTarget, p *principal, duplicate bool) (*roomPeople, error) {
	if mc := t.mc; mc != nil && !duplicate {
		rp := &roomPeople{positions: mc.Positions}
		var ok bool
		if rp.speakers.customer, ok = s.cachedSpeaker(false, t.room.CustomerID); ok {
			if t.room.MemberID == nil || !mc.AssigneeFound {
				return rp, nil
			}
			if rp.speakers.member, ok = s.cachedSpeaker(true, *t.room.MemberID); ok {
				return rp, nil
			}
		}
	}
	rp, err := s.loadRoomPeople(ctx, t.room, p)
	if err != nil {
		return nil, fmt.Errorf("people of room %d: %w", t.room.ID, err)
	}
	return rp, nil
}
