package broker

import (
	"strings"
	"sync"
	"time"
)

// sockjs-go drops what it still buffers for a session when the session
// closes, and an HTTP-polling client only receives buffered frames when its
// next poll arrives. So the final ERROR frame of a polling session would be
// lost if the session closed at once: pollTracker watches the receiving
// requests of each session and closes it once its frames are out.

// pollTracker counts, per SockJS session, the receiving HTTP requests
// (xhr, xhr_streaming, eventsource, htmlfile, jsonp) in flight.
type pollTracker struct {
	mu       sync.Mutex
	sessions map[string]*pollState
}

type pollState struct {
	inflight int
	onDone   func() // close the session when a receiving request ends
}

// idleGrace is how long a close waits for a request that is already in
// flight: one attached with nothing to carry never ends by itself.
const idleGrace = 250 * time.Millisecond

// pollFallback closes a session whose client stopped polling; sockjs-go
// would time it out after the same delay.
const pollFallback = 5 * time.Second

func newPollTracker() *pollTracker {
	return &pollTracker{sessions: make(map[string]*pollState)}
}

// receivingSession returns the session id of a SockJS receiving request
// path (below the prefix): /{server}/{session}/{transport}.
func receivingSession(path string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 3 {
		return "", false
	}
	switch parts[2] {
	case "xhr", "xhr_streaming", "eventsource", "htmlfile", "jsonp":
		return parts[1], true
	}
	return "", false
}

func (p *pollTracker) begin(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.sessions[id]
	if st == nil {
		st = &pollState{}
		p.sessions[id] = st
	}
	st.inflight++
}

func (p *pollTracker) end(id string) {
	p.mu.Lock()
	st := p.sessions[id]
	if st == nil {
		p.mu.Unlock()
		return
	}
	st.inflight--
	done := st.onDone
	if done != nil || st.inflight == 0 {
		delete(p.sessions, id)
	}
	p.mu.Unlock()
	if done != nil {
		done()
	}
}

// closeWhenDelivered calls closeFn once the frames queued for session id
// have reached the client: when the next receiving request ends (it carries
// whatever was buffered), shortly if one is already attached, or after
// pollFallback if the client has gone.
func (p *pollTracker) closeWhenDelivered(id string, closeFn func()) {
	var once sync.Once
	fire := func() { once.Do(closeFn) }
	p.mu.Lock()
	st := p.sessions[id]
	if st == nil {
		st = &pollState{}
		p.sessions[id] = st
	}
	st.onDone = fire
	inflight := st.inflight
	p.mu.Unlock()
	wait := pollFallback
	if inflight > 0 {
		wait = idleGrace
	}
	time.AfterFunc(wait, func() {
		p.mu.Lock()
		if p.sessions[id] == st {
			delete(p.sessions, id)
		}
		p.mu.Unlock()
		fire()
	})
}
