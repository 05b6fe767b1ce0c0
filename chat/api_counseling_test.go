package chat_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// The REST side of routing, reply templates, transcripts and figures, on
// both backends, every answer checked against openapi.yaml.
func TestCounselingAPI(t *testing.T) {
	for _, b := range apiBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			env := newAPIEnv(t, b.dsn(t))
			admin := httptest.NewServer(conformant(t, env.svc.AdminAPIHandler()))
			t.Cleanup(admin.Close)
			c := &counselingCalls{env: env, admin: admin}
			t.Run("status", c.status)
			t.Run("capacityAndSettings", c.capacityAndSettings)
			t.Run("canned", c.canned)
			t.Run("transcript", c.transcript)
			t.Run("stats", c.stats)
		})
	}
}

type counselingCalls struct {
	env   *apiEnv
	admin *httptest.Server
}

// call sends a JSON body (or none) to the API, or to the admin API for
// paths under /api/admin/.
func (c *counselingCalls) call(method, path, token, body string, extra ...string) (*http.Response, []byte) {
	c.env.t.Helper()
	saved := c.env.srv
	if strings.HasPrefix(path, "/api/admin/") {
		c.env.srv = c.admin
		defer func() { c.env.srv = saved }()
	}
	h := apiBearer(token)
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return c.env.request(method, path, strings.NewReader(body), h)
}

func (c *counselingCalls) ok(t *testing.T, status int, method, path, token, body string, v any) {
	t.Helper()
	resp, got := c.call(method, path, token, body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, status, got)
	}
	if v != nil {
		if err := json.Unmarshal(got, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, got)
		}
	}
}

func (c *counselingCalls) status(t *testing.T) {
	env := c.env
	agent := env.token("agent1")
	var me struct {
		ID       int64  `json:"id"`
		Status   string `json:"status"`
		Capacity int    `json:"capacity"`
	}
	c.ok(t, 200, http.MethodGet, "/api/me", agent, "", &me)
	if me.Status != "OFFLINE" || me.Capacity != 5 {
		t.Fatalf("a new member: %+v", me)
	}
	c.ok(t, 200, http.MethodPut, "/api/me/status", agent, `{"status":"AVAILABLE"}`, &me)
	if me.Status != "AVAILABLE" {
		t.Fatalf("after PUT: %+v", me)
	}
	for _, bad := range []string{`{"status":"BUSY"}`, `{}`, `not json`, `{"status":"available"}`} {
		resp, body := c.call(http.MethodPut, "/api/me/status", agent, bad)
		wantAPIError(t, resp, body, 400, "status는 AVAILABLE, AWAY, OFFLINE 중 하나여야 합니다.")
	}
	resp, body := c.call(http.MethodPut, "/api/me/status", "", `{"status":"AWAY"}`)
	wantAPIError(t, resp, body, 401, "")
	resp, body = c.call(http.MethodPost, "/api/me/status", agent, `{"status":"AWAY"}`)
	wantAPIError(t, resp, body, 405, "")
	if resp.Header.Get("Allow") != "PUT" {
		t.Fatalf("Allow %q", resp.Header.Get("Allow"))
	}

	// The team sees it OFFLINE: no console is connected here.
	var list struct {
		Members []chat.MemberState `json:"members"`
	}
	c.ok(t, 200, http.MethodGet, "/api/members", agent, "", &list)
	logins := []string{}
	for _, m := range list.Members {
		logins = append(logins, m.LoginName)
		if m.LoginName == "agent1" && (m.Status != chat.MemberOffline || m.SpeakerID == 0) {
			t.Fatalf("agent1 without a console: %+v", m)
		}
	}
	if strings.Join(logins, ",") != "agent1,agent2,admin1" {
		t.Fatalf("members of company 1: %v", logins)
	}
}

func (c *counselingCalls) capacityAndSettings(t *testing.T) {
	env := c.env
	admin, agent := env.token("admin1"), env.token("agent1")
	agent2 := env.member("agent2")
	var state chat.MemberState
	c.ok(t, 200, http.MethodPut, fmt.Sprintf("/api/admin/members/%d", agent2.ID), admin, `{"capacity":3}`, &state)
	if state.ID != agent2.ID || state.Capacity != 3 {
		t.Fatalf("capacity: %+v", state)
	}
	for _, bad := range []string{`{"capacity":-1}`, `{"capacity":101}`, `{}`, `{"capacity":"3"}`} {
		resp, body := c.call(http.MethodPut, fmt.Sprintf("/api/admin/members/%d", agent2.ID), admin, bad)
		wantAPIError(t, resp, body, 400, "capacity는 0부터 100 사이의 숫자여야 합니다.")
	}
	resp, body := c.call(http.MethodPut, fmt.Sprintf("/api/admin/members/%d", agent2.ID), agent, `{"capacity":9}`)
	wantAPIError(t, resp, body, 403, "관리자만 사용할 수 있습니다.")
	other := env.member("agent3") // company 2
	resp, body = c.call(http.MethodPut, fmt.Sprintf("/api/admin/members/%d", other.ID), admin, `{"capacity":9}`)
	wantAPIError(t, resp, body, 404, "상담사를 찾을 수 없습니다.")
	if m := env.member("agent3"); m.Capacity != chat.DefaultCapacity {
		t.Fatalf("another company's member changed: %+v", m)
	}

	var settings struct {
		AutoAssign bool `json:"autoAssign"`
	}
	c.ok(t, 200, http.MethodGet, "/api/admin/settings", admin, "", &settings)
	if !settings.AutoAssign {
		t.Fatal("demo company 1 routes automatically")
	}
	c.ok(t, 200, http.MethodPut, "/api/admin/settings", admin, `{"autoAssign":false}`, &settings)
	if settings.AutoAssign {
		t.Fatal("autoAssign still on")
	}
	resp, body = c.call(http.MethodPut, "/api/admin/settings", admin, `{"autoAssign":"yes"}`)
	wantAPIError(t, resp, body, 400, "autoAssign(true 또는 false)이나 recordCalls(true, false 또는 기본값 null)를 JSON으로 보내 주세요.")
	resp, body = c.call(http.MethodPut, "/api/admin/settings", agent, `{"autoAssign":true}`)
	wantAPIError(t, resp, body, 403, "")
	c.ok(t, 200, http.MethodPut, "/api/admin/settings", admin, `{"autoAssign":true}`, &settings)
	if co, _ := env.store.Company(env.ctx, 2); co.AutoAssign {
		t.Fatal("company 2's setting changed")
	}

	// Recording: the server's default (off here) until the company
	// chooses; null goes back to the default.
	var rec struct {
		AutoAssign  bool  `json:"autoAssign"`
		RecordCalls bool  `json:"recordCalls"`
		Choice      *bool `json:"recordCallsChoice"`
	}
	c.ok(t, 200, http.MethodGet, "/api/admin/settings", admin, "", &rec)
	if rec.RecordCalls || rec.Choice != nil {
		t.Fatalf("recording before a choice: %+v", rec)
	}
	c.ok(t, 200, http.MethodPut, "/api/admin/settings", admin, `{"recordCalls":true}`, &rec)
	if !rec.RecordCalls || rec.Choice == nil || !*rec.Choice || !rec.AutoAssign {
		t.Fatalf("recording switched on: %+v", rec)
	}
	if on, err := env.svc.RecordsCalls(env.ctx, 1); err != nil || !on {
		t.Fatalf("company 1 records: %v %v", on, err)
	}
	if on, err := env.svc.RecordsCalls(env.ctx, 2); err != nil || on {
		t.Fatalf("company 2 records: %v %v", on, err)
	}
	for _, bad := range []string{`{"recordCalls":"yes"}`, `{}`, `{"recordCall":true}`, `{"autoAssign":null}`} {
		resp, body = c.call(http.MethodPut, "/api/admin/settings", admin, bad)
		wantAPIError(t, resp, body, 400, "")
	}
	c.ok(t, 200, http.MethodPut, "/api/admin/settings", admin, `{"recordCalls":null}`, &rec)
	if rec.RecordCalls || rec.Choice != nil {
		t.Fatalf("recording back to the default: %+v", rec)
	}
}

func (c *counselingCalls) canned(t *testing.T) {
	env := c.env
	admin, agent := env.token("admin1"), env.token("agent1")
	var list struct {
		CannedResponses []chat.CannedJSON `json:"cannedResponses"`
	}
	c.ok(t, 200, http.MethodGet, "/api/canned-responses", agent, "", &list)
	if len(list.CannedResponses) != 4 {
		t.Fatalf("demo templates: %+v", list)
	}
	var added chat.CannedJSON
	c.ok(t, 201, http.MethodPost, "/api/canned-responses", admin, `{"shortcut":"/Bill","title":"","text":"  요금 안내입니다.  "}`, &added)
	if added.ID == 0 || added.Shortcut != "bill" || added.Title != "bill" || added.Text != "요금 안내입니다." || added.CreateDate == "" {
		t.Fatalf("added %+v", added)
	}
	resp, body := c.call(http.MethodPost, "/api/canned-responses", admin, `{"shortcut":"BILL","text":"again"}`)
	wantAPIError(t, resp, body, 409, "이미 사용 중인 단축어입니다.")
	for _, bad := range []string{`{"shortcut":"two words","text":"x"}`, `{"shortcut":"","text":"x"}`, `{"shortcut":"ok","text":""}`,
		`{"shortcut":"` + strings.Repeat("가", 33) + `","text":"x"}`, `{"shortcut":"ok","text":"` + strings.Repeat("a", 4001) + `"}`, `[]`} {
		resp, body := c.call(http.MethodPost, "/api/canned-responses", admin, bad)
		wantAPIError(t, resp, body, 400, "")
	}
	resp, body = c.call(http.MethodPost, "/api/canned-responses", agent, `{"shortcut":"mine","text":"x"}`)
	wantAPIError(t, resp, body, 403, "관리자만 사용할 수 있습니다.")
	var updated chat.CannedJSON
	c.ok(t, 200, http.MethodPut, fmt.Sprintf("/api/canned-responses/%d", added.ID), admin, `{"shortcut":"bill","title":"요금","text":"바뀐 안내"}`, &updated)
	if updated.Text != "바뀐 안내" || updated.Title != "요금" {
		t.Fatalf("updated %+v", updated)
	}
	// Company 2's administrator neither sees nor touches it.
	boss2, err := env.svc.AddMember(env.ctx, 2, "boss2", "password2", "", true)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := env.svc.IssueToken(boss2)
	resp, body = c.call(http.MethodPut, fmt.Sprintf("/api/canned-responses/%d", added.ID), other, `{"shortcut":"x","text":"x"}`)
	wantAPIError(t, resp, body, 404, "상용구를 찾을 수 없습니다.")
	resp, body = c.call(http.MethodDelete, fmt.Sprintf("/api/canned-responses/%d", added.ID), other, "")
	wantAPIError(t, resp, body, 404, "")
	var theirs struct {
		CannedResponses []chat.CannedJSON `json:"cannedResponses"`
	}
	c.ok(t, 200, http.MethodGet, "/api/canned-responses", other, "", &theirs)
	for _, cr := range theirs.CannedResponses {
		if cr.ID == added.ID {
			t.Fatal("company 2 lists company 1's template")
		}
	}
	resp, body = c.call(http.MethodDelete, fmt.Sprintf("/api/canned-responses/%d", added.ID), agent, "")
	wantAPIError(t, resp, body, 403, "")
	c.ok(t, 204, http.MethodDelete, fmt.Sprintf("/api/canned-responses/%d", added.ID), admin, "", nil)
	resp, body = c.call(http.MethodDelete, fmt.Sprintf("/api/canned-responses/%d", added.ID), admin, "")
	wantAPIError(t, resp, body, 404, "")
	resp, body = c.call(http.MethodGet, "/api/canned-responses/1", admin, "")
	wantAPIError(t, resp, body, 405, "")
	if allow := resp.Header.Get("Allow"); allow != "PUT, DELETE" {
		t.Fatalf("Allow %q", allow)
	}
}

func (c *counselingCalls) transcript(t *testing.T) {
	env := c.env
	agent := env.member("agent1")
	cust, room := env.customerRoom(1, "4401", `<script>alert("name")</script>`)
	if _, _, err := env.store.AssignRoom(env.ctx, room.ID, agent.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC) // 10:02:03 in Seoul
	say := func(m *chat.Message, when time.Time) *chat.Message {
		m.CreateDate = when
		return env.appendMessage(m)
	}
	csp, err := env.store.CustomerSpeaker(env.ctx, cust)
	if err != nil {
		t.Fatal(err)
	}
	asp, err := env.store.MemberSpeaker(env.ctx, agent)
	if err != nil {
		t.Fatal(err)
	}
	customerLine := func(text string) *chat.Message {
		return &chat.Message{RoomID: room.ID, SpeakerID: csp.ID, SpeakerName: cust.Name, Body: text, IsCustomer: true}
	}
	agentLine := func(text string, note int) *chat.Message {
		return &chat.Message{RoomID: room.ID, SpeakerID: asp.ID, SpeakerName: agent.Name, Body: text, IsEmployee: true, AdminType: note}
	}
	say(customerLine("<img src=x onerror=alert(1)>\n[2026-01-01 00:00:00] 상담사1: 가짜 줄"), at)
	say(agentLine("체납 확인 필요", 1), at.Add(time.Minute))
	gone := say(agentLine("지울 말", 0), at.Add(2*time.Minute))
	if _, err := env.store.DeleteMessage(env.ctx, gone.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	say(&chat.Message{RoomID: room.ID, SpeakerID: csp.ID, SpeakerName: cust.Name, Type: 1, Detail: "/files/1/1/0123456789abcdef0123456789abcdef.png", IsCustomer: true}, at.Add(3*time.Minute))

	token := env.token("agent1")
	path := fmt.Sprintf("/api/rooms/%d/transcript", room.ID)
	resp, body := c.call(http.MethodGet, path, token, "")
	text := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), fmt.Sprintf(`filename="room-%d.txt"`, room.ID)) {
		t.Fatalf("text transcript: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}
	for _, want := range []string{
		"상담 기록 #", "회사: 서울도시가스", "담당 상담사: 상담사1 (agent1)", "시간대: Asia/Seoul",
		`[2026-11-23 10:02:03] <script>alert("name")</script>: <img src=x onerror=alert(1)>` + "\n    [2026-01-01 00:00:00] 상담사1: 가짜 줄",
		"[2026-11-23 10:04:03] 상담사1: (삭제된 메시지)",
		"[2026-11-23 10:05:03] (이미지) <script>",
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("text transcript lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "체납") || strings.Contains(text, "지울 말") {
		t.Fatalf("note or deleted text in the transcript:\n%s", text)
	}
	resp, body = c.call(http.MethodGet, path+"?includeNotes=1", token, "", "Accept-Language", "en")
	if !strings.Contains(string(body), "[2026-11-23 10:03:03] (internal note) 상담사1: 체납 확인 필요") || !strings.Contains(string(body), "Counselor: 상담사1") {
		t.Fatalf("English transcript with notes:\n%s", body)
	}

	resp, body = c.call(http.MethodGet, path+"?format=html&includeNotes=1", token, "")
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		resp.Header.Get("Content-Security-Policy") != chat.TranscriptCSP || !strings.Contains(chat.TranscriptCSP, "default-src 'none'") {
		t.Fatalf("html transcript: %d %v", resp.StatusCode, resp.Header)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, "<img src=x") ||
		!strings.Contains(page, "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;") || !strings.Contains(page, "&lt;img src=x onerror=alert(1)&gt;") ||
		!strings.Contains(page, "체납 확인 필요") || !strings.Contains(page, `<a href="/files/1/1/0123456789abcdef0123456789abcdef.png">`) {
		t.Fatalf("html transcript:\n%s", page)
	}
	resp, body = c.call(http.MethodGet, path+"?format=pdf", token, "")
	wantAPIError(t, resp, body, 400, "format은 text 또는 html이어야 합니다.")
	resp, body = c.call(http.MethodGet, path, "", "")
	wantAPIError(t, resp, body, 401, "")
	// Another company's member: as if the room did not exist.
	resp, body = c.call(http.MethodGet, path, env.token("agent3"), "")
	wantAPIError(t, resp, body, 404, "상담방을 찾을 수 없습니다.")
}

func (c *counselingCalls) stats(t *testing.T) {
	env := c.env
	seoul, _ := time.LoadLocation("Asia/Seoul")
	d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, seoul)
	at := func(day, h, m, s int) time.Time {
		return d1.AddDate(0, 0, day).Add(time.Duration(h*3600+m*60+s) * time.Second)
	}
	agent1, agent2 := env.member("agent1"), env.member("agent2")
	open := func(company int64, number string, created time.Time) (*chat.Room, int64) {
		cu, err := env.store.EnsureCustomer(env.ctx, company, number, "고객"+number)
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := env.store.OpenRoom(env.ctx, cu, created)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := env.store.CustomerSpeaker(env.ctx, cu)
		if err != nil {
			t.Fatal(err)
		}
		return r, sp.ID
	}
	write := func(r *chat.Room, speaker int64, member bool, when time.Time, note int) {
		env.appendMessage(&chat.Message{RoomID: r.ID, SpeakerID: speaker, SpeakerName: "x", Body: "x",
			IsCustomer: !member, IsEmployee: member, AdminType: note, CreateDate: when})
	}
	speaker := func(m *chat.Member) int64 {
		sp, err := env.store.MemberSpeaker(env.ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return sp.ID
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Room A: first response 60 s, handled 600 s by agent1, reviewed 5 (day 1).
	a, ac := open(1, "5501", at(0, 10, 0, 0))
	write(a, ac, false, at(0, 10, 0, 0), 0)
	_, _, err := env.store.AssignRoom(env.ctx, a.ID, agent1.ID, at(0, 10, 0, 30))
	must(err)
	write(a, speaker(agent1), true, at(0, 10, 1, 0), 0)
	_, _, err = env.store.EndRoom(env.ctx, a.ID, at(0, 10, 10, 30))
	must(err)
	must(env.store.SetReview(env.ctx, a.ID, 5, at(0, 10, 11, 0)))
	// Room B: agent2 answers in 120 s (day 1), ends the next day after
	// 22 hours, reviewed 3 (day 2).
	b, bc := open(1, "5502", at(0, 11, 0, 0))
	write(b, bc, false, at(0, 11, 0, 0), 0)
	_, _, err = env.store.AssignRoom(env.ctx, b.ID, agent2.ID, at(0, 11, 0, 10))
	must(err)
	write(b, speaker(agent2), true, at(0, 11, 2, 0), 0)
	_, _, err = env.store.EndRoom(env.ctx, b.ID, at(1, 9, 0, 10))
	must(err)
	must(env.store.SetReview(env.ctx, b.ID, 3, at(1, 9, 5, 0)))
	// Room C (day 2): agent1 answers in 30 s, writes a note; still open.
	cr, cc := open(1, "5503", at(1, 10, 0, 0))
	write(cr, cc, false, at(1, 10, 0, 0), 0)
	_, _, err = env.store.AssignRoom(env.ctx, cr.ID, agent1.ID, at(1, 10, 0, 0))
	must(err)
	write(cr, speaker(agent1), true, at(1, 10, 0, 30), 0)
	write(cr, speaker(agent1), true, at(1, 10, 0, 40), 1)
	// Company 2 is busy too, unseen.
	o, oc := open(2, "5504", at(0, 9, 0, 0))
	write(o, oc, false, at(0, 9, 0, 0), 0)

	var st chat.Stats
	c.ok(t, 200, http.MethodGet, "/api/admin/stats?from=2026-11-20&to=2026-11-21", env.token("admin1"), "", &st)
	f := func(v *float64) string {
		if v == nil {
			return "null"
		}
		return fmt.Sprint(*v)
	}
	show := func(x chat.Figures) string {
		return fmt.Sprintf("handled=%d fr=%s handling=%s csat=%s/%d messages=%d", x.RoomsHandled, f(x.MedianFirstResponseSeconds),
			f(x.MedianHandlingSeconds), f(x.CsatAverage), x.CsatCount, x.Messages)
	}
	if got, want := show(st.Company), "handled=2 fr=60 handling=39900 csat=4/2 messages=6"; got != want || st.Zone != "Asia/Seoul" || st.From != "2026-11-20" {
		t.Fatalf("company: %s, want %s (%+v)", got, want, st)
	}
	members := map[string]string{}
	for _, m := range st.Members {
		members[m.LoginName] = show(m.Figures)
	}
	want := map[string]string{
		"agent1": "handled=1 fr=45 handling=600 csat=5/1 messages=2",
		"agent2": "handled=1 fr=120 handling=79200 csat=3/1 messages=1",
		"admin1": "handled=0 fr=null handling=null csat=null/0 messages=0",
	}
	if fmt.Sprint(members) != fmt.Sprint(want) {
		t.Fatalf("members:\n%v\nwant\n%v", members, want)
	}
	if len(st.Days) != 2 || st.Days[0].Date != "2026-11-20" || show(st.Days[0].Figures) != "handled=1 fr=90 handling=600 csat=5/1 messages=4" ||
		show(st.Days[1].Figures) != "handled=1 fr=30 handling=79200 csat=3/1 messages=2" {
		t.Fatalf("days: %s / %s", show(st.Days[0].Figures), show(st.Days[1].Figures))
	}
	// A day without anything.
	c.ok(t, 200, http.MethodGet, "/api/admin/stats?from=2026-11-22&to=2026-11-22", env.token("admin1"), "", &st)
	if show(st.Company) != "handled=0 fr=null handling=null csat=null/0 messages=0" || len(st.Days) != 1 {
		t.Fatalf("empty day: %s", show(st.Company))
	}
	for _, bad := range []string{"from=2026-11-21&to=2026-11-20", "from=2026-01-01&to=2026-12-31", "from=yesterday", "to=2026-13-01"} {
		resp, body := c.call(http.MethodGet, "/api/admin/stats?"+bad, env.token("admin1"), "")
		wantAPIError(t, resp, body, 400, "from과 to는 YYYY-MM-DD 날짜이며, from이 to보다 늦을 수 없고 기간은 최대 92일입니다.")
	}
	resp, body := c.call(http.MethodGet, "/api/admin/stats", env.token("agent1"), "")
	wantAPIError(t, resp, body, 403, "")
	c.ok(t, 200, http.MethodGet, "/api/admin/stats", env.token("admin1"), "", &st)
	if len(st.Days) != 7 {
		t.Fatalf("default period: %d days", len(st.Days))
	}
}
