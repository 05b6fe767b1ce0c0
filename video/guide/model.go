package guide

import (
	"errors"
	"time"
)

// Errors a Store returns (wrapped is fine).
var (
	ErrNotFound = errors.New("guide: not found")
	ErrConflict = errors.New("guide: conflict")
	// ErrNoTicket: the user has no ticket left to spend.
	ErrNoTicket = errors.New("guide: no ticket left")
)

// Role says what an account does in guides.
type Role string

const (
	RoleUser Role = "user" // asks for guides and pays in tickets
	RoleMate Role = "mate" // gives guides and is rated
)

// Availability is a mate's readiness for a new guide.
type Availability string

const (
	Available Availability = "available"
	Busy      Availability = "busy" // in a guide (set and cleared by the server)
	Offline   Availability = "offline"
)

func (a Availability) valid() bool { return a == Available || a == Busy || a == Offline }

// Account is a guide user or mate. Guide accounts are their own table:
// guide apps sign up and log in here, not as counseling members.
type Account struct {
	ID           int64
	Role         Role
	LoginName    string
	Name         string
	PasswordHash string
	// Tickets is a user's balance of unspent tickets.
	Tickets int
	// Availability, RatingSum and RatingCount are a mate's.
	Availability Availability
	RatingSum    int64
	RatingCount  int64
	CreatedAt    time.Time
}

// Rating is the average of the stars the mate received (0 without any).
func (a *Account) Rating() float64 {
	if a.RatingCount == 0 {
		return 0
	}
	return float64(a.RatingSum) / float64(a.RatingCount)
}

// SessionStatus is where a guide session stands.
type SessionStatus string

const (
	StatusRequested SessionStatus = "requested" // pushed to the mate, awaiting an answer
	StatusApproved  SessionStatus = "approved"  // room created, waiting for /guide/begin
	StatusActive    SessionStatus = "active"    // guide history running
	StatusCompleted SessionStatus = "completed" // ended after it began
	StatusRejected  SessionStatus = "rejected"  // the mate refused
	StatusTimeout   SessionStatus = "timeout"   // the mate did not answer in time
	StatusCancelled SessionStatus = "cancelled" // ended before it began
	StatusDeleted   SessionStatus = "deleted"   // /guide/session/delete
)

// open reports whether the session still holds its mate.
func (s SessionStatus) open() bool {
	return s == StatusRequested || s == StatusApproved || s == StatusActive
}

// MatchKind says how the mate was chosen.
type MatchKind string

const (
	MatchBest   MatchKind = "best"   // quick connect: best-ranked available mate
	MatchFriend MatchKind = "friend" // quick connect to a named friend
	MatchShake  MatchKind = "shake"  // a random available mate
)

// Session is one guide session (gs_seq). Its video room is RoomID.
type Session struct {
	ID         int64 // gs_seq
	UserID     int64
	MateID     int64
	Kind       MatchKind
	Status     SessionStatus
	RoomID     string
	HistoryID  int64 // gh_seq, 0 until /guide/begin
	CreatedAt  time.Time
	AnsweredAt *time.Time
	EndedAt    *time.Time
}

// EndReason says why a guide ended.
type EndReason string

const (
	EndUser      EndReason = "userEnded"      // the user ended it (complete or left the room)
	EndMate      EndReason = "mateEnded"      // the mate ended it
	EndExpired   EndReason = "expired"        // the last ticket's time ran out
	EndLost      EndReason = "connectionLost" // a side dropped out of the video room
	EndVanished  EndReason = "vanished"       // both apps stopped checking in
	EndShutdown  EndReason = "shutdown"       // never used for completion; see Service.Close
	endNotBegun  EndReason = "notBegun"       // approved but never begun
	endCancelled EndReason = "cancelled"      // the user withdrew the request
)

// History is one guide actually given (gh_seq): its time, tickets and end.
type History struct {
	ID          int64 // gh_seq
	SessionID   int64
	UserID      int64
	MateID      int64
	BeganAt     time.Time
	EndsAt      time.Time // when the tickets spent so far run out
	TicketsUsed int
	CompletedAt *time.Time
	EndReason   EndReason
	Duration    time.Duration // BeganAt to CompletedAt
	// CheckedAt is the last session check a node without the guide's
	// clock answered (the clock's node keeps its own in memory).
	CheckedAt *time.Time
}

// CRM is the record of a completed guide, written once at completion; the
// mate (or the user) may attach a note afterwards.
type CRM struct {
	HistoryID   int64
	SessionID   int64
	UserID      int64
	MateID      int64
	BeganAt     time.Time
	EndedAt     time.Time
	Duration    time.Duration
	TicketsUsed int
	EndReason   EndReason
	Note        string
	NoteBy      int64
	CreatedAt   time.Time
}

// Evaluation is the user's star rating of the mate for one guide.
type Evaluation struct {
	HistoryID int64
	UserID    int64
	MateID    int64
	Stars     int
	Comment   string
	CreatedAt time.Time
}

// RankedMate is a mate with its place in the ranking (1 = top).
type RankedMate struct {
	Account
	Rank int
}
