package guide

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// openAPISpec documents every route of Handler; served at
// /guide/openapi.yaml (a test checks each route appears in it).
//
//go:embed openapi.yaml
var openAPISpec string

const (
	// bodyMax bounds request bodies: the largest is a CRM note.
	bodyMax = 64 << 10
	// sseHeartbeat keeps proxies from closing an idle event stream.
	sseHeartbeat = 25 * time.Second
)

type api struct{ s *Service }

// Handler serves the guide API: /guide/... and /eval. Mount it on both.
func (s *Service) Handler() http.Handler {
	a := &api{s: s}
	mux := http.NewServeMux()
	// The method is checked in the handler, not the pattern, so every
	// other method gets a JSON 405 and /guide/session/delete does not
	// collide with /guide/session/{gsSeq}.
	route := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
				h(w, r)
				return
			}
			allow := method
			if method == http.MethodGet {
				allow = "GET, HEAD"
			}
			w.Header().Set("Allow", allow)
			a.fail(w, r, refuse(http.StatusMethodNotAllowed, "methodNotAllowed"))
		})
	}
	route(http.MethodPost, "/guide/signup", a.signup)
	route(http.MethodPost, "/guide/login", a.login)
	route(http.MethodGet, "/guide/me", a.me)
	route(http.MethodPost, "/guide/availability", a.availability)
	route(http.MethodGet, "/guide/friends", a.friends)
	route(http.MethodPost, "/guide/friends/add", a.addFriend)
	route(http.MethodPost, "/guide/match", a.match)
	route(http.MethodPost, "/guide/shake", a.shake)
	route(http.MethodGet, "/guide/requests", a.requests)
	route(http.MethodPost, "/guide/create", a.create)
	route(http.MethodPost, "/guide/reject", a.reject)
	route(http.MethodPost, "/guide/cancel", a.cancel)
	route(http.MethodPost, "/guide/begin", a.begin)
	route(http.MethodGet, "/guide/session/{gsSeq}", a.check)
	route(http.MethodPost, "/guide/extend", a.extend)
	route(http.MethodPost, "/guide/complete", a.complete)
	route(http.MethodPost, "/guide/session/delete", a.deleteSession)
	route(http.MethodPost, "/guide/crm", a.crm)
	route(http.MethodGet, "/guide/crm/{ghSeq}", a.crmRecord)
	route(http.MethodPost, "/eval", a.eval)
	route(http.MethodGet, "/guide/mates/top", a.top)
	route(http.MethodGet, "/guide/events", a.events)
	route(http.MethodGet, "/guide/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		io.WriteString(w, openAPISpec)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, refuse(http.StatusNotFound, "notFoundRoute"))
	})
	return mux
}

// ---- envelope ----

// write answers {"code","message",...fields of body}.
func (a *api) write(w http.ResponseWriter, r *http.Request, status int, key string, body any) {
	fields := map[string]json.RawMessage{}
	if body != nil {
		raw, err := json.Marshal(body)
		if err == nil {
			err = json.Unmarshal(raw, &fields)
		}
		if err != nil {
			a.s.log.Error("encode answer", "path", r.URL.Path, "err", err)
			status, key, fields = http.StatusInternalServerError, "serverError", map[string]json.RawMessage{}
		}
	}
	fields["code"], _ = json.Marshal(status)
	fields["message"], _ = json.Marshal(textIn(chat.LangFrom(r.Header.Get("Accept-Language")), key))
	out, _ := json.Marshal(fields)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="cstalk-guide"`)
	}
	w.WriteHeader(status)
	w.Write(append(out, '\n'))
}

func (a *api) ok(w http.ResponseWriter, r *http.Request, body any) {
	a.write(w, r, http.StatusOK, "ok", body)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// fail answers a refusal with its reason, or logs err and answers 500.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if errors.As(err, &e) {
		a.write(w, r, e.Status, e.Key, reasonBody{Reason: e.Key})
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The store did not answer within its deadline; the request may
		// be retried.
		a.s.log.Warn("guide request unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		a.fail(w, r, errUnavailable)
		return
	}
	a.s.log.Error("guide request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	a.write(w, r, http.StatusInternalServerError, "serverError", reasonBody{Reason: "serverError"})
}

// decode reads a JSON body into v; on failure it has answered.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, bodyMax))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		a.write(w, r, http.StatusRequestEntityTooLarge, "tooLarge", reasonBody{Reason: "tooLarge"})
		return false
	}
	if err != nil || json.Unmarshal(bytes.TrimSpace(body), v) != nil {
		a.fail(w, r, errBadRequest)
		return false
	}
	return true
}

// seq is a gs_seq or gh_seq: a JSON number or a numeric string.
type seq int64

func (q *seq) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("guide: bad sequence %s", b)
	}
	*q = seq(n)
	return nil
}

// account authenticates the bearer token (or ?token= for EventSource,
// which cannot set headers); on failure it has answered 401.
func (a *api) account(w http.ResponseWriter, r *http.Request) *Account {
	token := ""
	if scheme, t, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(t)
	} else if r.Method == http.MethodGet {
		token = r.URL.Query().Get("token")
	}
	acc, err := a.s.AccountFromToken(r.Context(), token)
	switch {
	case errors.Is(err, ErrInvalidToken):
		a.fail(w, r, errUnauthorized)
		return nil
	case err != nil:
		a.fail(w, r, err)
		return nil
	}
	return acc
}

// withBody authenticates the caller, decodes the JSON body into a T and
// runs do; on either failure it has answered.
func withBody[T any](a *api, w http.ResponseWriter, r *http.Request, do func(acc *Account, req *T)) {
	acc := a.account(w, r)
	if acc == nil {
		return
	}
	var req T
	if !a.decode(w, r, &req) {
		return
	}
	do(acc, &req)
}

// withPathSeq authenticates the caller and reads the path value name as a
// positive sequence, answering unknown when it is not one, then runs do.
func (a *api) withPathSeq(w http.ResponseWriter, r *http.Request, name string, unknown *Error, do func(acc *Account, n int64)) {
	acc := a.account(w, r)
	if acc == nil {
		return
	}
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || n <= 0 {
		a.fail(w, r, unknown)
		return
	}
	do(acc, n)
}

// ---- views ----

type accountView struct {
	ID           int64   `json:"id"`
	Role         Role    `json:"role"`
	LoginName    string  `json:"loginName"`
	Name         string  `json:"name"`
	Tickets      *int    `json:"tickets,omitempty"`
	Availability string  `json:"availability,omitempty"`
	Rating       float64 `json:"rating"`
	RatingCount  int64   `json:"ratingCount"`
	Rank         int     `json:"rank,omitempty"`
}

func viewAccount(acc *Account) accountView {
	v := accountView{ID: acc.ID, Role: acc.Role, LoginName: acc.LoginName, Name: acc.Name}
	if acc.Role == RoleUser {
		t := acc.Tickets
		v.Tickets = &t
	} else {
		v.Availability, v.Rating, v.RatingCount = string(acc.Availability), acc.Rating(), acc.RatingCount
	}
	return v
}

// mateView is a mate as others see it (no login name).
type mateView struct {
	ID           int64   `json:"id"`
	Name         string  `json:"name"`
	Availability string  `json:"availability"`
	Rating       float64 `json:"rating"`
	RatingCount  int64   `json:"ratingCount"`
	Rank         int     `json:"rank,omitempty"`
}

func viewMate(m *Account, rank int) mateView {
	return mateView{ID: m.ID, Name: m.Name, Availability: string(m.Availability), Rating: m.Rating(), RatingCount: m.RatingCount, Rank: rank}
}

type sessionView struct {
	GsSeq     int64         `json:"gsSeq"`
	UserID    int64         `json:"userId"`
	MateID    int64         `json:"mateId"`
	Kind      MatchKind     `json:"kind"`
	Status    SessionStatus `json:"status"`
	RoomID    string        `json:"roomId"`
	CreatedAt time.Time     `json:"createdAt"`
}

func viewSession(gs *Session) sessionView {
	return sessionView{GsSeq: gs.ID, UserID: gs.UserID, MateID: gs.MateID, Kind: gs.Kind, Status: gs.Status,
		RoomID: RoomID(gs.ID), CreatedAt: gs.CreatedAt.UTC()}
}

type historyView struct {
	GhSeq           int64      `json:"ghSeq"`
	GsSeq           int64      `json:"gsSeq"`
	BeganAt         time.Time  `json:"beganAt"`
	EndsAt          time.Time  `json:"endsAt"`
	TicketsUsed     int        `json:"ticketsUsed"`
	CompletedAt     *time.Time `json:"completedAt,omitempty"`
	EndReason       EndReason  `json:"endReason,omitempty"`
	DurationSeconds int        `json:"durationSeconds"`
}

func viewHistory(h *History) historyView {
	return historyView{GhSeq: h.ID, GsSeq: h.SessionID, BeganAt: h.BeganAt.UTC(), EndsAt: h.EndsAt.UTC(),
		TicketsUsed: h.TicketsUsed, CompletedAt: h.CompletedAt, EndReason: h.EndReason, DurationSeconds: int(h.Duration / time.Second)}
}

// ---- accounts ----

type credentials struct {
	LoginName string `json:"loginName"`
	Password  string `json:"password"`
	Name      string `json:"name"`
}

type tokenAnswer struct {
	Token     string      `json:"token"`
	ExpiresAt time.Time   `json:"expiresAt"`
	Account   accountView `json:"account"`
}

func (a *api) issue(w http.ResponseWriter, r *http.Request, status int, acc *Account) {
	token, expires, err := a.s.IssueToken(acc)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, status, "ok", tokenAnswer{Token: token, ExpiresAt: expires.UTC(), Account: viewAccount(acc)})
}

// signup creates a user account (mates are created by operators).
func (a *api) signup(w http.ResponseWriter, r *http.Request) {
	a.withCredentials(w, r, http.StatusCreated, func(ctx context.Context, req *credentials) (*Account, error) {
		return a.s.CreateAccount(ctx, RoleUser, req.LoginName, req.Password, req.Name, 0)
	})
}

// login reserves a password check of the login before it runs (the
// counseling login's throttle, scope "guide"), so no burst gets more
// checks than the throttle allows.
func (a *api) login(w http.ResponseWriter, r *http.Request) {
	a.withCredentials(w, r, http.StatusOK, func(ctx context.Context, req *credentials) (*Account, error) {
		logins := a.s.cfg.Logins
		wait, err := logins.Reserve(ctx, "guide", req.LoginName, r.RemoteAddr)
		switch {
		case errors.Is(err, chat.ErrLoginThrottled):
			a.s.log.Warn("guide login throttled", "loginName", req.LoginName, "remote", r.RemoteAddr)
			w.Header().Set("Retry-After", chat.RetryAfter(wait))
			return nil, errLoginThrottled
		case err != nil:
			a.s.log.Warn("guide login throttle unavailable", "err", err)
			w.Header().Set("Retry-After", "5")
			return nil, errUnavailable
		}
		acc, err := a.s.Login(ctx, req.LoginName, req.Password)
		if err == nil {
			if err := logins.Succeeded(ctx, "guide", req.LoginName, r.RemoteAddr); err != nil {
				a.s.log.Warn("guide login throttle not reset", "err", err)
			}
		}
		return acc, err
	})
}

// withCredentials decodes credentials, gets an account from them and
// answers status with a fresh token for it.
func (a *api) withCredentials(w http.ResponseWriter, r *http.Request, status int, get func(context.Context, *credentials) (*Account, error)) {
	var req credentials
	if !a.decode(w, r, &req) {
		return
	}
	acc, err := get(r.Context(), &req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.issue(w, r, status, acc)
}

func (a *api) me(w http.ResponseWriter, r *http.Request) {
	if acc := a.account(w, r); acc != nil {
		a.answerAccount(w, r, acc)
	}
}

func (a *api) answerAccount(w http.ResponseWriter, r *http.Request, acc *Account) {
	a.ok(w, r, struct {
		Account accountView `json:"account"`
	}{viewAccount(acc)})
}

type availabilityRequest struct {
	Availability Availability `json:"availability"`
}

func (a *api) availability(w http.ResponseWriter, r *http.Request) {
	withBody(a, w, r, func(acc *Account, req *availabilityRequest) {
		if err := a.s.SetAvailability(r.Context(), acc, req.Availability); err != nil {
			a.fail(w, r, err)
			return
		}
		acc.Availability = req.Availability
		a.answerAccount(w, r, acc)
	})
}

func (a *api) friends(w http.ResponseWriter, r *http.Request) {
	acc := a.account(w, r)
	if acc == nil {
		return
	}
	friends, err := a.s.Friends(r.Context(), acc)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]mateView, len(friends))
	for i := range friends {
		out[i] = viewMate(&friends[i], 0)
	}
	a.ok(w, r, struct {
		Friends []mateView `json:"friends"`
	}{out})
}

type friendRequest struct {
	MateID seq `json:"mateId"`
}

func (a *api) addFriend(w http.ResponseWriter, r *http.Request) {
	withBody(a, w, r, func(acc *Account, req *friendRequest) {
		if err := a.s.AddFriend(r.Context(), acc, int64(req.MateID)); err != nil {
			a.fail(w, r, err)
			return
		}
		a.friends(w, r)
	})
}

// ---- matching ----

type requestAnswer struct {
	Session   sessionView `json:"session"`
	Mate      mateView    `json:"mate"`
	ExpiresAt time.Time   `json:"expiresAt"`
}

func (a *api) match(w http.ResponseWriter, r *http.Request) {
	acc := a.account(w, r)
	if acc == nil {
		return
	}
	var req struct {
		FriendID seq `json:"friendId"`
	}
	if r.ContentLength != 0 && !a.decode(w, r, &req) {
		return
	}
	a.answerRequest(w, r, func() (*Request, error) { return a.s.Match(r.Context(), acc, int64(req.FriendID)) })
}

func (a *api) shake(w http.ResponseWriter, r *http.Request) {
	if acc := a.account(w, r); acc != nil {
		a.answerRequest(w, r, func() (*Request, error) { return a.s.Shake(r.Context(), acc) })
	}
}

func (a *api) answerRequest(w http.ResponseWriter, r *http.Request, do func() (*Request, error)) {
	req, err := do()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, http.StatusCreated, "ok", requestAnswer{Session: viewSession(&req.Session), Mate: viewMate(&req.Mate, 0), ExpiresAt: req.ExpiresAt.UTC()})
}

type gsRequest struct {
	GsSeq seq `json:"gsSeq"`
}

// withSession decodes {"gsSeq"} and runs do for the caller.
func (a *api) withSession(w http.ResponseWriter, r *http.Request, do func(acc *Account, gsSeq int64)) {
	withBody(a, w, r, func(acc *Account, req *gsRequest) {
		if req.GsSeq <= 0 {
			a.fail(w, r, errBadRequest)
			return
		}
		do(acc, int64(req.GsSeq))
	})
}

// setStatus runs change on the caller's session and answers the status
// the session now has.
func (a *api) setStatus(w http.ResponseWriter, r *http.Request, change func(context.Context, *Account, int64) error, status SessionStatus) {
	a.withSession(w, r, func(acc *Account, gsSeq int64) {
		if err := change(r.Context(), acc, gsSeq); err != nil {
			a.fail(w, r, err)
			return
		}
		a.ok(w, r, struct {
			GsSeq  int64         `json:"gsSeq"`
			Status SessionStatus `json:"status"`
		}{gsSeq, status})
	})
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	a.withSession(w, r, func(acc *Account, gsSeq int64) {
		ap, err := a.s.Approve(r.Context(), acc, gsSeq)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.ok(w, r, struct {
			Session sessionView `json:"session"`
			RoomID  string      `json:"roomId"`
			Token   string      `json:"token"`
			User    *Party      `json:"user"`
		}{viewSession(&ap.Session), ap.Session.RoomID, ap.Token, partyOf(&ap.User)})
	})
}

// requests lists the mate's requests still waiting for an answer.
func (a *api) requests(w http.ResponseWriter, r *http.Request) {
	acc := a.account(w, r)
	if acc == nil {
		return
	}
	pending, err := a.s.OpenRequests(r.Context(), acc)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	type requestView struct {
		Session   sessionView `json:"session"`
		User      *Party      `json:"user"`
		ExpiresAt time.Time   `json:"expiresAt"`
	}
	out := make([]requestView, len(pending))
	for i := range pending {
		out[i] = requestView{viewSession(&pending[i].Session), partyOf(&pending[i].User), pending[i].ExpiresAt.UTC()}
	}
	a.ok(w, r, struct {
		Requests []requestView `json:"requests"`
	}{out})
}

func (a *api) reject(w http.ResponseWriter, r *http.Request) {
	a.setStatus(w, r, a.s.Reject, StatusRejected)
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	a.setStatus(w, r, a.s.Cancel, StatusCancelled)
}

// ---- the guide ----

type clockAnswer struct {
	GsSeq            int64       `json:"gsSeq"`
	GhSeq            int64       `json:"ghSeq"`
	History          historyView `json:"history"`
	RemainingSeconds int         `json:"remainingSeconds"`
	TicketsLeft      int         `json:"ticketsLeft"`
}

// runClock begins or extends the caller's guide and answers its clock.
func (a *api) runClock(w http.ResponseWriter, r *http.Request, run func(context.Context, *Account, int64) (*Begun, error)) {
	a.withSession(w, r, func(acc *Account, gsSeq int64) {
		b, err := run(r.Context(), acc, gsSeq)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.answerClock(w, r, b)
	})
}

func (a *api) answerClock(w http.ResponseWriter, r *http.Request, b *Begun) {
	remaining := int(max(b.History.EndsAt.Sub(a.s.cfg.Now()), 0).Round(time.Second) / time.Second)
	a.ok(w, r, clockAnswer{GsSeq: b.History.SessionID, GhSeq: b.History.ID, History: viewHistory(&b.History),
		RemainingSeconds: remaining, TicketsLeft: b.TicketsLeft})
}

func (a *api) begin(w http.ResponseWriter, r *http.Request) {
	a.runClock(w, r, a.s.Begin)
}

func (a *api) extend(w http.ResponseWriter, r *http.Request) {
	a.runClock(w, r, a.s.Extend)
}

func (a *api) check(w http.ResponseWriter, r *http.Request) {
	a.withPathSeq(w, r, "gsSeq", errSessionUnknown, func(acc *Account, gsSeq int64) {
		st, err := a.s.Check(r.Context(), acc, gsSeq)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.answerState(w, r, st)
	})
}

func (a *api) answerState(w http.ResponseWriter, r *http.Request, st *State) {
	var ends *time.Time
	if st.EndsAt != nil {
		e := st.EndsAt.UTC()
		ends = &e
	}
	var ended *historyView
	if st.Ended != nil {
		v := viewHistory(st.Ended)
		ended = &v
	}
	a.ok(w, r, struct {
		GsSeq            int64         `json:"gsSeq"`
		GhSeq            int64         `json:"ghSeq"`
		Valid            bool          `json:"valid"`
		Status           SessionStatus `json:"status"`
		RoomID           string        `json:"roomId"`
		EndsAt           *time.Time    `json:"endsAt,omitempty"`
		RemainingSeconds int           `json:"remainingSeconds"`
		TicketsUsed      int           `json:"ticketsUsed"`
		CheckInterval    int           `json:"checkIntervalSeconds"`
		WarnBefore       int           `json:"warnBeforeSeconds"`
		History          *historyView  `json:"history,omitempty"`
	}{st.Session.ID, st.GhSeq, st.GhSeq > 0, st.Session.Status, RoomID(st.Session.ID), ends,
		int(st.Remaining.Round(time.Second) / time.Second), st.TicketsUsed, int(a.s.cfg.CheckInterval / time.Second),
		int(a.s.cfg.WarnBefore / time.Second), ended})
}

func (a *api) complete(w http.ResponseWriter, r *http.Request) {
	a.withSession(w, r, func(acc *Account, gsSeq int64) {
		c, err := a.s.Complete(r.Context(), acc, gsSeq)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.ok(w, r, struct {
			GsSeq            int64       `json:"gsSeq"`
			GhSeq            int64       `json:"ghSeq"`
			History          historyView `json:"history"`
			AlreadyCompleted bool        `json:"alreadyCompleted"`
		}{gsSeq, c.History.ID, viewHistory(&c.History), c.Already})
	})
}

func (a *api) deleteSession(w http.ResponseWriter, r *http.Request) {
	a.setStatus(w, r, a.s.Delete, StatusDeleted)
}

type crmView struct {
	GhSeq           int64     `json:"ghSeq"`
	GsSeq           int64     `json:"gsSeq"`
	UserID          int64     `json:"userId"`
	MateID          int64     `json:"mateId"`
	BeganAt         time.Time `json:"beganAt"`
	EndedAt         time.Time `json:"endedAt"`
	DurationSeconds int       `json:"durationSeconds"`
	TicketsUsed     int       `json:"ticketsUsed"`
	EndReason       EndReason `json:"endReason"`
	Note            string    `json:"note"`
	NoteBy          int64     `json:"noteBy,omitempty"`
}

func viewCRM(c *CRM) crmView {
	return crmView{GhSeq: c.HistoryID, GsSeq: c.SessionID, UserID: c.UserID, MateID: c.MateID, BeganAt: c.BeganAt.UTC(),
		EndedAt: c.EndedAt.UTC(), DurationSeconds: int(c.Duration / time.Second), TicketsUsed: c.TicketsUsed,
		EndReason: c.EndReason, Note: c.Note, NoteBy: c.NoteBy}
}

type crmNoteRequest struct {
	GhSeq seq    `json:"ghSeq"`
	Note  string `json:"note"`
}

func (a *api) crm(w http.ResponseWriter, r *http.Request) {
	withBody(a, w, r, func(acc *Account, req *crmNoteRequest) {
		c, err := a.s.SetCRMNote(r.Context(), acc, int64(req.GhSeq), req.Note)
		a.answerCRM(w, r, c, err)
	})
}

func (a *api) crmRecord(w http.ResponseWriter, r *http.Request) {
	a.withPathSeq(w, r, "ghSeq", errHistoryUnknown, func(acc *Account, ghSeq int64) {
		c, err := a.s.CRMRecord(r.Context(), acc, ghSeq)
		a.answerCRM(w, r, c, err)
	})
}

// answerCRM answers the CRM record c, or err when getting it failed.
func (a *api) answerCRM(w http.ResponseWriter, r *http.Request, c *CRM, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.ok(w, r, struct {
		CRM crmView `json:"crm"`
	}{viewCRM(c)})
}

type evalRequest struct {
	GhSeq   seq    `json:"ghSeq"`
	Stars   int    `json:"stars"`
	Comment string `json:"comment"`
}

func (a *api) eval(w http.ResponseWriter, r *http.Request) {
	withBody(a, w, r, func(acc *Account, req *evalRequest) {
		rated, err := a.s.Evaluate(r.Context(), acc, int64(req.GhSeq), req.Stars, req.Comment)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		a.ok(w, r, struct {
			GhSeq int64    `json:"ghSeq"`
			Stars int      `json:"stars"`
			Mate  mateView `json:"mate"`
		}{int64(req.GhSeq), req.Stars, viewMate(&rated.Mate, rated.Rank)})
	})
}

func (a *api) top(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	mates, err := a.s.TopMates(r.Context(), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]mateView, len(mates))
	for i := range mates {
		out[i] = viewMate(&mates[i].Account, mates[i].Rank)
	}
	a.ok(w, r, struct {
		Mates []mateView `json:"mates"`
	}{out})
}

// events streams the caller's pushes as Server-Sent Events (event: the
// type, data: the event JSON with a message in the caller's language), for
// apps without the STOMP channel.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	acc := a.account(w, r)
	if acc == nil {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		a.fail(w, r, errors.New("guide: response writer cannot flush"))
		return
	}
	lang := chat.LangFrom(r.Header.Get("Accept-Language"))
	if r.URL.Query().Get("lang") == "en" {
		lang = chat.English
	}
	events, cancel := a.s.hub.Subscribe(acc.ID)
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	io.WriteString(w, "retry: 3000\n: connected\n\n")
	flusher.Flush()
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case ev, open := <-events:
			if !open {
				return // too slow, or shutting down: the app reconnects
			}
			data, err := json.Marshal(struct {
				Event
				Message string `json:"message"`
			}{ev, textIn(lang, ev.Type)})
			if err != nil {
				a.s.log.Error("encode guide event", "err", err)
				continue
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, data)
			flusher.Flush()
		case <-heartbeat.C:
			io.WriteString(w, ": ping\n\n")
			flusher.Flush()
		case <-r.Context().Done():
			return
		case <-a.s.ctx.Done():
			return
		}
	}
}
