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
	"sync/atomic"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
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
// Redis. Customers on node A write with receipts, each checked in the store
// as it arrives; A is killed with SIGKILL in the middle. The customers
// reconnect to node B and MESSAGE_LIST shows every receipted message, once;
// the conversation carries on through B.
func TestClusterNodeKilled(t *testing.T) {
	bin := buildCstalk(t)
	rds := redistest.Start(t)
	dsn, db := freshMariaDB(t)
	common := []string{"--db", dsn, "--redis", rds.URL(), "--jwt-secret", "cluster-kill-secret-" + randomHex(8), "--demo"}
	procA := startProcess(t, "node a", bin, common...)
	procB := startProcess(t, "node b", bin, common...)
	a, b := procA.node(), procB.node()
	waitReady(t, a.base, 200)
	waitReady(t, b.base, 200)

	// Several customers write at once, so the kill lands while group
	// commits are in flight; the first one's counselor is on node b.
	const publishers, killAfter = 4, 40
	type publisher struct {
		number, roomID string
		receipted      []string // written by its goroutine until done closes
		problems       []string
		done           chan struct{}
	}
	pubs := make([]*publisher, publishers)
	clients := make([]*chatClient, publishers)
	for i := range pubs {
		number := fmt.Sprintf("%d", 5003+i)
		c := dialChat(t, "customer "+number+"@a", a, customerHeaders(number))
		roomID := c.await(c.private, "LOGINED", nil).M["roomId"].(string)
		c.subscribe("/sub/socket/room/" + roomID)
		c.await(c.private, "WELCOME_MESSAGE", nil)
		pubs[i] = &publisher{number: number, roomID: roomID, done: make(chan struct{})}
		clients[i] = c
	}
	// One more customer on A, who will not come back: the lobby must hear
	// it went OFFLINE with its node, from node b.
	lost := dialChat(t, "customer 5099@a", a, customerHeaders("5099"))
	lostLogined := lost.await(lost.private, "LOGINED", nil)
	lostSession, lostRoom := lostLogined.M["sessionId"].(string), lostLogined.M["roomId"].(string)
	lost.subscribe("/sub/socket/room/" + lostRoom)
	lost.await(lost.private, "WELCOME_MESSAGE", nil)
	lobbyAgent := dialChat(t, "agent2@b", b, memberHeaders(login(t, b.base, "agent2")))
	lobby := lobbyAgent.subscribe("/sub/socket/room/LOBBY1")

	roomDest := "/sub/socket/room/" + pubs[0].roomID
	agent := dialChat(t, "agent1@b", b, memberHeaders(login(t, b.base, "agent1")))
	agentRoom := agent.subscribe(roomDest)
	agent.await(agent.private, "MESSAGE_LIST", nil)

	var total atomic.Int64
	enough := make(chan struct{})
	var enoughOnce sync.Once
	for i, p := range pubs {
		go func() {
			defer close(p.done)
			for n := 0; n < 2000; n++ {
				text := fmt.Sprintf("%s-%04d", p.number, n)
				if err := clients[i].trySend("MESSAGE", textMessage(text, "c-"+text)); err != nil {
					return // node a is gone
				}
				p.receipted = append(p.receipted, text)
				if !storedNow(db, p.roomID, text) {
					p.problems = append(p.problems, text+" receipted but not stored")
				}
				if total.Add(1) == killAfter {
					enoughOnce.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-pubs[0].done:
		t.Fatalf("a publisher stopped after %d receipts in all", total.Load())
	}
	if err := procA.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procA.exited
	for _, p := range pubs {
		select {
		case <-p.done:
		case <-time.After(40 * time.Second):
			t.Fatalf("customer %s did not notice node a died", p.number)
		}
		if len(p.problems) > 0 {
			t.Fatalf("%s", strings.Join(p.problems, "; "))
		}
	}
	t.Logf("%d messages receipted before the kill", total.Load())

	// Each customer's app reconnects, to node b this time, and finds every
	// receipted message of its room, once.
	var custRoom *inbox
	var first *chatClient
	for i, p := range pubs {
		c := dialChat(t, "customer "+p.number+"@b", b, customerHeaders(p.number))
		if got := c.await(c.private, "LOGINED", nil).M["roomId"]; got != p.roomID {
			t.Fatalf("room after reconnecting: %v, want %s", got, p.roomID)
		}
		in := c.subscribe("/sub/socket/room/" + p.roomID)
		if i == 0 {
			first, custRoom = c, in
		}
		seen := map[string]int{}
		list := c.await(c.private, "MESSAGE_LIST", nil)
		for {
			for _, text := range list.ListTexts() {
				seen[text]++
			}
			ids := list.ListIDs()
			if len(ids) == 0 || allSeen(seen, p.receipted) {
				break
			}
			c.send("MESSAGE_LIST", map[string]any{"messageAdminType": 0, "startId": slices.Min(ids)}, "roomId", p.roomID)
			list = c.await(c.private, "MESSAGE_LIST", nil)
		}
		for _, text := range p.receipted {
			if seen[text] != 1 {
				t.Errorf("receipted %s listed %d times", text, seen[text])
			}
		}
	}
	agent.send("MESSAGE", textMessage("B 노드에서 답변", ""))
	first.await(custRoom, "MESSAGE", withText("B 노드에서 답변"))
	agent.await(agentRoom, "MESSAGE", withText("B 노드에서 답변"))
	waitReady(t, b.base, 200)

	// Node a's presence lapses after its TTL (15 s) and node b announces
	// the customer who did not come back; those who did are not OFFLINE.
	reconnected := map[string]bool{}
	for _, p := range pubs {
		reconnected[p.roomID] = true
	}
	lobbyAgent.awaitWithin(lobby, "OFFLINE", func(ev event) bool {
		if reconnected[fmt.Sprint(ev.M["roomId"])] {
			t.Fatalf("OFFLINE for a customer who is back on node b: %s", ev.Raw)
		}
		return ev.M["sessionId"] == lostSession
	}, 45*time.Second)
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
