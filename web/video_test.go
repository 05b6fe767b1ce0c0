package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestVideoCallEndToEnd runs `cstalk serve --demo` and web/e2e/video.spec.cjs
// in Chromium with a fake camera: a counselor and a customer escalate their
// chat into a video call, each page decodes the other's video through the
// SFU, the customer hangs up and both chats show the call's system
// messages. Screenshots land in web/e2e/artifacts/.
func TestVideoCallEndToEnd(t *testing.T) {
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
	_, addr := startServer(ctx, t, bin, dir, "127.0.0.1:0")
	artifacts, err := filepath.Abs(filepath.Join("e2e", "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	specCtx, specCancel := context.WithTimeout(ctx, 120*time.Second)
	defer specCancel()
	spec := exec.CommandContext(specCtx, "node", filepath.Join("e2e", "video.spec.cjs"))
	spec.Env = append(os.Environ(),
		"CSTALK_URL=http://"+addr,
		"CSTALK_ARTIFACTS="+artifacts,
		"CSTALK_CHROMIUM="+chromiumPath,
	)
	out, err := spec.CombinedOutput()
	t.Logf("video.spec.cjs:\n%s", out)
	if err != nil {
		t.Fatalf("video.spec.cjs failed: %v", err)
	}
}
