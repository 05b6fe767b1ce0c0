package chat

import (
	"context"
	"fmt"
)

// AttendeeGone is how a cluster-wide Presence reports a connection that
// ended without a word from its node, because the node died. A customer for
// whom it was the last connection to the room is OFFLINE for the lobby, as
// the node would have said had it lived; counselors have no such event.
//
// A negative roomID is a company's lobby (lobbyPresence): a console of a
// dead node, whose member is OFFLINE once it has no other.
func (s *Service) AttendeeGone(ctx context.Context, roomID int64, a Attendee) {
	if roomID < 0 {
		if err := s.consoleOfDeadNode(ctx, -roomID, a); err != nil {
			s.log.Warn("member status for a dead node's console", "company", -roomID, "session", a.SessionID, "err", err)
		}
		return
	}
	if a.IsMember {
		return
	}
	if err := s.attendeeGone(ctx, roomID, a); err != nil {
		s.log.Warn("offline event for a dead node's connection", "room", roomID, "session", a.SessionID, "err", err)
	}
}

func (s *Service) attendeeGone(ctx context.Context, roomID int64, a Attendee) error {
	// The customer may be back already, through another node.
	if online, err := s.speakerPresent(ctx, roomID, a.SpeakerID); err != nil || online {
		return err
	}
	room, err := s.store.Room(ctx, roomID)
	if err != nil {
		return fmt.Errorf("room %d: %w", roomID, err)
	}
	p := &principal{}
	if p.company, err = s.store.Company(ctx, room.CompanyID); err != nil {
		return fmt.Errorf("company %d: %w", room.CompanyID, err)
	}
	if p.customer, err = s.store.Customer(ctx, room.CustomerID); err != nil {
		return fmt.Errorf("customer %d: %w", room.CustomerID, err)
	}
	if p.speaker, err = s.store.Speaker(ctx, a.SpeakerID); err != nil {
		return fmt.Errorf("speaker %d: %w", a.SpeakerID, err)
	}
	s.log.Info("customer offline with its node", "room", roomID, "session", a.SessionID)
	return s.publishLobby(ctx, room.CompanyID, presenceKey(roomID), &Envelope{
		EventName: EventOffline, CompanyID: idString(room.CompanyID), RoomID: idPtr(roomID),
		Data: map[string]any{"profile": s.profile(p, a.SessionID, roomID)}, Target: TargetLobby, SessionID: a.SessionID,
	})
}
