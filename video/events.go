package video

import (
	"context"
	"time"
)

// EventKind says what happened in a room.
type EventKind string

const (
	// EventRoomOpened: the first participant joined a room that had none.
	EventRoomOpened EventKind = "roomOpened"
	// EventJoined: a participant joined (not on a resume within the grace).
	EventJoined EventKind = "joined"
	// EventLeft: a participant left, by leaveRoom, a dropped socket after
	// the grace, a replacement or CloseRoom.
	EventLeft EventKind = "left"
	// EventRoomClosed: the last participant left, or CloseRoom. Duration is
	// how long the room was open. Reason "shutdown": the room's node drains
	// or lost it, and its participants rejoin it on another node (the call
	// goes on there).
	EventRoomClosed EventKind = "roomClosed"
)

// Event is one room event for the chat side (system messages, call start,
// end and duration).
type Event struct {
	Kind     EventKind
	Room     RoomKey
	User     Identity // empty for room events
	At       time.Time
	Duration time.Duration // for EventLeft: time in the room; EventRoomClosed: room lifetime
	Reason   string        // for EventLeft: "leave", "dropped", "replaced", "closed", "shutdown"; EventRoomClosed: "shutdown" or none
}

// eventQueueSize bounds events waiting for OnEvent; joins and leaves are
// rare next to media, so a full queue means the receiver is stuck.
const eventQueueSize = 4096

// events delivers Events to Config.OnEvent on one goroutine, in order.
type events struct {
	fn      func(Event)
	q       chan Event
	dropped func()
}

func newEvents(fn func(Event), dropped func()) *events {
	return &events{fn: fn, q: make(chan Event, eventQueueSize), dropped: dropped}
}

func (e *events) emit(ev Event) {
	if e.fn == nil {
		return
	}
	select {
	case e.q <- ev:
	default:
		e.dropped()
	}
}

// run delivers until ctx ends, then delivers what is queued.
func (e *events) run(ctx context.Context) {
	for {
		select {
		case ev := <-e.q:
			e.fn(ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-e.q:
					e.fn(ev)
				default:
					return
				}
			}
		}
	}
}
