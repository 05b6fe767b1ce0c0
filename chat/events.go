package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Event names of the wire contract.
const (
	EventLogined        = "LOGINED"
	EventUnauthorized   = "UNAUTHORIZED"
	EventJoined         = "JOINED"
	EventRoomDetail     = "ROOM_DETAIL"
	EventMessage        = "MESSAGE"
	EventMessageList    = "MESSAGE_LIST"
	EventReadMessage    = "READ_MESSAGE"
	EventDeleteMessage  = "DELETE_MESSAGE"
	EventEnd            = "END"
	EventReload         = "RELOAD"
	EventReloadReady    = "RELOAD_READY"
	EventError          = "ERROR"
	EventOnline         = "ONLINE"
	EventOffline        = "OFFLINE"
	EventWelcomeMessage = "WELCOME_MESSAGE"
	EventAssign         = "ASSIGN"
	EventStartMessage   = "START_MESSAGE"
	EventReview         = "REVIEW"
	EventSaveHistory    = "SAVE_HISTORY"
	EventLeave          = "LEAVE"
	EventMemberStatus   = "MEMBER_STATUS"
	EventTransfer       = "TRANSFER"
	EventTransferred    = "TRANSFERRED"
	EventTyping         = "TYPING"
)

// Envelope targets: who an event is meant for.
const (
	TargetSelf      = "SELF"
	TargetBroadcast = "BROADCAST"
	TargetLobby     = "LOBBY"
	TargetCustomer  = "CUSTOMER"
	TargetMember    = "MEMBER"
)

// Destinations (normalized: no leading slash).
const (
	PrivateDestination = "user/session/message"
	SendDestination    = "pub/socket/message"
	roomPrefix         = "sub/socket/room/"
	lobbyPrefix        = roomPrefix + "LOBBY"
)

// RoomDestination is the broker destination of a room's events.
func RoomDestination(roomID int64) string { return roomPrefix + strconv.FormatInt(roomID, 10) }

// LobbyDestination is the destination of a company's room-list events.
func LobbyDestination(companyID int64) string { return lobbyPrefix + strconv.FormatInt(companyID, 10) }

// Envelope is every server -> client event. RoomID and Data are omitted when
// nil (RELOAD has neither).
type Envelope struct {
	EventName string  `json:"eventName"`
	CompanyID string  `json:"companyId"`
	RoomID    *string `json:"roomId,omitempty"`
	Data      any     `json:"data,omitempty"`
	Target    string  `json:"target,omitempty"`
	SessionID string  `json:"sessionId,omitempty"`
}

// Profile describes a connection's user in LOGINED, JOINED, ONLINE, ...
type Profile struct {
	ID                   int64   `json:"id"`
	CompanyID            string  `json:"companyId"`
	RoomID               *string `json:"roomId"`
	IsAdmin              int     `json:"isAdmin"`
	IsMember             int     `json:"isMember"`
	IsCustomer           int     `json:"isCustomer"`
	LoginName            *string `json:"loginName"`
	SpeakerID            int64   `json:"speakerId"`
	Name                 string  `json:"name"`
	SessionID            string  `json:"sessionId"`
	CompanyUseConfigJSON *string `json:"companyUseConfigJson"`
	GasappMemberNumber   *string `json:"gasappMemberNumber,omitempty"`
}

// MessagePayload is the message object of MESSAGE, MESSAGE_LIST and
// lastMessage. roomId is a number here, companyId a string, flags 0/1.
type MessagePayload struct {
	ID               int64  `json:"id"`
	JoinMessageID    int64  `json:"joinMessageId"`
	CreateDate       string `json:"createDate"`
	UpdateDate       string `json:"updateDate"`
	SpeakerID        int64  `json:"speakerId"`
	SpeakerName      string `json:"speakerName"`
	RoomID           int64  `json:"roomId"`
	RoomName         string `json:"roomName"`
	CompanyID        string `json:"companyId"`
	MessageType      int    `json:"messageType"`
	NoReadCount      int    `json:"noReadCount"`
	IsSystemMessage  int    `json:"isSystemMessage"`
	Message          string `json:"message"`
	MessageAdminType int    `json:"messageAdminType"`
	IsEmployee       int    `json:"isEmployee"`
	IsCustomer       int    `json:"isCustomer"`
	IsOnline         int    `json:"isOnline"`
	MessageDetail    string `json:"messageDetail"`
	// Thumbnail is set for images (messageType 1).
	Thumbnail string `json:"thumbnail,omitempty"`
	// IsDeleted is 1 for a soft-deleted message, whose text is withheld.
	IsDeleted       int    `json:"isDeleted"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
}

// RoomCustomer is the customer inside a room object.
type RoomCustomer struct {
	ID                 int64  `json:"id"`
	CompanyID          string `json:"companyId"`
	GasappMemberNumber string `json:"gasappMemberNumber"`
	Name               string `json:"name"`
	SpeakerID          int64  `json:"speakerId"`
}

// RoomMember is the assigned counselor inside a room object.
type RoomMember struct {
	ID        int64  `json:"id"`
	CompanyID string `json:"companyId"`
	LoginName string `json:"loginName"`
	Name      string `json:"name"`
	IsAdmin   int    `json:"isAdmin"`
	SpeakerID int64  `json:"speakerId"`
}

func roomMember(m *Member, speakerID int64) RoomMember {
	return RoomMember{
		ID: m.ID, CompanyID: idString(m.CompanyID), LoginName: m.LoginName,
		Name: m.Name, IsAdmin: flag(m.IsAdmin), SpeakerID: speakerID,
	}
}

// RoomDetail is the room object of ROOM_DETAIL, RELOAD_READY and the REST
// room list. NoReadCount is the unread count of the viewer: the assigned
// member's for consoles, the customer's in a customer's own ROOM_DETAIL.
type RoomDetail struct {
	ID                  int64           `json:"id"`
	CompanyID           string          `json:"companyId"`
	Status              RoomStatus      `json:"status"`
	RoomName            string          `json:"roomName"`
	Customer            RoomCustomer    `json:"customer"`
	Member              *RoomMember     `json:"member"`
	CreateDate          string          `json:"createDate"`
	UpdateDate          string          `json:"updateDate"`
	EndDate             *string         `json:"endDate"`
	ReviewScore         *int            `json:"reviewScore"`
	LastMessage         *MessagePayload `json:"lastMessage"`
	NoReadCount         int             `json:"noReadCount"`
	CustomerNoReadCount int             `json:"customerNoReadCount"`
	MemberNoReadCount   int             `json:"memberNoReadCount"`
}

// FormatDate renders t as "YYYY-MM-DD HH:MM:SS" in zone (empty for zero t).
func FormatDate(t time.Time, zone *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if zone != nil {
		t = t.In(zone)
	}
	return t.Format("2006-01-02 15:04:05")
}

func idString(id int64) string { return strconv.FormatInt(id, 10) }

func idPtr(id int64) *string {
	s := idString(id)
	return &s
}

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// participants are the speakers whose reads count for noReadCount: the
// room's customer and its assigned member (0 when unassigned).
type participants struct{ customer, member int64 }

func (s *Service) rememberSpeaker(member bool, id, speakerID int64) {
	s.speakerMu.Lock()
	s.speakers[speakerKey{member, id}] = speakerID
	s.speakerMu.Unlock()
}

func (s *Service) cachedSpeaker(member bool, id int64) (int64, bool) {
	s.speakerMu.Lock()
	defer s.speakerMu.Unlock()
	v, ok := s.speakers[speakerKey{member, id}]
	return v, ok
}

func (s *Service) customerSpeakerID(ctx context.Context, c *Customer) (int64, error) {
	if id, ok := s.cachedSpeaker(false, c.ID); ok {
		return id, nil
	}
	sp, err := s.store.CustomerSpeaker(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("speaker of customer %d: %w", c.ID, err)
	}
	s.rememberSpeaker(false, c.ID, sp.ID)
	return sp.ID, nil
}

func (s *Service) memberSpeakerID(ctx context.Context, m *Member) (int64, error) {
	if id, ok := s.cachedSpeaker(true, m.ID); ok {
		return id, nil
	}
	sp, err := s.store.MemberSpeaker(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("speaker of member %d: %w", m.ID, err)
	}
	s.rememberSpeaker(true, m.ID, sp.ID)
	return sp.ID, nil
}

// roomPeople loads a room's customer and assignee with their speakers.
type roomPeople struct {
	customer  *Customer
	member    *Member // nil while unassigned
	speakers  participants
	positions map[int64]int64
}

// loadRoomPeople loads what rendering a room's messages needs. known, when
// not nil, is the connection acting: its own rows are reused, which saves the
// lookups on the path of every message.
func (s *Service) loadRoomPeople(ctx context.Context, r *Room, known *principal) (*roomPeople, error) {
	rp := &roomPeople{}
	var err error
	if known != nil && known.customer != nil && known.customer.ID == r.CustomerID {
		rp.customer = known.customer
	} else if rp.customer, err = s.store.Customer(ctx, r.CustomerID); err != nil {
		return nil, fmt.Errorf("customer of room %d: %w", r.ID, err)
	}
	if rp.speakers.customer, err = s.customerSpeakerID(ctx, rp.customer); err != nil {
		return nil, err
	}
	if r.MemberID != nil {
		if known != nil && known.member != nil && known.member.ID == *r.MemberID {
			rp.member = known.member
		} else {
			m, err := s.store.Member(ctx, *r.MemberID)
			switch {
			case errors.Is(err, ErrNotFound):
				// A deleted counselor: the room reads as unassigned.
			case err != nil:
				return nil, fmt.Errorf("member of room %d: %w", r.ID, err)
			default:
				rp.member = m
			}
		}
		if rp.member != nil {
			if rp.speakers.member, err = s.memberSpeakerID(ctx, rp.member); err != nil {
				return nil, err
			}
		}
	}
	if rp.positions, err = s.store.ReadPositions(ctx, r.ID); err != nil {
		return nil, fmt.Errorf("read positions of room %d: %w", r.ID, err)
	}
	return rp, nil
}

func (rp *roomPeople) noReadCount(m *Message) int {
	n := 0
	if m.AdminType == 0 && rp.speakers.customer != 0 && rp.speakers.customer != m.SpeakerID && rp.positions[rp.speakers.customer] < m.ID {
		n++
	}
	switch {
	case rp.speakers.member != 0:
		if rp.speakers.member != m.SpeakerID && rp.positions[rp.speakers.member] < m.ID {
			n++
		}
	case !m.IsEmployee:
		// Nobody is assigned yet: no counselor has read it.
		n++
	}
	return n
}

func (s *Service) messagePayload(r *Room, rp *roomPeople, m *Message) MessagePayload {
	created := FormatDate(m.CreateDate, s.cfg.Zone)
	updated := created // a new message's dates are one
	if !m.UpdateDate.Equal(m.CreateDate) {
		updated = FormatDate(m.UpdateDate, s.cfg.Zone)
	}
	p := MessagePayload{
		ID:               m.ID,
		JoinMessageID:    m.JoinMessageID,
		CreateDate:       created,
		UpdateDate:       updated,
		SpeakerID:        m.SpeakerID,
		SpeakerName:      m.SpeakerName,
		RoomID:           m.RoomID,
		RoomName:         r.Name,
		CompanyID:        idString(m.CompanyID),
		MessageType:      m.Type,
		NoReadCount:      rp.noReadCount(m),
		IsSystemMessage:  flag(m.IsSystem),
		Message:          m.Body,
		MessageAdminType: m.AdminType,
		IsEmployee:       flag(m.IsEmployee),
		IsCustomer:       flag(m.IsCustomer),
		IsOnline:         flag(m.IsOnline),
		MessageDetail:    m.Detail,
		ClientMessageID:  m.ClientMessageID,
	}
	if rp.customer != nil {
		// Rows written before nameless customers were shown by number.
		p.RoomName = shownName(p.RoomName, rp.customer.GasappMemberNumber)
		if m.IsCustomer {
			p.SpeakerName = shownName(p.SpeakerName, rp.customer.GasappMemberNumber)
		}
	}
	if m.Type == 1 {
		p.Thumbnail = m.Thumbnail
		if p.Thumbnail == "" {
			p.Thumbnail = m.Detail
		}
	}
	if m.Deleted {
		// The text of a deleted message is never sent again.
		p.IsDeleted, p.Message, p.MessageDetail, p.Thumbnail = 1, "", "", ""
	}
	return p
}

// MessagePayloads renders messages of room r as wire message objects with
// their current noReadCount. It does not filter: callers pass only what the
// viewer may see.
func (s *Service) MessagePayloads(ctx context.Context, r *Room, msgs []Message) ([]MessagePayload, error) {
	rp, err := s.loadRoomPeople(ctx, r, nil)
	if err != nil {
		return nil, fmt.Errorf("chat: message payloads: %w", err)
	}
	return s.renderMessages(r, rp, msgs), nil
}

func (s *Service) renderMessages(r *Room, rp *roomPeople, msgs []Message) []MessagePayload {
	out := make([]MessagePayload, 0, len(msgs))
	for i := range msgs {
		out = append(out, s.messagePayload(r, rp, &msgs[i]))
	}
	return out
}

// RoomPayload renders the room object as a console sees it (noReadCount is
// the assigned member's). lastMessage is the newest conversation message,
// never an internal note.
func (s *Service) RoomPayload(ctx context.Context, r *Room) (*RoomDetail, error) {
	rp, err := s.loadRoomPeople(ctx, r, nil)
	if err != nil {
		return nil, fmt.Errorf("chat: room payload: %w", err)
	}
	d, err := s.roomDetail(ctx, r, rp)
	if err != nil {
		return nil, fmt.Errorf("chat: room payload: %w", err)
	}
	return d, nil
}

func (s *Service) roomDetail(ctx context.Context, r *Room, rp *roomPeople) (*RoomDetail, error) {
	d := &RoomDetail{
		ID:          r.ID,
		CompanyID:   idString(r.CompanyID),
		Status:      r.Status,
		RoomName:    shownName(r.Name, rp.customer.GasappMemberNumber),
		CreateDate:  FormatDate(r.CreateDate, s.cfg.Zone),
		UpdateDate:  FormatDate(r.UpdateDate, s.cfg.Zone),
		ReviewScore: r.ReviewScore,
		Customer: RoomCustomer{
			ID:                 rp.customer.ID,
			CompanyID:          idString(rp.customer.CompanyID),
			GasappMemberNumber: rp.customer.GasappMemberNumber,
			Name:               rp.customer.DisplayName(),
			SpeakerID:          rp.speakers.customer,
		},
	}
	if r.EndDate != nil {
		end := FormatDate(*r.EndDate, s.cfg.Zone)
		d.EndDate = &end
	}
	if rp.member != nil {
		m := roomMember(rp.member, rp.speakers.member)
		d.Member = &m
	}
	last, err := s.lastConversationMessage(ctx, r)
	if err != nil {
		return nil, err
	}
	if last != nil {
		p := s.messagePayload(r, rp, last)
		d.LastMessage = &p
	}
	var errCount error
	if d.CustomerNoReadCount, errCount = s.store.UnreadCount(ctx, r.ID, rp.speakers.customer); errCount != nil {
		return nil, fmt.Errorf("unread count of room %d: %w", r.ID, errCount)
	}
	if rp.speakers.member != 0 {
		if d.MemberNoReadCount, errCount = s.store.UnreadCount(ctx, r.ID, rp.speakers.member); errCount != nil {
			return nil, fmt.Errorf("unread count of room %d: %w", r.ID, errCount)
		}
	} else {
		// Nobody is assigned yet: everything the customer wrote is unread.
		if d.MemberNoReadCount, errCount = s.store.UnreadCount(ctx, r.ID, -1); errCount != nil {
			return nil, fmt.Errorf("unread count of room %d: %w", r.ID, errCount)
		}
	}
	d.NoReadCount = d.MemberNoReadCount
	return d, nil
}

func (s *Service) lastConversationMessage(ctx context.Context, r *Room) (*Message, error) {
	if r.LastMessageID == 0 {
		return nil, nil
	}
	m, err := s.store.Message(ctx, r.LastMessageID)
	if err == nil && m.AdminType == 0 {
		return m, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("last message of room %d: %w", r.ID, err)
	}
	msgs, err := s.store.Messages(ctx, r.ID, 0, 1, false)
	if err != nil {
		return nil, fmt.Errorf("last message of room %d: %w", r.ID, err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	return &msgs[len(msgs)-1], nil
}

// profile describes p's user for events; roomID 0 renders null.
func (s *Service) profile(p *principal, sessionID string, roomID int64) Profile {
	pr := Profile{
		CompanyID: idString(p.company.ID),
		SessionID: sessionID,
	}
	if roomID != 0 {
		pr.RoomID = idPtr(roomID)
	}
	if p.company.UseConfigJSON != nil {
		v := *p.company.UseConfigJSON
		pr.CompanyUseConfigJSON = &v
	}
	if p.speaker != nil {
		pr.SpeakerID = p.speaker.ID
	}
	switch {
	case p.member != nil:
		login := p.member.LoginName
		pr.ID, pr.Name, pr.LoginName = p.member.ID, p.member.Name, &login
		pr.IsMember, pr.IsAdmin = 1, flag(p.member.IsAdmin)
	case p.customer != nil:
		number := p.customer.GasappMemberNumber
		pr.ID, pr.Name, pr.GasappMemberNumber = p.customer.ID, p.customer.DisplayName(), &number
		pr.IsCustomer = 1
	}
	return pr
}

// --- sending ---------------------------------------------------------------

func (s *Service) marshal(env *Envelope) ([]byte, error) {
	if d, ok := env.Data.(*messageData); ok {
		return appendMessageEvent(make([]byte, 0, messageEventSize(env, &d.Message)), env, d), nil
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", env.EventName, err)
	}
	return body, nil
}

var errUnbound = errors.New("chat: no broker bound")

func (s *Service) sendPrivate(ctx context.Context, sessionID string, env *Envelope) error {
	if s.broker == nil {
		return errUnbound
	}
	if env.Target == "" {
		env.Target = TargetSelf
	}
	body, err := s.marshal(env)
	if err != nil {
		return err
	}
	if err := s.broker.SendPrivate(ctx, sessionID, body); err != nil {
		return fmt.Errorf("send %s to %s: %w", env.EventName, sessionID, err)
	}
	return nil
}

func (s *Service) publish(ctx context.Context, destination string, env *Envelope) error {
	if s.broker == nil {
		return errUnbound
	}
	body, err := s.marshal(env)
	if err != nil {
		return err
	}
	if err := s.broker.Publish(ctx, destination, body); err != nil {
		// The broker delivers to this node's subscribers before it tries
		// the bus, so only other nodes missed the event, and what changed is
		// already stored: clients there catch up with MESSAGE_LIST. Failing
		// the request would only tell the sender its stored message failed.
		s.log.Debug("event reached this node only", "event", env.EventName, "destination", destination, "err", err)
	}
	return nil
}

// publishLobby publishes a lobby event that tells a state (the room list
// changed, a room's detail, a customer online, a member's status) as the
// newest state of key: a burst of changes reaches every console as one
// event per key and window, never as a burst of list reloads.
func (s *Service) publishLobby(ctx context.Context, companyID int64, key string, env *Envelope) error {
	if s.broker == nil {
		return errUnbound
	}
	body, err := s.marshal(env)
	if err != nil {
		return err
	}
	if err := s.broker.PublishCoalesced(ctx, LobbyDestination(companyID), key, body); err != nil {
		// As publish: this node's consoles have it, the others catch up.
		s.log.Debug("event reached this node only", "event", env.EventName, "company", companyID, "err", err)
	}
	return nil
}

// Coalescing keys of the lobby events.
func roomStateKey(roomID int64) string { return "room:" + idString(roomID) }

func presenceKey(roomID int64) string { return "presence:" + idString(roomID) }

const reloadKey = "reload"

// toAttendees sends a room event privately to every connection present in
// the room except skip, each rendered for its viewer (render gets whether
// the viewer is a member). It serves the events that must not reach
// everyone on the room destination alike: another participant's JOINED
// (never echoed to the joiner) and ROOM_DETAIL after a status or assignee
// change (noReadCount is the viewer's own). Presence is cluster-wide with
// Redis and private delivery reaches a session on any node, so this works
// across nodes. target is CUSTOMER or MEMBER by the viewer; sessionID is the
// session that caused the event. Like a publication, delivery never fails
// the request: what changed is stored, and a connection that cannot be
// reached (or a presence that cannot be read) is logged and skipped.
func (s *Service) toAttendees(ctx context.Context, r *Room, skip, sessionID, event string, render func(member bool) any) {
	attendees, err := s.presence.Attendees(ctx, r.ID)
	if err != nil {
		s.log.Warn("room event not delivered: presence unreadable", "event", event, "room", r.ID, "err", err)
		return
	}
	for _, a := range attendees {
		if a.SessionID == skip {
			continue
		}
		target := TargetCustomer
		if a.IsMember {
			target = TargetMember
		}
		if err := s.sendPrivate(ctx, a.SessionID, &Envelope{
			EventName: event, CompanyID: idString(r.CompanyID), RoomID: idPtr(r.ID),
			Data: render(a.IsMember), Target: target, SessionID: sessionID,
		}); err != nil {
			s.log.Warn("room event not delivered", "event", event, "room", r.ID, "session", a.SessionID, "err", err)
		}
	}
}

// roomDetailChanged tells every connection present in the room its new
// ROOM_DETAIL after a status or assignee change, except skip (a connection
// that gets its own ROOM_DETAIL in answer).
func (s *Service) roomDetailChanged(ctx context.Context, r *Room, skip, sessionID string, detail *RoomDetail) {
	s.toAttendees(ctx, r, skip, sessionID, EventRoomDetail, func(member bool) any {
		return map[string]any{"room": detailFor(member, detail)}
	})
}

// detailFor sets a room object's noReadCount to what its viewer has not
// read: the assignee's count for members, the customer's for the customer.
func detailFor(member bool, d *RoomDetail) *RoomDetail {
	if member {
		return d
	}
	v := *d
	v.NoReadCount = d.CustomerNoReadCount
	return &v
}

func (s *Service) publishRoom(ctx context.Context, r *Room, sessionID, event string, data any) error {
	return s.publish(ctx, RoomDestination(r.ID), &Envelope{
		EventName: event, CompanyID: idString(r.CompanyID), RoomID: idPtr(r.ID),
		Data: data, Target: TargetBroadcast, SessionID: sessionID,
	})
}

// ReloadLobby tells the company's lobby that its room list changed: RELOAD,
// and RELOAD_READY with the room when one is given.
func (s *Service) ReloadLobby(ctx context.Context, companyID int64, room *Room) error {
	return s.reloadLobby(ctx, companyID, room, nil, "")
}

func (s *Service) reloadLobby(ctx context.Context, companyID int64, room *Room, who *Profile, sessionID string) error {
	if err := s.publishLobby(ctx, companyID, reloadKey, &Envelope{
		EventName: EventReload, CompanyID: idString(companyID), Target: TargetLobby, SessionID: sessionID,
	}); err != nil {
		return fmt.Errorf("chat: reload lobby %d: %w", companyID, err)
	}
	if room == nil {
		return nil
	}
	detail, err := s.RoomPayload(ctx, room)
	if err != nil {
		return err
	}
	isCustomer := 0
	if who != nil {
		isCustomer = who.IsCustomer
	}
	if err := s.publishLobby(ctx, companyID, roomStateKey(room.ID), &Envelope{
		EventName: EventReloadReady, CompanyID: idString(companyID), RoomID: idPtr(room.ID),
		Data:   map[string]any{"room": detail, "profile": who, "isCustomer": isCustomer},
		Target: TargetLobby, SessionID: sessionID,
	}); err != nil {
		return fmt.Errorf("chat: reload lobby %d: %w", companyID, err)
	}
	return nil
}
