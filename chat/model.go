package chat

import "time"

// RoomStatus is a room's place in its lifecycle WAITING -> IN_PROGRESS -> ENDED.
type RoomStatus string

const (
	StatusWaiting    RoomStatus = "WAITING"
	StatusInProgress RoomStatus = "IN_PROGRESS"
	StatusEnded      RoomStatus = "ENDED"
)

// Company is a tenant. Nothing of one company is visible to another.
type Company struct {
	ID   int64
	Name string
	// LegacyKeyPrefix, when set, makes the customer's secretKey CONNECT header
	// mandatory: it must equal the prefix followed by today's YYYYMMDD.
	LegacyKeyPrefix string
	// SigningSecret is the HMAC key of the signed customer mode; RequireSigned
	// refuses customers that do not use it.
	SigningSecret string
	RequireSigned bool
	// UseConfigJSON is sent as profile.companyUseConfigJson (nil -> null).
	UseConfigJSON *string
	// WaitingText and ReplyText are WELCOME_MESSAGE's autoMessage1/2.
	WaitingText *string
	ReplyText   *string
	// Working hours in the server's zone, "HH:MM"; empty means always open.
	WorkStart, WorkEnd   string
	LunchStart, LunchEnd string
	// START_MESSAGE texts for each case.
	WorkingText, AfterHoursText, LunchText string
	// AllowCustomerVideo lets customers start a video call (video issue).
	AllowCustomerVideo bool
	// ContractsURL is the company's own HTTP endpoint that lists a
	// customer's contracts for the console (see CheckContractsURL); empty:
	// the console gets none.
	ContractsURL string
	// AutoAssign gives a new room, at its first customer message, to the
	// AVAILABLE member with the fewest open rooms under capacity (routing.go).
	AutoAssign bool
	// RecordCalls records the company's calls (package video/recording);
	// nil: the server's default (Config.RecordCalls).
	RecordCalls *bool
}

// Member is a counselor of a company; IsAdmin makes it the administrator.
type Member struct {
	ID           int64
	CompanyID    int64
	LoginName    string
	Name         string
	PasswordHash string
	IsAdmin      bool
	CreatedAt    time.Time
	// Status is what the member chose (AVAILABLE, AWAY or OFFLINE, the
	// default); it counts only while a console of the member is connected
	// (see Service.MemberStates).
	Status MemberStatus
	// Capacity is how many open rooms auto-assignment may give the member.
	Capacity int
}

// MemberStatus is a member's availability for new rooms.
type MemberStatus string

const (
	MemberAvailable MemberStatus = "AVAILABLE"
	MemberAway      MemberStatus = "AWAY"
	MemberOffline   MemberStatus = "OFFLINE"
)

// DefaultCapacity is a member's capacity until an administrator sets it.
const DefaultCapacity = 5

// MaxCapacity bounds what an administrator may set.
const MaxCapacity = 100

// ParseMemberStatus accepts exactly the three wire spellings.
func ParseMemberStatus(v string) (MemberStatus, bool) {
	switch s := MemberStatus(v); s {
	case MemberAvailable, MemberAway, MemberOffline:
		return s, true
	}
	return "", false
}

// Customer is a user of the company's consumer app.
type Customer struct {
	ID                 int64
	CompanyID          int64
	GasappMemberNumber string // digits only
	Name               string
	CreatedAt          time.Time
}

// DisplayName is how the customer is shown wherever a name is: its name,
// or its member number when its app sent none.
func (c *Customer) DisplayName() string { return shownName(c.Name, c.GasappMemberNumber) }

func shownName(name, number string) string {
	if name == "" {
		return number
	}
	return name
}

// Speaker is whoever writes in rooms: exactly one of MemberID, CustomerID is
// set, or neither for the system.
type Speaker struct {
	ID         int64
	CompanyID  int64
	MemberID   *int64
	CustomerID *int64
	Name       string
}

// Room is one counseling conversation of one customer.
type Room struct {
	ID            int64
	CompanyID     int64
	CustomerID    int64
	MemberID      *int64 // assignee, nil while WAITING
	Status        RoomStatus
	Name          string // the customer's name at creation
	ReviewScore   *int
	LastMessageID int64
	CreateDate    time.Time
	UpdateDate    time.Time
	EndDate       *time.Time
	// AssignDate is when the room was first given to a member (nil while
	// WAITING, and for rooms assigned before it was recorded).
	AssignDate *time.Time
}

// CannedResponse is a company's reply template: counselors insert Text by
// typing "/" and the Shortcut in the console.
type CannedResponse struct {
	ID        int64
	CompanyID int64
	Shortcut  string
	Title     string
	Text      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Message is one stored chat message.
type Message struct {
	ID              int64
	RoomID          int64
	CompanyID       int64
	SpeakerID       int64
	SpeakerName     string
	Type            int // 0 text, 1 image
	Body            string
	Detail          string // image path for Type 1
	Thumbnail       string
	AdminType       int // 0 conversation, 1 internal note (members only)
	IsSystem        bool
	IsEmployee      bool
	IsCustomer      bool
	IsOnline        bool
	JoinMessageID   int64
	ClientMessageID string
	Deleted         bool
	CreateDate      time.Time
	UpdateDate      time.Time
}
