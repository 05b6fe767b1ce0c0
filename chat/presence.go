package chat

import (
	"context"
	"sort"
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
}

// MemoryPresence is the in-process Presence of a single node.
type MemoryPresence struct {
	mu    sync.Mutex
	rooms map[int64]map[string]Attendee
}

var _ Presence = (*MemoryPresence)(nil)

// NewMemoryPresence returns an empty registry.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{rooms: make(map[int64]map[string]Attendee)}
}

func (p *MemoryPresence) Enter(_ context.Context, roomID int64, a Attendee) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	room := p.rooms[roomID]
	if room == nil {
		room = make(map[string]Attendee)
		p.rooms[roomID] = room
	}
	room[a.SessionID] = a
	return nil
}

func (p *MemoryPresence) Leave(_ context.Context, roomID int64, sessionID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	room := p.rooms[roomID]
	delete(room, sessionID)
	if len(room) == 0 {
		delete(p.rooms, roomID)
	}
	return nil
}

func (p *MemoryPresence) Attendees(_ context.Context, roomID int64) ([]Attendee, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Attendee, 0, len(p.rooms[roomID]))
	for _, a := range p.rooms[roomID] {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SessionID < out[j].SessionID })
	return out, nil
}
