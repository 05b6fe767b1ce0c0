package chat

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The record of a call in its chat room, from the video server's events.

// VideoEvent is a room event of the video server. Kind is "roomOpened",
// "joined", "left" or "roomClosed"; CompanyID is the company the video
// room belongs to; UserID (a speaker ID) and Customer are set for joined
// and left; Duration is the time in the room (left) or the room's lifetime
// (roomClosed).
type VideoEvent struct {
	Kind      string
	CompanyID string
	RoomID    string
	UserID    string
	Customer  bool
	At        time.Time
	Duration  time.Duration
	Reason    string
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
	if idString(room.CompanyID) != ev.CompanyID {
		return fmt.Errorf("room %d is of company %d, not of the call's company %q", roomID, room.CompanyID, ev.CompanyID)
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
		if ev.Reason == "shutdown" {
			// The room's node went away; the call goes on where the
			// participants rejoin it, and ends there.
			return nil
		}
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
