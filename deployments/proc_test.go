package deployments_test

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a child process of the test: a cstalk node, HAProxy.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer

	mu   sync.Mutex
	err  error
	done chan struct{}
}

func startProc(t *testing.T, name, path string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(path, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop signals the process and waits for it; a process that ignores the
// signal is killed. With wantClean, an exit status other than 0 fails the
// test (a cstalk node must drain and exit 0 on SIGTERM). Output is logged
// when the test failed.
func (p *proc) stop(t *testing.T, sig syscall.Signal, wantClean bool) {
	t.Helper()
	if !p.exited() {
		_ = p.cmd.Process.Signal(sig)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not exit within 30 s of %v", p.name, sig)
	}
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	var exit *exec.ExitError
	if wantClean && err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 0) {
		t.Errorf("%s exited with %v after %v, want 0", p.name, err, sig)
	}
	if t.Failed() {
		t.Logf("%s output:\n%s", p.name, p.out.String())
	}
}
