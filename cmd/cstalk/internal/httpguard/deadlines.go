// Package httpguard holds what the node's HTTP server needs beyond
// net/http's own settings: deadlines that fit each route, the client
// address behind trusted proxies, and a cap on one address's open
// connections. It knows the shape of SockJS and WebSocket requests, not
// what they carry.
package httpguard

import (
	"net/http"
	"strings"
	"time"
)

// Deadlines bounds how long a request may take, by the kind of route. The
// server itself sets no ReadTimeout or WriteTimeout: a streaming answer
// (SockJS, SSE) or a WebSocket lives for hours and has heart-beats of its
// own, while a REST call must not hold a connection for more than seconds.
type Deadlines struct {
	// Read bounds reading a plain request's body, Write writing its answer,
	// both from the moment the handler starts.
	Read, Write time.Duration
	// Transfer replaces both for uploads and file downloads, which move
	// megabytes over slow mobile links.
	TransferTime time.Duration
}

// Plain gives h the short deadlines. Wrap the whole mux with it: routes
// that need others wrap their handler again (the inner call wins).
func (d Deadlines) Plain(h http.Handler) http.Handler { return d.with(h, d.Read, d.Write) }

// Transfer gives h the long deadline of uploads and downloads.
func (d Deadlines) Transfer(h http.Handler) http.Handler {
	return d.with(h, d.TransferTime, d.TransferTime)
}

// LongLived clears the deadlines for h: a stream (SSE) or a WebSocket with
// heart-beats of its own. A read deadline left on a streaming answer would
// also cancel its request when it passes (net/http's background read).
func (d Deadlines) LongLived(h http.Handler) http.Handler { return d.with(h, 0, 0) }

// SockJS serves a SockJS endpoint: its receiving transports (xhr and jsonp
// polls, xhr_streaming, eventsource, htmlfile) and WebSockets are long-lived,
// its sending requests (xhr_send, jsonp_send) and /info plain.
func (d Deadlines) SockJS(h http.Handler) http.Handler {
	long := d.LongLived(h)
	plain := d.Plain(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsLongLived(r) {
			long.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
}

// SocketIO serves socket.io (Engine.IO): its WebSockets and polling GETs
// (held open until there is something to send or the heartbeat is due)
// are long-lived, its polling POSTs plain.
func (d Deadlines) SocketIO(h http.Handler) http.Handler {
	long := d.LongLived(h)
	plain := d.Plain(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || (r.Method == http.MethodGet && r.URL.Query().Get("transport") == "polling") {
			long.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	})
}

// IsLongLived reports whether r opens a WebSocket or a SockJS receiving
// transport (/prefix/{server}/{session}/{transport}).
func IsLongLived(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return true
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch path[strings.LastIndexByte(path, '/')+1:] {
	case "xhr", "xhr_streaming", "eventsource", "htmlfile", "jsonp", "websocket":
		return strings.Count(path, "/") >= 4
	}
	return false
}

func (d Deadlines) with(h http.Handler, read, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Errors mean the writer cannot take deadlines (a test recorder);
		// nothing to enforce then.
		_ = rc.SetReadDeadline(deadline(read))
		_ = rc.SetWriteDeadline(deadline(write))
		h.ServeHTTP(w, r)
	})
}

// deadline is d from now, or none for 0.
func deadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}
