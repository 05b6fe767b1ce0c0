package broker

import (
	"net"
	"net/http"
	"strings"
	"sync"
)

// SessionOwners binds SockJS sessions to the client address that opened
// them. A request to a session's HTTP transports (xhr_send, jsonp_send,
// polls, streams) shows nothing but the session id in its path, so without
// a binding the id would be a bearer credential: whoever learned it could
// send as the session's client or take its deliveries with a poll. The
// client address is r.RemoteAddr, which a trusted proxy's X-Forwarded-For
// has already rewritten in front of the handler.
type SessionOwners struct {
	prefix string
	// anyAddress turns the binding off (proxies that change a client's
	// address within a session).
	anyAddress bool
	refused    func()

	mu     sync.Mutex
	owners map[string]string // session id -> client host
}

// NewSessionOwners binds the sessions of the SockJS endpoint at prefix
// (e.g. "/ws"); with anyAddress nothing is refused. refused, if not nil,
// counts refusals.
func NewSessionOwners(prefix string, anyAddress bool, refused func()) *SessionOwners {
	return &SessionOwners{prefix: "/" + strings.Trim(prefix, "/"), anyAddress: anyAddress, refused: refused,
		owners: map[string]string{}}
}

// Bind records the address of r, the request that opened session id, until
// release is called (when the session ends).
func (o *SessionOwners) Bind(id string, r *http.Request) (release func()) {
	host := clientHost(r.RemoteAddr)
	o.mu.Lock()
	o.owners[id] = host
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		delete(o.owners, id)
		o.mu.Unlock()
	}
}

// Allow answers 403 to a request for a session bound to another address,
// and reports whether to go on; the session itself is untouched.
func (o *SessionOwners) Allow(w http.ResponseWriter, r *http.Request) bool {
	if o.anyAddress {
		return true
	}
	parts := strings.Split(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, o.prefix), "/"), "/")
	if len(parts) != 3 {
		return true
	}
	o.mu.Lock()
	owner, bound := o.owners[parts[1]]
	o.mu.Unlock()
	if !bound || owner == clientHost(r.RemoteAddr) {
		return true
	}
	if o.refused != nil {
		o.refused()
	}
	http.Error(w, "this session belongs to another client address", http.StatusForbidden)
	return false
}

// clientHost is the address of a RemoteAddr without its port.
func clientHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
