package video

import "context"

// Identity is who a join was authorized as.
type Identity struct {
	// UserID is the participant's id in the room (the id the client sent,
	// confirmed by the authorizer).
	UserID string
	// Name is a display name for events (may be empty).
	Name string
	// CommunityID is the company the room belongs to (canonical decimal,
	// NoCompany for rooms of none), as the authorizer knows it: the
	// registry scopes the room to it. A join whose authorizer leaves it
	// empty is refused.
	CommunityID string
	// Customer is true for a chat customer holding a video token, false for
	// a member (counselor).
	Customer bool
}

// Authorizer decides who may join which room. The wiring provides it: chat
// checks members' bearer tokens and customers' short-lived video tokens for
// r-{roomId}. It returns ErrUnauthorized for a bad token and ErrForbidden
// for a room the token may not join (wrapped is fine); any other error is
// an internal failure.
type Authorizer interface {
	AuthorizeJoin(ctx context.Context, token, userID, communityID, roomID string) (Identity, error)
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, token, userID, communityID, roomID string) (Identity, error)

func (f AuthorizerFunc) AuthorizeJoin(ctx context.Context, token, userID, communityID, roomID string) (Identity, error) {
	return f(ctx, token, userID, communityID, roomID)
}

var _ Authorizer = AuthorizerFunc(nil)
