package chat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Call recording, as chat sees it: a company's choice (its settings, or
// the server's default), the notice that a call is recorded (in
// VIDEO_INVITE and as a system message when the recording begins), and
// who may fetch recordings (the company's administrators).

// ErrNotAdmin: the member is not an administrator.
var ErrNotAdmin = errors.New("chat: not an administrator")

// RecordsCalls says whether company companyID's calls are recorded.
func (s *Service) RecordsCalls(ctx context.Context, companyID int64) (bool, error) {
	c, err := s.store.Company(ctx, companyID)
	if err != nil {
		return false, fmt.Errorf("chat: company %d: %w", companyID, err)
	}
	return s.recordsCalls(c), nil
}

func (s *Service) recordsCalls(c *Company) bool {
	if c.RecordCalls != nil {
		return *c.RecordCalls
	}
	return s.cfg.RecordCalls
}

// SetRecordCalls sets whether the administrator's company records its
// calls (nil: the server's default).
func (s *Service) SetRecordCalls(ctx context.Context, admin *Member, on *bool) error {
	if err := s.store.SetRecordCalls(ctx, admin.CompanyID, on); err != nil {
		return fmt.Errorf("chat: record calls of company %d: %w", admin.CompanyID, err)
	}
	s.log.Info("record calls", "company", admin.CompanyID, "on", on, "by", admin.ID)
	return nil
}

// RecordingStarted writes in chat room roomID (of company companyID) that
// its call is being recorded; both sides' pages show it in the call too.
// Errors are logged: the recording goes on.
func (s *Service) RecordingStarted(ctx context.Context, companyID, roomID int64) {
	if err := s.recordingStarted(ctx, companyID, roomID); err != nil {
		s.log.Error("recording notice not written", "room", roomID, "err", err)
	}
}

func (s *Service) recordingStarted(ctx context.Context, companyID, roomID int64) error {
	room, err := s.store.Room(ctx, roomID)
	if err != nil {
		return fmt.Errorf("room %d: %w", roomID, err)
	}
	if room.CompanyID != companyID {
		return fmt.Errorf("room %d is of company %d, not %d", roomID, room.CompanyID, companyID)
	}
	p, err := s.roomCustomerPrincipal(ctx, room)
	if err != nil {
		return err
	}
	stored, rp, err := s.storeVideoMessage(ctx, p, room, Korean.T("video_recording"),
		VideoRecord{Event: "recording", VideoRoomID: VideoRoomID(room.ID)})
	if err != nil {
		return err
	}
	return s.deliverVideoMessage(ctx, "", room, rp, stored)
}

// AdminOf is the administrator a request comes from: its bearer token, or
// (for a <video> that cannot send headers) a file access grant of a member
// in ?access= (POST /api/files/access). ErrInvalidToken without valid
// credentials, ErrNotAdmin for a member who is not an administrator.
func (s *Service) AdminOf(r *http.Request) (*Member, error) {
	var m *Member
	if token := bearer(r); token != "" {
		var err error
		if m, err = s.MemberFromToken(r.Context(), token); err != nil {
			return nil, err
		}
	} else if grant := r.URL.Query().Get("access"); grant != "" {
		a := &api{s: s, log: s.log, fileKey: deriveFileKey(s.cfg.JWTSecret)}
		fr, err := a.parseFileGrant(grant)
		if err != nil || fr.MemberID == 0 {
			return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
		}
		if m, err = s.store.Member(r.Context(), fr.MemberID); errors.Is(err, ErrNotFound) || (err == nil && m.CompanyID != fr.CompanyID) {
			return nil, ErrInvalidToken
		} else if err != nil {
			return nil, fmt.Errorf("chat: member %d: %w", fr.MemberID, err)
		}
	} else {
		return nil, ErrInvalidToken
	}
	if !m.IsAdmin {
		return nil, ErrNotAdmin
	}
	return m, nil
}
