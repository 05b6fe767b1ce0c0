package guide

import (
	"context"
	"time"
)

// Store persists guide accounts, sessions, histories, CRM records and
// evaluations. Package store implements it on GORM (SQLite and MySQL).
// Not-found rows wrap ErrNotFound, unique violations ErrConflict.
type Store interface {
	// CreateGuideAccount inserts a (setting a.ID); a taken login name is
	// ErrConflict.
	CreateGuideAccount(ctx context.Context, a *Account) error
	GuideAccount(ctx context.Context, id int64) (*Account, error)
	GuideAccountByLogin(ctx context.Context, loginName string) (*Account, error)
	// SetAvailability sets a mate's availability.
	SetAvailability(ctx context.Context, mateID int64, a Availability) error
	// AddTickets adds n (may be negative, never below zero) to a user's
	// balance and returns the new balance.
	AddTickets(ctx context.Context, userID int64, n int) (int, error)
	// AddFriend records mateID as a friend of userID (idempotent).
	AddFriend(ctx context.Context, userID, mateID int64, at time.Time) error
	// Friends lists userID's friend mates by name.
	Friends(ctx context.Context, userID int64) ([]Account, error)
	// RankedMates lists mates best first: average rating, then number of
	// ratings, then the older account. onlyAvailable keeps available ones.
	RankedMates(ctx context.Context, onlyAvailable bool, limit int) ([]Account, error)

	// RequestGuideSession inserts s (setting s.ID) unless its mate is held
	// by another request made after requestedSince or approved after
	// approvedSince: ErrConflict. Atomic across every node of the store.
	RequestGuideSession(ctx context.Context, s *Session, requestedSince, approvedSince time.Time) error
	GuideSession(ctx context.Context, id int64) (*Session, error)
	// OpenGuideSessions lists the sessions requested or approved and not
	// yet begun (to re-arm their timeouts after a restart).
	OpenGuideSessions(ctx context.Context) ([]Session, error)
	// GuideRequestsFor lists the requests to mateID made after since that
	// are still waiting for an answer, oldest first.
	GuideRequestsFor(ctx context.Context, mateID int64, since time.Time) ([]Session, error)
	// TransitionSession moves session id from one of from to to, and
	// reports whether it did (false: it was in another status).
	TransitionSession(ctx context.Context, id int64, from []SessionStatus, to SessionStatus, at time.Time) (bool, error)
	// BeginGuide, in one transaction, moves an approved session to active,
	// spends one of the user's tickets (ErrNoTicket when none is left) and
	// creates the history; it returns the history and the tickets left.
	// A session that is not approved is ErrConflict.
	BeginGuide(ctx context.Context, sessionID int64, at, endsAt time.Time) (*History, int, error)
	// ExtendGuide spends one more ticket on an open history that has
	// ticketsUsed tickets (the caller's view: ErrConflict when it was
	// extended or completed meanwhile) and moves its end to endsAt; it
	// returns the history and the tickets left.
	ExtendGuide(ctx context.Context, historyID int64, ticketsUsed int, endsAt time.Time) (*History, int, error)
	// CompleteGuide completes an open history at at, once: it stores the
	// end and duration, writes the CRM record, completes the session and
	// frees a busy mate. done is false (and nothing is written) when the
	// history was already completed or, with ticketsUsed > 0 (an expiry),
	// when it no longer has that many tickets (extended meanwhile).
	CompleteGuide(ctx context.Context, historyID int64, ticketsUsed int, at time.Time, reason EndReason) (h *History, done bool, err error)
	GuideHistory(ctx context.Context, id int64) (*History, error)
	// TouchGuide records a session check of an open history at at.
	TouchGuide(ctx context.Context, historyID int64, at time.Time) error
	// OpenHistories lists the histories not completed yet (to re-arm their
	// clocks after a restart).
	OpenHistories(ctx context.Context) ([]History, error)
	// SetCRMNote attaches a note to the CRM record of a completed history.
	SetCRMNote(ctx context.Context, historyID, by int64, note string, at time.Time) (*CRM, error)
	GuideCRM(ctx context.Context, historyID int64) (*CRM, error)
	// Evaluate stores e once per history (ErrConflict the second time) and
	// adds its stars to the mate's rating; it returns the mate.
	Evaluate(ctx context.Context, e *Evaluation) (*Account, error)
}
