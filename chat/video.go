package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Escalation of a chat room into a video call (the video contract's
// "Escalation from chat"). Chat knows the video server only through
// VideoRooms and plain types (VideoJoin, VideoEvent); cmd/cstalk adapts them to package
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

// VideoRooms is what chat needs of the video server: ending a call.
type VideoRooms interface {
	// CloseCall disconnects everyone in the call of chat room roomID of
	// company companyID (video rooms are scoped to their company); it
	// returns how many were in it.
	CloseCall(companyID, roomID int64) int
}

// UseVideo connects the video server; call it before serving. Without it
// the video events are refused.
func (s *Service) UseVideo(v VideoRooms) { s.video = v }

// VideoRoomID is the video room of chat room roomID: r-{roomId}, as seed
// 002 names calls opened from a conversation.
func VideoRoomID(roomID int64) string { return "r-" + idString(roomID) }

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
	// Recorded (on an invite): the company records its calls.
	Recorded bool `json:"recorded,omitempty"`
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
	// Read now, not from the connection's company: an administrator may
	// have just changed it, and the recorder reads it fresh too.
	recorded, err := s.RecordsCalls(ctx, room.CompanyID)
	if err != nil {
		return err
	}
	stored, rp, err := s.storeVideoMessage(ctx, r.p, room, fmt.Sprintf(Korean.T(key), who.Name), VideoRecord{
		Event: "invite", VideoRoomID: videoRoom, SpeakerID: who.SpeakerID, Name: who.Name, IsCustomer: who.IsCustomer,
		Recorded: recorded,
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
			"from": who, "message": message, "recorded": recorded,
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
	s.video.CloseCall(room.CompanyID, room.ID)
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
func (s *Service) endVideoCall(room *Room) {
	if s.video != nil {
		s.video.CloseCall(room.CompanyID, room.ID)
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
		Data: newMessageData(s.messagePayload(room, rp, stored)), SessionID: sessionID,
	})
}
