package web_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cstalk/cstalk/web"
)

func TestPagesAndHeaders(t *testing.T) {
	srv := httptest.NewServer(web.Handler(nil))
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for path, script := range map[string]string{"/": "/assets/console.js", "/customer": "/assets/customer.js", "/admin": "/assets/admin.js", "/guide": "/assets/guide.js"} {
		resp, body := get(http.MethodGet, path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !strings.Contains(body, `<script src="`+script+`" defer></script>`) {
			t.Errorf("GET %s does not load %s", path, script)
		}
		// Inline scripts and handlers would be refused by the policy anyway;
		// keep the documents free of them.
		if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") || strings.Contains(body, "<style") {
			t.Errorf("GET %s has inline script or style", path)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
			!strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") == "" {
			t.Errorf("GET %s: headers %v", path, resp.Header)
		}
	}
	for path, ctype := range map[string]string{"/assets/console.js": "text/javascript", "/assets/guide.js": "text/javascript", "/assets/style.css": "text/css"} {
		resp, body := get(http.MethodGet, path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", path)
		}
	}
	for _, path := range []string{"/nothing", "/assets/", "/assets/../console.html", "/console.html", "/assets/missing.js", "/customer/x", "/guide.html", "/guide/"} {
		if resp, _ := get(http.MethodGet, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if resp, _ := get(http.MethodPost, "/"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", resp.StatusCode)
	}
	for _, path := range []string{"/admin", "/guide"} {
		if resp, body := get(http.MethodHead, path); resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: %d %q", path, resp.StatusCode, body)
		}
	}
	if resp, _ := get(http.MethodPost, "/guide"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /guide: %d", resp.StatusCode)
	}
}

// TestDistIsBuiltFromSource rebuilds the pages and compares them with the
// committed dist/, so a change to web/src cannot ship without its bundle.
func TestDistIsBuiltFromSource(t *testing.T) {
	requireTools(t)
	out := t.TempDir()
	cmd := exec.Command("node", "build.mjs", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node build.mjs: %v\n%s", err, b)
	}
	err := filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		fresh, _ := os.ReadFile(p)
		committed, err := os.ReadFile(filepath.Join("dist", rel))
		if err != nil || !bytes.Equal(fresh, committed) {
			t.Errorf("dist/%s is not what web/src builds: run `npm run build --prefix web`", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
