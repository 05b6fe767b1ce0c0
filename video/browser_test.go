package video

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
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
	ts, node, modules, chromium := browserServer(t)
	hs := ts.http

	g := dial(t, ts, "go1", "/signal")
	g.api = browserClientAPI(t)
	g.join("c-browser", true, true)
	g.publish()

	b := startBrowsers(t, node, modules, chromium, []string{"LATE_USER=b3"}, "testdata/browser.cjs", hs.URL, "c-browser", "go1", "b1", "b2")

	// The pion client subscribes to each page once it has joined
	// (Chromium may take long to start on a busy machine).
	g.awaitWithin(60*time.Second, "newParticipantArrived", "name", "b1")
	g.awaitWithin(60*time.Second, "newParticipantArrived", "name", "b2")
	fromB1 := g.subscribe("b1")
	fromB2 := g.subscribe("b2")

	t.Logf("browsers: %s", b.result())
	awaitMedia(t, "go1<-b1", fromB1, 20)
	awaitMedia(t, "go1<-b2", fromB2, 20)
	g.checkRules()
}

// browsers is a node script driving Chromium pages: it prints one JSON
// line ({"ok":...}) when its pages are done and stays until stdin closes.
type browsers struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *strings.Builder
}

func startBrowsers(t *testing.T, node, modules, chromium string, env []string, script string, args ...string) *browsers {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(append(os.Environ(), "NODE_PATH="+modules, "CSTALK_CHROMIUM="+chromium), env...)
	b := &browsers{t: t, cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = b.stderr
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
	b.stdin, b.stdout = stdin, bufio.NewReader(stdout)
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
		cancel()
	})
	return b
}

// result waits for the script's line and fails the test unless it says
// ok.
func (b *browsers) result() string {
	b.t.Helper()
	line, err := b.stdout.ReadString('\n')
	if err != nil || !strings.Contains(line, `"ok":true`) {
		_ = b.stdin.Close()
		_ = b.cmd.Wait()
		b.t.Fatalf("browsers: %v %s\nstderr:\n%s", err, line, b.stderr.String())
	}
	return line
}

// TestBrowserSimulcast: a Chromium page publishes its camera in three
// simulcast layers (q, h, f); two Chromium pages subscribe, one asking
// for the full layer (selectLayer), the other bounding its video to 150
// kbit/s (b=AS in its offer; its REMB bounds it too). Both decode the
// publisher's video, the bounded one a smaller layer (getStats
// frameWidth). (The automatic choice by layout is not asserted here:
// Chromium's REMB follows the load of the machine.)
func TestBrowserSimulcast(t *testing.T) {
	ts, node, modules, chromium := browserServer(t)
	b := startBrowsers(t, node, modules, chromium, nil, "testdata/simulcast.cjs", ts.http.URL, "c-simulcast")
	line := b.result()
	t.Logf("simulcast: %s", line)
	var res struct {
		Full, Bounded struct {
			FramesDecoded, FrameWidth int
		}
	}
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatal(err)
	}
	if res.Bounded.FrameWidth == 0 || res.Bounded.FrameWidth >= res.Full.FrameWidth {
		t.Fatalf("the bounded subscriber decodes %d wide, the other %d", res.Bounded.FrameWidth, res.Full.FrameWidth)
	}
	if got := ts.metricSum(t, "cstalk_video_published_tracks"); got < 4 {
		t.Fatalf("%v published tracks, want audio and three video layers", got)
	}
}

// browserServer serves the SFU on every interface (browsers do not
// gather loopback candidates) with the test page call.html; the test is
// skipped with -short or without node, Chromium or the page's modules.
func browserServer(t *testing.T) (ts *testServer, node, modules, chromium string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	chromium = "/usr/bin/chromium"
	modules, _ = filepath.Abs("../web/node_modules")
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
	return &testServer{Server: s, http: hs, reg: reg, events: evs}, node, modules, chromium
}
