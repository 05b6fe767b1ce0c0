package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// The companies' reply templates. Every statement names the company, so an
// ID of another company's template is simply not found.

type cannedRow struct {
	ID        int64 `gorm:"primaryKey"`
	CompanyID int64
	Shortcut  string
	Title     string
	Body      string
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"autoUpdateTime:false"`
}

func (cannedRow) TableName() string { return "canned_responses" }

const (
	maxShortcutBytes    = 128
	maxCannedPerCompany = chat.MaxCannedResponses
)

func (r *cannedRow) toChat() chat.CannedResponse {
	return chat.CannedResponse{
		ID: r.ID, CompanyID: r.CompanyID, Shortcut: r.Shortcut, Title: r.Title, Text: r.Body,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

func newCannedRow(c *chat.CannedResponse, now time.Time) (cannedRow, error) {
	r := cannedRow{
		ID: c.ID, CompanyID: c.CompanyID,
		Shortcut: cleanText(c.Shortcut), Title: cleanText(c.Title), Body: cleanText(c.Text),
		CreatedAt: dbTime(now), UpdatedAt: dbTime(now),
	}
	var l limitChecker
	if r.Shortcut == "" {
		l.err = errors.New("shortcut is empty")
	}
	l.bytes("shortcut", r.Shortcut, maxShortcutBytes)
	l.chars("title", r.Title, maxNameChars)
	l.bytes("text", r.Body, maxTextBytes)
	return r, l.err
}

// CannedResponses lists a company's templates by shortcut.
func (s *Store) CannedResponses(ctx context.Context, companyID int64) ([]chat.CannedResponse, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []cannedRow
	if err := s.db.WithContext(ctx).Where("company_id = ?", companyID).Order("shortcut, id").
		Limit(maxCannedPerCompany).Find(&rows).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("canned responses of company %d", companyID), err)
	}
	out := make([]chat.CannedResponse, len(rows))
	for i := range rows {
		out[i] = rows[i].toChat()
	}
	return out, nil
}

// CreateCannedResponse inserts c, setting c.ID and its dates. A shortcut
// the company already uses wraps chat.ErrConflict; a company with
// maxCannedPerCompany templates refuses more (invalid input).
func (s *Store) CreateCannedResponse(ctx context.Context, c *chat.CannedResponse) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("create canned response %q of company %d", c.Shortcut, c.CompanyID)
	r, err := newCannedRow(c, s.now())
	if err != nil {
		return invalid(what, err)
	}
	r.ID = 0
	db := s.db.WithContext(ctx)
	var n int64
	if err := db.Model(&cannedRow{}).Where("company_id = ?", c.CompanyID).Count(&n).Error; err != nil {
		return s.fail(what, err)
	}
	if n >= maxCannedPerCompany {
		return invalid(what, fmt.Errorf("the company has %d templates, the most it may have", n))
	}
	if err := db.Create(&r).Error; err != nil {
		return s.fail(what, err)
	}
	*c = r.toChat()
	return nil
}

// UpdateCannedResponse replaces the shortcut, title and text of template
// c.ID of company c.CompanyID.
func (s *Store) UpdateCannedResponse(ctx context.Context, c *chat.CannedResponse) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("update canned response %d of company %d", c.ID, c.CompanyID)
	r, err := newCannedRow(c, s.now())
	if err != nil {
		return invalid(what, err)
	}
	db := s.db.WithContext(ctx)
	res := db.Model(&cannedRow{}).Where("id = ? AND company_id = ?", c.ID, c.CompanyID).
		Updates(map[string]any{"shortcut": r.Shortcut, "title": r.Title, "body": r.Body, "updated_at": r.UpdatedAt})
	if res.Error != nil {
		return s.fail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, chat.ErrNotFound)
	}
	var stored cannedRow
	if err := db.Take(&stored, c.ID).Error; err != nil {
		return s.fail(what, err)
	}
	*c = stored.toChat()
	return nil
}

// DeleteCannedResponse removes template id of company companyID.
func (s *Store) DeleteCannedResponse(ctx context.Context, companyID, id int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("delete canned response %d of company %d", id, companyID)
	res := s.db.WithContext(ctx).Where("id = ? AND company_id = ?", id, companyID).Delete(&cannedRow{})
	if res.Error != nil {
		return s.fail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, chat.ErrNotFound)
	}
	return nil
}
