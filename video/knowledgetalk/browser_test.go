package knowledgetalk_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video"
	kt "github.com/cstalk/cstalk/video/knowledgetalk"
	"github.com/cstalk/cstalk/video/videotest"
)

// TestBrowserCalls: Chromium pages with fake cameras, driven by a page
// written as the deployed client behaves (socket.io-client 2.3.0,
// acknowledgements, complete SDP without trickle), decode each other's
// video in a 1:1 call (peer to peer, SDP relayed) and in a three-way call
// through the SFU.
func TestBrowserCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium is not installed")
	}
	node, modules := videotest.NodeModules(t, "playwright-core")
	// Browsers gather no loopback candidates: the SFU offers every
	// interface.
	h := start(t, func(_ *kt.Config, v *video.Config) { v.Interfaces = nil })
	h.mux.HandleFunc("/test/kt-call.html", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, "testdata/kt-call.html") })
	h.mux.HandleFunc("/test/socket.io.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(modules, "socket.io-client-v2", "dist", "socket.io.js"))
	})

	maker := h.bot("maker", "v2", lic1)
	for _, c := range []struct {
		name  string
		pages []string
	}{
		{"one-to-one", []string{"a", "b"}},
		{"three-way", []string{"a", "b", "c"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			room := maker.CreateRoom()
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer cancel()
			args := append([]string{"testdata/kt-browser.cjs", h.http.URL, room, lic1[0], lic1[1]}, c.pages...)
			cmd := exec.CommandContext(ctx, node, args...)
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "CSTALK_CHROMIUM="+chromium)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v: %s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			t.Logf("%s", stdout.String())
		})
	}
}
