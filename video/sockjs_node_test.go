package video

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeClient runs testdata/sockjs-signal.cjs: sockjs-client 1.6 from
// web/node_modules, the library the deployed seed-002 page uses.
type nodeClient struct {
	t     *testing.T
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
	cmd   *exec.Cmd
}

func startNodeClient(t *testing.T, url, transport string) *nodeClient {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	modules, _ := filepath.Abs("../web/node_modules")
	if _, err := os.Stat(filepath.Join(modules, "sockjs-client")); err != nil {
		t.Skip("web/node_modules/sockjs-client is not installed")
	}
	cmd := exec.Command(node, "testdata/sockjs-signal.cjs", url, transport)
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
	c := &nodeClient{t: t, stdin: stdin, cmd: cmd}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	return c
}

func (c *nodeClient) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatal(err)
	}
}

// await waits for a line containing every one of parts.
func (c *nodeClient) await(parts ...string) string {
	c.t.Helper()
	var found string
	checkFor(c.t, 10*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
	next:
		for i, l := range c.lines {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					continue next
				}
			}
			found = l
			c.lines = append(c.lines[:i], c.lines[i+1:]...)
			return nil
		}
		return &waitError{strings.Join(parts, " ") + " not in " + strings.Join(c.lines, " | ")}
	})
	return found
}

type waitError struct{ s string }

func (e *waitError) Error() string { return e.s }

// TestSockJSClient: sockjs-client over each transport it has in Node joins,
// is announced, gets errors for bad input and leaves.
func TestSockJSClient(t *testing.T) {
	// Pings every 100 ms: a client idle for many ping intervals must stay.
	ts := startServer(t, func(c *Config) { c.PingInterval = 100 * time.Millisecond })
	for i, transport := range []string{"websocket", "xhr-streaming", "xhr-polling", "eventsource"} {
		t.Run(transport, func(t *testing.T) {
			room := "c-" + transport
			g := dial(t, ts, "go", "/signal")
			g.join(room, true, true)
			n := startNodeClient(t, ts.http.URL+"/signal", transport)
			n.await("OPEN " + transport)
			user := "node" + string(rune('a'+i))
			n.send(map[string]any{"id": "joinRoom", "token": "tok-" + user, "userId": user, "communityId": "1", "roomId": room, "video": true, "audio": true})
			n.await(`"existingParticipants"`, `"userId":"go"`)
			g.await("newParticipantArrived")
			time.Sleep(time.Second) // idle: only pings and heart-beats flow
			n.send(map[string]any{"id": "nonsense"})
			n.await(`"error"`, `"unknownMessage"`)
			n.send(map[string]any{"id": "audioStateFrom", "userId": user, "audio": false})
			n.await(`"audioStateAnswer"`)
			g.await("audioStateAnswer", "userId", user)
			n.send(map[string]any{"id": "leaveRoom"})
			g.await("participantLeft", "userId", user)
			g.checkRules()
		})
	}
}
