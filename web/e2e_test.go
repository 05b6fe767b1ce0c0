package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is Debian's Chromium, which playwright-core drives.
const chromiumPath = "/usr/bin/chromium"

// TestPagesEndToEnd runs `cstalk serve --demo` and drives the three pages in
// Chromium (web/e2e/pages.spec.cjs): a counselor and customers hold
// conversations, an administrator watches, ends a room and adds a counselor.
// Screenshots land in web/e2e/artifacts/.
func TestPagesEndToEnd(t *testing.T) {
	e := newBrowserEnv(t)
	ctx, dir, bin, srv, addr := e.ctx, e.dir, e.bin, e.srv, e.addr
	imgPath := filepath.Join(dir, "photo.png")
	writeTestImage(t, imgPath)
	// The spec asks for the server to go away and come back (on the same
	// address) to check that the pages show it and reconnect.
	runControlledSpec(ctx, t, "pages.spec.cjs", 150*time.Second, func(command string) string {
		switch command {
		case "stop-server":
			srv.stop()
			return "stopped"
		case "start-server":
			srv, _ = startServer(ctx, t, bin, dir, addr)
			return "started"
		}
		t.Errorf("pages.spec.cjs asked for %q", command)
		return "unknown"
	}, "CSTALK_URL=http://"+addr, "CSTALK_ARTIFACTS="+e.artifacts, "CSTALK_TEST_IMAGE="+imgPath)
}

// runControlledSpec runs e2e/name with Chromium and env, answering each
// `@@command` line the spec prints with control's answer (harness.cjs's
// control), and fails the test if the spec fails.
func runControlledSpec(ctx context.Context, t *testing.T, name string, timeout time.Duration, control func(command string) string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	spec := exec.CommandContext(ctx, "node", filepath.Join("e2e", name))
	spec.Env = append(append(os.Environ(), "CSTALK_CHROMIUM="+chromiumPath), env...)
	var out, errOut bytes.Buffer
	spec.Stderr = &errOut
	stdout, err := spec.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := spec.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Start(); err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if command, ok := strings.CutPrefix(line, "@@"); ok {
			io.WriteString(stdin, control(command)+"\n")
			continue
		}
		out.WriteString(line + "\n")
	}
	err = spec.Wait()
	t.Logf("%s:\n%s%s", name, out.String(), errOut.String())
	if err != nil {
		t.Fatalf("%s failed: %v", name, err)
	}
}

// browserEnv is a `cstalk serve --demo` built from this tree and running on
// 127.0.0.1, for a browser spec in e2e/ to drive.
type browserEnv struct {
	ctx       context.Context
	dir, bin  string
	srv       *server
	addr      string
	artifacts string // where specs save screenshots
}

// newBrowserEnv skips under -short, fails without Chromium or Node, builds
// the binary and starts it; serveArgs are added to `cstalk serve` (a spec's
// own settings, such as short guide times).
func newBrowserEnv(t *testing.T, serveArgs ...string) *browserEnv {
	t.Helper()
	e := &browserEnv{dir: t.TempDir()}
	e.ctx, e.bin = newBrowserBinary(t, 4*time.Minute, e.dir)
	e.srv, e.addr = startServer(e.ctx, t, e.bin, e.dir, "127.0.0.1:0", serveArgs...)
	e.artifacts = artifactsDir(t)
	return e
}

// newBrowserBinary skips under -short, fails without Chromium or Node, and
// builds the binary into dir; the context ends with the test, or after
// limit.
func newBrowserBinary(t *testing.T, limit time.Duration, dir string) (context.Context, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx, buildServer(ctx, t, dir)
}

// buildServer builds cmd/cstalk from this tree into dir.
func buildServer(ctx context.Context, t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "cstalk")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/cstalk")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cstalk: %v\n%s", err, out)
	}
	return bin
}

// artifactsDir is where specs save screenshots, created if needed.
func artifactsDir(t *testing.T) string {
	t.Helper()
	artifacts, err := filepath.Abs(filepath.Join("e2e", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return artifacts
}

// runSpec runs e2e/name against the server and fails the test if it fails.
func (e *browserEnv) runSpec(t *testing.T, name string, timeout time.Duration, env ...string) {
	t.Helper()
	runSpec(e.ctx, t, name, timeout, append([]string{"CSTALK_URL=http://" + e.addr, "CSTALK_ARTIFACTS=" + e.artifacts}, env...)...)
}

// runSpec runs e2e/name with Chromium and env, and fails the test if it fails.
func runSpec(ctx context.Context, t *testing.T, name string, timeout time.Duration, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	spec := exec.CommandContext(ctx, "node", filepath.Join("e2e", name))
	spec.Env = append(os.Environ(), "CSTALK_CHROMIUM="+chromiumPath)
	spec.Env = append(spec.Env, env...)
	out, err := spec.CombinedOutput()
	t.Logf("%s:\n%s", name, out)
	if err != nil {
		t.Fatalf("%s failed: %v", name, err)
	}
}

// requireTools fails (never skips) when the browser or Node is missing, with
// the command that installs it.
func requireTools(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is missing (%v): install it with `apt-get update && apt-get install -y chromium`", err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is missing: install it with `apt-get update && apt-get install -y nodejs npm`")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is missing: run `npm ci --prefix web`")
	}
}

// server is one run of the cstalk binary.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *bytes.Buffer
}

// startServer runs the binary on addr ("127.0.0.1:0" for a free port), with
// extra flags after the common ones, and returns once it logs that it
// listens, with the address it took.
func startServer(ctx context.Context, t *testing.T, bin, dir, addr string, extra ...string) (*server, string) {
	t.Helper()
	args := append([]string{"serve", "--demo",
		"--addr", addr,
		"--db", "sqlite:" + filepath.Join(dir, "cstalk.db"),
		"--upload-dir", filepath.Join(dir, "uploads"),
		"--jwt-secret", "e2e-secret-0123456789abcdef-0123",
		"--shutdown-timeout", "5s",
		"--log-format", "json"}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cstalk: %v", err)
	}
	s := &server{t: t, cmd: cmd, exited: make(chan struct{}), logs: &bytes.Buffer{}}
	listening := make(chan string, 1)
	go func() {
		defer close(s.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			s.logs.Write(line)
			s.logs.WriteByte('\n')
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				select {
				case listening <- rec.Addr:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(s.stop)
	select {
	case a := <-listening:
		return s, a
	case <-s.exited:
		t.Fatalf("cstalk exited before listening:\n%s", s.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("cstalk did not start listening within a minute")
	}
	return nil, ""
}

// kill ends the server at once (SIGKILL), as a crash would.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// stop drains the server with SIGTERM, as an operator would; idempotent.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", tail(s.logs.String(), 60))
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// writeTestImage writes a small PNG with a gradient, like a photo.
func writeTestImage(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 320, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 320; x++ {
			img.Set(x, y, color.RGBA{R: uint8(40 + x/3), G: uint8(90 + y/2), B: 200, A: 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
