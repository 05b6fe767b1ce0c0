package video

import (
	"regexp"
	"strconv"
)

// RoomKind is what a room is for; with the company and the name it makes
// the room's key in the registry.
type RoomKind string

// Room kinds of seed 002's ids, whose wire form is "{kind}-{name}".
const (
	RoomChannel RoomKind = "c" // c-{channelId}: a company's standing channel
	RoomChat    RoomKind = "r" // r-{roomId}: a call opened from chat room {roomId}
	RoomGuide   RoomKind = "g" // g-{gsSeq}: a timed guide session
)

// RoomKnowledgeTalk is the kind of the KnowledgeTalk front end's rooms,
// named by the seed's 8-digit room numbers; it has no seed-002 id.
const RoomKnowledgeTalk RoomKind = "k"

// NoCompany is the company of rooms that belong to none (guide sessions).
const NoCompany = "0"

// RoomKey names a room in the registry. A room belongs to one company: the
// same kind and name in two companies are two rooms, and nobody in one ever
// sees, or is seen by, a participant of the other. Every front end builds
// the key from the company its authorizer vouched for, never from what the
// client claims.
type RoomKey struct {
	// Company is the company id (decimal, canonical), NoCompany for rooms
	// of no company.
	Company string
	Kind    RoomKind
	// Name is the room within its kind and company: a channel, chat room
	// or guide session id.
	Name string
}

// Seed 002's room ids: c-{channelId}, r-{roomId}, g-{gsSeq}.
var roomIDPattern = regexp.MustCompile(`^[cgr]-[0-9A-Za-z_-]{1,64}$`)

func validRoomID(id string) bool { return roomIDPattern.MatchString(id) }

// ParseRoomID splits a seed-002 room id into its kind (RoomChannel,
// RoomChat or RoomGuide) and name; ok is false for anything else.
func ParseRoomID(id string) (kind RoomKind, name string, ok bool) {
	if !validRoomID(id) {
		return "", "", false
	}
	return RoomKind(id[:1]), id[2:], true
}

// RoomKeyOf is the key of the seed-002 room id in company; ok is false for
// a malformed id or company.
func RoomKeyOf(company, id string) (RoomKey, bool) {
	kind, name, ok := ParseRoomID(id)
	k := RoomKey{Company: company, Kind: kind, Name: name}
	return k, ok && k.valid()
}

// ChatRoomID is the video room id of chat room roomID.
func ChatRoomID(roomID string) string { return string(RoomChat) + "-" + roomID }

// ID is the room's id on the seed-002 wire ("c-1"): unique only within the
// company.
func (k RoomKey) ID() string { return string(k.Kind) + "-" + k.Name }

// String is unique across companies ("2/c-1"), for logs and for keying the
// room outside this process.
func (k RoomKey) String() string { return k.Company + "/" + k.ID() }

func (k RoomKey) valid() bool {
	return validCompany(k.Company) && k.Kind != "" && k.Name != ""
}

// validCompany accepts canonical decimal ids only, so "01" can never name
// a room apart from "1".
func validCompany(c string) bool {
	n, err := strconv.ParseUint(c, 10, 63)
	return err == nil && strconv.FormatUint(n, 10) == c
}
