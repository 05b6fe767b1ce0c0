package store

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cstalk/cstalk/chat"
)

// Row structs mirror the tables of migrate.go. They never leave the package:
// every method converts them to and from chat's types.

type companyRow struct {
	ID                 int64 `gorm:"primaryKey"`
	Name               string
	LegacyKeyPrefix    string
	SigningSecret      string
	RequireSigned      bool
	UseConfigJSON      *string `gorm:"column:use_config_json"`
	WaitingText        *string
	ReplyText          *string
	WorkStart          string
	WorkEnd            string
	LunchStart         string
	LunchEnd           string
	WorkingText        string
	AfterHoursText     string
	LunchText          string
	AllowCustomerVideo bool
	ContractsURL       string
	AutoAssign         bool
	RecordCalls        *bool
}

func (companyRow) TableName() string { return "companies" }

type memberRow struct {
	ID           int64 `gorm:"primaryKey"`
	CompanyID    int64
	LoginName    string
	Name         string
	PasswordHash string
	IsAdmin      bool
	CreatedAt    time.Time `gorm:"autoCreateTime:false"`
	Status       string
	Capacity     int
	IdleSince    *time.Time
}

func (memberRow) TableName() string { return "members" }

type customerRow struct {
	ID                 int64 `gorm:"primaryKey"`
	CompanyID          int64
	GasappMemberNumber string
	Name               string
	CreatedAt          time.Time `gorm:"autoCreateTime:false"`
}

func (customerRow) TableName() string { return "customers" }

type speakerRow struct {
	ID         int64 `gorm:"primaryKey"`
	CompanyID  int64
	MemberID   *int64
	CustomerID *int64
	Name       string
}

func (speakerRow) TableName() string { return "speakers" }

type roomRow struct {
	ID             int64 `gorm:"primaryKey"`
	CompanyID      int64
	CustomerID     int64
	MemberID       *int64
	Status         string
	Name           string
	ReviewScore    *int
	ReviewDate     *time.Time
	LastMessageID  int64
	CreateDate     time.Time
	UpdateDate     time.Time
	EndDate        *time.Time
	OpenCustomerID *int64
	AssignDate     *time.Time
}

func (roomRow) TableName() string { return "rooms" }

type messageRow struct {
	ID              int64 `gorm:"primaryKey"`
	RoomID          int64
	CompanyID       int64
	SpeakerID       int64
	SpeakerName     string
	MessageType     int
	Body            string
	Detail          string
	Thumbnail       string
	AdminType       int
	IsSystem        bool
	IsEmployee      bool
	IsCustomer      bool
	IsOnline        bool
	JoinMessageID   int64
	ClientMessageID *string
	Deleted         bool
	CreateDate      time.Time
	UpdateDate      time.Time
}

func (messageRow) TableName() string { return "messages" }

type readPositionRow struct {
	RoomID     int64 `gorm:"primaryKey;autoIncrement:false"`
	SpeakerID  int64 `gorm:"primaryKey;autoIncrement:false"`
	LastReadID int64
}

func (readPositionRow) TableName() string { return "read_positions" }

// Column limits, checked before writing so both backends refuse the same
// input with the same error (SQLite would store anything; MySQL in strict
// mode fails, otherwise truncates). Text limits count characters, identifier
// limits bytes (they are VARBINARY on MySQL).
const (
	maxNameChars       = 255
	maxLoginBytes      = 100
	maxNumberBytes     = 64
	maxClientIDBytes   = 128
	maxHoursChars      = 8
	maxBodyBytes       = 16<<20 - 1 // MEDIUMTEXT
	maxTextBytes       = 65535      // TEXT
	maxPasswordChars   = 255
	maxConfigJSONBytes = 16<<20 - 1
	maxURLBytes        = 2048
)

// cleanText applies the package's text policy: invalid UTF-8 becomes U+FFFD.
func cleanText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func cleanTextPtr(s *string) *string {
	if s == nil {
		return nil
	}
	c := cleanText(*s)
	return &c
}

// limitChecker collects the first length violation of a row.
type limitChecker struct{ err error }

func (l *limitChecker) chars(field, v string, max int) {
	if l.err == nil && utf8.RuneCountInString(v) > max {
		l.err = fmt.Errorf("%s is longer than %d characters", field, max)
	}
}

// date keeps times within MySQL DATETIME's years 1000-9999.
func (l *limitChecker) date(field string, t time.Time) {
	if l.err == nil && (t.Year() < 1000 || t.Year() > 9999) {
		l.err = fmt.Errorf("%s %s is outside the years 1000-9999", field, t.Format(time.RFC3339))
	}
}

func (l *limitChecker) bytes(field, v string, max int) {
	if l.err == nil && len(v) > max {
		l.err = fmt.Errorf("%s is longer than %d bytes", field, max)
	}
}

// dbTime is how a time is stored: UTC, microseconds (MySQL DATETIME(6)),
// without a monotonic reading.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func newCompanyRow(c *chat.Company) (companyRow, error) {
	r := companyRow{
		ID:                 c.ID,
		Name:               cleanText(c.Name),
		LegacyKeyPrefix:    cleanText(c.LegacyKeyPrefix),
		SigningSecret:      cleanText(c.SigningSecret),
		RequireSigned:      c.RequireSigned,
		UseConfigJSON:      cleanTextPtr(c.UseConfigJSON),
		WaitingText:        cleanTextPtr(c.WaitingText),
		ReplyText:          cleanTextPtr(c.ReplyText),
		WorkStart:          cleanText(c.WorkStart),
		WorkEnd:            cleanText(c.WorkEnd),
		LunchStart:         cleanText(c.LunchStart),
		LunchEnd:           cleanText(c.LunchEnd),
		WorkingText:        cleanText(c.WorkingText),
		AfterHoursText:     cleanText(c.AfterHoursText),
		LunchText:          cleanText(c.LunchText),
		AllowCustomerVideo: c.AllowCustomerVideo,
		ContractsURL:       cleanText(c.ContractsURL),
		AutoAssign:         c.AutoAssign,
		RecordCalls:        c.RecordCalls,
	}
	var l limitChecker
	l.chars("name", r.Name, maxNameChars)
	l.chars("legacy key prefix", r.LegacyKeyPrefix, maxNameChars)
	l.chars("signing secret", r.SigningSecret, maxNameChars)
	if r.UseConfigJSON != nil {
		l.bytes("use config json", *r.UseConfigJSON, maxConfigJSONBytes)
	}
	if r.WaitingText != nil {
		l.bytes("waiting text", *r.WaitingText, maxTextBytes)
	}
	if r.ReplyText != nil {
		l.bytes("reply text", *r.ReplyText, maxTextBytes)
	}
	for _, h := range []struct{ name, v string }{
		{"work start", r.WorkStart}, {"work end", r.WorkEnd}, {"lunch start", r.LunchStart}, {"lunch end", r.LunchEnd},
	} {
		l.chars(h.name, h.v, maxHoursChars)
	}
	l.bytes("working text", r.WorkingText, maxTextBytes)
	l.bytes("after hours text", r.AfterHoursText, maxTextBytes)
	l.bytes("lunch text", r.LunchText, maxTextBytes)
	l.bytes("contracts url", r.ContractsURL, maxURLBytes)
	return r, l.err
}

func (r *companyRow) toChat() *chat.Company {
	return &chat.Company{
		ID:                 r.ID,
		Name:               r.Name,
		LegacyKeyPrefix:    r.LegacyKeyPrefix,
		SigningSecret:      r.SigningSecret,
		RequireSigned:      r.RequireSigned,
		UseConfigJSON:      r.UseConfigJSON,
		WaitingText:        r.WaitingText,
		ReplyText:          r.ReplyText,
		WorkStart:          r.WorkStart,
		WorkEnd:            r.WorkEnd,
		LunchStart:         r.LunchStart,
		LunchEnd:           r.LunchEnd,
		WorkingText:        r.WorkingText,
		AfterHoursText:     r.AfterHoursText,
		LunchText:          r.LunchText,
		AllowCustomerVideo: r.AllowCustomerVideo,
		ContractsURL:       r.ContractsURL,
		AutoAssign:         r.AutoAssign,
		RecordCalls:        r.RecordCalls,
	}
}

func (r *memberRow) toChat() chat.Member {
	return chat.Member{
		ID:           r.ID,
		CompanyID:    r.CompanyID,
		LoginName:    r.LoginName,
		Name:         r.Name,
		PasswordHash: r.PasswordHash,
		IsAdmin:      r.IsAdmin,
		CreatedAt:    r.CreatedAt.UTC(),
		Status:       chat.MemberStatus(r.Status),
		Capacity:     r.Capacity,
	}
}

func (r *customerRow) toChat() *chat.Customer {
	return &chat.Customer{
		ID:                 r.ID,
		CompanyID:          r.CompanyID,
		GasappMemberNumber: r.GasappMemberNumber,
		Name:               r.Name,
		CreatedAt:          r.CreatedAt.UTC(),
	}
}

func (r *speakerRow) toChat() *chat.Speaker {
	return &chat.Speaker{
		ID:         r.ID,
		CompanyID:  r.CompanyID,
		MemberID:   r.MemberID,
		CustomerID: r.CustomerID,
		Name:       r.Name,
	}
}

func (r *roomRow) toChat() chat.Room {
	return chat.Room{
		ID:            r.ID,
		CompanyID:     r.CompanyID,
		CustomerID:    r.CustomerID,
		MemberID:      r.MemberID,
		Status:        chat.RoomStatus(r.Status),
		Name:          r.Name,
		ReviewScore:   r.ReviewScore,
		LastMessageID: r.LastMessageID,
		CreateDate:    r.CreateDate.UTC(),
		UpdateDate:    r.UpdateDate.UTC(),
		EndDate:       utcPtr(r.EndDate),
		AssignDate:    utcPtr(r.AssignDate),
	}
}

// newMessageRow validates m and converts it for insertion; dates default to
// now.
func newMessageRow(m *chat.Message, now time.Time) (messageRow, error) {
	r := messageRow{
		RoomID:        m.RoomID,
		CompanyID:     m.CompanyID,
		SpeakerID:     m.SpeakerID,
		SpeakerName:   cleanText(m.SpeakerName),
		MessageType:   m.Type,
		Body:          cleanText(m.Body),
		Detail:        cleanText(m.Detail),
		Thumbnail:     cleanText(m.Thumbnail),
		AdminType:     m.AdminType,
		IsSystem:      m.IsSystem,
		IsEmployee:    m.IsEmployee,
		IsCustomer:    m.IsCustomer,
		IsOnline:      m.IsOnline,
		JoinMessageID: m.JoinMessageID,
		Deleted:       m.Deleted,
		CreateDate:    dbTime(m.CreateDate),
		UpdateDate:    dbTime(m.UpdateDate),
	}
	if m.CreateDate.IsZero() {
		r.CreateDate = dbTime(now)
	}
	if m.UpdateDate.IsZero() {
		r.UpdateDate = r.CreateDate
	}
	if m.ClientMessageID != "" {
		id := cleanText(m.ClientMessageID)
		r.ClientMessageID = &id
	}
	var l limitChecker
	switch {
	case r.RoomID <= 0 || r.SpeakerID <= 0:
		l.err = fmt.Errorf("message needs a room and a speaker (room %d, speaker %d)", r.RoomID, r.SpeakerID)
	case r.MessageType < 0 || r.MessageType > math.MaxInt32 || r.AdminType < 0 || r.AdminType > math.MaxInt32:
		// INT columns: MySQL would refuse what SQLite keeps.
		l.err = fmt.Errorf("message type %d / admin type %d out of range", r.MessageType, r.AdminType)
	}
	l.chars("speaker name", r.SpeakerName, maxNameChars)
	l.bytes("message", r.Body, maxBodyBytes)
	l.bytes("message detail", r.Detail, maxTextBytes)
	l.bytes("thumbnail", r.Thumbnail, maxTextBytes)
	if r.ClientMessageID != nil {
		l.bytes("client message id", *r.ClientMessageID, maxClientIDBytes)
	}
	l.date("create date", r.CreateDate)
	l.date("update date", r.UpdateDate)
	return r, l.err
}

func (r *messageRow) toChat() *chat.Message {
	m := &chat.Message{
		ID:            r.ID,
		RoomID:        r.RoomID,
		CompanyID:     r.CompanyID,
		SpeakerID:     r.SpeakerID,
		SpeakerName:   r.SpeakerName,
		Type:          r.MessageType,
		Body:          r.Body,
		Detail:        r.Detail,
		Thumbnail:     r.Thumbnail,
		AdminType:     r.AdminType,
		IsSystem:      r.IsSystem,
		IsEmployee:    r.IsEmployee,
		IsCustomer:    r.IsCustomer,
		IsOnline:      r.IsOnline,
		JoinMessageID: r.JoinMessageID,
		Deleted:       r.Deleted,
		CreateDate:    r.CreateDate.UTC(),
		UpdateDate:    r.UpdateDate.UTC(),
	}
	if r.ClientMessageID != nil {
		m.ClientMessageID = *r.ClientMessageID
	}
	return m
}
