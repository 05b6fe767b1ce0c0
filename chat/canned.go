package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reply templates ("canned responses"): company-wide texts a counselor
// inserts by typing "/" and the shortcut. Members read them, administrators
// write them.

// ErrInvalidCanned wraps every refusal of a template's input;
// ErrCannedFull refuses a company's template beyond MaxCannedResponses.
var (
	ErrInvalidCanned = errors.New("chat: invalid canned response")
	ErrCannedFull    = errors.New("chat: too many canned responses")
)

// MaxCannedResponses bounds a company's templates: every console loads
// them whole.
const MaxCannedResponses = 500

const (
	maxShortcutRunes = 32
	maxCannedTitle   = 100
	maxCannedText    = 4000
)

// CannedJSON is a template as the API shows it.
type CannedJSON struct {
	ID         int64  `json:"id"`
	Shortcut   string `json:"shortcut"`
	Title      string `json:"title"`
	Text       string `json:"text"`
	CreateDate string `json:"createDate"`
	UpdateDate string `json:"updateDate"`
}

func (s *Service) cannedJSON(c *CannedResponse) CannedJSON {
	return CannedJSON{
		ID: c.ID, Shortcut: c.Shortcut, Title: c.Title, Text: c.Text,
		CreateDate: FormatDate(c.CreatedAt, s.cfg.Zone), UpdateDate: FormatDate(c.UpdatedAt, s.cfg.Zone),
	}
}

// cleanCanned checks and normalizes a template: the shortcut is 1 to 32
// letters, digits, '_' or '-' (any script), kept in lower case so "/Bill"
// and "/bill" are one; the title at most 100 characters of text (the
// shortcut when empty); the text 1 to 4000 characters.
func cleanCanned(c *CannedResponse) error {
	c.Shortcut = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c.Shortcut), "/")))
	c.Title = strings.TrimSpace(c.Title)
	c.Text = strings.TrimSpace(c.Text)
	if c.Title == "" {
		c.Title = c.Shortcut
	}
	n := utf8.RuneCountInString(c.Shortcut)
	switch {
	case n == 0 || n > maxShortcutRunes:
		return fmt.Errorf("%w: shortcut must have 1 to %d characters", ErrInvalidCanned, maxShortcutRunes)
	case strings.ContainsFunc(c.Shortcut, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' }):
		return fmt.Errorf("%w: shortcut %q may hold letters, digits, '_' and '-' only", ErrInvalidCanned, c.Shortcut)
	case !utf8.ValidString(c.Title) || utf8.RuneCountInString(c.Title) > maxCannedTitle || strings.ContainsFunc(c.Title, unicode.IsControl):
		return fmt.Errorf("%w: title must be at most %d characters of text", ErrInvalidCanned, maxCannedTitle)
	case c.Text == "" || !utf8.ValidString(c.Text) || utf8.RuneCountInString(c.Text) > maxCannedText || strings.ContainsRune(c.Text, 0):
		return fmt.Errorf("%w: text must have 1 to %d characters", ErrInvalidCanned, maxCannedText)
	}
	return nil
}

// CannedResponses lists the templates of member m's company.
func (s *Service) CannedResponses(ctx context.Context, m *Member) ([]CannedJSON, error) {
	list, err := s.store.CannedResponses(ctx, m.CompanyID)
	if err != nil {
		return nil, fmt.Errorf("chat: canned responses of company %d: %w", m.CompanyID, err)
	}
	out := make([]CannedJSON, len(list))
	for i := range list {
		out[i] = s.cannedJSON(&list[i])
	}
	return out, nil
}

// SaveCannedResponse creates (c.ID 0) or replaces template c.ID of the
// administrator's company. Bad input wraps ErrInvalidCanned, a taken
// shortcut ErrConflict, another company's ID ErrNotFound.
func (s *Service) SaveCannedResponse(ctx context.Context, admin *Member, c CannedResponse) (*CannedJSON, error) {
	c.CompanyID = admin.CompanyID
	if err := cleanCanned(&c); err != nil {
		return nil, err
	}
	var err error
	if c.ID == 0 {
		existing, lerr := s.store.CannedResponses(ctx, c.CompanyID)
		if lerr != nil {
			return nil, fmt.Errorf("chat: save canned response %q: %w", c.Shortcut, lerr)
		}
		if len(existing) >= MaxCannedResponses {
			return nil, fmt.Errorf("chat: save canned response %q: %w", c.Shortcut, ErrCannedFull)
		}
		err = s.store.CreateCannedResponse(ctx, &c)
	} else {
		err = s.store.UpdateCannedResponse(ctx, &c)
	}
	if err != nil {
		return nil, fmt.Errorf("chat: save canned response %q: %w", c.Shortcut, err)
	}
	s.log.Info("canned response saved", "id", c.ID, "company", c.CompanyID, "by", admin.ID)
	out := s.cannedJSON(&c)
	return &out, nil
}

// DeleteCannedResponse removes template id of the administrator's company.
func (s *Service) DeleteCannedResponse(ctx context.Context, admin *Member, id int64) error {
	if err := s.store.DeleteCannedResponse(ctx, admin.CompanyID, id); err != nil {
		return fmt.Errorf("chat: delete canned response %d: %w", id, err)
	}
	s.log.Info("canned response deleted", "id", id, "company", admin.CompanyID, "by", admin.ID)
	return nil
}
