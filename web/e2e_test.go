package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
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
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	requireTools(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "cstalk")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/cstalk")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cstalk: %v\n%s", err, out)
	}
	base := startServer(ctx, t, bin, dir)

	imgPath := filepath.Join(dir, "photo.png")
	writeTestImage(t, imgPath)
	artifacts, err := filepath.Abs(filepath.Join("e2e", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	specCtx, specCancel := context.WithTimeout(ctx, 150*time.Second)
	defer specCancel()
	spec := exec.CommandContext(specCtx, "node", filepath.Join("e2e", "pages.spec.cjs"))
	spec.Env = append(os.Environ(),
		"CSTALK_URL="+base,
		"CSTALK_ARTIFACTS="+artifacts,
		"CSTALK_CHROMIUM="+chromiumPath,
		"CSTALK_TEST_IMAGE="+imgPath,
	)
	var out bytes.Buffer
	spec.Stdout, spec.Stderr = &out, &out
	err = spec.Run()
	t.Logf("pages.spec.cjs:\n%s", out.String())
	if err != nil {
		t.Fatalf("pages.spec.cjs failed: %v", err)
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

// startServer runs the binary on a free port and returns its base URL once
// it logs that it listens; the server is stopped with SIGTERM at cleanup.
func startServer(ctx context.Context, t *testing.T, bin, dir string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "serve", "--demo",
		"--addr", "127.0.0.1:0",
		"--db", "sqlite:"+filepath.Join(dir, "cstalk.db"),
		"--upload-dir", filepath.Join(dir, "uploads"),
		"--jwt-secret", "e2e-secret-0123456789abcdef-0123",
		"--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cstalk: %v", err)
	}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	var logs bytes.Buffer
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logs.Write(line)
			logs.WriteByte('\n')
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				select {
				case addr <- rec.Addr:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logs.String(), 60))
		}
	})
	select {
	case a := <-addr:
		return "http://" + a
	case <-exited:
		t.Fatalf("cstalk exited before listening:\n%s", logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("cstalk did not start listening within a minute")
	}
	return ""
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
