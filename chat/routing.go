package chat

import (
	"context"
	"errors"
	"fmt"
)

// Routing: who is at work, and giving rooms to them.
//
// A member's status is what it chose (AVAILABLE, AWAY, OFFLINE; stored) and
// counts only while a console of the member is connected: a member
// connection subscribed to its company's lobby. Those connections are kept
// in Presence under lobbyPresence(company), so "connected" is cluster-wide
// with Redis and a dead node's consoles drop out like its room attendees.
// Closing the last console makes a member OFFLINE for everyone (routing,
// transfers, MEMBER_STATUS) without forgetting its choice; it is back on
// reconnecting.
//
// Auto-assignment (a company's AutoAssign) gives a WAITING room, at its
// first customer message, to the AVAILABLE member with the fewest open
// rooms below its capacity, ties to who has waited longest. The store
// decides (AutoAssignRoom: one conditional UPDATE under the member's lock),
// so every node may try and a room is given once; what follows is what
// ASSIGN does (the system message, ROOM_DETAIL, RELOAD, RELOAD_READY). A
// room nobody can take waits; routeWaiting hands out the waiting rooms
// whenever someone may take one: a member becomes AVAILABLE or connects
// while AVAILABLE, a room ends or is transferred away, a capacity is
// raised, AutoAssign is switched on. These happen on any node; each drains
// the company's waiting rooms there and then.

// lobbyPresence is the Presence key of a company's lobby: room IDs are
// positive, so the two never meet.
func lobbyPresence(companyID int64) int64 { return -companyID }

// routeBatch is how many waiting rooms routeWaiting reads at a time, and
// routeBatches how many batches one drain may take.
const (
	routeBatch   = 50
	routeBatches = 20
)

// MemberState is a member as the team sees it: its effective status
// (OFFLINE without a console), capacity and open rooms.
type MemberState struct {
	RoomMember
	Status    MemberStatus `json:"status"`
	Capacity  int          `json:"capacity"`
	OpenRooms int          `json:"openRooms"`
}

// consoles returns the speaker IDs of the members with a console connected
// to the company's lobby, once each.
func (s *Service) consoles(ctx context.Context, companyID int64) ([]int64, error) {
	attendees, err := s.presence.Attendees(ctx, lobbyPresence(companyID))
	if err != nil {
		return nil, fmt.Errorf("consoles of company %d: %w", companyID, err)
	}
	seen := make(map[int64]bool, len(attendees))
	out := make([]int64, 0, len(attendees))
	for _, a := range attendees {
		if a.IsMember && !seen[a.SpeakerID] {
			seen[a.SpeakerID] = true
			out = append(out, a.SpeakerID)
		}
	}
	return out, nil
}

// consoleSessions returns the lobby sessions of one member (its speaker).
func (s *Service) consoleSessions(ctx context.Context, companyID, speakerID int64) ([]string, error) {
	attendees, err := s.presence.Attendees(ctx, lobbyPresence(companyID))
	if err != nil {
		return nil, fmt.Errorf("consoles of company %d: %w", companyID, err)
	}
	var out []string
	for _, a := range attendees {
		if a.SpeakerID == speakerID {
			out = append(out, a.SessionID)
		}
	}
	return out, nil
}

// effectiveStatus is m's status as routing and the team see it.
func (s *Service) effectiveStatus(ctx context.Context, m *Member) (MemberStatus, error) {
	sp, err := s.memberSpeakerID(ctx, m)
	if err != nil {
		return "", err
	}
	sessions, err := s.consoleSessions(ctx, m.CompanyID, sp)
	if err != nil {
		return "", err
	}
	return seenStatus(m.Status, len(sessions) > 0), nil
}

// seenStatus is a chosen status as it counts: OFFLINE without a console.
func seenStatus(chosen MemberStatus, console bool) MemberStatus {
	if !console || chosen == "" {
		return MemberOffline
	}
	return chosen
}

// MemberStates lists the members of a company with their effective status,
// capacity and open rooms.
func (s *Service) MemberStates(ctx context.Context, companyID int64) ([]MemberState, error) {
	members, err := s.store.Members(ctx, companyID)
	if err != nil {
		return nil, fmt.Errorf("chat: members of company %d: %w", companyID, err)
	}
	open, err := s.store.OpenRoomCounts(ctx, companyID)
	if err != nil {
		return nil, fmt.Errorf("chat: members of company %d: %w", companyID, err)
	}
	connected, err := s.consoles(ctx, companyID)
	if err != nil {
		return nil, fmt.Errorf("chat: members of company %d: %w", companyID, err)
	}
	online := make(map[int64]bool, len(connected))
	for _, sp := range connected {
		online[sp] = true
	}
	out := make([]MemberState, 0, len(members))
	for i := range members {
		m := &members[i]
		sp, err := s.memberSpeakerID(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("chat: members of company %d: %w", companyID, err)
		}
		out = append(out, MemberState{RoomMember: roomMember(m, sp), Status: seenStatus(m.Status, online[sp]), Capacity: m.Capacity, OpenRooms: open[m.ID]})
	}
	return out, nil
}

// publishMemberStatus tells the company's lobby a member's effective status.
func (s *Service) publishMemberStatus(ctx context.Context, companyID, memberID int64, status MemberStatus, sessionID string) {
	if err := s.publishLobby(ctx, companyID, "member:"+idString(memberID), &Envelope{
		EventName: EventMemberStatus, CompanyID: idString(companyID),
		Data:   map[string]any{"memberId": memberID, "status": status},
		Target: TargetLobby, SessionID: sessionID,
	}); err != nil {
		s.log.Warn("member status not published", "member", memberID, "err", err)
	}
}

// SetMemberStatus stores the status member m chose, tells the lobby its
// effective status and, when it may now take rooms, hands it waiting ones.
// It returns the member as stored (its chosen status).
func (s *Service) SetMemberStatus(ctx context.Context, m *Member, status MemberStatus) (*Member, error) {
	updated, err := s.store.SetMemberStatus(ctx, m.ID, status, s.now())
	if err != nil {
		return nil, fmt.Errorf("chat: status of member %d: %w", m.ID, err)
	}
	effective, err := s.effectiveStatus(ctx, updated)
	if err != nil {
		return nil, fmt.Errorf("chat: status of member %d: %w", m.ID, err)
	}
	s.log.Info("member status", "member", m.ID, "chose", status, "effective", effective)
	s.publishMemberStatus(ctx, m.CompanyID, m.ID, effective, "")
	if effective == MemberAvailable {
		s.routeWaiting(ctx, m.CompanyID)
	}
	return updated, nil
}

// SetMemberCapacity is an administrator setting how many open rooms
// auto-assignment may give member memberID of its company; a member of
// another company wraps ErrNotFound. A raised capacity may take waiting
// rooms at once.
func (s *Service) SetMemberCapacity(ctx context.Context, admin *Member, memberID int64, capacity int) (*MemberState, error) {
	m, err := s.store.Member(ctx, memberID)
	if err != nil {
		return nil, fmt.Errorf("chat: capacity of member %d: %w", memberID, err)
	}
	if m.CompanyID != admin.CompanyID {
		return nil, fmt.Errorf("chat: capacity of member %d: %w", memberID, ErrNotFound)
	}
	if capacity < 0 || capacity > MaxCapacity {
		return nil, fmt.Errorf("chat: capacity %d: %w", capacity, ErrInvalidMember)
	}
	if _, err := s.store.SetMemberCapacity(ctx, memberID, capacity); err != nil {
		return nil, fmt.Errorf("chat: capacity of member %d: %w", memberID, err)
	}
	s.log.Info("member capacity", "member", memberID, "capacity", capacity, "by", admin.ID)
	if capacity > m.Capacity {
		s.routeWaiting(ctx, m.CompanyID)
	}
	states, err := s.MemberStates(ctx, m.CompanyID)
	if err != nil {
		return nil, err
	}
	for i := range states {
		if states[i].ID == memberID {
			return &states[i], nil
		}
	}
	return nil, fmt.Errorf("chat: capacity of member %d: %w", memberID, ErrNotFound)
}

// SetAutoAssign switches auto-assignment of the administrator's company;
// switched on, the waiting rooms are handed out at once.
func (s *Service) SetAutoAssign(ctx context.Context, admin *Member, on bool) error {
	if err := s.store.SetAutoAssign(ctx, admin.CompanyID, on); err != nil {
		return fmt.Errorf("chat: auto-assign of company %d: %w", admin.CompanyID, err)
	}
	s.log.Info("auto-assign", "company", admin.CompanyID, "on", on, "by", admin.ID)
	if on {
		s.routeWaiting(ctx, admin.CompanyID)
	}
	return nil
}

// lobbyEntered: a member connection subscribed to its lobby is a console at
// work. Its member, if it chose AVAILABLE or AWAY and had no other console,
// is back for the team, and an AVAILABLE one may take waiting rooms.
func (s *Service) lobbyEntered(ctx context.Context, sessionID string, p *principal) error {
	if !p.isMember() {
		return nil
	}
	companyID := p.company.ID
	if err := s.presence.Enter(ctx, lobbyPresence(companyID), Attendee{SessionID: sessionID, SpeakerID: p.speaker.ID, IsMember: true}); err != nil {
		return fmt.Errorf("console presence of company %d: %w", companyID, err)
	}
	p.setLobby(true)
	sessions, err := s.consoleSessions(ctx, companyID, p.speaker.ID)
	if err != nil || len(sessions) > 1 {
		return err
	}
	m, err := s.store.Member(ctx, p.member.ID)
	if err != nil {
		return fmt.Errorf("member %d: %w", p.member.ID, err)
	}
	status := seenStatus(m.Status, true)
	if status == MemberOffline {
		return nil
	}
	s.publishMemberStatus(ctx, companyID, m.ID, status, sessionID)
	if status == MemberAvailable {
		s.routeWaiting(ctx, companyID)
	}
	return nil
}

// lobbyLeft: a console went away; the member's last one makes it OFFLINE
// for the team.
func (s *Service) lobbyLeft(ctx context.Context, sessionID string, p *principal) {
	if !p.leaveLobby() {
		return
	}
	companyID := p.company.ID
	if err := s.presence.Leave(ctx, lobbyPresence(companyID), sessionID); err != nil {
		s.log.Error("console presence leave", "company", companyID, "session", sessionID, "err", err)
	}
	if err := s.consoleGone(ctx, companyID, p.member.ID, p.speaker.ID, sessionID); err != nil {
		s.log.Warn("member status after its console left", "member", p.member.ID, "err", err)
	}
}

// consoleGone tells the lobby member memberID is OFFLINE once its last
// console is gone, unless it had chosen OFFLINE anyway.
func (s *Service) consoleGone(ctx context.Context, companyID, memberID, speakerID int64, sessionID string) error {
	sessions, err := s.consoleSessions(ctx, companyID, speakerID)
	if err != nil || len(sessions) > 0 {
		return err
	}
	m, err := s.store.Member(ctx, memberID)
	if err != nil {
		return fmt.Errorf("member %d: %w", memberID, err)
	}
	if seenStatus(m.Status, true) != MemberOffline {
		s.publishMemberStatus(ctx, companyID, memberID, MemberOffline, sessionID)
	}
	return nil
}

// consoleOfDeadNode is AttendeeGone for a lobby: a dead node's console.
func (s *Service) consoleOfDeadNode(ctx context.Context, companyID int64, a Attendee) error {
	sp, err := s.store.Speaker(ctx, a.SpeakerID)
	if err != nil {
		return fmt.Errorf("speaker %d: %w", a.SpeakerID, err)
	}
	if sp.MemberID == nil {
		return nil
	}
	return s.consoleGone(ctx, companyID, *sp.MemberID, a.SpeakerID, a.SessionID)
}

// memberPrincipal is what a member acts as outside a connection of its own
// (the REST API, auto-assignment).
func (s *Service) memberPrincipal(ctx context.Context, m *Member) (*principal, error) {
	company, err := s.store.Company(ctx, m.CompanyID)
	if err != nil {
		return nil, fmt.Errorf("company %d: %w", m.CompanyID, err)
	}
	sp, err := s.memberSpeakerID(ctx, m)
	if err != nil {
		return nil, err
	}
	return &principal{company: company, member: m, speaker: &Speaker{ID: sp}}, nil
}

// routeOutcome is what one try at auto-assigning a room came to.
type routeOutcome int

const (
	routeAssigned routeOutcome = iota
	routeTaken                 // the room was decided meanwhile
	routeNobody                // nobody can take a room now
)

// autoAssign tries to give a WAITING room to an available member and, when
// the store gave it, does what ASSIGN does after its own decision.
func (s *Service) autoAssign(ctx context.Context, room *Room) (routeOutcome, error) {
	speakers, err := s.consoles(ctx, room.CompanyID)
	if err != nil {
		return routeNobody, err
	}
	if len(speakers) == 0 {
		return routeNobody, nil
	}
	updated, err := s.store.AutoAssignRoom(ctx, room.ID, speakers, s.now())
	switch {
	case errors.Is(err, ErrNoAssignee):
		return routeNobody, nil
	case errors.Is(err, ErrConflict):
		return routeTaken, nil
	case err != nil:
		return routeNobody, fmt.Errorf("auto-assign room %d: %w", room.ID, err)
	}
	m, err := s.store.Member(ctx, *updated.MemberID)
	if err != nil {
		return routeAssigned, fmt.Errorf("assignee of room %d: %w", room.ID, err)
	}
	p, err := s.memberPrincipal(ctx, m)
	if err != nil {
		return routeAssigned, fmt.Errorf("assignee of room %d: %w", room.ID, err)
	}
	s.log.Info("room auto-assigned", "room", room.ID, "member", m.ID)
	if _, err := s.assigned(ctx, "", p, updated); err != nil {
		return routeAssigned, err
	}
	return routeAssigned, nil
}

// routeFirstMessage auto-assigns a room at its customer's first message
// when its company routes automatically; a failure is only logged: the
// message is stored and delivered, and the room waits for the next drain.
func (s *Service) routeFirstMessage(ctx context.Context, p *principal, room *Room) {
	if !p.company.AutoAssign || room.Status != StatusWaiting || room.MemberID != nil {
		return
	}
	if _, err := s.autoAssign(ctx, room); err != nil {
		s.log.Error("auto-assignment failed", "room", room.ID, "err", err)
	}
}

// routeWaiting hands a company's waiting rooms, oldest first, to available
// members until nobody can take one. Any node may run it at any time: the
// store gives each room once. Failures are logged; the next drain retries.
func (s *Service) routeWaiting(ctx context.Context, companyID int64) {
	company, err := s.store.Company(ctx, companyID)
	if err != nil {
		s.log.Error("routing: company", "company", companyID, "err", err)
		return
	}
	if !company.AutoAssign {
		return
	}
	for range routeBatches {
		rooms, err := s.store.RoomsToRoute(ctx, companyID, routeBatch)
		if err != nil {
			s.log.Error("routing: waiting rooms", "company", companyID, "err", err)
			return
		}
		assigned := 0
		for i := range rooms {
			outcome, err := s.autoAssign(ctx, &rooms[i])
			if err != nil {
				s.log.Error("routing: auto-assignment failed", "room", rooms[i].ID, "err", err)
				return
			}
			switch outcome {
			case routeNobody:
				return
			case routeAssigned:
				assigned++
			}
		}
		if len(rooms) < routeBatch || assigned == 0 {
			return
		}
	}
}
