package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSockJSTransportsInChromium forces each SockJS transport, the iframe and
// JSONP ones only a browser has included, in Chromium with sockjs-client and
// stompjs 2.x against `cstalk serve --demo`: web/e2e/transports.spec.cjs.
func TestSockJSTransportsInChromium(t *testing.T) {
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
	specCtx, specCancel := context.WithTimeout(ctx, 150*time.Second)
	defer specCancel()
	spec := exec.CommandContext(specCtx, "node", filepath.Join("e2e", "transports.spec.cjs"))
	spec.Env = append(os.Environ(), "CSTALK_URL=http://"+addr, "CSTALK_CHROMIUM="+chromiumPath)
	out, err := spec.CombinedOutput()
	t.Logf("transports.spec.cjs:\n%s", out)
	if err != nil {
		t.Fatalf("transports.spec.cjs failed: %v", err)
	}
}
