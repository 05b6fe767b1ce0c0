package broker

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// allowFrom asks o whether a request for path from host may go on, and
// returns the HTTP status it answered (200 when it let the request through).
func allowFrom(o *SessionOwners, path, host string) int {
	r := httptest.NewRequest(http.MethodPost, path, nil)
	r.RemoteAddr = host + ":40000"
	w := httptest.NewRecorder()
	if o.Allow(w, r) {
		return http.StatusOK
	}
	return w.Code
}

// The library starts a session's handler (which binds it) only after it has
// answered the opening request, so the client's next request can come
// first; the opening request's claim must already refuse other addresses.
func TestSessionClaimedBeforeItsHandlerBinds(t *testing.T) {
	o := NewSessionOwners("/ws", false, nil)
	const owner, other = "203.0.113.10", "198.51.100.20"
	if code := allowFrom(o, "/ws/000/s1/xhr_streaming", owner); code != http.StatusOK {
		t.Fatalf("opening request: %d", code)
	}
	// No Bind yet: the handler's goroutine has not run.
	if code := allowFrom(o, "/ws/000/s1/xhr_send", other); code != http.StatusForbidden {
		t.Fatalf("another address's xhr_send before Bind: %d, want 403", code)
	}
	if code := allowFrom(o, "/ws/000/s1/xhr", other); code != http.StatusForbidden {
		t.Fatalf("another address's poll before Bind: %d, want 403", code)
	}
	if code := allowFrom(o, "/ws/000/s1/xhr_send", owner); code != http.StatusOK {
		t.Fatalf("the owner's xhr_send: %d", code)
	}

	// By the time the handler binds, the library's current request may be
	// another address's (one let through before this change, say): the
	// claim's address wins.
	late := httptest.NewRequest(http.MethodPost, "/ws/000/s1/xhr", nil)
	late.RemoteAddr = other + ":40001"
	release := o.Bind("s1", late)
	if code := allowFrom(o, "/ws/000/s1/xhr_send", other); code != http.StatusForbidden {
		t.Fatalf("another address's xhr_send after Bind: %d, want 403", code)
	}
	release()
	if code := allowFrom(o, "/ws/000/s1/xhr_send", other); code != http.StatusOK {
		t.Fatalf("after the session ended: %d, want it left to the library (200 here)", code)
	}
}

func TestSessionClaimsLapseWithoutASession(t *testing.T) {
	o := NewSessionOwners("/ws", false, nil)
	now := time.Unix(1_700_000_000, 0)
	o.now = func() time.Time { return now }
	const owner, other = "203.0.113.10", "198.51.100.20"
	allowFrom(o, "/ws/000/refused/xhr", owner) // the library never opens it
	allowFrom(o, "/ws/000/opened/xhr", owner)
	release := o.Bind("opened", httptest.NewRequest(http.MethodGet, "/ws/000/opened/xhr", nil))
	defer release()
	// Sends claim nothing, nor do WebSockets, whose sessions no other
	// request can reach.
	allowFrom(o, "/ws/000/sendonly/xhr_send", owner)
	allowFrom(o, "/ws/000/ws1/websocket", owner)

	now = now.Add(claimLifetime - time.Second)
	if code := allowFrom(o, "/ws/000/refused/xhr_send", other); code != http.StatusForbidden {
		t.Fatalf("a fresh claim: %d, want 403", code)
	}
	now = now.Add(time.Second)
	if code := allowFrom(o, "/ws/000/refused/xhr_send", other); code != http.StatusOK {
		t.Fatalf("a lapsed claim: %d, want it forgotten", code)
	}
	if code := allowFrom(o, "/ws/000/opened/xhr_send", other); code != http.StatusForbidden {
		t.Fatalf("a bound session after the claim's lifetime: %d, want 403", code)
	}
	if len(o.claims) != 0 || len(o.owners) != 1 {
		t.Fatalf("left %d claims and %d owners, want 0 and the bound session", len(o.claims), len(o.owners))
	}
	for _, id := range []string{"sendonly", "ws1"} {
		if _, ok := o.owners[id]; ok {
			t.Fatalf("%s was claimed", id)
		}
	}
}
