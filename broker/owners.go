package broker

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// SessionOwners binds SockJS sessions to the client address that opened
// them. A request to a session's HTTP transports (xhr_send, jsonp_send,
// polls, streams) shows nothing but the session id in its path, so without
// a binding the id would be a bearer credential: whoever learned it could
// send as the session's client or take its deliveries with a poll. The
// client address is r.RemoteAddr, which a trusted proxy's X-Forwarded-For
// has already rewritten in front of the handler.
//
// The SockJS library starts a session's handler on a goroutine of its own,
// after it has answered the opening request's "o": Bind, called from that
// handler, can come after the client's next request. So the request that
// may open a session claims its id in Allow, before the library sees it,
// and Bind confirms the claim; a claim that no session confirms (the
// library refused the request) lapses after claimLifetime.
type SessionOwners struct {
	prefix string
	// anyAddress turns the binding off (proxies that change a client's
	// address within a session).
	anyAddress bool
	refused    func()
	now        func() time.Time

	mu     sync.Mutex
	owners map[string]sessionOwner // session id -> its client
	claims []sessionClaim          // unconfirmed, oldest first
}

type sessionOwner struct {
	host      string
	claimedAt time.Time // zero once the session's handler has bound it
}

type sessionClaim struct {
	id string
	at time.Time
}

// claimLifetime is how long a claim waits for its session's handler: far
// longer than a goroutine takes to start, short enough that ids claimed by
// refused requests do not pile up.
const claimLifetime = time.Minute

// NewSessionOwners binds the sessions of the SockJS endpoint at prefix
// (e.g. "/ws"); with anyAddress nothing is refused. refused, if not nil,
// counts refusals.
func NewSessionOwners(prefix string, anyAddress bool, refused func()) *SessionOwners {
	return &SessionOwners{prefix: "/" + strings.Trim(prefix, "/"), anyAddress: anyAddress, refused: refused,
		now: time.Now, owners: map[string]sessionOwner{}}
}

// Bind records the address of r, the request that opened session id, until
// release is called (when the session ends). It confirms the claim the
// opening request made, if any.
func (o *SessionOwners) Bind(id string, r *http.Request) (release func()) {
	host := clientHost(r.RemoteAddr)
	o.mu.Lock()
	if claim, ok := o.owners[id]; ok && !claim.claimedAt.IsZero() {
		// The library's request may already be a later one; the claim
		// names the opening request's address.
		host = claim.host
	}
	o.owners[id] = sessionOwner{host: host}
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		delete(o.owners, id)
		o.mu.Unlock()
	}
}

// Allow answers 403 to a request for a session bound to another address,
// and reports whether to go on; the session itself is untouched. A request
// that may open a session claims its id for its address.
func (o *SessionOwners) Allow(w http.ResponseWriter, r *http.Request) bool {
	if o.anyAddress {
		return true
	}
	parts := strings.Split(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, o.prefix), "/"), "/")
	if len(parts) != 3 {
		return true
	}
	id, host := parts[1], clientHost(r.RemoteAddr)
	now := o.now()
	o.mu.Lock()
	o.dropLapsedClaims(now)
	owner, bound := o.owners[id]
	if !bound && opensSession(parts[2]) {
		o.owners[id] = sessionOwner{host: host, claimedAt: now}
		o.claims = append(o.claims, sessionClaim{id: id, at: now})
	}
	o.mu.Unlock()
	if !bound || owner.host == host {
		return true
	}
	if o.refused != nil {
		o.refused()
	}
	http.Error(w, "this session belongs to another client address", http.StatusForbidden)
	return false
}

// dropLapsedClaims forgets the claims older than claimLifetime that no
// session confirmed. Called with o.mu held.
func (o *SessionOwners) dropLapsedClaims(now time.Time) {
	n := 0
	for ; n < len(o.claims) && now.Sub(o.claims[n].at) >= claimLifetime; n++ {
		c := o.claims[n]
		if owner, ok := o.owners[c.id]; ok && owner.claimedAt.Equal(c.at) {
			delete(o.owners, c.id)
		}
	}
	if n > 0 {
		o.claims = append(o.claims[:0], o.claims[n:]...)
	}
}

// opensSession tells whether a request for a SockJS transport creates its
// session when there is none: every receiving transport does; the sends
// and the WebSocket (whose session no other request can reach) do not.
func opensSession(transport string) bool {
	switch transport {
	case "xhr", "xhr_streaming", "eventsource", "htmlfile", "jsonp":
		return true
	}
	return false
}

// clientHost is the address of a RemoteAddr without its port.
func clientHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
