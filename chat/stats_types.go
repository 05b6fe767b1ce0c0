package chat

import "time"

// What the team figures are computed from (StatsStore).

// HandledRoom is a room that ended with an assignee.
type HandledRoom struct {
	RoomID, MemberID int64
	CreateDate       time.Time
	// AssignDate is nil for rooms assigned before it was recorded; their
	// handling time counts from CreateDate.
	AssignDate *time.Time
	EndDate    time.Time
}

// FirstResponse is when a room's customer first wrote and when a member
// (MemberID) first answered after that.
type FirstResponse struct {
	RoomID, MemberID       int64
	CustomerAt, ResponseAt time.Time
}

// Review is a customer's REVIEW score of a room; MemberID is the room's
// assignee (0 for none).
type Review struct {
	RoomID, MemberID int64
	Score            int
	Date             time.Time
}

// MessageCount is how many conversation messages one writer (a member, or
// 0 for the customers) wrote on one day of the period.
type MessageCount struct {
	Day      int
	MemberID int64
	Count    int
}
