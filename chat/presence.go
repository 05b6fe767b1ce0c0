package chat

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Attendee is one connection present in a room (subscribed to it).
type Attendee struct {
	SessionID string
	SpeakerID int64
	IsMember  bool
}

// Presence records which connections are present in which room. chat uses it
// for a message's isOnline and to deliver internal notes to the members in a
// room through their private destinations. MemoryPresence serves one node; a
// cluster-wide implementation (e.g. on Redis) replaces it through
// Service.UsePresence without any other change, since private delivery
// already reaches a session on any node.
type Presence interface {
	Enter(ctx context.Context, roomID int64, a Attendee) error
	// Leave forgets the session in the room; leaving twice is harmless.
	Leave(ctx context.Context, roomID int64, sessionID string) error
	// Attendees lists the room's connections ordered by session ID.
	Attendees(ctx context.Context, roomID int64) ([]Attendee, error)
	// Present reports whether the speaker has a connection in the room. It
	// is asked for every message (isOnline), and the writer is nearly
	// always connected to the node it writes through, so a cluster-wide
	// implementation answers from its own connections first.
	Present(ctx context.Context, roomID, speakerID int64) (bool, error)
}

// MemoryPresence is the in-process Presence of a single node.
type MemoryPresence struct {
	mu sync.Mutex
	// rooms holds each room's attendees in session order: a room has a
	// few, and a short slice costs an idle connection a fraction of a map.
	rooms map[int64][]Attendee
}

var _ Presence = (*MemoryPresence)(nil)

// NewMemoryPresence returns an empty registry.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{rooms: make(map[int64][]Attendee)}
}

func (p *MemoryPresence) Enter(_ context.Context, roomID int64, a Attendee) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	room := p.rooms[roomID]
	i, found := slices.BinarySearchFunc(room, a.SessionID, bySession)
	if found {
		room[i] = a
		return nil
	}
	p.rooms[roomID] = slices.Insert(room, i, a)
	return nil
}

func (p *MemoryPresence) Leave(_ context.Context, roomID int64, sessionID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	room := p.rooms[roomID]
	i, found := slices.BinarySearchFunc(room, sessionID, bySession)
	switch {
	case !found:
	case len(room) == 1:
		delete(p.rooms, roomID)
	default:
		p.rooms[roomID] = slices.Delete(room, i, i+1)
	}
	return nil
}

func (p *MemoryPresence) Attendees(_ context.Context, roomID int64) ([]Attendee, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	room := p.rooms[roomID]
	out := make([]Attendee, len(room))
	copy(out, room)
	return out, nil
}

func (p *MemoryPresence) Present(_ context.Context, roomID, speakerID int64) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return hasSpeaker(p.rooms[roomID], speakerID), nil
}

// hasSpeaker reports whether one of attendees is speakerID's.
func hasSpeaker(attendees []Attendee, speakerID int64) bool {
	return slices.ContainsFunc(attendees, func(a Attendee) bool { return a.SpeakerID == speakerID })
}

func bySession(a Attendee, sessionID string) int { return strings.Compare(a.SessionID, sessionID) }
