package guide

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/cstalk/cstalk/video"
)

// ErrInvalidToken: a token that is malformed, forged, expired, of another
// audience, or names an account that is gone.
var ErrInvalidToken = errors.New("guide: invalid token")

type accountClaims struct {
	Role Role `json:"role"`
	jwt.RegisteredClaims
}

type videoClaims struct {
	Room string `json:"room"`
	jwt.RegisteredClaims
}

func (s *Service) sign(claims jwt.Claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.cfg.JWTSecret)
}

func (s *Service) registered(accountID int64, audience string, ttl time.Duration) (jwt.RegisteredClaims, time.Time) {
	now := s.cfg.Now()
	expires := now.Add(ttl).Truncate(time.Second)
	return jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(accountID, 10),
		Issuer:    s.cfg.JWTIssuer,
		Audience:  jwt.ClaimStrings{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(expires),
	}, expires
}

// IssueToken signs a bearer token for account a.
func (s *Service) IssueToken(a *Account) (string, time.Time, error) {
	reg, expires := s.registered(a.ID, AudienceAccount, s.cfg.TokenTTL)
	token, err := s.sign(accountClaims{Role: a.Role, RegisteredClaims: reg})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("guide: sign token of account %d: %w", a.ID, err)
	}
	return token, expires, nil
}

func (s *Service) issueVideoToken(accountID int64, roomID string) (string, error) {
	reg, _ := s.registered(accountID, AudienceVideo, s.cfg.VideoTokenTTL)
	token, err := s.sign(videoClaims{Room: roomID, RegisteredClaims: reg})
	if err != nil {
		return "", fmt.Errorf("guide: sign video token of account %d: %w", accountID, err)
	}
	return token, nil
}

func (s *Service) parse(raw, audience string, claims jwt.Claims) (int64, error) {
	raw = strings.TrimSpace(raw)
	if len(raw) >= 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return 0, fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	_, err := jwt.ParseWithClaims(raw, claims,
		func(*jwt.Token) (any, error) { return s.cfg.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(s.cfg.JWTIssuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.cfg.Now),
	)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: subject %q", ErrInvalidToken, sub)
	}
	return id, nil
}

// AccountFromToken checks a bearer token and returns its account.
func (s *Service) AccountFromToken(ctx context.Context, token string) (*Account, error) {
	var claims accountClaims
	id, err := s.parse(token, AudienceAccount, &claims)
	if err != nil {
		return nil, err
	}
	a, err := s.store.GuideAccount(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: account %d is gone", ErrInvalidToken, id)
	case err != nil:
		return nil, fmt.Errorf("guide: account of token: %w", err)
	case a.Role != claims.Role:
		return nil, fmt.Errorf("%w: account %d changed role", ErrInvalidToken, id)
	}
	return a, nil
}

// VideoAuthorizer admits the two parties of an open guide session to its
// room g-{gs_seq} with the video tokens /guide/create issued, and passes
// every other room to next (nil: refused). The participant id in the room
// is the account id.
func (s *Service) VideoAuthorizer(next video.Authorizer) video.Authorizer {
	return video.AuthorizerFunc(func(ctx context.Context, token, userID, communityID, roomID string) (video.Identity, error) {
		if _, ok := ParseRoomID(roomID); !ok {
			if next == nil {
				return video.Identity{}, video.ErrForbidden
			}
			return next.AuthorizeJoin(ctx, token, userID, communityID, roomID)
		}
		return s.authorizeVideo(ctx, token, userID, roomID)
	})
}

func (s *Service) authorizeVideo(ctx context.Context, token, userID, roomID string) (video.Identity, error) {
	var claims videoClaims
	id, err := s.parse(token, AudienceVideo, &claims)
	if err != nil {
		return video.Identity{}, fmt.Errorf("%w: %v", video.ErrUnauthorized, err)
	}
	self := strconv.FormatInt(id, 10)
	if claims.Room != roomID || (userID != "" && userID != self) {
		return video.Identity{}, fmt.Errorf("%w: token of %s for %s", video.ErrForbidden, self, claims.Room)
	}
	gsSeq, _ := ParseRoomID(roomID)
	gs, err := s.store.GuideSession(ctx, gsSeq)
	if errors.Is(err, ErrNotFound) {
		return video.Identity{}, video.ErrForbidden
	}
	if err != nil {
		return video.Identity{}, fmt.Errorf("guide: authorize video: %w", err)
	}
	if (gs.UserID != id && gs.MateID != id) || (gs.Status != StatusApproved && gs.Status != StatusActive) {
		return video.Identity{}, fmt.Errorf("%w: session %d is %s", video.ErrForbidden, gsSeq, gs.Status)
	}
	a, err := s.store.GuideAccount(ctx, id)
	if err != nil {
		return video.Identity{}, fmt.Errorf("guide: authorize video: %w", err)
	}
	return video.Identity{UserID: self, Name: a.Name, CommunityID: video.NoCompany, Customer: a.Role == RoleUser}, nil
}

// RoomPrefix starts the video room id of a guide session: g-{gs_seq}.
const RoomPrefix = "g-"

// RoomID is the video room of guide session gsSeq.
func RoomID(gsSeq int64) string { return RoomPrefix + strconv.FormatInt(gsSeq, 10) }

// RoomKey is the registry key of guide session gsSeq's room: guides
// belong to no company.
func RoomKey(gsSeq int64) video.RoomKey {
	return video.RoomKey{Company: video.NoCompany, Kind: video.RoomGuide, Name: strconv.FormatInt(gsSeq, 10)}
}

// ParseRoomID returns the guide session of a video room id.
func ParseRoomID(roomID string) (int64, bool) {
	rest, ok := strings.CutPrefix(roomID, RoomPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != rest {
		return 0, false
	}
	return id, true
}

// hashPassword and checkPassword use bcrypt (Config.PasswordCost).
func hashPassword(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("guide: hash password: %w", err)
	}
	return string(h), nil
}

func checkPassword(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
