package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Who may join a video room, and the customers' video tokens.

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
	return VideoParticipant{UserID: j.UserID, Name: customer.DisplayName(), CommunityID: idString(room.CompanyID), Customer: true}, nil
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
