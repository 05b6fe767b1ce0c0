package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
)

// pushed is one delivery the guide webhook made to the push gateway.
type pushed struct {
	AccountID int64 `json:"accountId"`
	Event     struct {
		Type   string `json:"type"`
		GsSeq  int64  `json:"gsSeq"`
		Reason string `json:"reason"`
		// RemainingSeconds is the server's clock, rounded to the second.
		RemainingSeconds int `json:"remainingSeconds"`
	} `json:"event"`
}

// pushGateway is a mobile-push gateway stand-in that checks every
// delivery's signature with the shared secret and keeps it.
type pushGateway struct {
	URL        string
	deliveries chan pushed
	backlog    []pushed // received, not yet awaited
}

func startPushGateway(t *testing.T, secret string) *pushGateway {
	t.Helper()
	g := &pushGateway{deliveries: make(chan pushed, 64)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if r.Header.Get("X-Cstalk-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			t.Errorf("push with a bad signature: %s", body)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p pushed
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("push %s: %v", body, err)
			return
		}
		g.deliveries <- p
	}))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// await returns the first delivery of type typ to account, in arrival
// order, keeping the others for later awaits.
func (g *pushGateway) await(t *testing.T, account int64, typ string) pushed {
	t.Helper()
	match := func(p pushed) bool { return p.AccountID == account && p.Event.Type == typ }
	for i, p := range g.backlog {
		if match(p) {
			g.backlog = append(g.backlog[:i], g.backlog[i+1:]...)
			return p
		}
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case p := <-g.deliveries:
			if match(p) {
				return p
			}
			g.backlog = append(g.backlog, p)
		case <-timeout:
			t.Fatalf("no %s push to account %d", typ, account)
		}
	}
}

// guideCall makes one guide API call and decodes the answer; non-2xx fails.
func guideCall(t *testing.T, base, path, token string, body any, answer any) {
	t.Helper()
	var rd io.Reader = http.NoBody
	method := http.MethodGet
	if body != nil {
		b, _ := json.Marshal(body)
		rd, method = bytes.NewReader(b), http.MethodPost
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
	}
	if answer != nil {
		if err := json.Unmarshal(raw, answer); err != nil {
			t.Fatalf("%s: %s: %v", path, raw, err)
		}
	}
}

func guideLogin(t *testing.T, base, login string) (token string, id int64) {
	t.Helper()
	var a struct {
		Token   string `json:"token"`
		Account struct {
			ID int64 `json:"id"`
		} `json:"account"`
	}
	guideCall(t, base, "/guide/login", "", map[string]string{"loginName": login, "password": "demo1234"}, &a)
	return a.Token, a.Account.ID
}

// TestServeGuideSettingsAndWebhook checks that the guide flags reach the
// running guide service: every push of a guide goes, signed, to the
// --guide-webhook-url gateway, a ticket lasts --guide-ticket-duration and
// the warning comes --guide-warn-before its end.
func TestServeGuideSettingsAndWebhook(t *testing.T) {
	const secret = "push-gateway-secret-0123"
	gateway := startPushGateway(t, secret)
	cfg := testConfig(t)
	cfg.GuideWebhookURL, cfg.GuideWebhookSecret = gateway.URL, secret
	cfg.GuideTicketDuration, cfg.GuideWarnBefore = 16*time.Second, 15*time.Second
	node := startNode(t, cfg)
	base := "http://" + node.ln.Addr().String()

	userToken, userID := guideLogin(t, base, "guide-user1")
	mateToken, mateID := guideLogin(t, base, "guide-mate1")
	guideCall(t, base, "/guide/availability", mateToken, map[string]string{"availability": "available"}, nil)

	var asked struct {
		Session struct {
			GsSeq int64 `json:"gsSeq"`
		} `json:"session"`
	}
	guideCall(t, base, "/guide/match", userToken, map[string]int64{"friendId": mateID}, &asked)
	gsSeq := asked.Session.GsSeq
	if p := gateway.await(t, mateID, "guideRequest"); p.Event.GsSeq != gsSeq {
		t.Fatalf("guideRequest for %d, want %d", p.Event.GsSeq, gsSeq)
	}
	guideCall(t, base, "/guide/create", mateToken, map[string]int64{"gsSeq": gsSeq}, nil)
	gateway.await(t, userID, "guideApproved")
	guideCall(t, base, "/guide/begin", userToken, map[string]int64{"gsSeq": gsSeq}, nil)
	for _, id := range []int64{userID, mateID} {
		begun := gateway.await(t, id, "guideBegun")
		if got := begun.Event.RemainingSeconds; got != 16 {
			t.Fatalf("a ticket lasts %ds, want the configured 16s", got)
		}
	}
	for _, id := range []int64{userID, mateID} {
		warning := gateway.await(t, id, "guideWarning")
		if left := warning.Event.RemainingSeconds; left != 15 {
			t.Fatalf("warned %ds before the end, want the configured 15s", left)
		}
	}
	guideCall(t, base, "/guide/complete", userToken, map[string]int64{"gsSeq": gsSeq}, nil)
	for _, id := range []int64{userID, mateID} {
		if ended := gateway.await(t, id, "guideEnded"); ended.Event.Reason != "userEnded" {
			t.Fatalf("guideEnded reason %q", ended.Event.Reason)
		}
	}
	if code, body := getBody(t, base+"/guide"); code != http.StatusOK || !strings.Contains(body, "<html") {
		t.Fatalf("/guide page: %d", code)
	}
	node.drain()
	node.awaitRun(t, 15*time.Second)
}

// sseStream reads one account's /guide/events.
type sseStream struct {
	t    *testing.T
	body io.ReadCloser
	rd   *bufio.Reader
}

// openEvents opens the stream and returns once the server has subscribed
// it (the ": connected" comment comes after the subscription).
func openEvents(t *testing.T, base, token string) *sseStream {
	t.Helper()
	resp, err := http.Get(base + "/guide/events?token=" + token)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/guide/events: %v %v", resp, err)
	}
	s := &sseStream{t: t, body: resp.Body, rd: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { resp.Body.Close() })
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("/guide/events: %v", err)
		}
		if strings.HasPrefix(line, ": connected") {
			return s
		}
	}
}

// next returns the next event's type and data; a stream silent for 20 s
// is closed by the cleanup's deadline and fails the test.
func (s *sseStream) next() (typ string, data map[string]any) {
	s.t.Helper()
	timer := time.AfterFunc(20*time.Second, func() { s.body.Close() })
	defer timer.Stop()
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			s.t.Fatalf("waiting for a guide event: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &data); err != nil {
				s.t.Fatalf("event data %q: %v", line, err)
			}
		case line == "" && typ != "":
			return typ, data
		}
	}
}

// TestClusterGuideEvents: the user's calls go to node A and the mate's to
// node B, as a load balancer may send them; each side's event stream
// hears every step of the guide, whichever node took it.
func TestClusterGuideEvents(t *testing.T) {
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	a := startClusterNode(t, "a", cfg)
	b := startClusterNode(t, "b", cfg)

	userToken, _ := guideLogin(t, a.base, "guide-user1")
	mateToken, mateID := guideLogin(t, b.base, "guide-mate1")
	userEvents := openEvents(t, a.base, userToken)
	mateEvents := openEvents(t, b.base, mateToken)
	guideCall(t, b.base, "/guide/availability", mateToken, map[string]string{"availability": "available"}, nil)

	var asked struct {
		Session struct {
			GsSeq int64 `json:"gsSeq"`
		} `json:"session"`
	}
	guideCall(t, a.base, "/guide/match", userToken, map[string]int64{"friendId": mateID}, &asked)
	expect := func(name string, s *sseStream, want string) map[string]any {
		t.Helper()
		typ, data := s.next()
		if typ != want || int64(data["gsSeq"].(float64)) != asked.Session.GsSeq {
			t.Fatalf("%s heard %s %v, want %s of guide %d", name, typ, data, want, asked.Session.GsSeq)
		}
		return data
	}
	expect("mate on B", mateEvents, "guideRequest")
	guideCall(t, b.base, "/guide/create", mateToken, map[string]int64{"gsSeq": asked.Session.GsSeq}, nil)
	if approved := expect("user on A", userEvents, "guideApproved"); approved["token"] == "" {
		t.Fatal("guideApproved without a video token")
	}
	guideCall(t, a.base, "/guide/begin", userToken, map[string]int64{"gsSeq": asked.Session.GsSeq}, nil)
	expect("user on A", userEvents, "guideBegun")
	expect("mate on B", mateEvents, "guideBegun")
	guideCall(t, b.base, "/guide/complete", mateToken, map[string]int64{"gsSeq": asked.Session.GsSeq}, nil)
	for name, s := range map[string]*sseStream{"user on A": userEvents, "mate on B": mateEvents} {
		if ended := expect(name, s, "guideEnded"); ended["reason"] != "mateEnded" {
			t.Fatalf("%s: guideEnded %v", name, ended)
		}
	}
}
