package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

const (
	maxDetailBytes          = 2048
	maxClientMessageIDBytes = 128
)

// handleMessage stores a message, then delivers it: conversation messages to
// the room destination, internal notes privately to the members in the room.
func (s *Service) handleMessage(ctx context.Context, r *request) error {
	d := r.message
	if d == nil {
		d = new(messageFields)
		if err := r.decode(d); err != nil {
			return err
		}
	}
	m := &Message{Type: int(d.MessageType.v), AdminType: int(d.MessageAdminType.v)}
	if m.AdminType != 0 && m.AdminType != 1 {
		return reason("invalid_field", "messageAdminType")
	}
	if m.AdminType == 1 && !r.p.isMember() {
		return reason("members_only")
	}
	if d.Message != nil {
		m.Body = *d.Message
	}
	if d.MessageDetail != nil {
		m.Detail = strings.TrimSpace(*d.MessageDetail)
	}
	if d.Thumbnail != nil {
		m.Thumbnail = strings.TrimSpace(*d.Thumbnail)
	}
	if d.ClientMessageID != nil {
		m.ClientMessageID = strings.TrimSpace(*d.ClientMessageID)
	}
	if err := s.checkFields(m); err != nil {
		return err
	}
	// One query reads the room with everything else this message needs
	// (when the store can): each connection handles its frames in turn,
	// so every round trip here bounds its throughput.
	target, err := s.messageTarget(ctx, r)
	if err != nil {
		return err
	}
	room := target.room
	if room.Status == StatusEnded {
		return reason("room_ended")
	}
	if err := s.checkImages(room, m); err != nil {
		return err
	}
	previousIsCustomers := false
	if !r.p.isMember() {
		if previousIsCustomers, err = s.previousIsCustomers(ctx, target); err != nil {
			return err
		}
	}
	stored, duplicate, err := s.appendMessage(ctx, r.p, room, m)
	if err != nil {
		return err
	}
	rp, err := s.messagePeople(ctx, target, r.p, duplicate)
	if err != nil {
		return err
	}
	env := &Envelope{
		EventName: EventMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: newMessageData(s.messagePayload(room, rp, stored)), SessionID: r.sessionID,
	}
	if duplicate {
		// The client retried: it gets the stored message back, the room
		// has already seen it once.
		return s.sendPrivate(ctx, r.sessionID, env)
	}
	if err := s.deliver(ctx, r.sessionID, room, stored, env); err != nil {
		return err
	}
	if !r.p.isMember() && stored.AdminType == 0 && !previousIsCustomers {
		// The first message nobody has answered yet: consoles re-sort.
		prof := s.profile(r.p, r.sessionID, room.ID)
		if err := s.reloadLobby(ctx, room.CompanyID, room, &prof, r.sessionID); err != nil {
			return err
		}
		// Only here, so later messages of the run cost routing nothing.
		s.routeFirstMessage(ctx, r.p, room)
	}
	return nil
}

// What a client may store, the same for a MESSAGE and for every line of a
// SAVE_HISTORY: checkFields before the room is known, checkImages once it
// is (checkMessage does both).

// checkFields refuses a message whose fields no stored message may have.
func (s *Service) checkFields(m *Message) error {
	switch {
	case m.Type != 0 && m.Type != 1:
		return reason("invalid_field", "messageType")
	case len(m.Body) > s.cfg.MaxMessageBytes:
		return reason("message_too_long", s.cfg.MaxMessageBytes)
	case m.Type == 0 && strings.TrimSpace(m.Body) == "":
		return reason("missing_field", "message")
	case m.Type == 1 && m.Detail == "":
		return reason("missing_field", "messageDetail")
	case len(m.Detail) > maxDetailBytes || len(m.Thumbnail) > maxDetailBytes:
		return reason("invalid_field", "messageDetail")
	case len(m.ClientMessageID) > maxClientMessageIDBytes || strings.HasPrefix(m.ClientMessageID, reservedClientIDPrefix):
		return reason("invalid_field", "clientMessageId")
	case strings.ContainsRune(m.Body, 0):
		return reason("invalid_field", "message")
	}
	return nil
}

// checkImages: an image message may only point at an image uploaded for
// its room, never at another room's files or at anything outside cstalk.
func (s *Service) checkImages(room *Room, m *Message) error {
	if m.Type == 1 && (!s.IsUploadedImage(room, m.Detail) || (m.Thumbnail != "" && !s.IsUploadedImage(room, m.Thumbnail))) {
		return reason("invalid_field", "messageDetail")
	}
	return nil
}

// checkMessage is checkFields and checkImages.
func (s *Service) checkMessage(room *Room, m *Message) error {
	if err := s.checkFields(m); err != nil {
		return err
	}
	return s.checkImages(room, m)
}

// appendMessage fills in who writes m and stores it.
func (s *Service) appendMessage(ctx context.Context, p *principal, room *Room, m *Message) (*Message, bool, error) {
	online, err := s.speakerPresent(ctx, room.ID, p.speaker.ID)
	if err != nil {
		return nil, false, err
	}
	// A caller may already know the writer is connected (the counselor
	// assigning a room before it enters it).
	m.RoomID, m.CompanyID, m.SpeakerID, m.IsOnline = room.ID, room.CompanyID, p.speaker.ID, m.IsOnline || online
	switch {
	case p.isMember():
		m.SpeakerName, m.IsEmployee = p.member.Name, true
	case m.IsSystem:
		// A system line in a customer's room (START_MESSAGE, chatbot)
		// speaks for the company, not the customer.
		if m.SpeakerName == "" {
			m.SpeakerName = p.company.Name
		}
	default:
		m.SpeakerName, m.IsCustomer = p.customer.DisplayName(), true
	}
	now := s.now()
	m.CreateDate, m.UpdateDate = now, now
	stored, duplicate, err := s.store.AppendMessage(ctx, m)
	if err != nil {
		return nil, false, fmt.Errorf("store message in room %d: %w", room.ID, err)
	}
	if !duplicate {
		room.LastMessageID, room.UpdateDate = stored.ID, stored.UpdateDate
	}
	return stored, duplicate, nil
}

// deliver sends a room event about msg to those who may see it: everyone on
// the room destination for the conversation; for an internal note only the
// members present in the room (and the sender), each through its private
// destination. Private delivery reaches a session on any node, so this holds
// in a cluster as long as Presence is cluster-wide.
func (s *Service) deliver(ctx context.Context, sessionID string, room *Room, msg *Message, env *Envelope) error {
	if msg.AdminType == 0 {
		env.Target = TargetBroadcast
		return s.publish(ctx, RoomDestination(room.ID), env)
	}
	env.Target = TargetMember
	attendees, err := s.presence.Attendees(ctx, room.ID)
	if err != nil {
		return fmt.Errorf("presence of room %d: %w", room.ID, err)
	}
	senderSeen := false
	var firstErr error
	for _, a := range attendees {
		if !a.IsMember {
			continue
		}
		senderSeen = senderSeen || a.SessionID == sessionID
		if err := s.sendPrivate(ctx, a.SessionID, env); err != nil {
			// One gone console must not stop the others.
			s.log.Warn("internal note not delivered", "room", room.ID, "session", a.SessionID, "err", err)
			if a.SessionID == sessionID {
				firstErr = err
			}
		}
	}
	if !senderSeen && sessionID != "" {
		if err := s.sendPrivate(ctx, sessionID, env); err != nil {
			firstErr = err
		}
	}
	return firstErr
}

func (s *Service) handleMessageList(ctx context.Context, r *request) error {
	var d struct {
		StartID          flexInt `json:"startId"`
		MessageAdminType flexInt `json:"messageAdminType"`
	}
	if err := r.decode(&d); err != nil {
		return err
	}
	if d.StartID.set && d.StartID.v < 0 {
		return reason("invalid_field", "startId")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	rp, err := s.loadRoomPeople(ctx, room, r.p)
	if err != nil {
		return err
	}
	return s.sendMessageList(ctx, r.sessionID, r.p, room, rp, d.StartID.v)
}

// sendMessageList sends the page of room messages older than beforeID (the
// newest page for 0); internal notes only to members. Deleted messages are
// left out: the deployed pages know no isDeleted and would draw an empty
// bubble (DELETE_MESSAGE tells the pages that saw one come).
func (s *Service) sendMessageList(ctx context.Context, sessionID string, p *principal, room *Room, rp *roomPeople, beforeID int64) error {
	msgs, err := s.store.UndeletedMessages(ctx, room.ID, beforeID, s.cfg.PageSize, p.isMember())
	if err != nil {
		return fmt.Errorf("messages of room %d: %w", room.ID, err)
	}
	if !p.isMember() {
		// Defence in depth: a customer never gets an internal note.
		kept := msgs[:0]
		for _, m := range msgs {
			if m.AdminType == 0 {
				kept = append(kept, m)
			}
		}
		msgs = kept
	}
	page := s.renderMessages(room, rp, msgs)
	for i := range page {
		// As the deployed server: a listed message carries its own id as
		// joinMessageId; a live MESSAGE carries 0.
		page[i].JoinMessageID = page[i].ID
	}
	return s.sendPrivate(ctx, sessionID, &Envelope{
		EventName: EventMessageList, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"messages": page}, SessionID: sessionID,
	})
}

func (s *Service) handleReadMessage(ctx context.Context, r *request) error {
	var d struct {
		StartID   flexInt `json:"startId"`
		EndID     flexInt `json:"endId"`
		SpeakerID flexInt `json:"speakerId"`
	}
	if err := r.decode(&d); err != nil {
		return err
	}
	if !d.EndID.set || d.EndID.v <= 0 {
		return reason("missing_field", "endId")
	}
	start := d.StartID.v
	if !d.StartID.set {
		start = d.EndID.v
	}
	if start <= 0 || start > d.EndID.v {
		return reason("invalid_field", "startId")
	}
	if d.SpeakerID.set && d.SpeakerID.v != r.p.speaker.ID {
		return reason("speaker_mismatch")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	return s.markRead(ctx, r.sessionID, r.p, room, start, d.EndID.v)
}

// markRead moves p's read position in room to end and tells the room.
func (s *Service) markRead(ctx context.Context, sessionID string, p *principal, room *Room, start, end int64) error {
	if room.LastMessageID > 0 && end > room.LastMessageID {
		end = room.LastMessageID // nobody reads the future
	}
	if start > end {
		start = end
	}
	if _, err := s.store.MarkRead(ctx, room.ID, p.speaker.ID, end); err != nil {
		return fmt.Errorf("mark read in room %d: %w", room.ID, err)
	}
	return s.publishRoom(ctx, room, sessionID, EventReadMessage, map[string]any{
		"startId": start, "endId": end, "speakerId": p.speaker.ID, "roomId": idString(room.ID),
	})
}

func (s *Service) handleDeleteMessage(ctx context.Context, r *request) error {
	var d struct {
		ID flexInt `json:"id"`
	}
	if err := r.decode(&d); err != nil {
		return err
	}
	if !d.ID.set || d.ID.v <= 0 {
		return reason("missing_field", "id")
	}
	msg, err := s.store.Message(ctx, d.ID.v)
	if errors.Is(err, ErrNotFound) {
		return reason("message_not_found")
	}
	if err != nil {
		return fmt.Errorf("message %d: %w", d.ID.v, err)
	}
	room, err := s.usableRoom(ctx, r.p, msg.RoomID)
	if isReason(err) || (err == nil && msg.AdminType == 1 && !r.p.isMember()) {
		return reason("message_not_found")
	}
	if err != nil {
		return err
	}
	r.room = room
	// A system message (START_MESSAGE, chatbot lines, the assignment
	// notice) is stored under the speaker whose action caused it, but it is
	// the company's text: only an administrator may remove it.
	if msg.IsSystem && !r.p.isAdmin() {
		return reason("system_delete_forbidden")
	}
	if msg.SpeakerID != r.p.speaker.ID && !r.p.isAdmin() {
		return reason("delete_forbidden")
	}
	if _, err := s.store.DeleteMessage(ctx, msg.ID, s.now()); err != nil {
		return fmt.Errorf("delete message %d: %w", msg.ID, err)
	}
	return s.deliver(ctx, r.sessionID, room, msg, &Envelope{
		EventName: EventDeleteMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"success": true, "id": msg.ID}, SessionID: r.sessionID,
	})
}
