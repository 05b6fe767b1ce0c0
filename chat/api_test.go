package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cstalk/cstalk/chat"
	"github.com/cstalk/cstalk/chat/openapitest"
	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/store/storetest"
)

// The REST API runs against a real store on every backend: SQLite in a
// temporary directory and, like the store's own suite, a fresh MariaDB
// database (storetest.MariaDB).

type apiBackend struct {
	name string
	dsn  func(t *testing.T) string
}

func apiBackends() []apiBackend {
	return []apiBackend{
		{name: "sqlite", dsn: func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "cstalk.db") }},
		{name: "mariadb", dsn: func(t *testing.T) string { dsn, _ := storetest.MariaDB(t, "api"); return dsn }},
	}
}

// apiEnv is a service with the demo data on a real store, served over HTTP.
type apiEnv struct {
	t         *testing.T
	ctx       context.Context
	store     *store.Store
	svc       *chat.Service
	srv       *httptest.Server
	clock     *chatClock
	uploadDir string
	secret    []byte
}

const apiMaxUpload = 256 << 10

// newAPIEnv starts the API on the store at dsn; configure changes the
// chat settings first.
func newAPIEnv(t *testing.T, dsn string, configure ...func(*chat.Config)) *apiEnv {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, dsn, log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	env := &apiEnv{
		t:         t,
		ctx:       ctx,
		store:     st,
		clock:     &chatClock{t: time.Now().Truncate(time.Second)},
		uploadDir: filepath.Join(t.TempDir(), "uploads"),
		secret:    []byte("api-test-secret-0123456789abcdef"),
	}
	cfg := chat.DefaultConfig()
	cfg.JWTSecret = env.secret
	cfg.UploadDir = env.uploadDir
	cfg.MaxUploadBytes = apiMaxUpload
	// The upload tests send far more than anyone would; the quota tests
	// set their own.
	cfg.Uploads = chat.UploadQuota{Limiter: chat.NewMemoryLimiter(nil), Window: time.Minute}
	cfg.Now = env.clock.Now
	for _, c := range configure {
		c(&cfg)
	}
	if env.svc, err = chat.New(cfg, st, log); err != nil {
		t.Fatalf("chat.New: %v", err)
	}
	if err := env.svc.SeedDemo(ctx); err != nil {
		t.Fatalf("SeedDemo: %v", err)
	}
	// Every answer of the API tests is also checked against openapi.yaml.
	env.srv = httptest.NewServer(conformant(t, env.svc.APIHandler()))
	t.Cleanup(env.srv.Close)
	return env
}

// conformant wraps a handler of the REST API so that every answer is
// checked against openapi.yaml. Passed through: the document itself, HEAD
// (GET without the body) and CORS preflights, and unclean paths the tests
// send to prove they are redirected or refused, not API operations.
func conformant(t *testing.T, next http.Handler) http.Handler {
	spec, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return openapitest.Conformant(t, spec, next, func(r *http.Request) bool {
		return r.URL.Path == "/api/openapi.yaml" || r.Method == http.MethodHead || r.Method == http.MethodOptions ||
			path.Clean(r.URL.Path) != r.URL.Path
	})
}

// request sends a request to the test server; header values "" are left out.
func (e *apiEnv) request(method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatalf("new request %s %s: %v", method, path, err)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read %s %s: %v", method, path, err)
	}
	return resp, data
}

func apiBearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// getJSON GETs path as the holder of token, wants status and decodes into v.
func (e *apiEnv) getJSON(path, token string, status int, v any) {
	e.t.Helper()
	resp, body := e.request(http.MethodGet, path, nil, apiBearer(token))
	if resp.StatusCode != status {
		e.t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, status, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("GET %s: decode %s: %v", path, body, err)
		}
	}
}

type apiLoginAnswer struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	Member    struct {
		ID        int64  `json:"id"`
		CompanyID string `json:"companyId"`
		LoginName string `json:"loginName"`
		Name      string `json:"name"`
		IsAdmin   int    `json:"isAdmin"`
	} `json:"member"`
}

func (e *apiEnv) loginAs(login string) (apiLoginAnswer, *http.Response) {
	e.t.Helper()
	resp, body := e.request(http.MethodPost, "/api/auth/login",
		strings.NewReader(fmt.Sprintf(`{"loginName":%q,"password":"demo1234"}`, login)),
		map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("login %s: status %d: %s", login, resp.StatusCode, body)
	}
	var out apiLoginAnswer
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatalf("login %s: %v: %s", login, err, body)
	}
	return out, resp
}

// token mints a bearer token for a demo member. It skips the login (and
// its bcrypt work, which the race detector makes slow); testAPILogin covers
// that tokens from logins are the same thing.
func (e *apiEnv) token(login string) string {
	e.t.Helper()
	token, _, err := e.svc.IssueToken(e.member(login))
	if err != nil {
		e.t.Fatalf("token for %s: %v", login, err)
	}
	return token
}

func (e *apiEnv) member(login string) *chat.Member {
	e.t.Helper()
	m, err := e.store.MemberByLogin(e.ctx, login)
	if err != nil {
		e.t.Fatalf("member %s: %v", login, err)
	}
	return m
}

// customerRoom opens (creating) the room of customer (companyID, number).
func (e *apiEnv) customerRoom(companyID int64, number, name string) (*chat.Customer, *chat.Room) {
	e.t.Helper()
	c, err := e.store.EnsureCustomer(e.ctx, companyID, number, name)
	if err != nil {
		e.t.Fatalf("customer: %v", err)
	}
	r, _, err := e.store.OpenRoom(e.ctx, c, time.Now())
	if err != nil {
		e.t.Fatalf("open room: %v", err)
	}
	return c, r
}

func (e *apiEnv) customerSays(r *chat.Room, c *chat.Customer, text string) *chat.Message {
	e.t.Helper()
	sp, err := e.store.CustomerSpeaker(e.ctx, c)
	if err != nil {
		e.t.Fatalf("customer speaker: %v", err)
	}
	return e.appendMessage(&chat.Message{RoomID: r.ID, CompanyID: r.CompanyID, SpeakerID: sp.ID,
		SpeakerName: c.Name, Body: text, IsCustomer: true})
}

func (e *apiEnv) memberSays(r *chat.Room, m *chat.Member, text string, internal bool) *chat.Message {
	e.t.Helper()
	sp, err := e.store.MemberSpeaker(e.ctx, m)
	if err != nil {
		e.t.Fatalf("member speaker: %v", err)
	}
	adminType := 0
	if internal {
		adminType = 1
	}
	return e.appendMessage(&chat.Message{RoomID: r.ID, CompanyID: r.CompanyID, SpeakerID: sp.ID,
		SpeakerName: m.Name, Body: text, IsEmployee: true, AdminType: adminType})
}

func (e *apiEnv) appendMessage(m *chat.Message) *chat.Message {
	e.t.Helper()
	stored, _, err := e.store.AppendMessage(e.ctx, m)
	if err != nil {
		e.t.Fatalf("append message: %v", err)
	}
	return stored
}

type apiErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// wantAPIError checks an error answer: status, JSON shape, code == status, and
// (when not empty) the exact message.
func wantAPIError(t *testing.T, resp *http.Response, body []byte, status int, message string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q, want JSON", ct)
	}
	var e apiErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.Code != status || e.Message == "" {
		t.Fatalf("error body %s: want code %d and a message", body, status)
	}
	if message != "" && e.Message != message {
		t.Fatalf("error message %q, want %q", e.Message, message)
	}
}

type apiRoom struct {
	ID          int64  `json:"id"`
	CompanyID   string `json:"companyId"`
	Status      string `json:"status"`
	RoomName    string `json:"roomName"`
	LastMessage *struct {
		ID      int64  `json:"id"`
		Message string `json:"message"`
	} `json:"lastMessage"`
	NoReadCount         int `json:"noReadCount"`
	CustomerNoReadCount int `json:"customerNoReadCount"`
	MemberNoReadCount   int `json:"memberNoReadCount"`
	Member              *struct {
		LoginName string `json:"loginName"`
	} `json:"member"`
}

type apiMessage struct {
	ID               int64  `json:"id"`
	RoomID           int64  `json:"roomId"`
	Message          string `json:"message"`
	MessageAdminType int    `json:"messageAdminType"`
	IsCustomer       int    `json:"isCustomer"`
}

func TestAPI(t *testing.T) {
	for i, b := range apiBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := newAPIEnv(t, b.dsn(t))
			// Order matters only for rooms: it checks exact room lists, so it
			// runs before anything else creates rooms.
			t.Run("rooms", func(t *testing.T) { testAPIRooms(t, env) })
			t.Run("me", func(t *testing.T) { testAPIMe(t, env) })
			t.Run("messages", func(t *testing.T) { testAPIMessages(t, env) })
			t.Run("uploads", func(t *testing.T) { testAPIUploads(t, env) })
			t.Run("files", func(t *testing.T) { testAPIFiles(t, env) })
			t.Run("demo", func(t *testing.T) { testAPIDemoIdempotent(t, env) })
			// Password checks are the same code on every backend and each
			// costs a bcrypt (seconds under the race detector): once is enough.
			if i == 0 {
				t.Run("login", func(t *testing.T) { testAPILogin(t, env) })
				t.Run("addMember", func(t *testing.T) { testAPIAddMember(t, env) })
			}
		})
	}
}

func testAPILogin(t *testing.T, env *apiEnv) {
	a, resp := env.loginAs("agent1")
	if a.Token == "" || a.Member.LoginName != "agent1" || a.Member.CompanyID != "1" || a.Member.IsAdmin != 0 || a.Member.ID == 0 {
		t.Fatalf("login answer %+v", a)
	}
	if want := env.clock.Now().Add(chat.DefaultConfig().TokenTTL); !a.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt %v, want %v", a.ExpiresAt, want)
	}
	var fileCookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "cstalk_files" {
			fileCookie = c
		}
	}
	if fileCookie == nil || !fileCookie.HttpOnly || fileCookie.Path != "/files/" || fileCookie.Value == "" {
		t.Errorf("login sets file cookie %+v, want HttpOnly with Path /files/", fileCookie)
	}
	// The token works where tokens are checked.
	if m, err := env.svc.MemberFromToken(env.ctx, a.Token); err != nil || m.LoginName != "agent1" {
		t.Fatalf("MemberFromToken(login token) = %v, %v", m, err)
	}

	admin, _ := env.loginAs("admin1")
	if admin.Member.IsAdmin != 1 || admin.Member.CompanyID != "1" {
		t.Errorf("admin1: %+v", admin.Member)
	}
	// Login names are not case sensitive.
	if upper, _ := env.loginAs(" AGENT1 "); upper.Member.ID != a.Member.ID {
		t.Errorf("AGENT1 logged in as %+v", upper.Member)
	}

	login := func(body string, header map[string]string) (*http.Response, []byte) {
		h := map[string]string{"Content-Type": "application/json"}
		for k, v := range header {
			h[k] = v
		}
		return env.request(http.MethodPost, "/api/auth/login", strings.NewReader(body), h)
	}
	const koBad, enBad = "아이디 또는 비밀번호가 올바르지 않습니다.", "The login name or password is incorrect."
	resp, body := login(`{"loginName":"agent1","password":"wrong-password"}`, nil)
	wantAPIError(t, resp, body, http.StatusUnauthorized, koBad)
	if len(resp.Cookies()) != 0 {
		t.Errorf("failed login set cookies %v", resp.Cookies())
	}
	// An unknown login name answers exactly like a wrong password.
	resp, body2 := login(`{"loginName":"nobody","password":"demo1234"}`, nil)
	wantAPIError(t, resp, body2, http.StatusUnauthorized, koBad)
	if string(body) != string(body2) {
		t.Errorf("unknown login %s differs from wrong password %s", body2, body)
	}
	resp, body = login(`{"loginName":"agent1","password":"wrong-password"}`, map[string]string{"Accept-Language": "en-US,en;q=0.9"})
	wantAPIError(t, resp, body, http.StatusUnauthorized, enBad)

	for _, bad := range []string{``, `{`, `[]`, `{"loginName":"agent1"}`, `{"password":"demo1234"}`, `{"loginName":1,"password":2}`} {
		resp, body := login(bad, nil)
		wantAPIError(t, resp, body, http.StatusBadRequest, "")
	}
	resp, body = login(`{"loginName":"agent1","password":"`+strings.Repeat("x", 8<<10)+`"}`, nil)
	wantAPIError(t, resp, body, http.StatusBadRequest, "")

	resp, body = env.request(http.MethodGet, "/api/auth/login", nil, nil)
	wantAPIError(t, resp, body, http.StatusMethodNotAllowed, "허용되지 않는 요청 방식입니다.")
	if allow := resp.Header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow %q, want POST", allow)
	}
}

func testAPIMe(t *testing.T, env *apiEnv) {
	token := env.token("admin1")
	var me struct {
		ID        int64  `json:"id"`
		CompanyID string `json:"companyId"`
		LoginName string `json:"loginName"`
		Name      string `json:"name"`
		IsAdmin   int    `json:"isAdmin"`
	}
	env.getJSON("/api/me", token, http.StatusOK, &me)
	if me.LoginName != "admin1" || me.CompanyID != "1" || me.IsAdmin != 1 || me.Name != "관리자" || me.ID != env.member("admin1").ID {
		t.Fatalf("me = %+v", me)
	}

	// A token signed with another key, an expired one, garbage, and a file
	// access grant (which must never pass as a bearer token) are all 401.
	otherCfg := chat.DefaultConfig()
	otherCfg.JWTSecret = []byte("some-other-secret-0123456789abcd")
	other, err := chat.New(otherCfg, env.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.IssueToken(env.member("admin1"))
	if err != nil {
		t.Fatal(err)
	}
	_, grant := env.fileAccess(apiBearer(token))
	for name, header := range map[string]map[string]string{
		"none":    nil,
		"forged":  apiBearer(forged),
		"garbage": apiBearer("not-a-token"),
		"grant":   apiBearer(grant),
		"basic":   {"Authorization": "Basic YWdlbnQxOmRlbW8xMjM0"},
	} {
		resp, body := env.request(http.MethodGet, "/api/me", nil, header)
		t.Run(name, func(t *testing.T) { wantAPIError(t, resp, body, http.StatusUnauthorized, "인증이 필요합니다.") })
	}
	resp, body := env.request(http.MethodGet, "/api/me", nil, map[string]string{"Accept-Language": "en"})
	wantAPIError(t, resp, body, http.StatusUnauthorized, "Authentication required.")
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate %q", got)
	}

	env.clock.Advance(chat.DefaultConfig().TokenTTL + time.Minute)
	defer env.clock.Advance(-(chat.DefaultConfig().TokenTTL + time.Minute))
	resp, body = env.request(http.MethodGet, "/api/me", nil, apiBearer(token))
	wantAPIError(t, resp, body, http.StatusUnauthorized, "")
}

func apiRoomIDs(rooms []apiRoom) []int64 {
	ids := make([]int64, len(rooms))
	for i, r := range rooms {
		ids[i] = r.ID
	}
	return ids
}

func testAPIRooms(t *testing.T, env *apiEnv) {
	agent1 := env.member("agent1")
	// Company 1: an ended room, an assigned one, a waiting one; company 2: one.
	endedCustomer, ended := env.customerRoom(1, "1001", "김종료")
	env.customerSays(ended, endedCustomer, "감사합니다")
	if _, _, err := env.store.AssignRoom(env.ctx, ended.ID, agent1.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.store.EndRoom(env.ctx, ended.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	activeCustomer, active := env.customerRoom(1, "1002", "이진행")
	env.customerSays(active, activeCustomer, "요금이 이상해요")
	if _, _, err := env.store.AssignRoom(env.ctx, active.ID, agent1.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	env.memberSays(active, agent1, "확인해 드리겠습니다", false)
	env.memberSays(active, agent1, "고객 검침 이력 확인 필요", true)
	waitingCustomer, waiting := env.customerRoom(1, "1003", "박대기")
	env.customerSays(waiting, waitingCustomer, "안녕하세요")
	env.customerSays(waiting, waitingCustomer, "이사 전입 신청하려고요")
	otherCustomer, other := env.customerRoom(2, "1003", "최인천")
	env.customerSays(other, otherCustomer, "인천입니다")
	// The newest activity of company 1 is one more message in the active room.
	last := env.customerSays(active, activeCustomer, "네 기다릴게요")

	token := env.token("agent1")
	var all struct{ Rooms []apiRoom }
	env.getJSON("/api/rooms", token, http.StatusOK, &all)
	if ids := apiRoomIDs(all.Rooms); len(ids) != 3 || ids[0] != active.ID || !slices.Contains(ids, waiting.ID) || !slices.Contains(ids, ended.ID) {
		t.Fatalf("rooms of company 1 = %v, want %d (newest activity) first, then %d and %d", ids, active.ID, waiting.ID, ended.ID)
	}
	for _, r := range all.Rooms {
		if r.CompanyID != "1" {
			t.Errorf("room %d of company %s listed for company 1", r.ID, r.CompanyID)
		}
	}
	first := all.Rooms[0]
	if first.Status != "IN_PROGRESS" || first.LastMessage == nil || first.LastMessage.ID != last.ID || first.Member == nil || first.Member.LoginName != "agent1" {
		t.Errorf("active room %+v: want IN_PROGRESS, agent1, last message %d", first, last.ID)
	}

	for status, want := range map[string]int64{"WAITING": waiting.ID, "IN_PROGRESS": active.ID, "ENDED": ended.ID} {
		var got struct{ Rooms []apiRoom }
		env.getJSON("/api/rooms?status="+status, token, http.StatusOK, &got)
		if ids := apiRoomIDs(got.Rooms); len(ids) != 1 || ids[0] != want {
			t.Errorf("status=%s: rooms %v, want [%d]", status, ids, want)
			continue
		}
		if got.Rooms[0].Status != status {
			t.Errorf("status=%s: room has status %s", status, got.Rooms[0].Status)
		}
	}
	var waitingList struct{ Rooms []apiRoom }
	env.getJSON("/api/rooms?status=WAITING", token, http.StatusOK, &waitingList)
	if w := waitingList.Rooms[0]; w.MemberNoReadCount != 2 || w.NoReadCount != 2 || w.LastMessage == nil || w.LastMessage.Message != "이사 전입 신청하려고요" {
		t.Errorf("waiting room %+v: want 2 unread and the last message", w)
	}
	var limited struct{ Rooms []apiRoom }
	env.getJSON("/api/rooms?limit=1", token, http.StatusOK, &limited)
	if ids := apiRoomIDs(limited.Rooms); len(ids) != 1 || ids[0] != active.ID {
		t.Errorf("limit=1: %v", ids)
	}

	for _, bad := range []string{"status=waiting", "status=OPEN", "status=WAITING%00", "limit=0", "limit=x", "limit=-1"} {
		resp, body := env.request(http.MethodGet, "/api/rooms?"+bad, nil, apiBearer(token))
		wantAPIError(t, resp, body, http.StatusBadRequest, "")
	}
	resp, body := env.request(http.MethodGet, "/api/rooms?status=OPEN", nil, map[string]string{
		"Authorization": "Bearer " + token, "Accept-Language": "en"})
	wantAPIError(t, resp, body, http.StatusBadRequest, "status must be WAITING, IN_PROGRESS or ENDED.")

	// Company 2 sees its own room and nothing of company 1.
	token3 := env.token("agent3")
	var rooms2 struct{ Rooms []apiRoom }
	env.getJSON("/api/rooms", token3, http.StatusOK, &rooms2)
	if ids := apiRoomIDs(rooms2.Rooms); len(ids) != 1 || ids[0] != other.ID {
		t.Fatalf("rooms of company 2 = %v, want [%d]", ids, other.ID)
	}

	// One room: visible to its company, 404 to the other, exactly like a
	// room that does not exist.
	var one apiRoom
	env.getJSON("/api/rooms/"+strconv.FormatInt(active.ID, 10), token, http.StatusOK, &one)
	if one.ID != active.ID || one.CompanyID != "1" || one.Status != "IN_PROGRESS" || one.LastMessage == nil {
		t.Errorf("room %d = %+v", active.ID, one)
	}
	_, missingBody := env.request(http.MethodGet, "/api/rooms/999999999", nil, apiBearer(token3))
	for _, path := range []string{
		"/api/rooms/" + strconv.FormatInt(active.ID, 10),
		"/api/rooms/" + strconv.FormatInt(active.ID, 10) + "/messages",
		"/api/rooms/999999999",
	} {
		resp, body := env.request(http.MethodGet, path, nil, apiBearer(token3))
		wantAPIError(t, resp, body, http.StatusNotFound, "상담방을 찾을 수 없습니다.")
		if string(body) != string(missingBody) {
			t.Errorf("%s for another company: %s, a missing room: %s", path, body, missingBody)
		}
	}
	for _, path := range []string{"/api/rooms/abc", "/api/rooms/-1", "/api/rooms/0", "/api/rooms/+5", "/api/rooms/99999999999999999999"} {
		resp, body := env.request(http.MethodGet, path, nil, apiBearer(token))
		wantAPIError(t, resp, body, http.StatusNotFound, "")
	}
	// Without a token: 401 before anything else.
	for _, path := range []string{"/api/rooms", "/api/rooms/" + strconv.FormatInt(active.ID, 10), "/api/rooms/1/messages"} {
		resp, body := env.request(http.MethodGet, path, nil, nil)
		wantAPIError(t, resp, body, http.StatusUnauthorized, "")
	}
	resp, body = env.request(http.MethodDelete, "/api/rooms/"+strconv.FormatInt(active.ID, 10), nil, apiBearer(token))
	wantAPIError(t, resp, body, http.StatusMethodNotAllowed, "")
	resp, body = env.request(http.MethodGet, "/api/nothing-here", nil, apiBearer(token))
	wantAPIError(t, resp, body, http.StatusNotFound, "요청한 항목을 찾을 수 없습니다.")
}

func testAPIMessages(t *testing.T, env *apiEnv) {
	agent2 := env.member("agent2")
	c, room := env.customerRoom(1, "2001", "정페이지")
	var ids []int64
	var noteID int64
	for i := range 45 {
		var m *chat.Message
		switch {
		case i == 40:
			m = env.memberSays(room, agent2, "내부 메모", true)
			noteID = m.ID
		case i%2 == 0:
			m = env.customerSays(room, c, fmt.Sprintf("고객 %d", i))
		default:
			m = env.memberSays(room, agent2, fmt.Sprintf("상담사 %d", i), false)
		}
		ids = append(ids, m.ID)
	}
	token := env.token("agent1") // any member of the company may read
	base := "/api/rooms/" + strconv.FormatInt(room.ID, 10) + "/messages"
	type page struct {
		Messages []apiMessage
		HasMore  bool
	}
	pageIDs := func(p page) []int64 {
		out := make([]int64, len(p.Messages))
		for i, m := range p.Messages {
			out[i] = m.ID
			if m.RoomID != room.ID {
				t.Errorf("message %d has roomId %d", m.ID, m.RoomID)
			}
		}
		return out
	}

	var p page
	env.getJSON(base+"?limit=20", token, http.StatusOK, &p)
	if got := pageIDs(p); !slices.Equal(got, ids[25:]) || !p.HasMore {
		t.Fatalf("newest page %v (hasMore %v), want %v", got, p.HasMore, ids[25:])
	}
	if !slices.ContainsFunc(p.Messages, func(m apiMessage) bool { return m.ID == noteID && m.MessageAdminType == 1 }) {
		t.Errorf("internal note %d missing from a member's page", noteID)
	}
	env.getJSON(fmt.Sprintf("%s?limit=20&before=%d", base, p.Messages[0].ID), token, http.StatusOK, &p)
	if got := pageIDs(p); !slices.Equal(got, ids[5:25]) || !p.HasMore {
		t.Fatalf("second page %v (hasMore %v), want %v", got, p.HasMore, ids[5:25])
	}
	env.getJSON(fmt.Sprintf("%s?limit=20&before=%d", base, p.Messages[0].ID), token, http.StatusOK, &p)
	if got := pageIDs(p); !slices.Equal(got, ids[:5]) || p.HasMore {
		t.Fatalf("last page %v (hasMore %v), want %v", got, p.HasMore, ids[:5])
	}
	// Default page size is the configured one (30); limits are capped at 100.
	env.getJSON(base, token, http.StatusOK, &p)
	if got := pageIDs(p); !slices.Equal(got, ids[15:]) || !p.HasMore {
		t.Errorf("default page %v, want %v", got, ids[15:])
	}
	env.getJSON(base+"?limit=100000", token, http.StatusOK, &p)
	if got := pageIDs(p); !slices.Equal(got, ids) || p.HasMore {
		t.Errorf("capped page %v, want all %d", got, len(ids))
	}
	if p.Messages[0].IsCustomer != 1 || p.Messages[0].Message != "고객 0" {
		t.Errorf("first message %+v", p.Messages[0])
	}
	for _, bad := range []string{"?before=x", "?before=0", "?before=-3", "?limit=0", "?limit=ten"} {
		resp, body := env.request(http.MethodGet, base+bad, nil, apiBearer(token))
		wantAPIError(t, resp, body, http.StatusBadRequest, "")
	}
	// An empty room has an empty page, not null.
	_, empty := env.customerRoom(1, "2002", "빈방")
	resp, body := env.request(http.MethodGet, "/api/rooms/"+strconv.FormatInt(empty.ID, 10)+"/messages", nil, apiBearer(token))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"messages":[]`) {
		t.Errorf("empty room: %d %s", resp.StatusCode, body)
	}
}

func testAPIDemoIdempotent(t *testing.T, env *apiEnv) {
	before := apiDemoSnapshot(t, env)
	if err := env.svc.SeedDemo(env.ctx); err != nil {
		t.Fatalf("second SeedDemo: %v", err)
	}
	if after := apiDemoSnapshot(t, env); after != before {
		t.Fatalf("SeedDemo changed data:\nbefore %s\nafter  %s", before, after)
	}
	c1, err := env.store.Company(env.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := env.store.Company(env.ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if c1.Name != "서울도시가스" || c2.Name != "인천도시가스" {
		t.Errorf("companies %q, %q", c1.Name, c2.Name)
	}
	for _, c := range []*chat.Company{c1, c2} {
		if c.WorkStart != "09:00" || c.WorkEnd != "18:00" || c.LunchStart != "12:00" || c.LunchEnd != "13:00" ||
			c.WorkingText == "" || c.AfterHoursText == "" || c.LunchText == "" || c.WaitingText == nil || c.ReplyText == nil {
			t.Errorf("company %d is missing hours or texts: %+v", c.ID, c)
		}
	}
	// Their passwords: testAPILogin logs in as agent1 and admin1 (SeedDemo
	// creates every account the same way).
	want := map[string]struct {
		company int64
		admin   bool
	}{"agent1": {1, false}, "agent2": {1, false}, "agent3": {2, false}, "admin1": {1, true}}
	for login, w := range want {
		m := env.member(login)
		if m.CompanyID != w.company || m.IsAdmin != w.admin || m.Name == "" {
			t.Errorf("%s: company %d admin %v name %q, want %d %v", login, m.CompanyID, m.IsAdmin, m.Name, w.company, w.admin)
		}
	}
	// A changed demo account is left alone by the next seeding.
	renamed := &chat.Company{}
	*renamed = *c2
	renamed.Name = "인천도시가스(주)"
	if err := env.store.SaveCompany(env.ctx, renamed); err != nil {
		t.Fatal(err)
	}
	if err := env.svc.SeedDemo(env.ctx); err != nil {
		t.Fatal(err)
	}
	if c, _ := env.store.Company(env.ctx, 2); c.Name != "인천도시가스(주)" {
		t.Errorf("SeedDemo overwrote company 2's name with %q", c.Name)
	}
	if err := env.store.SaveCompany(env.ctx, c2); err != nil {
		t.Fatal(err)
	}
}

// apiDemoSnapshot renders the demo companies and members, password hashes
// included, so any change shows.
func apiDemoSnapshot(t *testing.T, env *apiEnv) string {
	t.Helper()
	var b strings.Builder
	for _, id := range []int64{1, 2} {
		c, err := env.store.Company(env.ctx, id)
		if err != nil {
			t.Fatalf("company %d: %v", id, err)
		}
		company, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s\n", company)
		members, err := env.store.Members(env.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(members, func(a, b chat.Member) int { return strings.Compare(a.LoginName, b.LoginName) })
		for _, m := range members {
			if strings.HasPrefix(m.LoginName, "agent") || m.LoginName == "admin1" {
				fmt.Fprintf(&b, "%d %s %s %s %v\n", m.ID, m.LoginName, m.Name, m.PasswordHash, m.IsAdmin)
			}
		}
	}
	return b.String()
}

func testAPIAddMember(t *testing.T, env *apiEnv) {
	ctx := env.ctx
	m, err := env.svc.AddMember(ctx, 2, "Counselor.Kim", "correct-horse", "", false)
	if err != nil {
		t.Fatalf("AddMember: %v", err)
	}
	if m.ID == 0 || m.LoginName != "counselor.kim" || m.Name != "counselor.kim" || m.CompanyID != 2 || m.IsAdmin {
		t.Errorf("added %+v", m)
	}
	if got, err := env.svc.Login(ctx, "Counselor.KIM", "correct-horse"); err != nil || got.ID != m.ID {
		t.Errorf("login of the new member: %v, %v", got, err)
	}
	admin, err := env.svc.AddMember(ctx, 2, "boss2", "12345678", "  인천 관리자 ", true)
	if err != nil || !admin.IsAdmin || admin.Name != "인천 관리자" {
		t.Fatalf("AddMember admin: %+v, %v", admin, err)
	}

	cases := []struct {
		name                  string
		company               int64
		login, password, full string
		want                  error
		mention               string
	}{
		{"short login", 1, "ab", "password1", "", chat.ErrInvalidMember, "login name"},
		{"space in login", 1, "kim lee", "password1", "", chat.ErrInvalidMember, "login name"},
		{"hangul login", 1, "상담사", "password1", "", chat.ErrInvalidMember, "login name"},
		{"leading dot", 1, ".kim", "password1", "", chat.ErrInvalidMember, "login name"},
		{"long login", 1, strings.Repeat("a", 33), "password1", "", chat.ErrInvalidMember, "login name"},
		{"short password", 1, "newagent", "1234567", "", chat.ErrInvalidMember, "at least 8"},
		{"long password", 1, "newagent", strings.Repeat("p", 73), "", chat.ErrInvalidMember, "at most 72"},
		{"control in name", 1, "newagent", "password1", "a\nb", chat.ErrInvalidMember, "name"},
		{"long name", 1, "newagent", "password1", strings.Repeat("가", 51), chat.ErrInvalidMember, "name"},
		{"unknown company", 99, "newagent", "password1", "", chat.ErrUnknownCompany, ""},
		{"no company", 0, "newagent", "password1", "", chat.ErrUnknownCompany, ""},
		{"taken", 1, "agent1", "password1", "", chat.ErrConflict, "taken"},
		{"taken other case", 2, "AGENT1", "password1", "", chat.ErrConflict, "taken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := env.svc.AddMember(ctx, c.company, c.login, c.password, c.full, false)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
		})
	}
	if _, err := env.store.MemberByLogin(ctx, "newagent"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("a refused member was stored: %v", err)
	}
	h, err := chat.HashPassword("demo1234")
	if err != nil || !strings.HasPrefix(h, "$2") {
		t.Errorf("HashPassword = %q, %v", h, err)
	}
}

// TestOpenAPIDocument checks the served document: valid YAML, OpenAPI 3,
// every route listed, every $ref resolvable, every operation with an error
// answer described.
func TestOpenAPIDocument(t *testing.T) {
	cfg := chat.DefaultConfig()
	cfg.JWTSecret = []byte("openapi-test-secret-0123456789ab")
	svc, err := chat.New(cfg, apiNoStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.APIHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") {
		t.Fatalf("GET /api/openapi.yaml: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := yaml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %v", doc["openapi"])
	}
	paths, _ := doc["paths"].(map[string]any)
	routes := [][2]string{
		{"/api/auth/login", "post"},
		{"/api/me", "get"},
		{"/api/rooms", "get"},
		{"/api/rooms/{id}", "get"},
		{"/api/rooms/{id}/messages", "get"},
		{"/api/uploads", "post"},
		{"/api/files/access", "post"},
		{"/files/{companyId}/{roomId}/{name}", "get"},
		{"/api/openapi.yaml", "get"},
		// The deployed console's calls.
		{"/auth/login", "post"},
		{"/auth/profile", "get"},
		{"/api/room", "get"},
		{"/api/room/{id}/matchRoom", "post"},
		{"/api/room/{id}/findSearchJoinHistory", "get"},
		{"/api/customer/{gasappMemberNumber}/contracts", "get"},
		// Routing, reply templates, transcripts, figures.
		{"/api/me/status", "put"},
		{"/api/members", "get"},
		{"/api/canned-responses", "get"},
		{"/api/canned-responses", "post"},
		{"/api/canned-responses/{id}", "put"},
		{"/api/canned-responses/{id}", "delete"},
		{"/api/rooms/{id}/transcript", "get"},
		{"/api/admin/members/{id}", "put"},
		{"/api/admin/settings", "get"},
		{"/api/admin/settings", "put"},
		{"/api/admin/stats", "get"},
		// Served by package video/recording beside the admin API.
		{"/api/admin/recordings", "get"},
		{"/api/admin/recordings/{id}", "get"},
		{"/api/admin/recordings/{id}/files/{fileId}", "get"},
	}
	for _, route := range routes {
		path, method := route[0], route[1]
		item, _ := paths[path].(map[string]any)
		op, _ := item[method].(map[string]any)
		if op == nil {
			t.Errorf("%s %s is not documented", method, path)
			continue
		}
		responses, _ := op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s %s documents no responses", method, path)
		}
		if path == "/api/openapi.yaml" {
			continue
		}
		hasError := false
		for code := range responses {
			hasError = hasError || strings.HasPrefix(code, "4")
		}
		if !hasError {
			t.Errorf("%s %s documents no error answer", method, path)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if ref, ok := child.(string); ok && k == "$ref" {
					if _, err := apiResolveRef(doc, ref); err != nil {
						t.Errorf("$ref %s: %v", ref, err)
					}
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
}

func apiResolveRef(doc map[string]any, ref string) (any, error) {
	pointer, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, errors.New("not a local reference")
	}
	var cur any = doc
	for _, part := range strings.Split(pointer, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("no %s", part)
		}
	}
	return cur, nil
}

// apiNoStore stands in where no data is read: any call would panic.
type apiNoStore struct{ chat.Store }
