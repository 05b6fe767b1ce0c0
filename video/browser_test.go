package video

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBrowsers: two Chromium pages (fake camera and microphone) and a pion
// client in one room; each page decodes the other's video through the SFU
// and receives the pion client's media, and the pion client receives the
// pages'; then a third page joins late and decodes both. Chromium's VP8,
// RTCP and ICE against ours, end to end.
func TestBrowsers(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	chromium := "/usr/bin/chromium"
	modules, _ := filepath.Abs("../web/node_modules")
	for _, p := range []string{chromium, filepath.Join(modules, "playwright-core"), filepath.Join(modules, "sockjs-client")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed", p)
		}
	}

	// Browsers do not gather loopback candidates, so the SFU offers every
	// interface here.
	cfg := DefaultConfig()
	cfg.IncludeLoopback = true
	cfg.KeyframeInterval = 200 * time.Millisecond
	evs := &eventLog{}
	cfg.OnEvent = evs.add
	reg := prometheus.NewRegistry()
	s, err := New(cfg, testAuth{}, reg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.HandleFunc("/test/call.html", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/call.html") })
	mux.HandleFunc("/test/sockjs.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(modules, "sockjs-client", "dist", "sockjs.min.js"))
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = s.Close()
		hs.Close()
	})
	ts := &testServer{Server: s, http: hs, reg: reg, events: evs}

	g := dial(t, ts, "go1", "/signal")
	g.api = browserClientAPI(t)
	g.join("c-browser", true, true)
	g.publish()

	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/browser.cjs", hs.URL, "c-browser", "go1", "b1", "b2")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "CSTALK_CHROMIUM="+chromium, "LATE_USER=b3")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()

	// The pion client subscribes to each page once it has joined
	// (Chromium may take long to start on a busy machine).
	g.awaitWithin(60*time.Second, "newParticipantArrived", "name", "b1")
	g.awaitWithin(60*time.Second, "newParticipantArrived", "name", "b2")
	fromB1 := g.subscribe("b1")
	fromB2 := g.subscribe("b2")

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, `"ok":true`) {
		_ = stdin.Close()
		_ = cmd.Wait()
		t.Fatalf("browsers: %v %s\nstderr:\n%s", err, line, stderr.String())
	}
	t.Logf("browsers: %s", line)
	awaitMedia(t, "go1<-b1", fromB1, 20)
	awaitMedia(t, "go1<-b2", fromB2, 20)
	g.checkRules()
}
