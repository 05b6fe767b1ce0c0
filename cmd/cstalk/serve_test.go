package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/store"
)

func testConfig(t *testing.T) serveConfig {
	t.Helper()
	dir := t.TempDir()
	cfg := defaultServeConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DB = "sqlite:" + filepath.Join(dir, "cstalk.db")
	cfg.UploadDir = filepath.Join(dir, "uploads")
	cfg.Demo = true
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeDemo runs a whole node in-process as `cstalk serve --demo` would,
// talks to it as a counselor and a customer, then drains it: the connected
// customer is told why it is being closed and Run returns cleanly.
func TestServeDemo(t *testing.T) {
	srv := startNode(t, testConfig(t))
	base := "http://" + srv.ln.Addr().String()

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		if code, body := getBody(t, base+path); code != 200 || !strings.Contains(body, want) {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}

	resp, err := http.Post(base+"/api/auth/login", "application/json", strings.NewReader(`{"loginName":"admin1","password":"demo1234"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Token  string `json:"token"`
		Member struct {
			CompanyID string `json:"companyId"`
			IsAdmin   int    `json:"isAdmin"`
		} `json:"member"`
	}
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || login.Token == "" || login.Member.CompanyID != "1" || login.Member.IsAdmin != 1 {
		t.Fatalf("demo admin login: status %d, %+v, %v", resp.StatusCode, login, err)
	}

	// The deployed console's login and profile are mounted beside /api/.
	resp, err = http.Post(base+"/auth/login", "application/json", strings.NewReader(`{"loginName":"agent1","password":"demo1234"}`))
	if err != nil {
		t.Fatal(err)
	}
	var consoleLogin struct {
		Token   string `json:"token"`
		Profile struct {
			LoginName string `json:"loginName"`
			SpeakerID int64  `json:"speakerId"`
		} `json:"profile"`
	}
	err = json.NewDecoder(resp.Body).Decode(&consoleLogin)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || consoleLogin.Token == "" || consoleLogin.Profile.LoginName != "agent1" || consoleLogin.Profile.SpeakerID == 0 {
		t.Fatalf("console login: status %d, %+v, %v", resp.StatusCode, consoleLogin, err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/auth/profile", nil)
	req.Header.Set("Authorization", "Bearer "+consoleLogin.Token)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	profile, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(profile), `"loginName":"agent1"`) {
		t.Fatalf("console profile: %d %s", resp.StatusCode, profile)
	}

	// The guide API is mounted and has its demo accounts.
	resp, err = http.Post(base+"/guide/login", "application/json", strings.NewReader(`{"loginName":"guide-user1","password":"demo1234"}`))
	if err != nil {
		t.Fatal(err)
	}
	var guideLogin struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&guideLogin)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || guideLogin.Token == "" {
		t.Fatalf("demo guide login: status %d, %v", resp.StatusCode, err)
	}
	if code, body := getBody(t, base+"/guide/openapi.yaml"); code != 200 || !strings.Contains(body, "/guide/match") {
		t.Fatalf("guide openapi: %d", code)
	}

	wsURL := "ws://" + srv.ln.Addr().String() + "/ws/websocket"
	customer := brokertest.ConnectGo(t, wsURL,
		stomp.ConnOpt.Header("companyId", "1"), stomp.ConnOpt.Header("gasappMemberNumber", "3825"))
	private, err := customer.Subscribe("/user/session/message", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := brokertest.NextGoMessage(private, 10*time.Second)
	if err != nil {
		t.Fatalf("LOGINED: %v", err)
	}
	var logined struct {
		EventName string `json:"eventName"`
		RoomID    string `json:"roomId"`
	}
	if err := json.Unmarshal(msg.Body, &logined); err != nil || logined.EventName != "LOGINED" || logined.RoomID == "" {
		t.Fatalf("want LOGINED with a room, got %s (%v)", msg.Body, err)
	}

	code, metrics := getBody(t, base+"/metrics")
	if code != 200 || !strings.Contains(metrics, "cstalk_") || !strings.Contains(metrics, "go_goroutines") {
		t.Fatalf("metrics: %d\n%.500s", code, metrics)
	}

	srv.drain()
	// The drain sends an ERROR frame with the reason before closing.
	var drained error
	for drained == nil {
		_, drained = brokertest.NextGoMessage(private, 10*time.Second)
	}
	if !strings.Contains(drained.Error(), "shutting down") {
		t.Fatalf("customer was not told why: %v", drained)
	}
	srv.awaitRun(t, 10*time.Second)
}

// TestServeMetricsAddr: with --metrics-addr, /metrics is served on that
// listener alone and the public port answers 404 for it (TestServeDemo
// reads it on the public port by default); both drain.
func TestServeMetricsAddr(t *testing.T) {
	cfg := testConfig(t)
	cfg.MetricsAddr = "127.0.0.1:0"
	srv := startNode(t, cfg)
	public := "http://" + srv.ln.Addr().String()
	internal := "http://" + srv.metricsLn.Addr().String()
	if code, body := getBody(t, public+"/metrics"); code != http.StatusNotFound || strings.Contains(body, "go_goroutines") {
		t.Fatalf("public /metrics: %d %.200q", code, body)
	}
	if code, _ := getBody(t, public+"/healthz"); code != 200 {
		t.Fatalf("public /healthz: %d", code)
	}
	if code, body := getBody(t, internal+"/metrics"); code != 200 || !strings.Contains(body, "cstalk_") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("internal /metrics: %d %.500s", code, body)
	}
	if code, _ := getBody(t, internal+"/api/me"); code != http.StatusNotFound {
		t.Fatalf("internal listener serves the API: %d", code)
	}
	srv.drain()
	srv.awaitRun(t, 10*time.Second)
	if _, err := http.Get(internal + "/metrics"); err == nil {
		t.Fatal("metrics listener still open after the drain")
	}
}

// runningNode is a node built by newServer and running in-process.
type runningNode struct {
	*server
	drain func() // ends Run's context: the drain starts
	ran   <-chan error
}

// startNode builds a node from cfg and runs it until the test ends.
func startNode(t *testing.T, cfg serveConfig) *runningNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := newServer(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()
	return &runningNode{server: srv, drain: cancel, ran: ran}
}

// awaitRun fails the test unless Run returns cleanly within timeout.
func (n *runningNode) awaitRun(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-n.ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(timeout):
		t.Fatal("Run did not return after the drain")
	}
}

// TestBinaryDrainsOnSIGTERM builds the real binary, starts it with demo data
// from an empty directory, and checks it exits 0 on SIGTERM.
func TestBinaryDrainsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cstalk")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--demo", "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CSTALK_SHUTDOWN_TIMEOUT=5s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	lines := bufio.NewScanner(stderr)
	addrRE := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	var addr string
	var logged bytes.Buffer
	for addr == "" && lines.Scan() {
		logged.WriteString(lines.Text() + "\n")
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("no listening line in:\n%s", logged.String())
	}
	go io.Copy(io.Discard, stderr)
	if code, body := getBody(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d %q", code, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "jwt.secret")); err != nil {
		t.Fatalf("signing key not kept beside the database: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if errors.As(err, &exit) || err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20 s after SIGTERM")
	}
}

func TestMigrateAndMemberCommands(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "admin.db")
	ctx := context.Background()
	call := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(ctx, args, env(map[string]string{"CSTALK_DB": db}), &out, &out)
		return code, out.String()
	}
	if code, out := call("migrate"); code != 0 || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %d %s", code, out)
	}
	if code, out := call("member", "add", "--company", "1", "--login", "kim", "--password", "s3cret-pass"); code != 1 || !strings.Contains(out, "company") {
		t.Fatalf("member of a missing company: %d %s", code, out)
	}
	if code, out := call("company", "set", "--id", "1"); code != 2 || !strings.Contains(out, "--name is required") {
		t.Fatalf("company without name: %d %s", code, out)
	}
	if code, out := call("company", "set", "--id", "1", "--name", "서울도시가스", "--legacy-key-prefix", "GAS_"); code != 0 {
		t.Fatalf("company set: %d %s", code, out)
	}
	for _, bad := range []string{"ftp://crm.example/contracts", "/contracts", "https://user:pw@crm.example/c", "https://crm.example/c#x"} {
		if code, out := call("company", "set", "--id", "1", "--contracts-url", bad); code != 2 || !strings.Contains(out, "--contracts-url") {
			t.Fatalf("company set --contracts-url %s: %d %s", bad, code, out)
		}
	}
	const contracts = "https://crm.example/contracts?key=k1"
	if code, out := call("company", "set", "--id", "1", "--contracts-url", contracts); code != 0 {
		t.Fatalf("company set --contracts-url: %d %s", code, out)
	}
	st, err := store.Open(ctx, db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Company(ctx, 1)
	st.Close()
	if err != nil || c.ContractsURL != contracts || c.LegacyKeyPrefix != "GAS_" || c.Name != "서울도시가스" {
		t.Fatalf("company after set: %+v, %v", c, err)
	}
	if code, out := call("member", "add", "--company", "1", "--login", "kim", "--password", "s3cret-pass", "--name", "김상담", "--admin"); code != 0 {
		t.Fatalf("member add: %d %s", code, out)
	}
	if code, out := call("member", "add", "--company", "1", "--login", "kim", "--password", "another-pass"); code != 1 {
		t.Fatalf("duplicate login should fail with exit 1: %d %s", code, out)
	}
	if code, out := call("member", "add", "--company", "1", "--login", "lee", "--password", "short"); code == 0 {
		t.Fatalf("short password accepted: %s", out)
	}
	code, out := call("member", "list", "--company", "1")
	if code != 0 || !strings.Contains(out, "kim\t김상담\tadmin") || strings.Contains(out, "lee") {
		t.Fatalf("member list: %d %q", code, out)
	}
}

func TestLicenceCommands(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "licence.db")
	ctx := context.Background()
	call := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(ctx, args, env(map[string]string{"CSTALK_DB": db}), &out, &out)
		return code, out.String()
	}
	if code, out := call("licence", "set", "--company", "1", "--cp-code", "KP-1", "--auth-key", "k"); code != 2 || !strings.Contains(out, "company 1 does not exist") {
		t.Fatalf("licence of a missing company: %d %s", code, out)
	}
	if code, out := call("licence", "set", "--cp-code", "KP-1"); code != 2 || !strings.Contains(out, "--company and --cp-code are required") {
		t.Fatalf("licence without company: %d %s", code, out)
	}
	if code, out := call("company", "set", "--id", "1", "--name", "서울도시가스"); code != 0 {
		t.Fatalf("company set: %d %s", code, out)
	}
	if code, out := call("licence", "set", "--company", "1", "--cp-code", "KP-20200101-01", "--auth-key", "secret-key"); code != 0 {
		t.Fatalf("licence set: %d %s", code, out)
	}
	code, out := call("licence", "set", "--company", "1", "--cp-code", "KP-GEN")
	key, ok := strings.CutPrefix(strings.TrimSpace(out[strings.Index(out, "authKey: "):]), "authKey: ")
	if code != 0 || !ok || len(key) < 24 {
		t.Fatalf("licence set with a generated key: %d %q", code, out)
	}
	if code, out := call("licence", "list", "--company", "1"); code != 0 || !strings.Contains(out, "1\tKP-20200101-01\t") || !strings.Contains(out, "1\tKP-GEN\t") ||
		strings.Contains(out, "secret-key") || strings.Contains(out, key) {
		t.Fatalf("licence list: %d %q", code, out)
	}
	st, err := store.Open(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.KTLicence(ctx, "KP-GEN")
	st.Close()
	if err != nil || !l.Matches(key) || l.CompanyID != 1 {
		t.Fatalf("stored licence %+v, %v", l, err)
	}
	if code, out := call("licence", "remove", "--cp-code", "KP-GEN"); code != 0 {
		t.Fatalf("licence remove: %d %s", code, out)
	}
	if code, out := call("licence", "remove", "--cp-code", "KP-GEN"); code != 2 || !strings.Contains(out, "no licence") {
		t.Fatalf("second remove: %d %s", code, out)
	}
	if code, out := call("licence", "list"); code != 0 || strings.Contains(out, "KP-GEN") || !strings.Contains(out, "KP-20200101-01") {
		t.Fatalf("licence list after remove: %d %q", code, out)
	}
}
