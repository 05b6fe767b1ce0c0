package chat

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// openAPISpec documents every endpoint APIHandler serves; it is served as is
// at /api/openapi.yaml so clients and the code cannot drift apart unnoticed
// (a test checks that each route appears in it).
//
//go:embed openapi.yaml
var openAPISpec string

const (
	// roomListDefault and roomListMax bound GET /api/rooms: a console shows a
	// screenful, and no request may make the store walk a whole tenant.
	roomListDefault = 100
	roomListMax     = 500
	// messagePageMax caps ?limit= of GET /api/rooms/{id}/messages.
	messagePageMax = 100
	// loginBodyMax is far more than any login name and password need.
	loginBodyMax = 4 << 10
)

// api is the HTTP side of the service. It holds what only the HTTP handlers
// need, so the Service itself stays the STOMP side's.
type api struct {
	s   *Service
	log *slog.Logger
	// fileKey signs file access grants. It is derived from the JWT secret so
	// a grant can never pass as a bearer token, nor the other way round.
	fileKey []byte
	// contractSource calls the companies' contract endpoints.
	contractSource *contractSource
}

// APIHandler serves the REST API under /api/ and the uploaded images under
// /files/. Mount it on both prefixes.
func (s *Service) APIHandler() http.Handler {
	a := &api{
		s:       s,
		log:     s.log,
		fileKey: deriveFileKey(s.cfg.JWTSecret),
		// One per handler, like the login limiter: the in-flight bound
		// is per node.
		contractSource: newContractSource(s.cfg.ContractsTimeout),
	}
	mux := http.NewServeMux()
	allowed := map[string][]string{} // path -> its methods
	route := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		if method == http.MethodGet {
			method = "GET, HEAD"
		}
		if _, known := allowed[path]; !known {
			// The same path with any other method: a JSON 405 instead
			// of the mux's plain-text one.
			mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Allow", strings.Join(allowed[path], ", "))
				a.fail(w, r, http.StatusMethodNotAllowed, "api_method_not_allowed")
			})
		}
		allowed[path] = append(allowed[path], method)
	}
	route(http.MethodPost, "/api/auth/login", a.login)
	route(http.MethodGet, "/api/me", a.me)
	route(http.MethodGet, "/api/rooms", a.rooms)
	route(http.MethodGet, "/api/rooms/{id}", a.room)
	route(http.MethodGet, "/api/rooms/{id}/messages", a.messages)
	route(http.MethodPost, "/api/uploads", a.upload)
	route(http.MethodPost, "/api/files/access", a.fileAccess)
	route(http.MethodGet, "/files/{company}/{room}/{name}", a.serveFile)
	route(http.MethodGet, "/api/openapi.yaml", a.openAPI)
	a.consoleRoutes(route)
	a.counselingRoutes(route)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusNotFound, "api_not_found")
	})
	return withCORS(mux)
}

// corsAllowHeaders are the request headers of the API: the bearer token,
// the customer's CONNECT-style headers and the upload's roomId.
const corsAllowHeaders = "Authorization, Content-Type, Accept-Language, companyId, gasappMemberNumber, name, " +
	"secretKey, timestamp, signature, roomId, Range"

// withCORS lets pages of other sites (a company's app pages) call the API.
// Any origin may: credentials travel in headers a foreign page does not
// have, and cookies are never allowed cross-site ("*" excludes them).
func withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "Retry-After, Content-Length, Content-Range")
		next.ServeHTTP(w, r)
	})
}

// apiError is the body of every error answer.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// apiMember is a member as the API shows it: companyId is a string and
// isAdmin a 0/1 number, like everywhere on the wire.
type apiMember struct {
	ID        int64  `json:"id"`
	CompanyID string `json:"companyId"`
	LoginName string `json:"loginName"`
	Name      string `json:"name"`
	IsAdmin   int    `json:"isAdmin"`
}

// apiProfile is the member of the bearer token as login, /api/me and the
// console's /auth/profile show it: the member and its speakerId, its id in
// calls and message objects.
type apiProfile struct {
	apiMember
	SpeakerID int64 `json:"speakerId"`
}

func (a *api) profileJSON(ctx context.Context, m *Member) (apiProfile, error) {
	sp, err := a.s.memberSpeakerID(ctx, m)
	if err != nil {
		return apiProfile{}, err
	}
	return apiProfile{apiMember: memberJSON(m), SpeakerID: sp}, nil
}

func memberJSON(m *Member) apiMember {
	admin := 0
	if m.IsAdmin {
		admin = 1
	}
	return apiMember{
		ID:        m.ID,
		CompanyID: strconv.FormatInt(m.CompanyID, 10),
		LoginName: m.LoginName,
		Name:      m.Name,
		IsAdmin:   admin,
	}
}

func (a *api) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		a.log.Error("encode response", "err", err)
		status, body = http.StatusInternalServerError, []byte(`{"code":500,"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// fail answers status with the text of key in the client's language.
func (a *api) fail(w http.ResponseWriter, r *http.Request, status int, key string, args ...any) {
	msg := LangFrom(r.Header.Get("Accept-Language")).T(key)
	if len(args) > 0 {
		msg = fmt.Sprintf(msg, args...)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cstalk"`)
	}
	a.writeJSON(w, status, apiError{Code: status, Message: msg})
}

// internal logs err with what was being done and answers a bare 500: the
// client learns nothing of the cause. A deadline that passed is a 503.
func (a *api) internal(w http.ResponseWriter, r *http.Request, doing string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The store (or another service) did not answer within its
		// deadline: nothing is wrong with the request, it may be retried.
		a.unavailable(w, r, doing, err)
		return
	}
	a.log.Error(doing, "method", r.Method, "path", r.URL.Path, "err", err)
	a.fail(w, r, http.StatusInternalServerError, "api_server_error")
}

// unavailable logs err and answers 503: something the request needs (the
// store, Redis) did not answer in time; the client may retry.
func (a *api) unavailable(w http.ResponseWriter, r *http.Request, doing string, err error) {
	a.log.Warn(doing+" unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Retry-After", "5")
	a.fail(w, r, http.StatusServiceUnavailable, "api_unavailable")
}

// tooMany answers 429 with the text of key and the seconds until wait ends
// as Retry-After.
func (a *api) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, key string) {
	w.Header().Set("Retry-After", RetryAfter(wait))
	a.fail(w, r, http.StatusTooManyRequests, key)
}

// bearer returns the token of an "Authorization: Bearer ..." header, or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// member authenticates the request's bearer token. On failure it has
// already answered 401 and returns nil.
func (a *api) member(w http.ResponseWriter, r *http.Request) *Member {
	token := bearer(r)
	if token == "" {
		a.fail(w, r, http.StatusUnauthorized, "api_unauthorized")
		return nil
	}
	m, err := a.s.MemberFromToken(r.Context(), token)
	switch {
	case errors.Is(err, ErrInvalidToken):
		a.log.Debug("bearer token refused", "path", r.URL.Path, "err", err)
		a.fail(w, r, http.StatusUnauthorized, "api_unauthorized")
		return nil
	case err != nil:
		a.internal(w, r, "member of token", err)
		return nil
	}
	return m
}

// roomOfMember authenticates the bearer token and loads the room of the
// path's {id} for its member (see memberRoom); the room is nil when it has
// answered already.
func (a *api) roomOfMember(w http.ResponseWriter, r *http.Request) (*Member, *Room) {
	m := a.member(w, r)
	if m == nil {
		return nil, nil
	}
	return m, a.memberRoom(w, r, m)
}

// memberRoom loads the room of the path's {id} for m. A room of another
// company is answered exactly like a missing one, so ids reveal nothing.
func (a *api) memberRoom(w http.ResponseWriter, r *http.Request, m *Member) *Room {
	id, ok := positiveID(r.PathValue("id"))
	if !ok {
		a.fail(w, r, http.StatusNotFound, "api_room_not_found")
		return nil
	}
	room, err := a.s.store.Room(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "api_room_not_found")
		return nil
	case err != nil:
		a.internal(w, r, "load room", err)
		return nil
	case room.CompanyID != m.CompanyID:
		a.fail(w, r, http.StatusNotFound, "api_room_not_found")
		return nil
	}
	return room
}

type loginRequest struct {
	LoginName string `json:"loginName"`
	Password  string `json:"password"`
}

// loginResponse answers POST /api/auth/login and the console's POST
// /auth/login alike: the deployed console reads profile, cstalk's clients
// member; each ignores the other.
type loginResponse struct {
	Token     string     `json:"token"`
	ExpiresAt time.Time  `json:"expiresAt"`
	Member    apiProfile `json:"member"`
	Profile   apiProfile `json:"profile"`
}

func (a *api) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, loginBodyMax))
	if err := dec.Decode(&req); err != nil || req.LoginName == "" || req.Password == "" {
		a.fail(w, r, http.StatusBadRequest, "api_login_body")
		return
	}
	// The check is reserved before the password is: however many arrive
	// at once, no more are checked than the throttle allows.
	logins := a.s.cfg.Logins
	wait, err := logins.Reserve(r.Context(), "chat", req.LoginName, r.RemoteAddr)
	switch {
	case errors.Is(err, ErrLoginThrottled):
		a.log.Warn("login throttled", "loginName", req.LoginName, "remote", r.RemoteAddr)
		a.tooMany(w, r, wait, "api_login_throttled")
		return
	case err != nil:
		a.unavailable(w, r, "login throttle", err)
		return
	}
	m, err := a.s.Login(r.Context(), req.LoginName, req.Password)
	switch {
	case errors.Is(err, ErrBadCredentials):
		a.log.Info("login refused", "loginName", req.LoginName, "remote", r.RemoteAddr)
		a.fail(w, r, http.StatusUnauthorized, "api_bad_credentials")
		return
	case err != nil:
		a.internal(w, r, "login", err)
		return
	}
	if err := logins.Succeeded(r.Context(), "chat", req.LoginName, r.RemoteAddr); err != nil {
		a.log.Warn("login throttle not reset", "loginName", req.LoginName, "err", err)
	}
	token, expires, err := a.s.IssueToken(m)
	if err != nil {
		a.internal(w, r, "issue token", err)
		return
	}
	profile, err := a.profileJSON(r.Context(), m)
	if err != nil {
		a.internal(w, r, "login profile", err)
		return
	}
	// Browsers load <img src="/files/..."> without an Authorization header;
	// this cookie lets a console on the same site show a room's images.
	if grant, err := a.fileGrant(memberSubject(m), m.CompanyID, expires); err == nil {
		a.setFileCookie(w, r, grant, expires)
	} else {
		a.log.Error("sign file grant", "err", err)
	}
	a.log.Info("login", "memberId", m.ID, "companyId", m.CompanyID)
	a.writeJSON(w, http.StatusOK, loginResponse{Token: token, ExpiresAt: expires.UTC(), Member: profile, Profile: profile})
}

func (a *api) me(w http.ResponseWriter, r *http.Request) {
	if m := a.member(w, r); m != nil {
		a.writeMe(w, r, m)
	}
}

func (a *api) rooms(w http.ResponseWriter, r *http.Request) {
	m := a.member(w, r)
	if m == nil {
		return
	}
	status := RoomStatus(r.URL.Query().Get("status"))
	switch status {
	case "", StatusWaiting, StatusInProgress, StatusEnded:
	default:
		a.fail(w, r, http.StatusBadRequest, "api_bad_status")
		return
	}
	if rooms, ok := a.roomList(w, r, m, status); ok {
		a.writeJSON(w, http.StatusOK, map[string]any{"rooms": rooms})
	}
}

// roomList renders the rooms of m's company with status ("" for all), as
// many as ?limit= asks within its bounds. On failure it has answered.
func (a *api) roomList(w http.ResponseWriter, r *http.Request, m *Member, status RoomStatus) ([]*RoomDetail, bool) {
	limit, ok := limitParam(r.URL.Query().Get("limit"), roomListDefault, roomListMax)
	if !ok {
		a.fail(w, r, http.StatusBadRequest, "api_bad_limit")
		return nil, false
	}
	rooms, err := a.s.store.Rooms(r.Context(), m.CompanyID, status, limit)
	if err != nil {
		a.internal(w, r, "list rooms", err)
		return nil, false
	}
	return a.roomPayloads(w, r, rooms)
}

// roomPayloads renders rooms as room objects. On failure it has answered.
func (a *api) roomPayloads(w http.ResponseWriter, r *http.Request, rooms []Room) ([]*RoomDetail, bool) {
	out := make([]*RoomDetail, 0, len(rooms))
	for i := range rooms {
		p, err := a.s.RoomPayload(r.Context(), &rooms[i])
		if err != nil {
			a.internal(w, r, "room payload", err)
			return nil, false
		}
		out = append(out, p)
	}
	return out, true
}

func (a *api) room(w http.ResponseWriter, r *http.Request) {
	_, room := a.roomOfMember(w, r)
	if room == nil {
		return
	}
	p, err := a.s.RoomPayload(r.Context(), room)
	if err != nil {
		a.internal(w, r, "room payload", err)
		return
	}
	a.writeJSON(w, http.StatusOK, p)
}

func (a *api) messages(w http.ResponseWriter, r *http.Request) {
	_, room := a.roomOfMember(w, r)
	if room == nil {
		return
	}
	q := r.URL.Query()
	var before int64
	if v := q.Get("before"); v != "" {
		id, ok := positiveID(v)
		if !ok {
			a.fail(w, r, http.StatusBadRequest, "api_bad_before")
			return
		}
		before = id
	}
	pageSize := a.s.cfg.PageSize
	if pageSize <= 0 || pageSize > messagePageMax {
		pageSize = messagePageMax
	}
	limit, ok := limitParam(q.Get("limit"), pageSize, messagePageMax)
	if !ok {
		a.fail(w, r, http.StatusBadRequest, "api_bad_limit")
		return
	}
	// One more than asked tells whether an older page exists.
	msgs, err := a.s.store.Messages(r.Context(), room.ID, before, limit+1, true)
	if err != nil {
		a.internal(w, r, "list messages", err)
		return
	}
	hasMore := len(msgs) > limit
	if hasMore {
		msgs = msgs[len(msgs)-limit:]
	}
	payloads, err := a.s.MessagePayloads(r.Context(), room, msgs)
	if err != nil {
		a.internal(w, r, "message payloads", err)
		return
	}
	a.writeJSON(w, http.StatusOK, map[string]any{"messages": payloads, "hasMore": hasMore})
}

// limitParam parses an optional ?limit=: empty gives def, more than max is
// cut to max, anything else but a positive number is refused.
func limitParam(v string, def, max int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, false
	}
	return min(n, max), true
}

func (a *api) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, openAPISpec)
}
