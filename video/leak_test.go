package video

import (
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// TestNoGoroutinesLeft: after the clients go and Close returns, every
// goroutine the server (and pion under it) started is gone.
func TestNoGoroutinesLeft(t *testing.T) {
	baseline := runtime.NumGoroutine()
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-20", true, true)
	b.join("r-20", true, true)
	a.publish()
	b.publish()
	awaitMedia(t, "1<-2", a.subscribe("2"), 5)
	awaitMedia(t, "2<-1", b.subscribe("1"), 5)
	a.close()
	b.close()
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	ts.http.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		var sb strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&sb, 1)
		t.Fatalf("%d goroutines left over the %d before:\n%s", n-baseline, baseline, sb.String())
	}
}
