package chat_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// The deployed console's REST calls (chat/api_console.go), through the
// conformance wrapper like the rest of the API, on every backend.

func TestConsoleAPI(t *testing.T) {
	for i, b := range apiBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := newAPIEnv(t, b.dsn(t))
			t.Run("rooms", func(t *testing.T) { testConsoleRooms(t, env) })
			t.Run("history", func(t *testing.T) { testConsoleJoinHistory(t, env) })
			t.Run("profile", func(t *testing.T) { testConsoleProfile(t, env) })
			t.Run("contracts", func(t *testing.T) { testConsoleContracts(t, env) })
			// Password checks cost a bcrypt each: once is enough (see TestAPI).
			if i == 0 {
				t.Run("login", func(t *testing.T) { testConsoleLogin(t, env) })
			}
		})
	}
}

type consoleProfile struct {
	ID        int64  `json:"id"`
	CompanyID string `json:"companyId"`
	LoginName string `json:"loginName"`
	Name      string `json:"name"`
	IsAdmin   int    `json:"isAdmin"`
	SpeakerID int64  `json:"speakerId"`
}

func (e *apiEnv) speakerOf(login string) int64 {
	e.t.Helper()
	sp, err := e.store.MemberSpeaker(e.ctx, e.member(login))
	if err != nil {
		e.t.Fatalf("speaker of %s: %v", login, err)
	}
	return sp.ID
}

func (e *apiEnv) postLogin(path, login, password string) (*http.Response, []byte) {
	e.t.Helper()
	return e.request(http.MethodPost, path, strings.NewReader(fmt.Sprintf(`{"loginName":%q,"password":%q}`, login, password)),
		map[string]string{"Content-Type": "application/json"})
}

// The console's login is cstalk's: the same answer (with the profile the
// console reads), the same refusals and one throttle for both paths.
func testConsoleLogin(t *testing.T, env *apiEnv) {
	resp, body := env.postLogin("/auth/login", "agent1", "demo1234")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /auth/login: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Token   string         `json:"token"`
		Profile consoleProfile `json:"profile"`
		Member  consoleProfile `json:"member"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	want := consoleProfile{ID: env.member("agent1").ID, CompanyID: "1", LoginName: "agent1", Name: env.member("agent1").Name, SpeakerID: env.speakerOf("agent1")}
	if out.Token == "" || out.Profile != want || out.Member != want {
		t.Fatalf("console login = %s, want token and profile %+v", body, want)
	}
	if m, err := env.svc.MemberFromToken(env.ctx, out.Token); err != nil || m.LoginName != "agent1" {
		t.Fatalf("console login token: %v, %v", m, err)
	}
	if !slices.ContainsFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == "cstalk_files" }) {
		t.Errorf("console login set no file cookie: %v", resp.Cookies())
	}
	resp, body = env.postLogin("/auth/login", "agent1", "wrong-password")
	wantAPIError(t, resp, body, http.StatusUnauthorized, "아이디 또는 비밀번호가 올바르지 않습니다.")
	resp, body = env.request(http.MethodPost, "/auth/login", strings.NewReader(`{"loginName":"agent1"}`), nil)
	wantAPIError(t, resp, body, http.StatusBadRequest, "")
	resp, body = env.request(http.MethodGet, "/auth/login", nil, nil)
	wantAPIError(t, resp, body, http.StatusMethodNotAllowed, "")

	// Wrong passwords count together on both paths: the throttle is one.
	for i := 0; ; i++ {
		path := "/api/auth/login"
		if i%2 == 1 {
			path = "/auth/login"
		}
		resp, body := env.postLogin(path, "agent2", "wrong-password")
		if resp.StatusCode == http.StatusTooManyRequests {
			if i < 2 {
				t.Fatalf("throttled after %d failures", i)
			}
			break
		}
		wantAPIError(t, resp, body, http.StatusUnauthorized, "")
		if i > 50 {
			t.Fatal("wrong passwords are never throttled")
		}
	}
	for _, path := range []string{"/api/auth/login", "/auth/login"} {
		resp, body := env.postLogin(path, "agent2", "demo1234")
		wantAPIError(t, resp, body, http.StatusTooManyRequests, "로그인 시도가 너무 많습니다. 잠시 후 다시 시도해 주세요.")
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", path)
		}
	}
}

// /auth/profile is /api/me; both carry the speakerId.
func testConsoleProfile(t *testing.T, env *apiEnv) {
	token := env.token("admin1")
	var profile, me consoleProfile
	env.getJSON("/auth/profile", token, http.StatusOK, &profile)
	env.getJSON("/api/me", token, http.StatusOK, &me)
	want := consoleProfile{ID: env.member("admin1").ID, CompanyID: "1", LoginName: "admin1", Name: "관리자", IsAdmin: 1, SpeakerID: env.speakerOf("admin1")}
	if profile != want || me != want {
		t.Fatalf("/auth/profile %+v, /api/me %+v, want %+v", profile, me, want)
	}
	for _, header := range []map[string]string{nil, apiBearer("forged")} {
		resp, body := env.request(http.MethodGet, "/auth/profile", nil, header)
		wantAPIError(t, resp, body, http.StatusUnauthorized, "인증이 필요합니다.")
	}
	resp, body := env.request(http.MethodPost, "/auth/profile", nil, apiBearer(token))
	wantAPIError(t, resp, body, http.StatusMethodNotAllowed, "")
}

// GET /api/room?queryId= lists what /api/rooms?status= lists, flat.
func testConsoleRooms(t *testing.T, env *apiEnv) {
	agent1 := env.member("agent1")
	c, waiting := env.customerRoom(1, "5101", "대기고객")
	env.customerSays(waiting, c, "상담 부탁드립니다")
	c2, active := env.customerRoom(1, "5102", "진행고객")
	env.customerSays(active, c2, "요금 문의")
	if _, _, err := env.store.AssignRoom(env.ctx, active.ID, agent1.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, ended := env.customerRoom(1, "5103", "종료고객")
	if _, _, err := env.store.EndRoom(env.ctx, ended.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, other := env.customerRoom(2, "5101", "인천고객")

	token := env.token("agent2")
	for queryID, status := range map[string]string{"findReadyState": "WAITING", "findIngState": "IN_PROGRESS", "findCloseState": "ENDED"} {
		var flat []apiRoom
		env.getJSON("/api/room?queryId="+queryID, token, http.StatusOK, &flat)
		var wrapped struct{ Rooms []apiRoom }
		env.getJSON("/api/rooms?status="+status, token, http.StatusOK, &wrapped)
		if len(flat) == 0 || !slices.Equal(apiRoomIDs(flat), apiRoomIDs(wrapped.Rooms)) {
			t.Errorf("queryId=%s: %v, /api/rooms?status=%s: %v", queryID, apiRoomIDs(flat), status, apiRoomIDs(wrapped.Rooms))
		}
		for _, r := range flat {
			if r.Status != status || r.CompanyID != "1" {
				t.Errorf("queryId=%s listed %+v", queryID, r)
			}
		}
	}
	var ready []apiRoom
	env.getJSON("/api/room?queryId=findReadyState&limit=500", token, http.StatusOK, &ready)
	i := slices.IndexFunc(ready, func(r apiRoom) bool { return r.ID == waiting.ID })
	if i < 0 || ready[i].LastMessage == nil || ready[i].LastMessage.Message != "상담 부탁드립니다" || ready[i].NoReadCount != 1 || ready[i].RoomName != "대기고객" {
		t.Errorf("waiting room in findReadyState: %+v", ready)
	}
	if slices.Contains(apiRoomIDs(ready), other.ID) {
		t.Errorf("company 2's room %d listed for company 1", other.ID)
	}
	var theirs []apiRoom
	env.getJSON("/api/room?queryId=findReadyState", env.token("agent3"), http.StatusOK, &theirs)
	if ids := apiRoomIDs(theirs); !slices.Contains(ids, other.ID) || slices.Contains(ids, waiting.ID) {
		t.Errorf("company 2's waiting rooms: %v", ids)
	}
	var one []apiRoom
	env.getJSON("/api/room?queryId=findReadyState&limit=1", token, http.StatusOK, &one)
	if len(one) != 1 {
		t.Errorf("limit=1 gave %d rooms", len(one))
	}
	for _, bad := range []string{"", "?queryId=", "?queryId=findAll", "?queryId=findreadystate", "?queryId=findReadyState&limit=0"} {
		resp, body := env.request(http.MethodGet, "/api/room"+bad, nil, apiBearer(token))
		wantAPIError(t, resp, body, http.StatusBadRequest, "")
	}
	resp, body := env.request(http.MethodGet, "/api/room?queryId=nope", nil, map[string]string{"Authorization": "Bearer " + token, "Accept-Language": "en"})
	wantAPIError(t, resp, body, http.StatusBadRequest, "queryId must be findReadyState, findIngState or findCloseState.")
	resp, body = env.request(http.MethodGet, "/api/room?queryId=findReadyState", nil, nil)
	wantAPIError(t, resp, body, http.StatusUnauthorized, "")
}

// findSearchJoinHistory: the room's customer's earlier rooms, newest first,
// within the company.
func testConsoleJoinHistory(t *testing.T, env *apiEnv) {
	agent1 := env.member("agent1")
	var rooms []*chat.Room
	var c *chat.Customer
	for i := range 3 {
		var r *chat.Room
		c, r = env.customerRoom(1, "5201", "단골고객")
		env.customerSays(r, c, fmt.Sprintf("%d번째 상담", i+1))
		rooms = append(rooms, r)
		if i < 2 {
			if _, _, err := env.store.AssignRoom(env.ctx, r.ID, agent1.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if _, _, err := env.store.EndRoom(env.ctx, r.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Another customer's room in between is not its history.
	env.customerRoom(1, "5202", "다른고객")

	token := env.token("agent2")
	history := func(room *chat.Room, query string) []apiRoom {
		var out []apiRoom
		env.getJSON("/api/room/"+strconv.FormatInt(room.ID, 10)+"/findSearchJoinHistory"+query, token, http.StatusOK, &out)
		return out
	}
	got := history(rooms[2], "")
	if ids := apiRoomIDs(got); !slices.Equal(ids, []int64{rooms[1].ID, rooms[0].ID}) {
		t.Fatalf("history of room %d = %v, want [%d %d]", rooms[2].ID, ids, rooms[1].ID, rooms[0].ID)
	}
	if got[0].Status != "ENDED" || got[0].LastMessage == nil || got[0].LastMessage.Message != "2번째 상담" || got[0].Member == nil || got[0].Member.LoginName != "agent1" {
		t.Errorf("earlier room %+v", got[0])
	}
	if ids := apiRoomIDs(history(rooms[2], "?limit=1")); !slices.Equal(ids, []int64{rooms[1].ID}) {
		t.Errorf("limit=1: %v", ids)
	}
	if h := history(rooms[0], ""); len(h) != 0 {
		t.Errorf("the first room has history %v", apiRoomIDs(h))
	}
	// An empty history is an array, never null.
	resp, body := env.request(http.MethodGet, "/api/room/"+strconv.FormatInt(rooms[0].ID, 10)+"/findSearchJoinHistory", nil, apiBearer(token))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("empty history: %d %s", resp.StatusCode, body)
	}
	// Another company's room reads as missing.
	for _, path := range []string{
		"/api/room/" + strconv.FormatInt(rooms[2].ID, 10) + "/findSearchJoinHistory",
		"/api/room/999999999/findSearchJoinHistory",
		"/api/room/abc/findSearchJoinHistory",
	} {
		resp, body := env.request(http.MethodGet, path, nil, apiBearer(env.token("agent3")))
		wantAPIError(t, resp, body, http.StatusNotFound, "상담방을 찾을 수 없습니다.")
	}
	resp, body = env.request(http.MethodGet, "/api/room/"+strconv.FormatInt(rooms[2].ID, 10)+"/findSearchJoinHistory", nil, nil)
	wantAPIError(t, resp, body, http.StatusUnauthorized, "")
}

// contractsEndpoint is a company's own system as the contracts call meets
// it; mode picks how it answers.
type contractsEndpoint struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	mode    string
	queries []string
	// arrived and release pace the "block" mode.
	arrived chan struct{}
	release chan struct{}
}

func newContractsEndpoint(t *testing.T) *contractsEndpoint {
	ce := &contractsEndpoint{t: t, mode: "ok", arrived: make(chan struct{}, 64), release: make(chan struct{})}
	ce.srv = httptest.NewServer(http.HandlerFunc(ce.serve))
	t.Cleanup(ce.srv.Close)
	return ce
}

func (ce *contractsEndpoint) setMode(mode string) {
	ce.mu.Lock()
	ce.mode = mode
	ce.mu.Unlock()
}

func (ce *contractsEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	ce.mu.Lock()
	mode := ce.mode
	ce.queries = append(ce.queries, r.URL.RawQuery+" accept="+r.Header.Get("Accept"))
	ce.mu.Unlock()
	switch mode {
	case "ok":
		io.WriteString(w, `[{"contractNo":"C-`+r.URL.Query().Get("gasappMemberNumber")+`","product":"주택난방"},{"contractNo":"C-2"}]`)
	case "empty":
		io.WriteString(w, " [ ] ")
	case "error":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "html":
		io.WriteString(w, "<html>login</html>")
	case "object":
		io.WriteString(w, `{"contracts":[]}`)
	case "huge":
		io.WriteString(w, "["+strings.Repeat(" ", 1<<20)+"]")
	case "hang":
		<-r.Context().Done()
	case "block":
		ce.arrived <- struct{}{}
		select {
		case <-ce.release:
		case <-r.Context().Done():
		}
		io.WriteString(w, `[]`)
	}
}

func testConsoleContracts(t *testing.T, env *apiEnv) {
	token := env.token("agent1")
	path := "/api/customer/3825/contracts"
	resp, body := env.request(http.MethodGet, path, nil, apiBearer(token))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("contracts without an endpoint: %d %s", resp.StatusCode, body)
	}

	ce := newContractsEndpoint(t)
	company, err := env.store.Company(env.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	configured := *company
	configured.ContractsURL = ce.srv.URL + "/contracts?key=k%201"
	if err := env.store.SaveCompany(env.ctx, &configured); err != nil {
		t.Fatal(err)
	}
	defer env.store.SaveCompany(env.ctx, company)

	var got []map[string]any
	env.getJSON(path, token, http.StatusOK, &got)
	if len(got) != 2 || got[0]["contractNo"] != "C-3825" || got[0]["product"] != "주택난방" {
		t.Fatalf("contracts = %v", got)
	}
	ce.mu.Lock()
	query := ce.queries[len(ce.queries)-1]
	ce.mu.Unlock()
	if query != "companyId=1&gasappMemberNumber=3825&key=k+1 accept=application/json" {
		t.Errorf("the endpoint was asked %q", query)
	}
	ce.setMode("empty")
	resp, body = env.request(http.MethodGet, path, nil, apiBearer(token))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("empty contracts: %d %s", resp.StatusCode, body)
	}
	for _, mode := range []string{"error", "html", "object", "huge"} {
		ce.setMode(mode)
		resp, body := env.request(http.MethodGet, path, nil, apiBearer(token))
		t.Run(mode, func(t *testing.T) {
			wantAPIError(t, resp, body, http.StatusBadGateway, "회사 시스템에서 계약 정보를 가져오지 못했습니다.")
		})
	}
	// A company whose system is gone.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	configured.ContractsURL = gone.URL + "/contracts"
	if err := env.store.SaveCompany(env.ctx, &configured); err != nil {
		t.Fatal(err)
	}
	resp, body = env.request(http.MethodGet, path, nil, apiBearer(token))
	wantAPIError(t, resp, body, http.StatusBadGateway, "")
	configured.ContractsURL = ce.srv.URL + "/contracts"
	if err := env.store.SaveCompany(env.ctx, &configured); err != nil {
		t.Fatal(err)
	}

	// Company 2 has no endpoint: its members never reach company 1's.
	ce.setMode("ok")
	ce.mu.Lock()
	asked := len(ce.queries)
	ce.mu.Unlock()
	resp, body = env.request(http.MethodGet, path, nil, apiBearer(env.token("agent3")))
	ce.mu.Lock()
	askedAfter := len(ce.queries)
	ce.mu.Unlock()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" || askedAfter != asked {
		t.Errorf("company 2's contracts: %d %s, endpoint of company 1 asked %d times", resp.StatusCode, body, askedAfter-asked)
	}

	for _, bad := range []string{"/api/customer/12a/contracts", "/api/customer/" + strings.Repeat("1", 31) + "/contracts"} {
		resp, body := env.request(http.MethodGet, bad, nil, apiBearer(token))
		wantAPIError(t, resp, body, http.StatusBadRequest, "")
	}
	resp, body = env.request(http.MethodGet, path, nil, nil)
	wantAPIError(t, resp, body, http.StatusUnauthorized, "")

	// A company has at most 16 calls in flight per node; the 17th is
	// told to come back.
	ce.setMode("block")
	var wg sync.WaitGroup
	statuses := make(chan int, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, env.srv.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := env.srv.Client().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range 16 {
		select {
		case <-ce.arrived:
		case <-time.After(30 * time.Second):
			t.Fatal("the 16 calls did not all reach the endpoint")
		}
	}
	resp, body = env.request(http.MethodGet, path, nil, apiBearer(token))
	wantAPIError(t, resp, body, http.StatusServiceUnavailable, "계약 정보 요청이 많습니다. 잠시 후 다시 시도해 주세요.")
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("503 Retry-After %q", resp.Header.Get("Retry-After"))
	}
	// Another company is not held up by company 1's calls.
	resp, body = env.request(http.MethodGet, path, nil, apiBearer(env.token("agent3")))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("company 2 while company 1 is busy: %d %s", resp.StatusCode, body)
	}
	close(ce.release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a call in flight ended with %d", s)
		}
	}
	env.getJSON(path, token, http.StatusOK, nil)

	// An endpoint that never answers: 504 when the deadline passes.
	cfg := chat.DefaultConfig()
	cfg.JWTSecret = env.secret
	cfg.ContractsTimeout = 100 * time.Millisecond
	quick, err := chat.New(cfg, env.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(conformant(t, quick.APIHandler()))
	defer srv.Close()
	ce.setMode("hang")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	hung, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hungBody, _ := io.ReadAll(hung.Body)
	hung.Body.Close()
	wantAPIError(t, hung, hungBody, http.StatusGatewayTimeout, "회사 시스템이 제시간에 응답하지 않았습니다.")
}

func TestCheckContractsURL(t *testing.T) {
	for _, ok := range []string{"", "https://crm.example.com/contracts", "http://10.0.0.5:8080/api/c?key=abc&x=1"} {
		if err := chat.CheckContractsURL(ok); err != nil {
			t.Errorf("CheckContractsURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"crm.example.com/contracts", "/contracts", "ftp://crm.example.com/c", "https:///c",
		"https://user:pw@crm.example.com/c", "https://crm.example.com/c#frag", "https://crm.example.com/" + strings.Repeat("a", 2048), "http://[::1"} {
		if err := chat.CheckContractsURL(bad); err == nil {
			t.Errorf("CheckContractsURL(%q) accepted it", bad)
		}
	}
}

// restClient calls the REST API of a chatEnv's node (which the REST-only
// apiEnv lacks: matchRoom announces on the broker).
type restClient struct {
	t    *testing.T
	base string
}

func (e *chatEnv) rest() *restClient {
	e.t.Helper()
	srv := httptest.NewServer(conformant(e.t, e.svc.APIHandler()))
	e.t.Cleanup(srv.Close)
	return &restClient{t: e.t, base: srv.URL}
}

func (c *restClient) call(method, path, token string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, body
}

func TestMatchRoomIsAssign(t *testing.T) { onEveryBackend(t, testMatchRoomIsAssign) }

// POST /api/room/{id}/matchRoom does what ASSIGN does: the system message on
// the room, ROOM_DETAIL to those present, RELOAD and RELOAD_READY on the
// lobby; and refuses what ASSIGN refuses.
func testMatchRoomIsAssign(t *testing.T, e *chatEnv) {
	rest := e.rest()
	cust, logined := e.customer("9101", "매칭고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	cust.await(cust.private, "WELCOME_MESSAGE")
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "상담 부탁드려요"})
	cust.await(custRoom, "MESSAGE")

	a1 := e.agent(e.agent1)
	lobby := a1.subscribe("/sub/socket/room/LOBBY1")
	match := "/api/room/" + roomID + "/matchRoom"
	resp, body := rest.call(http.MethodPost, match, e.token(e.agent1))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("matchRoom: %d %s", resp.StatusCode, body)
	}
	var room struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
		Member *struct {
			ID        int64 `json:"id"`
			SpeakerID int64 `json:"speakerId"`
		} `json:"member"`
		LastMessage *struct {
			IsSystemMessage int `json:"isSystemMessage"`
		} `json:"lastMessage"`
	}
	if err := json.Unmarshal(body, &room); err != nil {
		t.Fatal(err)
	}
	if strconv.FormatInt(room.ID, 10) != roomID || room.Status != "IN_PROGRESS" || room.Member == nil || room.Member.ID != e.agent1.ID ||
		room.LastMessage == nil || room.LastMessage.IsSystemMessage != 1 {
		t.Fatalf("matchRoom answered %s", body)
	}
	notice := cust.await(custRoom, "MESSAGE").obj("data", "message")
	if jsonNum(t, notice, "isSystemMessage") != 1 || jsonStr(t, notice, "message") != fmt.Sprintf(chat.Korean.T("system_assigned"), "김상담") ||
		jsonNum(t, notice, "speakerId") != room.Member.SpeakerID || jsonNum(t, notice, "isOnline") != 1 {
		t.Fatalf("assignment notice = %v", notice)
	}
	if rd := cust.await(cust.private, "ROOM_DETAIL"); jsonStr(t, rd.obj("data", "room"), "status") != "IN_PROGRESS" {
		t.Fatalf("customer's ROOM_DETAIL = %s", rd.Raw)
	}
	a1.await(lobby, "RELOAD")
	ready := a1.await(lobby, "RELOAD_READY")
	if jsonStr(t, ready.M, "roomId") != roomID || jsonNum(t, ready.obj("data", "profile"), "id") != e.agent1.ID ||
		jsonStr(t, ready.obj("data", "room"), "status") != "IN_PROGRESS" {
		t.Fatalf("RELOAD_READY = %s", ready.Raw)
	}

	// Again: harmless, nothing stored or told. A new customer's room is
	// the next thing the lobby hears of.
	if resp, body := rest.call(http.MethodPost, match, e.token(e.agent1)); resp.StatusCode != http.StatusOK {
		t.Fatalf("matchRoom again: %d %s", resp.StatusCode, body)
	}
	_, next := e.customer("9102", "다음고객")
	evs := a1.untilEvent(lobby, "RELOAD_READY", anyEvent)
	if last := evs[len(evs)-1]; jsonStr(t, last.M, "roomId") != roomIDOf(t, next) || countNamed(evs, "RELOAD") != 1 {
		t.Fatalf("after a repeated matchRoom the lobby heard %v: %s", eventNames(evs), last.Raw)
	}
	a1.send("MESSAGE_LIST", map[string]any{}, "roomId", roomID)
	if list := a1.await(a1.private, "MESSAGE_LIST"); len(list.data()["messages"].([]any)) != 2 {
		t.Fatalf("messages after matchRoom twice: %s", list.Raw)
	}

	// What ASSIGN refuses.
	resp, body = rest.call(http.MethodPost, match, e.token(e.agent2))
	wantAPIError(t, resp, body, http.StatusConflict, "다른 상담사가 이미 배정된 상담입니다.")
	for _, path := range []string{match, "/api/room/999999999/matchRoom", "/api/room/x/matchRoom"} {
		resp, body := rest.call(http.MethodPost, path, e.token(e.agent3))
		wantAPIError(t, resp, body, http.StatusNotFound, "상담방을 찾을 수 없습니다.")
	}
	resp, body = rest.call(http.MethodPost, match, "")
	wantAPIError(t, resp, body, http.StatusUnauthorized, "")
	resp, body = rest.call(http.MethodGet, match, e.token(e.agent1))
	wantAPIError(t, resp, body, http.StatusMethodNotAllowed, "")
	if err := e.svc.EndRoom(t.Context(), e.agent1, mustInt(t, roomID)); err != nil {
		t.Fatal(err)
	}
	resp, body = rest.call(http.MethodPost, match, e.token(e.agent1))
	wantAPIError(t, resp, body, http.StatusConflict, "종료된 상담입니다.")
}

// TestLoginChecksReserved: a password check is reserved before it runs, so
// of 60 wrong passwords for one login sent at once exactly the allowed 10
// are checked (401) and the rest refused unchecked (429), on both login
// paths alike.
func TestLoginChecksReserved(t *testing.T) {
	env := newAPIEnv(t, apiBackends()[0].dsn(t))
	var unauthorized, throttled, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			path := []string{"/api/auth/login", "/auth/login"}[i%2]
			req, _ := http.NewRequest(http.MethodPost, env.srv.URL+path, strings.NewReader(`{"loginName":"agent2","password":"wrong"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				unauthorized.Add(1)
			case http.StatusTooManyRequests:
				throttled.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	wg.Wait()
	if unauthorized.Load() != 10 || throttled.Load() != 50 || other.Load() != 0 {
		t.Fatalf("60 parallel wrong passwords: %d checked (401), %d throttled, %d other; want 10 and 50",
			unauthorized.Load(), throttled.Load(), other.Load())
	}
}
