package guide_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cstalk/cstalk/video/guide"
)

type client struct {
	t      *testing.T
	base   string
	token  string
	lang   string
	status int
}

func (c *client) do(method, path string, body any) map[string]any {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.lang != "" {
		req.Header.Set("Accept-Language", c.lang)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	c.status = resp.StatusCode
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatalf("%s %s: not JSON: %v", method, path, err)
	}
	if int(out["code"].(float64)) != resp.StatusCode || out["message"] == "" {
		c.t.Fatalf("%s %s: envelope %v for status %d", method, path, out, resp.StatusCode)
	}
	return out
}

func (c *client) want(status int, out map[string]any) map[string]any {
	c.t.Helper()
	if c.status != status {
		c.t.Fatalf("status %d, want %d: %v", c.status, status, out)
	}
	return out
}

func num(v any) int64 { return int64(v.(float64)) }

func TestHTTPGuideFlow(t *testing.T) {
	h := newHarness(t)
	// Every answer of the flow is also checked against openapi.yaml.
	srv := httptest.NewServer(conformant(t, h.svc.Handler()))
	t.Cleanup(srv.Close) // after the event streams' cleanups close them
	mate, err := h.svc.CreateAccount(h.ctx, guide.RoleMate, "mate-park", "mate-password", "박전문", 0)
	if err != nil {
		t.Fatal(err)
	}

	anon := &client{t: t, base: srv.URL}
	out := anon.want(201, anon.do("POST", "/guide/signup", map[string]string{"loginName": "kim", "password": "kim-password", "name": "김민수"}))
	user := &client{t: t, base: srv.URL, token: out["token"].(string)}
	userID := num(out["account"].(map[string]any)["id"])
	anon.want(409, anon.do("POST", "/guide/signup", map[string]string{"loginName": "kim", "password": "x", "name": "x"}))
	out = anon.want(401, anon.do("POST", "/guide/login", map[string]string{"loginName": "mate-park", "password": "wrong"}))
	if out["reason"] != "badLogin" || out["message"] != "아이디 또는 비밀번호가 올바르지 않습니다." {
		t.Fatalf("bad login: %v", out)
	}
	out = anon.want(200, anon.do("POST", "/guide/login", map[string]string{"loginName": "mate-park", "password": "mate-password"}))
	mc := &client{t: t, base: srv.URL, token: out["token"].(string)}

	// The mate listens for pushes on the event stream.
	events := openEvents(t, srv.URL, mc.token)

	out = user.want(402, user.do("POST", "/guide/match", map[string]any{}))
	if out["reason"] != "noTicket" {
		t.Fatalf("match without tickets: %v", out)
	}
	user.lang = "en"
	out = user.want(402, user.do("POST", "/guide/match", map[string]any{}))
	if out["message"] != "You have no ticket left." {
		t.Fatalf("English: %v", out)
	}
	if _, err := h.svc.AddTickets(h.ctx, userID, 2); err != nil {
		t.Fatal(err)
	}
	out = user.want(201, user.do("POST", "/guide/match", map[string]any{}))
	session := out["session"].(map[string]any)
	gs := num(session["gsSeq"])
	if session["roomId"] != guide.RoomID(gs) || num(out["mate"].(map[string]any)["id"]) != mate.ID {
		t.Fatalf("match: %v", out)
	}
	ev := events.next("guideRequest")
	if num(ev["gsSeq"]) != gs || ev["message"] != "가이드 요청이 도착했습니다." {
		t.Fatalf("pushed request: %v", ev)
	}

	user.want(403, user.do("POST", "/guide/create", map[string]any{"gsSeq": gs}))
	out = mc.want(200, mc.do("POST", "/guide/create", map[string]any{"gsSeq": fmt.Sprint(gs)}))
	if out["roomId"] != guide.RoomID(gs) || out["token"] == "" {
		t.Fatalf("create: %v", out)
	}
	out = user.want(200, user.do("POST", "/guide/begin", map[string]any{"gsSeq": gs}))
	gh := num(out["ghSeq"])
	if num(out["ticketsLeft"]) != 1 || num(out["remainingSeconds"]) != 600 {
		t.Fatalf("begin: %v", out)
	}
	events.next("guideBegun")
	out = mc.want(200, mc.do("GET", fmt.Sprintf("/guide/session/%d", gs), nil))
	if num(out["ghSeq"]) != gh || out["valid"] != true || out["status"] != "active" {
		t.Fatalf("check: %v", out)
	}
	h.live(h.account(userID), mate, gs, 5*time.Minute)
	out = user.want(200, user.do("POST", "/guide/extend", map[string]any{"gsSeq": gs}))
	if num(out["ticketsLeft"]) != 0 || num(out["history"].(map[string]any)["ticketsUsed"]) != 2 {
		t.Fatalf("extend: %v", out)
	}
	events.next("guideExtended")
	out = mc.want(200, mc.do("POST", "/guide/complete", map[string]any{"gsSeq": gs}))
	if out["alreadyCompleted"] != false || out["history"].(map[string]any)["endReason"] != "mateEnded" {
		t.Fatalf("complete: %v", out)
	}
	ended := events.next("guideEnded")
	if ended["reason"] != "mateEnded" || num(ended["durationSeconds"]) != 300 {
		t.Fatalf("ended: %v", ended)
	}
	out = user.want(200, user.do("POST", "/guide/complete", map[string]any{"gsSeq": gs}))
	if out["alreadyCompleted"] != true {
		t.Fatalf("second complete: %v", out)
	}
	out = user.want(200, user.do("GET", fmt.Sprintf("/guide/session/%d", gs), nil))
	if num(out["ghSeq"]) != 0 || out["valid"] != false {
		t.Fatalf("check after: %v", out)
	}
	user.want(200, user.do("POST", "/guide/session/delete", map[string]any{"gsSeq": gs}))
	out = mc.want(200, mc.do("POST", "/guide/crm", map[string]any{"ghSeq": gh, "note": "배관 점검 안내"}))
	if out["crm"].(map[string]any)["note"] != "배관 점검 안내" || num(out["crm"].(map[string]any)["ticketsUsed"]) != 2 {
		t.Fatalf("crm: %v", out)
	}
	out = user.want(200, user.do("GET", fmt.Sprintf("/guide/crm/%d", gh), nil))
	if out["crm"].(map[string]any)["endReason"] != "mateEnded" {
		t.Fatalf("crm record: %v", out)
	}
	user.want(400, user.do("POST", "/eval", map[string]any{"ghSeq": gh, "stars": 9}))
	out = user.want(200, user.do("POST", "/eval", map[string]any{"ghSeq": gh, "stars": 5, "comment": "최고"}))
	if m := out["mate"].(map[string]any); m["rating"] != 5.0 || num(m["rank"]) != 1 {
		t.Fatalf("eval: %v", out)
	}
	user.want(409, user.do("POST", "/eval", map[string]any{"ghSeq": gh, "stars": 5}))
	out = anon.want(200, anon.do("GET", "/guide/mates/top?limit=5", nil))
	if mates := out["mates"].([]any); len(mates) != 1 || num(mates[0].(map[string]any)["rank"]) != 1 {
		t.Fatalf("top: %v", out)
	}
}

func TestHTTPRefusals(t *testing.T) {
	h := newHarness(t)
	// Every refusal is also checked against openapi.yaml.
	srv := httptest.NewServer(conformant(t, h.svc.Handler()))
	t.Cleanup(srv.Close) // after the event streams' cleanups close them
	u := h.user("u", 1)
	tok, _, _ := h.svc.IssueToken(u)
	c := &client{t: t, base: srv.URL}
	for _, bad := range []string{"", "garbage", tok + "x", tok[:20]} {
		c.token = bad
		if out := c.want(401, c.do("GET", "/guide/me", nil)); out["reason"] != "unauthorized" {
			t.Fatalf("token %q: %v", bad, out)
		}
	}
	c.token = tok
	c.want(200, c.do("GET", "/guide/me", nil))
	c.want(405, c.do("GET", "/guide/match", nil))
	c.want(404, c.do("GET", "/guide/nothing", nil))
	c.want(404, c.do("GET", "/guide/session/abc", nil))
	c.want(404, c.do("GET", "/guide/session/999", nil))
	c.want(400, c.do("POST", "/guide/begin", map[string]any{"gsSeq": "x"}))
	c.want(400, c.do("POST", "/guide/begin", map[string]any{}))
	big := map[string]string{"note": strings.Repeat("가", 40000)}
	c.want(413, c.do("POST", "/guide/crm", big))
	c.want(403, c.do("POST", "/guide/availability", map[string]string{"availability": "available"}))
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(h.svc.Handler())
	t.Cleanup(srv.Close) // after the event streams' cleanups close them
	resp, err := http.Get(srv.URL + "/guide/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	src, err := readSource("api.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`route\(http\.Method(\w+), "([^"]+)"`).FindAllStringSubmatch(src, -1)
	if len(routes) < 20 {
		t.Fatalf("found only %d routes", len(routes))
	}
	for _, r := range routes {
		ops, ok := doc.Paths[r[2]]
		if !ok {
			t.Errorf("%s missing from openapi.yaml", r[2])
			continue
		}
		if _, ok := ops[strings.ToLower(r[1])]; !ok {
			t.Errorf("%s %s missing from openapi.yaml", r[1], r[2])
		}
	}
}

func readSource(name string) (string, error) {
	b, err := readFile(name)
	return string(b), err
}

// eventStream reads /guide/events.
type eventStream struct {
	t  *testing.T
	ch chan map[string]any
}

func openEvents(t *testing.T, base, token string) *eventStream {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/guide/events?token="+token, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &eventStream{t: t, ch: make(chan map[string]any, 64)}
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	// The stream is subscribed once its first comment arrives.
	for sc.Scan() && sc.Text() != ": connected" {
	}
	go func() {
		defer close(s.ch)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev map[string]any
				if json.Unmarshal([]byte(data), &ev) == nil {
					s.ch <- ev
				}
			}
		}
	}()
	return s
}

func (s *eventStream) next(typ string) map[string]any {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				s.t.Fatalf("event stream closed waiting for %s", typ)
			}
			if ev["type"] == typ {
				return ev
			}
		case <-deadline:
			s.t.Fatalf("no %s event", typ)
		}
	}
}

// TestLoginThrottled: /guide/login reserves a password check before it
// runs, as the counseling login does: of 30 wrong passwords sent at once
// exactly 10 are checked (401), the rest are refused unchecked (429 with
// Retry-After), and then the right password is refused too until the
// window ends.
func TestLoginThrottled(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(conformant(t, h.svc.Handler()))
	t.Cleanup(srv.Close)
	h.user("guessed", 1)
	post := func(password string) *http.Response {
		body := fmt.Sprintf(`{"loginName":"guessed","password":%q}`, password)
		resp, err := http.Post(srv.URL+"/guide/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return nil
		}
		resp.Body.Close()
		return resp
	}
	var codes sync.Map
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if resp := post("wrong"); resp != nil {
				n, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	wg.Wait()
	count := func(code int) int64 {
		if n, ok := codes.Load(code); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	if count(401) != 10 || count(429) != 20 {
		t.Fatalf("30 parallel wrong passwords: %d checked (401), %d throttled (429); want 10 and 20", count(401), count(429))
	}
	if resp := post("password-guessed"); resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("right password after the throttle: %v", resp)
	}
}
