package chat

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

var (
	// ErrBadCredentials is Login's answer to an unknown login name and to a
	// wrong password alike, so callers cannot tell which.
	ErrBadCredentials = errors.New("chat: wrong login name or password")
	// ErrInvalidMember wraps every refusal of AddMember's input; the message
	// says what to fix.
	ErrInvalidMember = errors.New("chat: invalid member")
)

const (
	minPasswordRunes = 8
	// maxPasswordBytes is bcrypt's limit: it ignores (x/crypto refuses)
	// anything longer.
	maxPasswordBytes = 72
	maxMemberName    = 50
	// unknownLoginHash is a bcrypt hash (at bcrypt.DefaultCost, like every
	// stored one) of a password nobody has: Login compares against it when
	// the login name is unknown, so both failures take the same time.
	unknownLoginHash = "$2a$10$eQk2P0LMDc16ZyKh5YIN.OK9epdGNSZibqZS.nwXS/eo6Uz8Z4M6a"
)

// loginNamePattern: 3 to 32 of a-z 0-9 . _ -, starting with a letter or digit.
var loginNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{2,31}$`)

// HashPassword returns the bcrypt hash stored for a member's password.
func HashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("chat: hash password: %w", err)
	}
	return string(h), nil
}

// normalizeLogin makes login names case-insensitive: they are stored in lower
// case and looked up the same way.
func normalizeLogin(loginName string) string {
	return strings.ToLower(strings.TrimSpace(loginName))
}

// AddMember creates a counselor of a company (its administrator when admin
// is set). An empty name defaults to the login name. Refused input wraps
// ErrInvalidMember, an unknown company ErrUnknownCompany, and a login name
// that is taken ErrConflict.
func (s *Service) AddMember(ctx context.Context, companyID int64, loginName, password, name string, admin bool) (*Member, error) {
	login := normalizeLogin(loginName)
	if !loginNamePattern.MatchString(login) {
		return nil, fmt.Errorf("%w: login name %q: use 3 to 32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
			ErrInvalidMember, loginName)
	}
	if utf8.RuneCountInString(password) < minPasswordRunes {
		return nil, fmt.Errorf("%w: password must have at least %d characters", ErrInvalidMember, minPasswordRunes)
	}
	if len(password) > maxPasswordBytes {
		return nil, fmt.Errorf("%w: password must be at most %d bytes", ErrInvalidMember, maxPasswordBytes)
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = login
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxMemberName ||
		strings.ContainsFunc(name, unicode.IsControl) {
		return nil, fmt.Errorf("%w: name must be at most %d characters of text", ErrInvalidMember, maxMemberName)
	}
	if companyID <= 0 {
		return nil, fmt.Errorf("%w: %d", ErrUnknownCompany, companyID)
	}
	if _, err := s.store.Company(ctx, companyID); errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownCompany, companyID)
	} else if err != nil {
		return nil, fmt.Errorf("chat: add member: company %d: %w", companyID, err)
	}
	// A taken name is refused before paying for a hash; CreateMember still
	// catches a concurrent insert of the same name.
	if _, err := s.store.MemberByLogin(ctx, login); err == nil {
		return nil, fmt.Errorf("chat: login name %q is taken: %w", login, ErrConflict)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("chat: add member %q: %w", login, err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	m := &Member{
		CompanyID:    companyID,
		LoginName:    login,
		Name:         name,
		PasswordHash: hash,
		IsAdmin:      admin,
		CreatedAt:    s.now(),
	}
	if err := s.store.CreateMember(ctx, m); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("chat: login name %q is taken: %w", login, err)
		}
		return nil, fmt.Errorf("chat: add member %q: %w", login, err)
	}
	s.log.Info("member added", "memberId", m.ID, "companyId", companyID, "loginName", login, "admin", admin)
	return m, nil
}

// Login checks a member's password. Unknown login names and wrong passwords
// both return ErrBadCredentials after the same bcrypt work.
func (s *Service) Login(ctx context.Context, loginName, password string) (*Member, error) {
	login := normalizeLogin(loginName)
	m, err := s.store.MemberByLogin(ctx, login)
	if errors.Is(err, ErrNotFound) || (err == nil && m.PasswordHash == "") {
		bcrypt.CompareHashAndPassword([]byte(unknownLoginHash), []byte(password))
		return nil, ErrBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("chat: login %q: %w", login, err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(m.PasswordHash), []byte(password)); err != nil {
		return nil, ErrBadCredentials
	}
	return m, nil
}
