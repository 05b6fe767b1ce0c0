package chat

import (
	"context"
	"errors"
	"time"
)

// Store is the persistence chat needs. It is declared here, by its consumer;
// package store implements it on GORM (SQLite and MySQL).
//
// Every method takes a context and returns errors wrapped with what it was
// doing. A missing row is reported as an error wrapping ErrNotFound.
type Store interface {
	Ping(ctx context.Context) error

	Company(ctx context.Context, id int64) (*Company, error)
	SaveCompany(ctx context.Context, c *Company) error // insert or update by ID

	Member(ctx context.Context, id int64) (*Member, error)
	MemberByLogin(ctx context.Context, loginName string) (*Member, error)
	Members(ctx context.Context, companyID int64) ([]Member, error)
	// CreateMember inserts m and sets m.ID; a taken LoginName wraps ErrConflict.
	CreateMember(ctx context.Context, m *Member) error

	// EnsureCustomer returns the customer (companyID, number), creating it, and
	// updates its Name when name is not empty and differs.
	EnsureCustomer(ctx context.Context, companyID int64, number, name string) (*Customer, error)
	Customer(ctx context.Context, id int64) (*Customer, error)

	// MemberSpeaker and CustomerSpeaker return the speaker row of a member or
	// customer in its company, creating it on first use.
	MemberSpeaker(ctx context.Context, m *Member) (*Speaker, error)
	CustomerSpeaker(ctx context.Context, c *Customer) (*Speaker, error)
	Speaker(ctx context.Context, id int64) (*Speaker, error)

	// OpenRoom returns the customer's room that is not ENDED, creating a WAITING
	// room named after the customer when there is none (created reports which).
	// Two concurrent calls for one customer must yield the same room.
	OpenRoom(ctx context.Context, c *Customer, now time.Time) (room *Room, created bool, err error)
	Room(ctx context.Context, id int64) (*Room, error)
	// Rooms lists a company's rooms with the given status ("" for all), newest
	// activity (UpdateDate, then ID) first, at most limit.
	Rooms(ctx context.Context, companyID int64, status RoomStatus, limit int) ([]Room, error)
	// CustomerRooms lists a customer's rooms with an ID below beforeID (all
	// when beforeID <= 0), newest first, at most limit.
	CustomerRooms(ctx context.Context, customerID, beforeID int64, limit int) ([]Room, error)
	// AssignRoom moves a WAITING room to IN_PROGRESS with member m as assignee.
	// changed is false (and no error) when the room was already assigned to m.
	// A room assigned to someone else, or ENDED, wraps ErrConflict.
	AssignRoom(ctx context.Context, roomID, memberID int64, now time.Time) (room *Room, changed bool, err error)
	// EndRoom sets ENDED; changed is false if it already was.
	EndRoom(ctx context.Context, roomID int64, now time.Time) (room *Room, changed bool, err error)
	SetReview(ctx context.Context, roomID int64, score int, now time.Time) error

	// AppendMessage stores m (setting ID, dates) and bumps the room's
	// UpdateDate and LastMessageID. When m.ClientMessageID is not empty and the
	// same speaker already stored a message with it in that room, it stores
	// nothing and returns the earlier message with duplicate = true.
	AppendMessage(ctx context.Context, m *Message) (stored *Message, duplicate bool, err error)
	Message(ctx context.Context, id int64) (*Message, error)
	// Messages returns up to limit messages of a room with ID < beforeID
	// (beforeID <= 0: the newest), ascending by ID. Internal notes
	// (AdminType 1) only when withInternal. Deleted messages are included
	// with Deleted set, so clients can show "deleted".
	Messages(ctx context.Context, roomID, beforeID int64, limit int, withInternal bool) ([]Message, error)
	// UndeletedMessages is Messages without deleted messages: up to limit
	// messages that are not deleted, for clients that know no isDeleted.
	UndeletedMessages(ctx context.Context, roomID, beforeID int64, limit int, withInternal bool) ([]Message, error)
	// ReferencedFiles returns which of paths (/files/... as uploads answer
	// them) a stored message of the room, deleted or not, carries as its
	// messageDetail or thumbnail.
	ReferencedFiles(ctx context.Context, roomID int64, paths []string) (map[string]bool, error)
	// DeleteMessage soft-deletes; changed is false if it already was deleted.
	DeleteMessage(ctx context.Context, id int64, now time.Time) (changed bool, err error)

	// MarkRead moves a speaker's read position in a room forward to lastID
	// (never backward); moved reports whether it changed.
	MarkRead(ctx context.Context, roomID, speakerID, lastID int64) (moved bool, err error)
	// ReadPositions maps speaker ID to the last message ID it has read.
	ReadPositions(ctx context.Context, roomID int64) (map[int64]int64, error)
	// UnreadCount counts a room's conversation messages (AdminType 0, not
	// deleted) newer than speakerID's read position and not written by it.
	UnreadCount(ctx context.Context, roomID, speakerID int64) (int, error)

	RoutingStore
	CannedStore
	StatsStore
}

// RoutingStore is what routing and transfers need (routing.go).
type RoutingStore interface {
	// SetMemberStatus stores a member's chosen status; becoming AVAILABLE
	// starts its wait for a room now (the tie-break of auto-assignment).
	SetMemberStatus(ctx context.Context, memberID int64, status MemberStatus, now time.Time) (*Member, error)
	// SetMemberCapacity stores how many open rooms auto-assignment may give
	// the member.
	SetMemberCapacity(ctx context.Context, memberID int64, capacity int) (*Member, error)
	// SetAutoAssign switches a company's auto-assignment.
	SetAutoAssign(ctx context.Context, companyID int64, on bool) error
	// SetRecordCalls sets whether a company's calls are recorded (nil:
	// the server's default).
	SetRecordCalls(ctx context.Context, companyID int64, on *bool) error
	// OpenRoomCounts maps each member of the company with IN_PROGRESS rooms
	// to how many it has.
	OpenRoomCounts(ctx context.Context, companyID int64) (map[int64]int, error)
	// AutoAssignRoom gives a WAITING, unassigned room of a company with
	// AutoAssign on to the AVAILABLE member, among those whose speaker is in
	// speakerIDs (the connected consoles), with the fewest IN_PROGRESS rooms
	// below its capacity; ties go to who has waited longest for a room. The
	// database decides, so concurrent calls on any node give a room at most
	// once and a member never more rooms than its capacity. It wraps
	// ErrNoAssignee when nobody fits (or AutoAssign is off), ErrConflict
	// when the room is no longer WAITING and unassigned.
	AutoAssignRoom(ctx context.Context, roomID int64, speakerIDs []int64, now time.Time) (*Room, error)
	// RoomsToRoute lists a company's WAITING, unassigned rooms in which the
	// customer has written, oldest first, at most limit.
	RoomsToRoute(ctx context.Context, companyID int64, limit int) ([]Room, error)
	// TransferRoom gives a room that is not ENDED and whose assignee is
	// still from (nil: unassigned) to member to, of the room's company. A
	// room that changed meanwhile wraps ErrConflict; a member of another
	// company ErrNotFound.
	TransferRoom(ctx context.Context, roomID int64, from *int64, to int64, now time.Time) (*Room, error)
	// MessagesAfter returns up to limit messages of a room with ID >
	// afterID, ascending (transcripts read a room forwards).
	MessagesAfter(ctx context.Context, roomID, afterID int64, limit int, withInternal bool) ([]Message, error)
}

// CannedStore keeps the companies' reply templates. Every call names the
// company: an ID of another company's template reads as ErrNotFound.
type CannedStore interface {
	// CannedResponses lists a company's templates by shortcut.
	CannedResponses(ctx context.Context, companyID int64) ([]CannedResponse, error)
	// CreateCannedResponse inserts c and sets c.ID; a shortcut the company
	// already uses wraps ErrConflict.
	CreateCannedResponse(ctx context.Context, c *CannedResponse) error
	// UpdateCannedResponse replaces shortcut, title and text of template
	// c.ID of c.CompanyID.
	UpdateCannedResponse(ctx context.Context, c *CannedResponse) error
	DeleteCannedResponse(ctx context.Context, companyID, id int64) error
}

// StatsStore reads what the team figures are computed from (stats.go),
// for a company and the period [from, to).
type StatsStore interface {
	// HandledRooms lists the rooms that ended in the period with an assignee.
	HandledRooms(ctx context.Context, companyID int64, from, to time.Time) ([]HandledRoom, error)
	// FirstResponses lists the rooms whose first answer by a member (the
	// first member conversation message after the customer's first) came
	// in the period.
	FirstResponses(ctx context.Context, companyID int64, from, to time.Time) ([]FirstResponse, error)
	// Reviews lists the REVIEW scores given in the period.
	Reviews(ctx context.Context, companyID int64, from, to time.Time) ([]Review, error)
	// MessageCounts counts the conversation messages (no notes, no system
	// lines) written in [bounds[0], bounds[len-1]) by day (the index i of
	// [bounds[i], bounds[i+1])) and writer (a member, or 0 for customers).
	MessageCounts(ctx context.Context, companyID int64, bounds []time.Time) ([]MessageCount, error)
}

var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	// ErrNoAssignee: no member can take a room now.
	ErrNoAssignee = errors.New("no member available")
)
