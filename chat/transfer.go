package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// TRANSFER hands a room to a colleague: its assignee (or an administrator)
// names a member of the company who is not OFFLINE, with an optional note
// for the colleague. The room is reassigned (a conditional update: a room
// that changed meanwhile is refused, never overridden); a system message
// tells the room, the note is stored as an internal note, those present get
// ROOM_DETAIL, the lobby RELOAD and RELOAD_READY, and the new assignee's
// consoles TRANSFERRED privately. The previous assignee has room for
// another one: waiting rooms may be routed to it.

func (s *Service) handleTransfer(ctx context.Context, r *request) error {
	if !r.p.isMember() {
		return reason("members_only")
	}
	var d struct {
		MemberID flexInt `json:"memberId"`
		Note     *string `json:"note"`
	}
	if err := r.decode(&d); err != nil {
		return err
	}
	if !d.MemberID.set || d.MemberID.v <= 0 {
		return reason("missing_field", "memberId")
	}
	note := ""
	if d.Note != nil {
		note = strings.TrimSpace(*d.Note)
	}
	switch {
	case len(note) > s.cfg.MaxMessageBytes:
		return reason("message_too_long", s.cfg.MaxMessageBytes)
	case strings.ContainsRune(note, 0):
		return reason("invalid_field", "note")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	if room.Status == StatusEnded {
		return reason("room_ended")
	}
	if !r.p.isAdmin() && (room.MemberID == nil || *room.MemberID != r.p.member.ID) {
		return reason("transfer_forbidden")
	}
	to, err := s.store.Member(ctx, d.MemberID.v)
	if errors.Is(err, ErrNotFound) || (err == nil && to.CompanyID != room.CompanyID) {
		return reason("transfer_no_member")
	}
	if err != nil {
		return fmt.Errorf("member %d: %w", d.MemberID.v, err)
	}
	if room.MemberID != nil && *room.MemberID == to.ID {
		return reason("transfer_same")
	}
	if status, err := s.effectiveStatus(ctx, to); err != nil {
		return err
	} else if status == MemberOffline {
		return reason("transfer_offline")
	}
	updated, err := s.store.TransferRoom(ctx, room.ID, room.MemberID, to.ID, s.now())
	switch {
	case errors.Is(err, ErrConflict):
		return reason("room_changed")
	case errors.Is(err, ErrNotFound):
		return reason("transfer_no_member")
	case err != nil:
		return fmt.Errorf("transfer room %d: %w", room.ID, err)
	}
	r.room = updated
	s.log.Info("room transferred", "room", room.ID, "from", room.MemberID, "to", to.ID, "by", r.p.member.ID)
	detail, err := s.transferred(ctx, r.sessionID, r.p, updated, to, note)
	if err != nil {
		return err
	}
	if err := s.sendPrivate(ctx, r.sessionID, &Envelope{
		EventName: EventRoomDetail, CompanyID: idString(updated.CompanyID), RoomID: idPtr(updated.ID),
		Data: map[string]any{"room": detail}, SessionID: r.sessionID,
	}); err != nil {
		return err
	}
	if room.MemberID != nil {
		s.routeWaiting(ctx, room.CompanyID)
	}
	return nil
}

// transferred tells everyone concerned that member p gave room to member
// to, and returns the room object.
func (s *Service) transferred(ctx context.Context, sessionID string, p *principal, room *Room, to *Member, note string) (*RoomDetail, error) {
	// Stored for both sides to read: in the company's language.
	sys, _, err := s.appendMessage(ctx, p, room, &Message{
		Body: fmt.Sprintf(Korean.T("system_transferred"), to.Name), IsSystem: true, IsOnline: true,
	})
	if err != nil {
		return nil, err
	}
	var noteMsg *Message
	if note != "" {
		if noteMsg, _, err = s.appendMessage(ctx, p, room, &Message{Body: note, AdminType: 1}); err != nil {
			return nil, err
		}
	}
	rp, err := s.loadRoomPeople(ctx, room, p)
	if err != nil {
		return nil, err
	}
	for _, m := range []*Message{sys, noteMsg} {
		if m == nil {
			continue
		}
		if err := s.deliver(ctx, sessionID, room, m, &Envelope{
			EventName: EventMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
			Data: map[string]any{"message": s.messagePayload(room, rp, m)}, SessionID: sessionID,
		}); err != nil {
			return nil, err
		}
	}
	detail, err := s.roomDetail(ctx, room, rp)
	if err != nil {
		return nil, err
	}
	s.roomDetailChanged(ctx, room, sessionID, sessionID, detail)
	prof := s.profile(p, sessionID, room.ID)
	if err := s.reloadLobby(ctx, room.CompanyID, room, &prof, sessionID); err != nil {
		return nil, err
	}
	s.tellTransferred(ctx, sessionID, p, room, to, detail, note)
	return detail, nil
}

// tellTransferred sends TRANSFERRED to every console of the new assignee,
// on whatever node.
func (s *Service) tellTransferred(ctx context.Context, sessionID string, p *principal, room *Room, to *Member, detail *RoomDetail, note string) {
	sp, err := s.memberSpeakerID(ctx, to)
	if err != nil {
		s.log.Warn("TRANSFERRED not sent", "room", room.ID, "err", err)
		return
	}
	sessions, err := s.consoleSessions(ctx, room.CompanyID, sp)
	if err != nil {
		s.log.Warn("TRANSFERRED not sent", "room", room.ID, "err", err)
		return
	}
	var noteValue *string
	if note != "" {
		noteValue = &note
	}
	from := roomMember(p.member, p.speaker.ID)
	for _, console := range sessions {
		if err := s.sendPrivate(ctx, console, &Envelope{
			EventName: EventTransferred, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
			Data:   map[string]any{"room": detail, "from": from, "note": noteValue},
			Target: TargetMember, SessionID: sessionID,
		}); err != nil {
			s.log.Warn("TRANSFERRED not delivered", "room", room.ID, "session", console, "err", err)
		}
	}
}
