package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// nodeProcess is a `cstalk serve` process.
type nodeProcess struct {
	cmd    *exec.Cmd
	base   string
	exited chan error

	mu  sync.Mutex
	log strings.Builder
}

// buildCstalk builds the binary into a temporary directory.
func buildCstalk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cstalk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess runs `cstalk serve` with args and waits for its listening
// line; the process is killed when the test ends.
func startProcess(t *testing.T, name, bin string, args ...string) *nodeProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &nodeProcess{cmd: cmd, exited: make(chan error, 1)}
	addrs := make(chan string, 1)
	go func() {
		addrRE := regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			p.mu.Lock()
			p.log.WriteString(lines.Text() + "\n")
			p.mu.Unlock()
			if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
				addrs <- m[1]
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("log of %s:\n%s", name, p.log.String())
			p.mu.Unlock()
		}
	})
	select {
	case addr := <-addrs:
		p.base = "http://" + addr
	case err := <-p.exited:
		t.Fatalf("%s exited at start: %v\n%s", name, err, p.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no listening line", name)
	}
	return p
}

func (p *nodeProcess) node() *clusterNode { return &clusterNode{base: p.base} }

// TestClusterNodeKilled: two `cstalk serve` processes share MariaDB and
// Redis. A customer on node A writes with receipts, each checked in the store
// as it arrives; A is killed with SIGKILL in the middle. The customer
// reconnects to node B and MESSAGE_LIST shows every receipted message, once;
// the conversation carries on through B.
func TestClusterNodeKilled(t *testing.T) {
	bin := buildCstalk(t)
	rds := startRedis(t)
	dsn, db := freshMariaDB(t)
	common := []string{"--db", dsn, "--redis", rds.url(), "--jwt-secret", "cluster-kill-secret-" + randomHex(8), "--demo"}
	procA := startProcess(t, "node a", bin, common...)
	procB := startProcess(t, "node b", bin, common...)
	a, b := procA.node(), procB.node()
	waitReady(t, a.base, 200)
	waitReady(t, b.base, 200)

	cust := dialChat(t, "customer@a", a, customerHeaders("5003"))
	roomID := cust.await(cust.private, "LOGINED", nil).M["roomId"].(string)
	roomDest := "/sub/socket/room/" + roomID
	cust.subscribe(roomDest)
	cust.await(cust.private, "WELCOME_MESSAGE", nil)
	agent := dialChat(t, "agent1@b", b, memberHeaders(login(t, b.base, "agent1")))
	agentRoom := agent.subscribe(roomDest)
	agent.await(agent.private, "MESSAGE_LIST", nil)

	const killAfter = 20
	var (
		receipted []string
		problems  []string
	)
	enough := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < 500; i++ {
			text := fmt.Sprintf("m-%03d", i)
			if err := cust.trySend("MESSAGE", textMessage(text, "c-"+text)); err != nil {
				return // node a is gone
			}
			receipted = append(receipted, text)
			if !storedNow(db, roomID, text) {
				problems = append(problems, text+" receipted but not stored")
			}
			if len(receipted) == killAfter {
				close(enough)
			}
		}
	}()
	select {
	case <-enough:
	case <-published:
		t.Fatalf("publisher stopped after %d receipts", len(receipted))
	}
	if err := procA.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procA.exited
	select {
	case <-published:
	case <-time.After(40 * time.Second):
		t.Fatal("the publisher did not notice node a died")
	}
	if len(problems) > 0 {
		t.Fatalf("%s", strings.Join(problems, "; "))
	}
	t.Logf("%d messages receipted before the kill", len(receipted))

	// The customer's app reconnects, to node b this time.
	cust = dialChat(t, "customer@b", b, customerHeaders("5003"))
	if got := cust.await(cust.private, "LOGINED", nil).M["roomId"]; got != roomID {
		t.Fatalf("room after reconnecting: %v, want %s", got, roomID)
	}
	custRoom := cust.subscribe(roomDest)
	seen := map[string]int{}
	list := cust.await(cust.private, "MESSAGE_LIST", nil)
	for {
		for _, text := range list.listTexts() {
			seen[text]++
		}
		ids := list.listIDs()
		if len(ids) == 0 || allSeen(seen, receipted) {
			break
		}
		cust.send("MESSAGE_LIST", map[string]any{"messageAdminType": 0, "startId": slices.Min(ids)}, "roomId", roomID)
		list = cust.await(cust.private, "MESSAGE_LIST", nil)
	}
	for _, text := range receipted {
		if seen[text] != 1 {
			t.Errorf("receipted %s listed %d times", text, seen[text])
		}
	}
	agent.send("MESSAGE", textMessage("B 노드에서 답변", ""))
	cust.await(custRoom, "MESSAGE", withText("B 노드에서 답변"))
	agent.await(agentRoom, "MESSAGE", withText("B 노드에서 답변"))
	waitReady(t, b.base, 200)
}

func storedNow(db *sql.DB, roomID, text string) bool {
	var n int
	err := db.QueryRow("SELECT COUNT(*) FROM messages WHERE room_id = ? AND body = ?", roomID, text).Scan(&n)
	return err == nil && n == 1
}

func allSeen(seen map[string]int, texts []string) bool {
	for _, text := range texts {
		if seen[text] == 0 {
			return false
		}
	}
	return true
}
