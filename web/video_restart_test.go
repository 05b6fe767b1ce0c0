package web_test

import (
	"syscall"
	"testing"
	"time"
)

// TestVideoCallRestartsICE runs web/e2e/video-restart.spec.cjs: a call runs,
// then the server stalls (SIGSTOP) with every connection kept open, so no
// media or ICE check gets through while the pages' signaling sockets stay
// up; the pages' peer connections go disconnected and the pages restart
// ICE on them (their restart offers wait in the sockets). The server goes
// on (SIGCONT), answers the restarts on its same peer connections, and
// both pages must decode each other again without a new peer connection.
// (A stall rather than a broken network path: on one host the SFU and the
// browser reach each other's host candidates directly, around any relay
// a test could break.)
func TestVideoCallRestartsICE(t *testing.T) {
	e := newBrowserEnv(t)
	stalled := false
	t.Cleanup(func() {
		if stalled {
			e.srv.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	runControlledSpec(e.ctx, t, "video-restart.spec.cjs", 3*time.Minute, func(command string) string {
		switch command {
		case "stall":
			stalled = e.srv.cmd.Process.Signal(syscall.SIGSTOP) == nil
			return "done"
		case "resume":
			e.srv.cmd.Process.Signal(syscall.SIGCONT)
			stalled = false
			return "done"
		}
		t.Errorf("video-restart.spec.cjs asked for %q", command)
		return "unknown"
	}, "CSTALK_URL=http://"+e.addr, "CSTALK_ARTIFACTS="+e.artifacts)
}
