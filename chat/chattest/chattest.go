// Package chattest reads chat events in tests of whole servers: the JSON
// envelope of the wire contract (chat/README.md), and an Inbox that drains
// one STOMP subscription as its events arrive.
package chattest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// Event is one chat event envelope: {"eventName": ..., "data": ...}.
type Event struct {
	Name string
	M    map[string]any
	Raw  string
}

// Parse decodes one event.
func Parse(body []byte) (Event, error) {
	ev := Event{Raw: string(body)}
	if err := json.Unmarshal(body, &ev.M); err != nil {
		return ev, fmt.Errorf("event is not JSON: %q", body)
	}
	ev.Name, _ = ev.M["eventName"].(string)
	return ev, nil
}

// Str is the top-level field key as a string (numbers in decimal).
func (e Event) Str(key string) string {
	switch v := e.M[key].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatInt(int64(v), 10)
	}
	return ""
}

// Data is the event's data object.
func (e Event) Data() map[string]any {
	d, _ := e.M["data"].(map[string]any)
	return d
}

// Message is data.message of a MESSAGE event.
func (e Event) Message() map[string]any {
	m, _ := e.Data()["message"].(map[string]any)
	return m
}

// Text is data.message.message of a MESSAGE event.
func (e Event) Text() string {
	s, _ := e.Message()["message"].(string)
	return s
}

// Inbox drains one subscription as its events arrive, so go-stomp's small
// per-subscription buffer never fills and stalls the connection (receipts
// included) while the test looks elsewhere.
type Inbox struct {
	Dest   string
	mu     sync.Mutex
	events []Event
	err    error
	notify chan struct{} // signalled (cap 1) on every change
}

// Drain reads sub until its channel closes (the subscription or the
// connection ends).
func Drain(dest string, sub *stomp.Subscription) *Inbox {
	in := &Inbox{Dest: dest, notify: make(chan struct{}, 1)}
	go func() {
		for msg := range sub.C {
			in.mu.Lock()
			if msg.Err != nil {
				in.err = msg.Err
			} else if ev, err := Parse(msg.Body); err != nil {
				in.err = err
			} else {
				in.events = append(in.events, ev)
			}
			in.mu.Unlock()
			select {
			case in.notify <- struct{}{}:
			default:
			}
		}
	}()
	return in
}

// Next returns the next event, waiting up to wait for it.
func (in *Inbox) Next(wait time.Duration) (Event, error) {
	timeout := time.NewTimer(max(wait, time.Millisecond))
	defer timeout.Stop()
	for {
		in.mu.Lock()
		if len(in.events) > 0 {
			ev := in.events[0]
			in.events = in.events[1:]
			in.mu.Unlock()
			return ev, nil
		}
		err := in.err
		in.mu.Unlock()
		if err != nil {
			return Event{}, fmt.Errorf("%s: %w", in.Dest, err)
		}
		select {
		case <-in.notify:
		case <-timeout.C:
			return Event{}, fmt.Errorf("no event on %s within %v", in.Dest, wait)
		}
	}
}

// Await skips events until one named name that match accepts (nil: any),
// for up to wait.
func (in *Inbox) Await(name string, match func(Event) bool, wait time.Duration) (Event, error) {
	deadline := time.Now().Add(wait)
	for {
		ev, err := in.Next(time.Until(deadline))
		if err != nil {
			return Event{}, fmt.Errorf("waiting for %s: %w", name, err)
		}
		if ev.Name == name && (match == nil || match(ev)) {
			return ev, nil
		}
	}
}

// ListTexts is the message texts of a MESSAGE_LIST, in order.
func (e Event) ListTexts() []string {
	list, _ := e.Data()["messages"].([]any)
	out := make([]string, 0, len(list))
	for _, m := range list {
		if mm, ok := m.(map[string]any); ok {
			s, _ := mm["message"].(string)
			out = append(out, s)
		}
	}
	return out
}

// ListIDs is the message ids of a MESSAGE_LIST, in order.
func (e Event) ListIDs() []int64 {
	list, _ := e.Data()["messages"].([]any)
	out := make([]int64, 0, len(list))
	for _, m := range list {
		if mm, ok := m.(map[string]any); ok {
			id, _ := mm["id"].(float64)
			out = append(out, int64(id))
		}
	}
	return out
}
