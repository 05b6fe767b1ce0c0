package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Escalation of a chat room into a video call (the video contract's
// "Escalation from chat"). Chat knows the video server only through
// VideoRooms and the plain types below; cmd/cstalk adapts them to package
// video, so neither package imports the other.

// Events of video calls in a chat room.
const (
	EventVideoStart    = "VIDEO_START"
	EventVideoInvite   = "VIDEO_INVITE"
	EventVideoAccept   = "VIDEO_ACCEPT"
	EventVideoAccepted = "VIDEO_ACCEPTED"
	EventVideoDecline  = "VIDEO_DECLINE"
	EventVideoDeclined = "VIDEO_DECLINED"
	EventVideoEnd      = "VIDEO_END"
	EventVideoEnded    = "VIDEO_ENDED"
	EventVideoToken    = "VIDEO_TOKEN"
)

// videoTokenTTL bounds a customer's video token: long enough to accept an
// invitation, short enough that a leaked one is soon useless. A customer
// rejoining later asks VIDEO_TOKEN for a fresh one.
const videoTokenTTL = 10 * time.Minute

// videoAudience marks video tokens, so they are never taken for member
// tokens (which carry no audience) and member tokens never for them.
const videoAudience = "cstalk-video"

// ErrVideoForbidden is returned by AuthorizeVideoJoin for a valid token
// that may not join the room; a bad token wraps ErrInvalidToken.
var ErrVideoForbidden = errors.New("chat: video room forbidden")

// VideoRooms is what chat needs of the video server: ending a call.
type VideoRooms interface {
	// CloseRoom disconnects everyone in video room id; it returns how many
	// were in it.
	CloseRoom(id string) int
}

// UseVideo connects the video server; call it before serving. Without it
// the video events are refused.
func (s *Service) UseVideo(v VideoRooms) { s.video = v }

// VideoRoomID is the video room of chat room roomID: r-{roomId}, as seed
// 002 names calls opened from a conversation.
func VideoRoomID(roomID int64) string { return "r-" + idString(roomID) }

// VideoJoin is a request to join a video room, as the signaling server
// received it. ChatRoom says the room is r-{Ref} (a call of chat room Ref);
// otherwise it is c-{Ref}, a standing channel of company CommunityID.
type VideoJoin struct {
	Token, UserID, CommunityID string
	ChatRoom                   bool
	Ref                        string
}

// VideoParticipant is who a join was authorized as. UserID is the speaker
// ID, so a video event names the chat speaker it is about.
type VideoParticipant struct {
	UserID, Name, CommunityID string
	Customer                  bool
}

// AuthorizeVideoJoin decides who may join a video room:
//   - members by their bearer token, with userId = their speakerId: any
//     r-{roomId} of a chat room of their company, and the channels c-{id}
//     of their company (communityId = their company);
//   - customers by a video token chat issued them (VIDEO_INVITE,
//     VIDEO_TOKEN), only for r-{roomId} of the room it names, while that
//     room is open.
//
// communityId of an r- room may be empty, "0" (seed 002's DM case) or the
// company. A bad token wraps ErrInvalidToken, a room the token may not join
// ErrVideoForbidden.
func (s *Service) AuthorizeVideoJoin(ctx context.Context, j VideoJoin) (VideoParticipant, error) {
	if claims, ok := s.parseVideoToken(j.Token); ok {
		return s.authorizeVideoCustomer(ctx, j, claims)
	}
	m, err := s.MemberFromToken(ctx, j.Token)
	if err != nil {
		return VideoParticipant{}, err
	}
	speaker, err := s.memberSpeakerID(ctx, m)
	if err != nil {
		return VideoParticipant{}, fmt.Errorf("chat: video join: %w", err)
	}
	company := idString(m.CompanyID)
	if j.UserID != idString(speaker) {
		return VideoParticipant{}, fmt.Errorf("%w: member %d joins as %q, not as its speaker %d", ErrVideoForbidden, m.ID, j.UserID, speaker)
	}
	if !j.ChatRoom {
		if j.CommunityID != company {
			return VideoParticipant{}, fmt.Errorf("%w: channel of community %q, member of %s", ErrVideoForbidden, j.CommunityID, company)
		}
		return VideoParticipant{UserID: j.UserID, Name: m.Name, CommunityID: company}, nil
	}
	room, err := s.videoChatRoom(ctx, j)
	if err != nil {
		return VideoParticipant{}, err
	}
	if room.CompanyID != m.CompanyID {
		return VideoParticipant{}, fmt.Errorf("%w: room %d is not of company %d", ErrVideoForbidden, room.ID, m.CompanyID)
	}
	return VideoParticipant{UserID: j.UserID, Name: m.Name, CommunityID: company}, nil
}

func (s *Service) authorizeVideoCustomer(ctx context.Context, j VideoJoin, c *videoClaims) (VideoParticipant, error) {
	if !j.ChatRoom || j.Ref != idString(c.Room) {
		return VideoParticipant{}, fmt.Errorf("%w: video token of room %d", ErrVideoForbidden, c.Room)
	}
	if j.UserID != idString(c.Speaker) {
		return VideoParticipant{}, fmt.Errorf("%w: customer joins as %q, not as its speaker %d", ErrVideoForbidden, j.UserID, c.Speaker)
	}
	room, err := s.videoChatRoom(ctx, j)
	if err != nil {
		return VideoParticipant{}, err
	}
	if room.CompanyID != c.Company || room.CustomerID != c.Customer || room.Status == StatusEnded {
		return VideoParticipant{}, fmt.Errorf("%w: room %d is not the customer's open room", ErrVideoForbidden, room.ID)
	}
	customer, err := s.store.Customer(ctx, c.Customer)
	if err != nil {
		return VideoParticipant{}, fmt.Errorf("chat: video join: customer %d: %w", c.Customer, err)
	}
	return VideoParticipant{UserID: j.UserID, Name: customer.Name, CommunityID: idString(room.CompanyID), Customer: true}, nil
}

// videoChatRoom loads the chat room of an r- join; communityId, when
// given, must be the room's company (or seed 002's "0").
func (s *Service) videoChatRoom(ctx context.Context, j VideoJoin) (*Room, error) {
	id, ok := positiveID(j.Ref)
	if !ok {
		return nil, fmt.Errorf("%w: room %q", ErrVideoForbidden, j.Ref)
	}
	room, err := s.store.Room(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: no room %d", ErrVideoForbidden, id)
	}
	if err != nil {
		return nil, fmt.Errorf("chat: video join: room %d: %w", id, err)
	}
	if j.CommunityID != "" && j.CommunityID != "0" && j.CommunityID != idString(room.CompanyID) {
		return nil, fmt.Errorf("%w: room %d is not of community %q", ErrVideoForbidden, id, j.CommunityID)
	}
	return room, nil
}

// videoClaims are a customer's video token: which room, as which speaker.
type videoClaims struct {
	Company  int64 `json:"company"`
	Customer int64 `json:"customer"`
	Speaker  int64 `json:"speaker"`
	Room     int64 `json:"room"`
	jwt.RegisteredClaims
}

// issueVideoToken signs the token a room's customer joins its call with.
// Its subject is not a number, so MemberFromToken refuses it even without
// looking at the audience.
func (s *Service) issueVideoToken(room *Room, customer *Customer, speakerID int64) (string, time.Time, error) {
	now := s.now()
	expires := now.Add(videoTokenTTL).Truncate(time.Second)
	claims := videoClaims{
		Company: room.CompanyID, Customer: customer.ID, Speaker: speakerID, Room: room.ID,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   "customer:" + idString(customer.ID),
			Issuer:    s.cfg.JWTIssuer,
			Audience:  jwt.ClaimStrings{videoAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.cfg.JWTSecret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign video token for room %d: %w", room.ID, err)
	}
	return token, expires, nil
}

func (s *Service) parseVideoToken(raw string) (*videoClaims, bool) {
	raw = strings.TrimSpace(raw)
	if len(raw) >= 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	var claims videoClaims
	_, err := jwt.ParseWithClaims(raw, &claims,
		func(*jwt.Token) (any, error) { return s.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(s.cfg.JWTIssuer),
		jwt.WithAudience(videoAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.cfg.Now),
	)
	if err != nil || claims.Room <= 0 || claims.Speaker <= 0 {
		return nil, false
	}
	return &claims, true
}

// --- client events ---------------------------------------------------------

// videoHandlers are the client events of video calls.
func (s *Service) videoHandlers() map[string]handler {
	return map[string]handler{
		EventVideoStart:   s.handleVideoStart,
		EventVideoAccept:  s.handleVideoAnswer,
		EventVideoDecline: s.handleVideoAnswer,
		EventVideoEnd:     s.handleVideoEnd,
		EventVideoToken:   s.handleVideoToken,
	}
}

// VideoDetail is the messageDetail (JSON) of a call's system messages, so
// pages can render them (and rejoin a call) after a reload.
type VideoDetail struct {
	Video VideoRecord `json:"video"`
}

// VideoRecord is one step of a call: invite, declined, joined, left or
// ended. Dates are on the wire format; durations in whole seconds.
type VideoRecord struct {
	Event       string `json:"event"`
	VideoRoomID string `json:"videoRoomId"`
	SpeakerID   int64  `json:"speakerId,omitempty"`
	Name        string `json:"name,omitempty"`
	IsCustomer  int    `json:"isCustomer"`
	Reason      string `json:"reason,omitempty"`
	StartDate   string `json:"startDate,omitempty"`
	EndDate     string `json:"endDate,omitempty"`
	Duration    *int64 `json:"duration,omitempty"`
}

// videoRoom resolves the request's room for a call event: open, and the
// video server connected.
func (s *Service) videoRoom(ctx context.Context, r *request) (*Room, error) {
	if s.video == nil {
		return nil, reason("video_unavailable")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return nil, err
	}
	if room.Status == StatusEnded {
		return nil, reason("room_ended")
	}
	return room, nil
}

// handleVideoStart: a member (or the customer, where its company allows
// it) calls. The invitation is stored as a system message, so both sides
// see it after a reload, and VIDEO_INVITE goes privately to every
// connection in the room: the customer's copy carries its video token.
func (s *Service) handleVideoStart(ctx context.Context, r *request) error {
	if !r.p.isMember() && !r.p.company.AllowCustomerVideo {
		return reason("video_customer_forbidden")
	}
	room, err := s.videoRoom(ctx, r)
	if err != nil {
		return err
	}
	videoRoom := VideoRoomID(room.ID)
	who := s.profile(r.p, r.sessionID, room.ID)
	key := "video_invited_by_customer"
	if r.p.isMember() {
		key = "video_invited_by_member"
	}
	stored, rp, err := s.storeVideoMessage(ctx, r.p, room, fmt.Sprintf(Korean.T(key), who.Name), VideoRecord{
		Event: "invite", VideoRoomID: videoRoom, SpeakerID: who.SpeakerID, Name: who.Name, IsCustomer: who.IsCustomer,
	})
	if err != nil {
		return err
	}
	if err := s.deliverVideoMessage(ctx, r.sessionID, room, rp, stored); err != nil {
		return err
	}
	token, expires, err := s.issueVideoToken(room, rp.customer, rp.speakers.customer)
	if err != nil {
		return err
	}
	message := s.messagePayload(room, rp, stored)
	attendees, err := s.presence.Attendees(ctx, room.ID)
	if err != nil {
		return fmt.Errorf("presence of room %d: %w", room.ID, err)
	}
	for _, a := range attendees {
		// userId is the viewer's id in the call (its speakerId).
		invite := map[string]any{
			"videoRoomId": videoRoom, "communityId": idString(room.CompanyID), "userId": idString(a.SpeakerID),
			"from": who, "message": message,
		}
		target := TargetMember
		if !a.IsMember {
			target = TargetCustomer
			invite["token"] = token
			invite["expiresIn"] = int64(expires.Sub(s.now()) / time.Second)
		}
		if err := s.sendPrivate(ctx, a.SessionID, &Envelope{
			EventName: EventVideoInvite, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
			Data: invite, Target: target, SessionID: r.sessionID,
		}); err != nil {
			// One unreachable connection must not fail the call for the
			// others; the stored invitation still shows after a reload.
			s.log.Warn("video invitation not delivered", "room", room.ID, "session", a.SessionID, "err", err)
		}
	}
	return nil
}

// handleVideoAnswer: the invited side accepts or declines; the room hears
// VIDEO_ACCEPTED or VIDEO_DECLINED, and a decline is stored.
func (s *Service) handleVideoAnswer(ctx context.Context, r *request) error {
	room, err := s.videoRoom(ctx, r)
	if err != nil {
		return err
	}
	who := s.profile(r.p, r.sessionID, room.ID)
	data := map[string]any{"videoRoomId": VideoRoomID(room.ID), "from": who}
	if r.event == EventVideoAccept {
		return s.publishRoom(ctx, room, r.sessionID, EventVideoAccepted, data)
	}
	stored, rp, err := s.storeVideoMessage(ctx, r.p, room, fmt.Sprintf(Korean.T("video_declined"), who.Name), VideoRecord{
		Event: "declined", VideoRoomID: VideoRoomID(room.ID), SpeakerID: who.SpeakerID, Name: who.Name, IsCustomer: who.IsCustomer,
	})
	if err != nil {
		return err
	}
	if err := s.deliverVideoMessage(ctx, r.sessionID, room, rp, stored); err != nil {
		return err
	}
	return s.publishRoom(ctx, room, r.sessionID, EventVideoDeclined, data)
}

// handleVideoEnd: either side hangs up for both. The video room closes
// (its roomClosed event stores the call's end and duration) and the room
// hears VIDEO_ENDED, also when nobody had joined yet (a cancelled call).
func (s *Service) handleVideoEnd(ctx context.Context, r *request) error {
	if s.video == nil {
		return reason("video_unavailable")
	}
	room, err := r.targetRoom(ctx)
	if err != nil {
		return err
	}
	s.video.CloseRoom(VideoRoomID(room.ID))
	who := s.profile(r.p, r.sessionID, room.ID)
	return s.publishRoom(ctx, room, r.sessionID, EventVideoEnded, map[string]any{"videoRoomId": VideoRoomID(room.ID), "by": who})
}

// handleVideoToken gives the room's customer a fresh video token privately
// (a page reloaded during a call rejoins with it).
func (s *Service) handleVideoToken(ctx context.Context, r *request) error {
	if r.p.isMember() {
		return reason("customers_only")
	}
	room, err := s.videoRoom(ctx, r)
	if err != nil {
		return err
	}
	token, expires, err := s.issueVideoToken(room, r.p.customer, r.p.speaker.ID)
	if err != nil {
		return err
	}
	return s.sendPrivate(ctx, r.sessionID, &Envelope{
		EventName: EventVideoToken, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID), SessionID: r.sessionID,
		Data: map[string]any{
			"videoRoomId": VideoRoomID(room.ID), "communityId": idString(room.CompanyID),
			"userId": idString(r.p.speaker.ID), "token": token, "expiresIn": int64(expires.Sub(s.now()) / time.Second),
		},
	})
}

// endVideoCall closes the call of a chat room that ends.
func (s *Service) endVideoCall(roomID int64) {
	if s.video != nil {
		s.video.CloseRoom(VideoRoomID(roomID))
	}
}

// storeVideoMessage stores a call's system message (text in the company's
// language, the record as messageDetail) written by p.
func (s *Service) storeVideoMessage(ctx context.Context, p *principal, room *Room, body string, rec VideoRecord) (*Message, *roomPeople, error) {
	detail, err := json.Marshal(VideoDetail{Video: rec})
	if err != nil {
		return nil, nil, fmt.Errorf("encode video record: %w", err)
	}
	stored, _, err := s.appendMessage(ctx, p, room, &Message{Body: body, Detail: string(detail), IsSystem: true})
	if err != nil {
		return nil, nil, err
	}
	rp, err := s.loadRoomPeople(ctx, room, p)
	if err != nil {
		return nil, nil, err
	}
	return stored, rp, nil
}

func (s *Service) deliverVideoMessage(ctx context.Context, sessionID string, room *Room, rp *roomPeople, stored *Message) error {
	return s.deliver(ctx, sessionID, room, stored, &Envelope{
		EventName: EventMessage, CompanyID: idString(room.CompanyID), RoomID: idPtr(room.ID),
		Data: map[string]any{"message": s.messagePayload(room, rp, stored)}, SessionID: sessionID,
	})
}

// --- video server events ---------------------------------------------------

// VideoEvent is a room event of the video server. Kind is "roomOpened",
// "joined", "left" or "roomClosed"; UserID (a speaker ID) and Customer are
// set for joined and left; Duration is the time in the room (left) or the
// room's lifetime (roomClosed).
type VideoEvent struct {
	Kind     string
	RoomID   string
	UserID   string
	Customer bool
	At       time.Time
	Duration time.Duration
	Reason   string
}

// HandleVideoEvent records a call's joins, leaves and end in its chat room
// as system messages (events of channels c-... are not chat's). Errors are
// logged: the call goes on whatever happens to its record.
func (s *Service) HandleVideoEvent(ctx context.Context, ev VideoEvent) {
	if err := s.handleVideoEvent(ctx, ev); err != nil {
		s.log.Error("video event not recorded", "event", ev.Kind, "videoRoom", ev.RoomID, "user", ev.UserID, "err", err)
	}
}

func (s *Service) handleVideoEvent(ctx context.Context, ev VideoEvent) error {
	ref, ok := strings.CutPrefix(ev.RoomID, "r-")
	if !ok {
		return nil
	}
	roomID, ok := positiveID(ref)
	if !ok {
		return nil
	}
	room, err := s.store.Room(ctx, roomID)
	if err != nil {
		return fmt.Errorf("room %d: %w", roomID, err)
	}
	rec := VideoRecord{VideoRoomID: ev.RoomID}
	var p *principal
	var body string
	switch ev.Kind {
	case "joined", "left":
		if p, err = s.videoSpeaker(ctx, room, ev.UserID); err != nil {
			return err
		}
		pr := s.profile(p, "", room.ID)
		rec.Event, rec.SpeakerID, rec.Name, rec.IsCustomer = ev.Kind, pr.SpeakerID, pr.Name, pr.IsCustomer
		if ev.Kind == "joined" {
			body = fmt.Sprintf(Korean.T("video_joined"), pr.Name)
		} else {
			rec.Reason = ev.Reason
			secs := int64(ev.Duration / time.Second)
			rec.Duration = &secs
			body = fmt.Sprintf(Korean.T("video_left"), pr.Name)
		}
	case "roomClosed":
		if p, err = s.roomCustomerPrincipal(ctx, room); err != nil {
			return err
		}
		secs := int64(ev.Duration / time.Second)
		rec.Event, rec.Duration = "ended", &secs
		rec.StartDate = FormatDate(ev.At.Add(-ev.Duration), s.cfg.Zone)
		rec.EndDate = FormatDate(ev.At, s.cfg.Zone)
		body = fmt.Sprintf(Korean.T("video_ended"), formatCallDuration(ev.Duration))
	default:
		return nil
	}
	stored, rp, err := s.storeVideoMessage(ctx, p, room, body, rec)
	if err != nil {
		return err
	}
	if err := s.deliverVideoMessage(ctx, "", room, rp, stored); err != nil {
		return err
	}
	if ev.Kind == "roomClosed" {
		// Pages still showing the call (the last one out left by closing
		// its tab) put it away.
		return s.publishRoom(ctx, room, "", EventVideoEnded, map[string]any{
			"videoRoomId": ev.RoomID, "duration": *rec.Duration,
		})
	}
	return nil
}

// videoSpeaker is the writer of a join or leave: the speaker the
// authorizer let in (userId = speakerId).
func (s *Service) videoSpeaker(ctx context.Context, room *Room, userID string) (*principal, error) {
	id, ok := positiveID(userID)
	if !ok {
		return nil, fmt.Errorf("video user %q is not a speaker id", userID)
	}
	sp, err := s.store.Speaker(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("speaker %d: %w", id, err)
	}
	company, err := s.store.Company(ctx, room.CompanyID)
	if err != nil {
		return nil, fmt.Errorf("company %d: %w", room.CompanyID, err)
	}
	p := &principal{company: company, speaker: sp}
	switch {
	case sp.MemberID != nil:
		if p.member, err = s.store.Member(ctx, *sp.MemberID); err != nil {
			return nil, fmt.Errorf("member %d: %w", *sp.MemberID, err)
		}
	case sp.CustomerID != nil:
		if p.customer, err = s.store.Customer(ctx, *sp.CustomerID); err != nil {
			return nil, fmt.Errorf("customer %d: %w", *sp.CustomerID, err)
		}
	default:
		return nil, fmt.Errorf("speaker %d is neither member nor customer", id)
	}
	return p, nil
}

// roomCustomerPrincipal writes the call's end: a system line in the
// customer's room speaks for the company.
func (s *Service) roomCustomerPrincipal(ctx context.Context, room *Room) (*principal, error) {
	company, err := s.store.Company(ctx, room.CompanyID)
	if err != nil {
		return nil, fmt.Errorf("company %d: %w", room.CompanyID, err)
	}
	customer, err := s.store.Customer(ctx, room.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("customer %d: %w", room.CustomerID, err)
	}
	speaker, err := s.customerSpeakerID(ctx, customer)
	if err != nil {
		return nil, err
	}
	return &principal{company: company, customer: customer, speaker: &Speaker{ID: speaker}}, nil
}

// formatCallDuration renders a call's length in Korean, e.g. "3분 12초".
func formatCallDuration(d time.Duration) string {
	secs := int64(d / time.Second)
	switch {
	case secs >= 3600:
		return strconv.FormatInt(secs/3600, 10) + "시간 " + strconv.FormatInt(secs%3600/60, 10) + "분 " + strconv.FormatInt(secs%60, 10) + "초"
	case secs >= 60:
		return strconv.FormatInt(secs/60, 10) + "분 " + strconv.FormatInt(secs%60, 10) + "초"
	default:
		return strconv.FormatInt(secs, 10) + "초"
	}
}
