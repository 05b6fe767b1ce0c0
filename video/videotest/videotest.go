// Package videotest holds what the tests of package video and of its
// front ends share: polling for a condition, a pion API standing in for a
// browser, and Node.js client processes from web/node_modules. It is for
// tests only.
package videotest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v2"
	"github.com/pion/webrtc/v3"
)

// CheckFor polls fn until it returns nil or the timeout passes.
func CheckFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s: %v", timeout, err)
}

// CompleteSDP sets desc on pc and returns it with every candidate, once
// ICE gathering is complete: clients that never trickle send that.
func CompleteSDP(t testing.TB, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) string {
	t.Helper()
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// ClientAPI is a browser stand-in: pion with its default codecs and
// interceptors, UDP over IPv4, loopback candidates included; on the
// loopback interface only unless allInterfaces (to meet real browsers).
func ClientAPI(t testing.TB, allInterfaces bool) *webrtc.API {
	t.Helper()
	return ClientAPIOn(t, allInterfaces, nil)
}

// ClientAPIOn is ClientAPI on network n (nil: the machine's), for
// clients whose network changes under them.
func ClientAPIOn(t testing.TB, allInterfaces bool, n transport.Net) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	if !allInterfaces {
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// The server's checks arrive before its trickled candidates, so it is
	// first a peer-reflexive candidate; a browser nominates such a pair at
	// once, where pion by default waits a second (cstalk-videobench does
	// the same for the same reason).
	se.SetPrflxAcceptanceMinWait(0)
	if n != nil {
		se.SetNet(n)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// NodeModules is the repository's web/node_modules (found from the
// working directory up to go.mod); the test is skipped when node or the
// module need is not installed.
func NodeModules(t testing.TB, need string) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	modules = filepath.Join(dir, "web", "node_modules")
	if _, err := os.Stat(filepath.Join(modules, need)); err != nil {
		t.Skipf("web/node_modules/%s is not installed (npm ci --prefix web)", need)
	}
	return node, modules
}

// Node is a Node.js process talking in lines: commands on its stdin,
// reports on its stdout.
type Node struct {
	t     testing.TB
	cmd   *exec.Cmd
	stdin io.WriteCloser
	wmu   sync.Mutex

	mu     sync.Mutex
	lines  []string
	exited chan struct{}
}

// StartNode runs node script args with web/node_modules (which must hold
// need) on NODE_PATH; the process is ended when t ends.
func StartNode(t testing.TB, need, script string, args ...string) *Node {
	t.Helper()
	node, modules := NodeModules(t, need)
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
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
	n := &Node{t: t, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() {
		defer close(n.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			n.mu.Lock()
			n.lines = append(n.lines, sc.Text())
			n.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-n.exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-n.exited
		}
	})
	return n
}

// Send writes one line to the process.
func (n *Node) Send(line []byte) {
	n.t.Helper()
	n.wmu.Lock()
	defer n.wmu.Unlock()
	if _, err := n.stdin.Write(append(line, '\n')); err != nil {
		n.t.Fatalf("node: %v", err)
	}
}

// Exited is closed once the process has ended.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// Take waits up to timeout for the first line match accepts, removes it
// and returns it; the error of the last look (or of the process's end) is
// fatal.
func (n *Node) Take(timeout time.Duration, match func(line string) error) string {
	n.t.Helper()
	var found string
	CheckFor(n.t, timeout, func() error {
		n.mu.Lock()
		defer n.mu.Unlock()
		var errs []error
		for i, l := range n.lines {
			err := match(l)
			if err == nil {
				found = l
				n.lines = append(n.lines[:i], n.lines[i+1:]...)
				return nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return errors.New("no line yet")
		}
		return fmt.Errorf("%d lines, none wanted: %w", len(errs), errors.Join(errs...))
	})
	return found
}

// Lines returns the lines not taken yet.
func (n *Node) Lines() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lines...)
}
