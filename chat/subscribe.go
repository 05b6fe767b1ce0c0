package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cstalk/cstalk/broker"
)

type destKind int

const (
	destOther destKind = iota
	destPrivate
	destLobby
	destRoom
)

// parseDestination classifies a destination; id is the company of a lobby or
// the room of a room destination.
func parseDestination(dest string) (destKind, int64) {
	dest = strings.TrimPrefix(dest, "/")
	switch {
	case dest == PrivateDestination:
		return destPrivate, 0
	case strings.HasPrefix(dest, lobbyPrefix):
		if id, ok := positiveID(dest[len(lobbyPrefix):]); ok {
			return destLobby, id
		}
	case strings.HasPrefix(dest, roomPrefix):
		if id, ok := positiveID(dest[len(roomPrefix):]); ok {
			return destRoom, id
		}
	}
	return destOther, 0
}

func positiveID(v string) (int64, bool) {
	if !isDigits(v) {
		return 0, false
	}
	id, err := strconv.ParseInt(v, 10, 64)
	return id, err == nil && id > 0
}

// AuthorizeSubscribe implements broker.Application: the private destination
// once per connection; a company's lobby for its members; a room for its
// customer and the members of its company; nothing else.
func (s *Service) AuthorizeSubscribe(ctx context.Context, c *broker.Conn, destination string, _ broker.Header) error {
	p := principalOf(c)
	if p == nil {
		return errors.New("unauthorized")
	}
	return s.authorizeSubscribe(ctx, c.ID(), p, destination)
}

func (s *Service) authorizeSubscribe(ctx context.Context, sessionID string, p *principal, destination string) error {
	kind, id := parseDestination(destination)
	if kind == destPrivate {
		if p.hasPrivate() {
			return s.refuse(ctx, sessionID, p, 0, reason("already_subscribed"))
		}
		return nil
	}
	if p.unauthorized {
		return s.refuse(ctx, sessionID, p, 0, reason("unauthorized"))
	}
	switch kind {
	case destLobby:
		if !p.isMember() || p.company.ID != id {
			return s.refuse(ctx, sessionID, p, 0, reason("lobby_forbidden"))
		}
		return nil
	case destRoom:
		_, err := s.usableRoom(ctx, p, id)
		if err != nil {
			return s.refuse(ctx, sessionID, p, id, err)
		}
		return nil
	default:
		return s.refuse(ctx, sessionID, p, 0, reason("destination_forbidden"))
	}
}

// usableRoom loads a room p may use: its own room for a customer, any room
// of its company for a member. Another company's room reads as not found.
func (s *Service) usableRoom(ctx context.Context, p *principal, roomID int64) (*Room, error) {
	r, err := s.store.Room(ctx, roomID)
	if err != nil {
		return nil, s.roomLoadError(roomID, err)
	}
	if err := usableBy(p, r); err != nil {
		return nil, err
	}
	return r, nil
}

// roomLoadError is what loading room roomID failing means to the client.
func (s *Service) roomLoadError(roomID int64, err error) error {
	if errors.Is(err, ErrNotFound) {
		return reason("room_not_found")
	}
	return fmt.Errorf("room %d: %w", roomID, err)
}

// usableBy refuses a room p may not use (see usableRoom).
func usableBy(p *principal, r *Room) error {
	if r.CompanyID != p.company.ID {
		return reason("room_not_found")
	}
	if !p.isMember() && (p.customer == nil || r.CustomerID != p.customer.ID) {
		return reason("room_forbidden")
	}
	return nil
}

// Subscribed implements broker.Application.
func (s *Service) Subscribed(ctx context.Context, c *broker.Conn, destination string, _ broker.Header) {
	p := principalOf(c)
	if p == nil {
		return
	}
	s.subscribed(ctx, c.ID(), p, destination)
}

func (s *Service) subscribed(ctx context.Context, sessionID string, p *principal, destination string) {
	kind, id := parseDestination(destination)
	var err error
	switch kind {
	case destPrivate:
		p.setPrivate(true)
		err = s.privateSubscribed(ctx, sessionID, p)
	case destRoom:
		err = s.joinRoom(ctx, sessionID, p, id)
	case destLobby:
		err = s.lobbyEntered(ctx, sessionID, p)
	}
	if err != nil {
		s.report(ctx, sessionID, p, id, err)
	}
}

// privateSubscribed answers a customer's private subscription with LOGINED
// (attaching it to its open room, created if needed) or UNAUTHORIZED.
func (s *Service) privateSubscribed(ctx context.Context, sessionID string, p *principal) error {
	if p.unauthorized {
		return s.sendPrivate(ctx, sessionID, &Envelope{
			EventName: EventUnauthorized, CompanyID: idString(p.company.ID),
			Data: map[string]any{"profile": s.profile(p, sessionID, 0)}, SessionID: sessionID,
		})
	}
	if p.isMember() {
		return nil
	}
	// A new room is named after the customer as it is shown.
	named := *p.customer
	named.Name = p.customer.DisplayName()
	room, created, err := s.store.OpenRoom(ctx, &named, s.now())
	if err != nil {
		return fmt.Errorf("open room of customer %d: %w", p.customer.ID, err)
	}
	p.mu.Lock()
	p.openRoomID = room.ID
	p.mu.Unlock()
	prof := s.profile(p, sessionID, room.ID)
	if err := s.sendPrivate(ctx, sessionID, &Envelope{
		EventName: EventLogined, CompanyID: idString(p.company.ID), RoomID: idPtr(room.ID),
		Data: map[string]any{"profile": prof}, SessionID: sessionID,
	}); err != nil {
		return err
	}
	if created {
		s.log.Info("room created", "room", room.ID, "company", room.CompanyID, "customer", p.customer.ID)
		return s.reloadLobby(ctx, p.company.ID, room, &prof, sessionID)
	}
	return nil
}

// joinRoom runs when a connection's room subscription is active: the first
// member of a WAITING room takes it, and the subscriber gets JOINED,
// ROOM_DETAIL and the newest MESSAGE_LIST page.
func (s *Service) joinRoom(ctx context.Context, sessionID string, p *principal, roomID int64) error {
	room, err := s.usableRoom(ctx, p, roomID)
	if err != nil {
		return err
	}
	var assigned *Message
	if p.isMember() && room.Status == StatusWaiting {
		if room, assigned, err = s.assign(ctx, p, room); err != nil && !errors.Is(err, ErrConflict) {
			return err
		}
		if room == nil { // lost the race to another member: join as an observer
			if room, err = s.usableRoom(ctx, p, roomID); err != nil {
				return err
			}
		}
	}
	if err := s.presence.Enter(ctx, room.ID, Attendee{SessionID: sessionID, SpeakerID: p.speaker.ID, IsMember: p.isMember()}); err != nil {
		return fmt.Errorf("presence of room %d: %w", room.ID, err)
	}
	p.enterRoom(room.ID)

	rp, err := s.loadRoomPeople(ctx, room, p)
	if err != nil {
		return err
	}
	detail, err := s.roomDetail(ctx, room, rp)
	if err != nil {
		return err
	}
	prof := s.profile(p, sessionID, room.ID)
	if err := s.sendPrivate(ctx, sessionID, &Envelope{
		EventName: EventJoined, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"profile": prof, "room": s.viewerDetail(p, detail)}, SessionID: sessionID,
	}); err != nil {
		return err
	}
	// The others present learn who joined, each privately with its own
	// view of the room; the joiner never sees its own JOINED twice.
	s.toAttendees(ctx, room, sessionID, sessionID, EventJoined, func(member bool) any {
		return map[string]any{"profile": prof, "room": detailFor(member, detail)}
	})
	if err := s.sendPrivate(ctx, sessionID, &Envelope{
		EventName: EventRoomDetail, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"room": s.viewerDetail(p, detail)}, SessionID: sessionID,
	}); err != nil {
		return err
	}
	if err := s.sendMessageList(ctx, sessionID, p, room, rp, 0); err != nil {
		return err
	}
	if assigned != nil {
		if err := s.afterAssign(ctx, sessionID, p, room, rp, assigned, detail); err != nil {
			return err
		}
	}
	if !p.isMember() {
		return s.customerEntered(ctx, sessionID, p, room, rp, detail.CustomerNoReadCount)
	}
	if room.MemberID != nil && *room.MemberID == p.member.ID {
		// The deployed console never marks history read itself: the
		// assignee entering its room reads it, as a customer does.
		return s.readOnEntry(ctx, sessionID, p, room, rp, detail.MemberNoReadCount)
	}
	return nil
}

// readOnEntry marks what p had not read in the room it enters as read:
// READ_MESSAGE {startId, endId, speakerId, roomId} to the room, up to the
// room's last message.
func (s *Service) readOnEntry(ctx context.Context, sessionID string, p *principal, room *Room, rp *roomPeople, unread int) error {
	if unread == 0 || room.LastMessageID == 0 {
		return nil
	}
	return s.markRead(ctx, sessionID, p, room, rp.positions[p.speaker.ID]+1, room.LastMessageID)
}

// viewerDetail sets noReadCount to what the viewer has not read.
func (s *Service) viewerDetail(p *principal, d *RoomDetail) *RoomDetail {
	return detailFor(p.isMember(), d)
}

// customerEntered: WELCOME_MESSAGE, the customer's unread messages become
// read (READ_MESSAGE to the room), and the lobby learns it is ONLINE.
func (s *Service) customerEntered(ctx context.Context, sessionID string, p *principal, room *Room, rp *roomPeople, unread int) error {
	if err := s.sendPrivate(ctx, sessionID, &Envelope{
		EventName: EventWelcomeMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data:      map[string]any{"autoMessage1": p.company.WaitingText, "autoMessage2": p.company.ReplyText},
		SessionID: sessionID,
	}); err != nil {
		return err
	}
	if err := s.readOnEntry(ctx, sessionID, p, room, rp, unread); err != nil {
		return err
	}
	return s.publishLobby(ctx, room.CompanyID, presenceKey(room.ID), &Envelope{
		EventName: EventOnline, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"profile": s.profile(p, sessionID, room.ID)}, Target: TargetLobby, SessionID: sessionID,
	})
}

// Unsubscribed implements broker.Application.
func (s *Service) Unsubscribed(ctx context.Context, c *broker.Conn, destination string) {
	p := principalOf(c)
	if p == nil {
		return
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	s.unsubscribed(ctx, c.ID(), p, destination)
}

// cleanupTimeout bounds what the server still does for a connection that is
// going away (presence, OFFLINE).
const cleanupTimeout = 5 * time.Second

// detached keeps ctx's values but not its end: when a connection closes, its
// context is already done, yet the lobby must still hear it went OFFLINE.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

func (s *Service) unsubscribed(ctx context.Context, sessionID string, p *principal, destination string) {
	switch kind, id := parseDestination(destination); kind {
	case destPrivate:
		p.setPrivate(false)
	case destRoom:
		s.leaveRoom(ctx, sessionID, p, id)
	case destLobby:
		s.lobbyLeft(ctx, sessionID, p)
	}
}

// Disconnected implements broker.Application.
func (s *Service) Disconnected(ctx context.Context, c *broker.Conn) {
	p := principalOf(c)
	if p == nil {
		return
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	s.disconnected(ctx, c.ID(), p)
}

func (s *Service) disconnected(ctx context.Context, sessionID string, p *principal) {
	for _, id := range p.roomIDs() {
		s.leaveRoom(ctx, sessionID, p, id)
	}
	// Also the rooms it typed in without being present.
	s.typingLeft(ctx, sessionID, p, 0)
	s.lobbyLeft(ctx, sessionID, p)
}

// leaveRoom takes the connection out of a room; a customer whose last
// connection left is OFFLINE for the lobby.
func (s *Service) leaveRoom(ctx context.Context, sessionID string, p *principal, roomID int64) {
	if !p.leaveRoom(roomID) {
		return
	}
	s.typingLeft(ctx, sessionID, p, roomID)
	if err := s.presence.Leave(ctx, roomID, sessionID); err != nil {
		s.log.Error("presence leave", "room", roomID, "session", sessionID, "err", err)
	}
	if p.isMember() || p.speaker == nil {
		return
	}
	if online, err := s.speakerPresent(ctx, roomID, p.speaker.ID); err != nil || online {
		return
	}
	if err := s.publishLobby(ctx, p.company.ID, presenceKey(roomID), &Envelope{
		EventName: EventOffline, CompanyID: idString(p.company.ID), RoomID: idPtr(roomID),
		Data: map[string]any{"profile": s.profile(p, sessionID, roomID)}, Target: TargetLobby, SessionID: sessionID,
	}); err != nil {
		s.log.Warn("offline event", "room", roomID, "err", err)
	}
}

func (s *Service) speakerPresent(ctx context.Context, roomID, speakerID int64) (bool, error) {
	present, err := s.presence.Present(ctx, roomID, speakerID)
	if err != nil {
		return false, fmt.Errorf("presence of room %d: %w", roomID, err)
	}
	return present, nil
}
