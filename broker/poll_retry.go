package broker

import (
	"bytes"
	"net/http"
	"strings"
	"time"
)

// sockjs-go detaches a polling receiver on a goroutine of its own after the
// response is written, so a client's next poll (xhr-polling, jsonp-polling)
// can reach the session first and be refused with c[2010,"Another
// connection still open"], which ends the session in sockjs-client. A poll
// refused that way is therefore answered only after it was tried again for a
// moment: by then the previous receiver is gone. A client that really holds
// two polls open still gets the refusal.
const (
	pollRetryEvery = 2 * time.Millisecond
	pollRetryFor   = 200 * time.Millisecond
)

var anotherConnectionOpen = []byte(`c[2010,`)

// isPoll reports whether path (below cfg.Path) is a one-shot polling receive.
func isPoll(path string) bool {
	return strings.HasSuffix(path, "/xhr") || strings.HasSuffix(path, "/jsonp")
}

// servePoll runs a polling receive through a recorder and retries it while
// sockjs-go refuses it only because the previous poll is still attached.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request) {
	retryRefusedPoll(s.sockjs, w, r)
}

// RetryRefusedPolls wraps a sockjs-go handler so its polling receives
// (xhr-polling, jsonp-polling) are not refused for racing the previous
// poll; every other request passes straight through. Other SockJS endpoints
// of the binary (video signaling) use it too.
func RetryRefusedPolls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || !isPoll(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		retryRefusedPoll(next, w, r)
	})
}

func retryRefusedPoll(next http.Handler, w http.ResponseWriter, r *http.Request) {
	deadline := time.Now().Add(pollRetryFor)
	for {
		rec := &pollRecorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if !bytes.Contains(rec.body.Bytes(), anotherConnectionOpen) || time.Now().After(deadline) {
			rec.copyTo(w)
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(pollRetryEvery):
		}
	}
}

// pollRecorder holds a polling response until the handler has finished;
// a poll carries one frame, so nothing is gained by streaming it.
type pollRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (p *pollRecorder) Header() http.Header         { return p.header }
func (p *pollRecorder) Write(b []byte) (int, error) { return p.body.Write(b) }
func (p *pollRecorder) WriteHeader(status int)      { p.status = status }
func (p *pollRecorder) Flush()                      {}

func (p *pollRecorder) copyTo(w http.ResponseWriter) {
	for k, v := range p.header {
		w.Header()[k] = v
	}
	w.WriteHeader(p.status)
	_, _ = w.Write(p.body.Bytes())
}

var _ http.Flusher = (*pollRecorder)(nil)
