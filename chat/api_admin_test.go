package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cstalk/cstalk/chat"
)

// adminRecorder is the broker seen by the service: it keeps what was
// published where, so the test can check END reached the room and RELOAD
// the lobby.
type adminRecorder struct {
	mu     sync.Mutex
	events []string // "destination eventName"
}

func (r *adminRecorder) Publish(_ context.Context, destination string, body []byte) error {
	var env struct {
		EventName string `json:"eventName"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, destination+" "+env.EventName)
	return nil
}

func (r *adminRecorder) PublishCoalesced(ctx context.Context, destination, _ string, body []byte) error {
	return r.Publish(ctx, destination, body)
}

func (r *adminRecorder) SendPrivate(context.Context, string, []byte) error { return nil }

func (r *adminRecorder) has(event string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e == event {
			return true
		}
	}
	return false
}

func TestAdminAPI(t *testing.T) {
	for _, b := range apiBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := newAPIEnv(t, b.dsn(t))
			rec := &adminRecorder{}
			env.svc.Bind(rec)
			admin := httptest.NewServer(conformant(t, env.svc.AdminAPIHandler()))
			t.Cleanup(admin.Close)
			call := func(method, path, token, body string, lang string) (*http.Response, []byte) {
				t.Helper()
				saved := env.srv
				env.srv = admin
				defer func() { env.srv = saved }()
				h := apiBearer(token)
				h["Accept-Language"] = lang
				if body != "" {
					h["Content-Type"] = "application/json"
				}
				return env.request(method, path, strings.NewReader(body), h)
			}
			adminToken, agentToken, otherAdmin := env.token("admin1"), env.token("agent1"), ""
			if m, err := env.svc.AddMember(env.ctx, 2, "boss2", "password2", "", true); err != nil {
				t.Fatalf("admin of company 2: %v", err)
			} else if otherAdmin, _, err = env.svc.IssueToken(m); err != nil {
				t.Fatal(err)
			}

			t.Run("auth", func(t *testing.T) {
				resp, body := call(http.MethodGet, "/api/admin/members", "", "", "")
				wantAPIError(t, resp, body, http.StatusUnauthorized, "인증이 필요합니다.")
				resp, body = call(http.MethodGet, "/api/admin/members", "forged.token.value", "", "")
				wantAPIError(t, resp, body, http.StatusUnauthorized, "")
				resp, body = call(http.MethodGet, "/api/admin/members", agentToken, "", "")
				wantAPIError(t, resp, body, http.StatusForbidden, "관리자만 사용할 수 있습니다.")
				resp, body = call(http.MethodPost, "/api/admin/members", agentToken, `{"loginName":"sneaky","password":"password1"}`, "en")
				wantAPIError(t, resp, body, http.StatusForbidden, "Only administrators may do this.")
				if _, err := env.store.MemberByLogin(env.ctx, "sneaky"); err == nil {
					t.Fatal("a counselor added a member")
				}
				resp, body = call(http.MethodGet, "/api/admin/nothing", adminToken, "", "")
				wantAPIError(t, resp, body, http.StatusNotFound, "")
			})

			t.Run("members", func(t *testing.T) {
				resp, body := call(http.MethodPost, "/api/admin/members", adminToken,
					`{"loginName":"Agent9","password":"correct-horse","name":"상담사 9"}`, "")
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("add: %d %s", resp.StatusCode, body)
				}
				var added struct {
					ID        int64  `json:"id"`
					CompanyID string `json:"companyId"`
					LoginName string `json:"loginName"`
					Name      string `json:"name"`
					IsAdmin   int    `json:"isAdmin"`
				}
				if err := json.Unmarshal(body, &added); err != nil {
					t.Fatal(err)
				}
				if added.ID == 0 || added.CompanyID != "1" || added.LoginName != "agent9" || added.Name != "상담사 9" || added.IsAdmin != 0 {
					t.Fatalf("added %s", body)
				}
				if m, err := env.svc.Login(env.ctx, "agent9", "correct-horse"); err != nil || m.CompanyID != 1 {
					t.Fatalf("login of the added member: %v %v", m, err)
				}

				resp, body = call(http.MethodPost, "/api/admin/members", adminToken, `{"loginName":"AGENT9","password":"password1"}`, "")
				wantAPIError(t, resp, body, http.StatusConflict, "이미 사용 중인 아이디입니다.")
				for _, bad := range []string{`{"loginName":"ab","password":"password1"}`, `{"loginName":"agent10","password":"short"}`,
					`{"loginName":"agent10","password":"password1","isAdmin":2}`, `not json`} {
					resp, body = call(http.MethodPost, "/api/admin/members", adminToken, bad, "")
					wantAPIError(t, resp, body, http.StatusBadRequest, "")
				}

				var list struct {
					Members []struct {
						LoginName string `json:"loginName"`
						CompanyID string `json:"companyId"`
						IsAdmin   int    `json:"isAdmin"`
					} `json:"members"`
				}
				resp, body = call(http.MethodGet, "/api/admin/members", adminToken, "", "")
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil {
					t.Fatalf("list: %d %s", resp.StatusCode, body)
				}
				logins := map[string]int{}
				for _, m := range list.Members {
					if m.CompanyID != "1" {
						t.Errorf("member of company %s listed to company 1", m.CompanyID)
					}
					logins[m.LoginName] = m.IsAdmin
				}
				for login, isAdmin := range map[string]int{"agent1": 0, "agent2": 0, "admin1": 1, "agent9": 0} {
					if got, ok := logins[login]; !ok || got != isAdmin {
						t.Errorf("list %v: %s missing or isAdmin wrong", logins, login)
					}
				}
				if _, ok := logins["agent3"]; ok {
					t.Error("another company's counselor listed")
				}
				if strings.Contains(string(body), "password") || strings.Contains(string(body), "$2") {
					t.Error("member list leaks password hashes")
				}
			})

			t.Run("end room", func(t *testing.T) {
				c, room := env.customerRoom(1, "77001", "종료 고객")
				env.customerSays(room, c, "안녕하세요")
				path := fmt.Sprintf("/api/admin/rooms/%d/end", room.ID)

				resp, body := call(http.MethodPost, path, agentToken, "", "")
				wantAPIError(t, resp, body, http.StatusForbidden, "")
				resp, body = call(http.MethodPost, path, otherAdmin, "", "")
				wantAPIError(t, resp, body, http.StatusNotFound, "상담방을 찾을 수 없습니다.")
				resp, body = call(http.MethodPost, "/api/admin/rooms/999999/end", adminToken, "", "")
				wantAPIError(t, resp, body, http.StatusNotFound, "")
				if r, err := env.store.Room(env.ctx, room.ID); err != nil || r.Status != chat.StatusWaiting {
					t.Fatalf("room after refused ends: %v %v", r, err)
				}

				resp, body = call(http.MethodPost, path, adminToken, "", "")
				var ended struct {
					ID     int64  `json:"id"`
					Status string `json:"status"`
				}
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ended) != nil || ended.ID != room.ID || ended.Status != "ENDED" {
					t.Fatalf("end: %d %s", resp.StatusCode, body)
				}
				if r, err := env.store.Room(env.ctx, room.ID); err != nil || r.Status != chat.StatusEnded {
					t.Fatalf("stored room: %v %v", r, err)
				}
				for _, want := range []string{chat.RoomDestination(room.ID) + " END", chat.LobbyDestination(1) + " RELOAD"} {
					if !rec.has(want) {
						t.Errorf("%q not published; got %v", want, rec.events)
					}
				}
				// Again: harmless, the room as it is.
				resp, body = call(http.MethodPost, path, adminToken, "", "")
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ENDED"`) {
					t.Fatalf("second end: %d %s", resp.StatusCode, body)
				}
			})
		})
	}
}

// The admin routes are part of the served OpenAPI document.
func TestAdminAPIDocumented(t *testing.T) {
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
	var doc struct {
		Paths map[string]map[string]struct {
			Security  []map[string]any `yaml:"security"`
			Responses map[string]any   `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for path, method := range map[string]string{
		"/api/admin/members":        "get",
		"/api/admin/rooms/{id}/end": "post",
		"/api/admin/members/{id}":   "put",
		"/api/admin/settings":       "put",
		"/api/admin/stats":          "get",
	} {
		op, ok := doc.Paths[path][method]
		if !ok {
			t.Errorf("%s %s is not documented", method, path)
			continue
		}
		if _, ok := op.Responses["403"]; !ok || len(op.Security) == 0 {
			t.Errorf("%s %s: bearer security and the 403 answer must be documented", method, path)
		}
	}
	if _, ok := doc.Paths["/api/admin/members"]["post"]; !ok {
		t.Error("post /api/admin/members is not documented")
	}
}
