package chat

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken is returned for a bearer token that is missing, malformed,
// forged, expired, from another issuer, or names a member that is gone.
var ErrInvalidToken = errors.New("chat: invalid token")

// memberClaims are the claims of a member token: sub is the member ID,
// company its company.
type memberClaims struct {
	Company int64 `json:"company"`
	jwt.RegisteredClaims
}

// IssueToken signs a bearer token (HS256) for m valid for cfg.TokenTTL.
func (s *Service) IssueToken(m *Member) (token string, expires time.Time, err error) {
	if m == nil || m.ID == 0 {
		return "", time.Time{}, errors.New("chat: issue token: no member")
	}
	now := s.now()
	expires = now.Add(s.cfg.TokenTTL).Truncate(time.Second)
	claims := memberClaims{
		Company: m.CompanyID,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   strconv.FormatInt(m.ID, 10),
			Issuer:    s.cfg.JWTIssuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.cfg.JWTSecret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("chat: sign token for member %d: %w", m.ID, err)
	}
	return token, expires, nil
}

// MemberFromToken checks a bearer token (with or without the "Bearer "
// prefix) and returns the member it was issued to. Every failure wraps
// ErrInvalidToken except store errors other than not-found.
func (s *Service) MemberFromToken(ctx context.Context, bearer string) (*Member, error) {
	raw := strings.TrimSpace(bearer)
	if len(raw) >= 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	var claims memberClaims
	_, err := jwt.ParseWithClaims(raw, &claims,
		func(*jwt.Token) (any, error) { return s.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(s.cfg.JWTIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.cfg.Now),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || id <= 0 {
		return nil, fmt.Errorf("%w: subject %q", ErrInvalidToken, claims.Subject)
	}
	m, err := s.store.Member(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: member %d is gone", ErrInvalidToken, id)
	}
	if err != nil {
		return nil, fmt.Errorf("chat: member of token: %w", err)
	}
	if m.CompanyID != claims.Company {
		return nil, fmt.Errorf("%w: member %d moved company", ErrInvalidToken, id)
	}
	return m, nil
}
