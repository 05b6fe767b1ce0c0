package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

const maxHistoryItems = 200

// assign gives a WAITING room to member p and stores the system message
// announcing it. It returns the room as stored and the system message, nil
// when p already had the room; another member's room wraps ErrConflict.
func (s *Service) assign(ctx context.Context, p *principal, room *Room) (*Room, *Message, error) {
	updated, changed, err := s.store.AssignRoom(ctx, room.ID, p.member.ID, s.now())
	if err != nil {
		return nil, nil, fmt.Errorf("assign room %d to member %d: %w", room.ID, p.member.ID, err)
	}
	if !changed {
		return updated, nil, nil
	}
	s.log.Info("room assigned", "room", room.ID, "member", p.member.ID)
	sys, err := s.announceAssignment(ctx, p, updated)
	if err != nil {
		return nil, nil, err
	}
	return updated, sys, nil
}

// announceAssignment stores the system message saying member p took the
// room, whoever decided it (ASSIGN, a first subscription, auto-assignment).
func (s *Service) announceAssignment(ctx context.Context, p *principal, room *Room) (*Message, error) {
	// Stored text is read by both sides, so it is in the company's
	// language (Korean), whatever the counselor's client asked for. The
	// counselor taking the room is connected: the notice is online.
	sys := &Message{
		Body:     fmt.Sprintf(Korean.T("system_assigned"), p.member.Name),
		IsSystem: true,
		IsOnline: true,
	}
	stored, _, err := s.appendMessage(ctx, p, room, sys)
	return stored, err
}

// assigned finishes an assignment the store has made (auto-assignment)
// exactly as ASSIGN finishes its own: the system message, ROOM_DETAIL to
// those present, RELOAD and RELOAD_READY. It returns the room object.
func (s *Service) assigned(ctx context.Context, sessionID string, p *principal, room *Room) (*RoomDetail, error) {
	sys, err := s.announceAssignment(ctx, p, room)
	if err != nil {
		return nil, err
	}
	rp, err := s.loadRoomPeople(ctx, room, p)
	if err != nil {
		return nil, err
	}
	detail, err := s.roomDetail(ctx, room, rp)
	if err != nil {
		return nil, err
	}
	return detail, s.afterAssign(ctx, sessionID, p, room, rp, sys, detail)
}

// afterAssign tells the room (system message; ROOM_DETAIL privately to the
// others present, the assigning connection gets its own) and the lobby.
func (s *Service) afterAssign(ctx context.Context, sessionID string, p *principal, room *Room, rp *roomPeople, sys *Message, detail *RoomDetail) error {
	if err := s.deliver(ctx, sessionID, room, sys, &Envelope{
		EventName: EventMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: newMessageData(s.messagePayload(room, rp, sys)), SessionID: sessionID,
	}); err != nil {
		return err
	}
	s.roomDetailChanged(ctx, room, sessionID, sessionID, detail)
	prof := s.profile(p, sessionID, room.ID)
	return s.reloadLobby(ctx, room.CompanyID, room, &prof, sessionID)
}

func (s *Service) handleAssign(ctx context.Context, r *request) error {
	if !r.p.isMember() {
		return reason("members_only")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	updated, detail, err := s.takeRoom(ctx, r.sessionID, r.p, room)
	if err != nil {
		return err
	}
	r.room = updated
	return s.sendPrivate(ctx, r.sessionID, &Envelope{
		EventName: EventRoomDetail, CompanyID: idString(updated.CompanyID), RoomID: idPtr(updated.ID),
		Data: map[string]any{"room": detail}, SessionID: r.sessionID,
	})
}

// takeRoom is ASSIGN, for the event and for the console's REST matchRoom
// alike: member p takes a WAITING room, the room gets the system message and
// the others present their ROOM_DETAIL, the lobby RELOAD and RELOAD_READY.
// Taking one's own room again changes and tells nothing. It returns the room
// as stored and its object; an ended room or another member's is refused
// with room_ended or room_taken.
func (s *Service) takeRoom(ctx context.Context, sessionID string, p *principal, room *Room) (*Room, *RoomDetail, error) {
	if room.Status == StatusEnded {
		return nil, nil, reason("room_ended")
	}
	updated, changed, err := s.store.AssignRoom(ctx, room.ID, p.member.ID, s.now())
	if errors.Is(err, ErrConflict) {
		return nil, nil, reason("room_taken")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("assign room %d to member %d: %w", room.ID, p.member.ID, err)
	}
	if changed {
		s.log.Info("room assigned", "room", room.ID, "member", p.member.ID)
		detail, err := s.assigned(ctx, sessionID, p, updated)
		if err != nil {
			return nil, nil, err
		}
		return updated, detail, nil
	}
	rp, err := s.loadRoomPeople(ctx, updated, p)
	if err != nil {
		return nil, nil, err
	}
	detail, err := s.roomDetail(ctx, updated, rp)
	if err != nil {
		return nil, nil, err
	}
	return updated, detail, nil
}

// AssignRoom is ASSIGN from the REST API (the console's matchRoom): actor
// takes room roomID of its company with everything the event does (see
// takeRoom) and gets the room object back. Another company's room wraps
// ErrNotFound; an ended room or another member's is refused with
// ErrRoomEnded or ErrRoomTaken.
func (s *Service) AssignRoom(ctx context.Context, actor *Member, roomID int64) (*RoomDetail, error) {
	room, p, err := s.memberRoomAction(ctx, actor, roomID)
	if err != nil {
		return nil, fmt.Errorf("chat: assign room %d: %w", roomID, err)
	}
	_, detail, err := s.takeRoom(ctx, "", p, room)
	var re *reasonError
	if errors.As(err, &re) {
		switch re.key {
		case "room_ended":
			err = ErrRoomEnded
		case "room_taken":
			err = ErrRoomTaken
		}
	}
	if err != nil {
		return nil, fmt.Errorf("chat: assign room %d to member %d: %w", roomID, actor.ID, err)
	}
	return detail, nil
}

// Refusals of AssignRoom.
var (
	ErrRoomEnded = errors.New("chat: the room has ended")
	ErrRoomTaken = errors.New("chat: another member has the room")
)

// memberRoomAction loads room roomID for an action actor takes outside a
// socket (REST), with the principal that action speaks as. Another
// company's room wraps ErrNotFound.
func (s *Service) memberRoomAction(ctx context.Context, actor *Member, roomID int64) (*Room, *principal, error) {
	room, err := s.store.Room(ctx, roomID)
	if err != nil {
		return nil, nil, err
	}
	if actor == nil || room.CompanyID != actor.CompanyID {
		return nil, nil, ErrNotFound
	}
	p, err := s.memberPrincipal(ctx, actor)
	if err != nil {
		return nil, nil, err
	}
	return room, p, nil
}

func (s *Service) handleRoomDetail(ctx context.Context, r *request) error {
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	rp, err := s.loadRoomPeople(ctx, room, r.p)
	if err != nil {
		return err
	}
	detail, err := s.roomDetail(ctx, room, rp)
	if err != nil {
		return err
	}
	return s.sendPrivate(ctx, r.sessionID, &Envelope{
		EventName: EventRoomDetail, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"room": s.viewerDetail(r.p, detail)}, SessionID: r.sessionID,
	})
}

func (s *Service) handleEnd(ctx context.Context, r *request) error {
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	prof := s.profile(r.p, r.sessionID, room.ID)
	changed, err := s.endRoom(ctx, room, &prof, r.sessionID)
	if err != nil {
		return err
	}
	if !changed {
		// Ending twice is harmless: the caller learns it is over.
		return s.sendPrivate(ctx, r.sessionID, &Envelope{
			EventName: EventEnd, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
			Data: map[string]any{}, SessionID: r.sessionID,
		})
	}
	return nil
}

// EndRoom ends a room of actor's company (from the REST API): END to the
// room, ROOM_DETAIL, RELOAD to the lobby. Another company's room wraps
// ErrNotFound; ending an ENDED room does nothing.
func (s *Service) EndRoom(ctx context.Context, actor *Member, roomID int64) error {
	room, p, err := s.memberRoomAction(ctx, actor, roomID)
	if err != nil {
		return fmt.Errorf("chat: end room %d: %w", roomID, err)
	}
	who := s.profile(p, "", room.ID)
	if _, err := s.endRoom(ctx, room, &who, ""); err != nil {
		return fmt.Errorf("chat: end room %d: %w", roomID, err)
	}
	return nil
}

func (s *Service) endRoom(ctx context.Context, room *Room, who *Profile, sessionID string) (bool, error) {
	ended, changed, err := s.store.EndRoom(ctx, room.ID, s.now())
	if err != nil {
		return false, fmt.Errorf("end room %d: %w", room.ID, err)
	}
	if !changed {
		return false, nil
	}
	s.log.Info("room ended", "room", room.ID, "company", room.CompanyID)
	// A conversation that ends takes its video call with it.
	s.endVideoCall(room)
	if err := s.publishRoom(ctx, ended, sessionID, EventEnd, map[string]any{}); err != nil {
		return true, err
	}
	detail, err := s.RoomPayload(ctx, ended)
	if err != nil {
		return true, err
	}
	s.roomDetailChanged(ctx, ended, "", sessionID, detail)
	if err := s.reloadLobby(ctx, ended.CompanyID, ended, who, sessionID); err != nil {
		return true, err
	}
	if room.MemberID != nil || ended.MemberID != nil {
		// Its counselor has room for another one.
		s.routeWaiting(ctx, ended.CompanyID)
	}
	return true, nil
}

// handleStartMessage: a customer starts a consultation; the company's text
// for the moment (working hours, lunch, after hours) is stored as a system
// message and the lobby is told.
func (s *Service) handleStartMessage(ctx context.Context, r *request) error {
	if r.p.isMember() {
		return reason("customers_only")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	if room.Status == StatusEnded {
		return reason("room_ended")
	}
	// Stored for both sides to read: the company's language, not the
	// customer's (as the assignment notice and chatbot lines). Its fixed
	// clientMessageId makes it once per room, whatever the races: a repeat
	// stores and tells nothing.
	sys := &Message{Body: s.startText(r.p.company, Korean), IsSystem: true, ClientMessageID: startMessageID}
	stored, repeated, err := s.appendMessage(ctx, r.p, room, sys)
	if err != nil || repeated {
		return err
	}
	rp, err := s.loadRoomPeople(ctx, room, r.p)
	if err != nil {
		return err
	}
	if err := s.deliver(ctx, r.sessionID, room, stored, &Envelope{
		EventName: EventMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: newMessageData(s.messagePayload(room, rp, stored)), SessionID: r.sessionID,
	}); err != nil {
		return err
	}
	prof := s.profile(r.p, r.sessionID, room.ID)
	return s.reloadLobby(ctx, room.CompanyID, room, &prof, r.sessionID)
}

// startMessageID is the clientMessageId of a room's START_MESSAGE line.
// Clients may not use the reserved prefix (checkFields), so none can take
// its place.
const startMessageID = reservedClientIDPrefix + "start"

// reservedClientIDPrefix starts the clientMessageIds the server gives its
// own once-per-room lines.
const reservedClientIDPrefix = "cstalk:"

// startText picks the company's START_MESSAGE text for now in cfg.Zone.
func (s *Service) startText(c *Company, l Lang) string {
	now := s.now().In(s.cfg.Zone)
	minute := now.Hour()*60 + now.Minute()
	pick := func(custom, key string) string {
		if strings.TrimSpace(custom) != "" {
			return custom
		}
		return l.T(key)
	}
	if inWindow(minute, c.LunchStart, c.LunchEnd) {
		return pick(c.LunchText, "start_lunch")
	}
	if c.WorkStart != "" && c.WorkEnd != "" && !inWindow(minute, c.WorkStart, c.WorkEnd) {
		return pick(c.AfterHoursText, "start_after_hours")
	}
	return pick(c.WorkingText, "start_working")
}

// inWindow reports whether minute-of-day lies in [start, end) given as
// "HH:MM"; windows may wrap midnight; an unset or bad window contains nothing.
func inWindow(minute int, start, end string) bool {
	a, okA := clockMinute(start)
	b, okB := clockMinute(end)
	if !okA || !okB || a == b {
		return false
	}
	if a < b {
		return minute >= a && minute < b
	}
	return minute >= a || minute < b
}

func clockMinute(v string) (int, bool) {
	t, err := time.Parse("15:04", strings.TrimSpace(v))
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

func (s *Service) handleReview(ctx context.Context, r *request) error {
	if r.p.isMember() {
		return reason("customers_only")
	}
	var d struct {
		ReviewScore flexInt `json:"reviewScore"`
	}
	if err := r.decode(&d); err != nil {
		return err
	}
	if !d.ReviewScore.set || d.ReviewScore.v < 1 || d.ReviewScore.v > 5 {
		return reason("invalid_review")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	// The deployed customer page offers the review while connected, before
	// END; only a room nobody has taken yet has nothing to review.
	if room.Status == StatusWaiting {
		return reason("review_unassigned")
	}
	if err := s.store.SetReview(ctx, room.ID, int(d.ReviewScore.v), s.now()); err != nil {
		return fmt.Errorf("review of room %d: %w", room.ID, err)
	}
	return s.sendPrivate(ctx, r.sessionID, &Envelope{
		EventName: EventReview, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"success": true}, SessionID: r.sessionID,
	})
}

// historyItem is one line of a chatbot transcript: either a plain string
// (the bot spoke) or an object.
type historyItem struct {
	Message       string  `json:"message"`
	MessageType   flexInt `json:"messageType"`
	MessageDetail string  `json:"messageDetail"`
	IsCustomer    flexInt `json:"isCustomer"`
}

// handleSaveHistory stores a chatbot transcript in the customer's room, in
// order, and shows it to the room.
func (s *Service) handleSaveHistory(ctx context.Context, r *request) error {
	if r.p.isMember() {
		return reason("customers_only")
	}
	var d struct {
		History []json.RawMessage `json:"history"`
	}
	if err := r.decode(&d); err != nil {
		return err
	}
	if d.History == nil {
		return reason("missing_field", "history")
	}
	if len(d.History) > maxHistoryItems {
		return reason("history_too_long", maxHistoryItems)
	}
	lines := make([]*Message, 0, len(d.History))
	for _, raw := range d.History {
		var it historyItem
		if len(raw) > 0 && raw[0] == '"' {
			if err := json.Unmarshal(raw, &it.Message); err != nil {
				return reason("invalid_field", "history")
			}
		} else if err := json.Unmarshal(raw, &it); err != nil {
			return reason("invalid_field", "history")
		}
		m := &Message{Type: int(it.MessageType.v), Body: it.Message, Detail: strings.TrimSpace(it.MessageDetail)}
		if m.Type == 0 && strings.TrimSpace(m.Body) == "" && m.Detail == "" {
			continue // an empty line of the transcript
		}
		if it.IsCustomer.v == 0 {
			m.IsSystem, m.SpeakerName = true, Korean.T("chatbot_name")
		}
		lines = append(lines, m)
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	if room.Status == StatusEnded {
		return reason("room_ended")
	}
	// Every line is checked as a MESSAGE is, before any is stored.
	for _, m := range lines {
		if err := s.checkMessage(room, m); err != nil {
			return err
		}
	}
	stored := make([]*Message, 0, len(lines))
	for _, m := range lines {
		saved, _, err := s.appendMessage(ctx, r.p, room, m)
		if err != nil {
			return err
		}
		stored = append(stored, saved)
	}
	if len(stored) > 0 {
		rp, err := s.loadRoomPeople(ctx, room, r.p)
		if err != nil {
			return err
		}
		for _, m := range stored {
			if err := s.deliver(ctx, r.sessionID, room, m, &Envelope{
				EventName: EventMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
				Data: newMessageData(s.messagePayload(room, rp, m)), SessionID: r.sessionID,
			}); err != nil {
				return err
			}
		}
		prof := s.profile(r.p, r.sessionID, room.ID)
		if err := s.reloadLobby(ctx, room.CompanyID, room, &prof, r.sessionID); err != nil {
			return err
		}
		if slices.ContainsFunc(stored, func(m *Message) bool { return m.IsCustomer }) {
			s.routeFirstMessage(ctx, r.p, room)
		}
	}
	return s.sendPrivate(ctx, r.sessionID, &Envelope{
		EventName: EventSaveHistory, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"success": true, "count": len(stored)}, SessionID: r.sessionID,
	})
}

// handleLeave takes the connection out of the room without ending it (a
// console going back to the lobby while its subscription lingers).
func (s *Service) handleLeave(ctx context.Context, r *request) error {
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	s.leaveRoom(ctx, r.sessionID, r.p, room.ID)
	return s.sendPrivate(ctx, r.sessionID, &Envelope{
		EventName: EventLeave, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"success": true}, SessionID: r.sessionID,
	})
}
