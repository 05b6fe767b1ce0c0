package knowledgetalk

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"time"
)

// Store errors: a missing row and a taken key (package store wraps them).
var (
	ErrNotFound = errors.New("knowledgetalk: not found")
	ErrConflict = errors.New("knowledgetalk: conflict")
)

// Licence is one (cpCode, authKey) pair a company hands to its clients.
// Only a hash of the authKey is kept.
type Licence struct {
	CPCode      string
	CompanyID   int64
	AuthKeyHash string // HashAuthKey of the authKey
	CreatedAt   time.Time
}

// HashAuthKey is what the store keeps of an authKey: hex SHA-256. The key
// is a random secret (the deployed ones are long JWTs), so a fast hash is
// enough to keep it out of backups and database dumps.
func HashAuthKey(authKey string) string {
	sum := sha256.Sum256([]byte(authKey))
	return hex.EncodeToString(sum[:])
}

// Matches reports whether authKey is the licence's key, in constant time.
func (l *Licence) Matches(authKey string) bool {
	return subtle.ConstantTimeCompare([]byte(HashAuthKey(authKey)), []byte(l.AuthKeyHash)) == 1
}

// Room is a KnowledgeTalk room as the store knows it: created by CreateRoom
// under a company's licence, alive until it empties after use or stays
// untouched for Config.RoomTTL. The live call (members, media) is the
// video server's; the row makes the id unique across nodes and lets any
// node tell whether a room exists.
type Room struct {
	// ID is the seed's 8-digit room number, unique across companies.
	ID        string
	CompanyID int64
	// Capacity is the most members the room takes.
	Capacity  int
	CreatedAt time.Time
	// ActiveAt is the last time the room was created, joined or seen live.
	ActiveAt time.Time
}

// Store persists licences and rooms. Package store implements it on GORM
// (SQLite and MySQL). Missing rows wrap ErrNotFound, taken keys ErrConflict.
type Store interface {
	// SaveKTLicence inserts l or, for a cpCode already there, replaces its
	// company and key.
	SaveKTLicence(ctx context.Context, l *Licence) error
	// KTLicence returns the licence of cpCode.
	KTLicence(ctx context.Context, cpCode string) (*Licence, error)
	// KTLicences lists a company's licences by cpCode (all companies when
	// companyID is 0).
	KTLicences(ctx context.Context, companyID int64) ([]Licence, error)
	// DeleteKTLicence removes the licence of cpCode.
	DeleteKTLicence(ctx context.Context, cpCode string) error

	// CreateKTRoom inserts r; a taken id is ErrConflict.
	CreateKTRoom(ctx context.Context, r *Room) error
	// KTRoom returns room id of company companyID (ErrNotFound for a room
	// of another company).
	KTRoom(ctx context.Context, companyID int64, id string) (*Room, error)
	// TouchKTRooms sets the ActiveAt of the rooms ids to at.
	TouchKTRooms(ctx context.Context, ids []string, at time.Time) error
	// DeleteKTRoom removes room id (no error when it is gone already).
	DeleteKTRoom(ctx context.Context, id string) error
	// DeleteIdleKTRooms removes the rooms not active since before and
	// returns how many.
	DeleteIdleKTRooms(ctx context.Context, before time.Time) (int64, error)
}
