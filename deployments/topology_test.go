package deployments_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/chat/chattest"
	"github.com/cstalk/cstalk/store/storetest"
)

// topologyWait bounds every wait of the topology test.
const topologyWait = 15 * time.Second

// TestTopology runs the compose shape as local processes: the cstalk binary
// built as the Dockerfile builds it, `cstalk migrate` once, two `cstalk
// serve` nodes sharing Redis and a fresh MariaDB database, and HAProxy in
// front of them with the committed config. Through HAProxy only, customers
// on SockJS's xhr-streaming, xhr-polling and websocket transports and a
// counselor on the raw WebSocket, placed on the other node, exchange
// messages: the HTTP transports survive only if every request of a session
// reaches its node, and the messages cross nodes only through Redis.
func TestTopology(t *testing.T) {
	requireBinary(t, "haproxy", installHAProxy)
	redisURL := sharedRedis(t)
	dsn, _ := storetest.MariaDB(t, "lb")
	bin := buildCstalk(t)

	// The one-shot migration of compose.yaml, before any node serves.
	migrate := exec.Command(bin, "migrate")
	migrate.Env = append(os.Environ(), "CSTALK_DB="+dsn)
	if out, err := migrate.CombinedOutput(); err != nil || !strings.Contains(string(out), "migrations applied") {
		t.Fatalf("cstalk migrate: %v\n%s", err, out)
	}

	env := []string{
		"CSTALK_DB=" + dsn,
		"CSTALK_REDIS=" + redisURL,
		"CSTALK_JWT_SECRET=topology-" + randomHex(16),
		"CSTALK_UPLOAD_DIR=" + filepath.Join(t.TempDir(), "uploads"),
		"CSTALK_LOG_FORMAT=json",
		"CSTALK_SHUTDOWN_TIMEOUT=5s",
	}
	// As in compose.yaml, only the first node seeds the demo data.
	node1, _ := startNode(t, bin, "cstalk1", append(env, "CSTALK_DEMO=true"))
	node2, node2proc := startNode(t, bin, "cstalk2", env)
	nodes := []string{node1, node2}
	lb := startHAProxy(t, []string{strings.TrimPrefix(node1, "http://"), strings.TrimPrefix(node2, "http://")})

	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 403, "/ws/info": 200} {
		if got := httpStatus(t, lb.base+path); got != want {
			t.Errorf("GET %s through the load balancer: %d, want %d", path, got, want)
		}
	}
	token := loginThrough(t, lb.base, "agent1")
	wsURL := "ws" + strings.TrimPrefix(lb.base, "http") + "/ws/websocket"

	// Customers new to this run: presence in the shared Redis outlives runs.
	memberBase := 7_000_000_000 + mathrand.IntN(900_000_000)
	for i, transport := range []string{brokertest.TransportXHRStreaming, brokertest.TransportXHRPolling, brokertest.TransportWebSocket} {
		t.Run(transport, func(t *testing.T) {
			customer, roomDest := connectCustomer(t, lb.base, transport, memberBase+i)
			home := nodeWith(t, nodes, transport, 1)

			// Open counselor WebSockets until HAProxy puts one on the other
			// node; leastconn makes that the first or the second.
			var counselor *counselorConn
			for attempt := 0; counselor == nil; attempt++ {
				if attempt == 3 {
					t.Fatalf("three counselor WebSockets all landed on %s", nodes[home])
				}
				before := connectionCounts(t, nodes, "raw-websocket")
				c := dialCounselor(t, wsURL, token)
				at := nodeGained(t, nodes, "raw-websocket", before)
				if at != home {
					counselor = c
				}
			}
			counselor.subscribeRoom(t, roomDest)
			// Several sends: each is its own xhr_send request on the HTTP
			// transports, and each must reach the session's node.
			exchange(t, customer, counselor, transport, 3)

			// The session never moved: still one connection, on its node.
			if got := connectionCounts(t, nodes, transport); got[home] != 1 || got[1-home] != 0 {
				t.Errorf("%s connections per node after the exchange: %v, want 1 on %s only", transport, got, nodes[home])
			}
		})
	}

	// A draining node leaves the rotation: SIGTERM closes its listener,
	// HAProxy's checks take it out of every backend, and new sessions, sticky
	// ones included, go to the node that is left.
	t.Run("drain", func(t *testing.T) {
		node2proc.stop(t, syscall.SIGTERM, true)
		waitFor(t, topologyWait, "HAProxy takes cstalk2 out", func() error {
			st, err := lb.serverStatus()
			if err != nil {
				return err
			}
			for _, b := range []string{"cstalk_http", "cstalk_sockjs", "cstalk_ws"} {
				if s := st[b+"/cstalk2"]; s != "DOWN" {
					return fmt.Errorf("%s/cstalk2 is %q", b, s)
				}
			}
			return nil
		})
		customer, roomDest := connectCustomer(t, lb.base, brokertest.TransportXHRStreaming, memberBase+10)
		counselor := dialCounselor(t, wsURL, loginThrough(t, lb.base, "agent2"))
		counselor.subscribeRoom(t, roomDest)
		exchange(t, customer, counselor, "drain", 2)
	})
}

// connectCustomer connects a customer of company 1 through the load
// balancer over a SockJS transport, with stompjs 2.x as the deployed app
// does, and subscribes to its private channel and its room.
func connectCustomer(t *testing.T, lbBase, transport string, member int) (*brokertest.JSClient, string) {
	t.Helper()
	customer := brokertest.StartNode(t, brokertest.WithName("customer/"+transport))
	customer.Connect(t, brokertest.ConnectOptions{
		Lib: brokertest.LibStompJS2, URL: lbBase + "/ws", Transport: transport,
		Headers: map[string]string{"companyId": "1", "gasappMemberNumber": strconv.Itoa(member), "name": "고객 " + transport},
	})
	customer.Subscribe(t, "private", "/user/session/message", nil)
	roomID := jsAwait(t, customer, "private", func(ev chatEvent) bool { return ev.Name == "LOGINED" }).Str("roomId")
	if roomID == "" {
		t.Fatal("LOGINED carries no roomId")
	}
	roomDest := "/sub/socket/room/" + roomID
	customer.Subscribe(t, "room", roomDest, nil)
	return customer, roomDest
}

// exchange sends n messages from the customer (each acknowledged, so
// stored) that the counselor must receive, then one reply back.
func exchange(t *testing.T, customer *brokertest.JSClient, counselor *counselorConn, label string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		text := fmt.Sprintf("%s 고객 메시지 %d", label, i)
		customer.SendReceipt(t, "/pub/socket/message", nil, chatMessage(text), fmt.Sprintf("m%d", i))
		counselor.await(t, counselor.room, "MESSAGE", text)
	}
	reply := label + " 상담사 답변 ☃"
	counselor.send(t, chatMessage(reply))
	jsAwait(t, customer, "room", func(ev chatEvent) bool { return ev.Name == "MESSAGE" && ev.Text() == reply })
}

// buildCstalk builds cmd/cstalk as the Dockerfile does (static, trimmed,
// version stamped) and checks the result is static, as distroless/static
// needs.
func buildCstalk(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cstalk")
	const version = "topology-test"
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "timetzdata",
		"-ldflags", "-s -w -X main.version="+version, "-o", bin, "./cmd/cstalk")
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/cstalk: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("open the binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the cstalk binary is dynamically linked; distroless/static has no libc")
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "cstalk "+version {
		t.Fatalf("cstalk version: %q, %v", out, err)
	}
	return bin
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sharedRedis is the machine's Redis (CSTALK_TEST_REDIS overrides the
// address), as every node of a deployment shares one.
func sharedRedis(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("CSTALK_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis on %s is required: %v", addr, err)
	}
	return "redis://" + addr + "/0"
}

// startNode runs `cstalk serve` on a free port and waits until it is ready;
// when the test ends it sends SIGTERM and expects a clean drain (exit 0).
func startNode(t *testing.T, bin, name string, env []string) (string, *proc) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startProc(t, name, bin, append(env, "CSTALK_ADDR="+addr), "serve")
	t.Cleanup(func() { p.stop(t, syscall.SIGTERM, true) })
	base := "http://" + addr
	waitFor(t, topologyWait, name+" /readyz", func() error {
		if p.exited() {
			t.Fatalf("%s exited", name)
		}
		if s := httpStatus(t, base+"/readyz"); s != 200 {
			return fmt.Errorf("status %d", s)
		}
		return nil
	})
	return base, p
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func loginThrough(t *testing.T, base, login string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/auth/login", "application/json",
		strings.NewReader(`{"loginName":"`+login+`","password":"demo1234"}`))
	if err != nil {
		t.Fatalf("login %s: %v", login, err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("login %s: status %d, %v", login, resp.StatusCode, err)
	}
	return out.Token
}

// connectionCounts reads cstalk_broker_connections{transport} from each
// node's own /metrics: which node holds which connections.
func connectionCounts(t *testing.T, nodes []string, transport string) []int {
	t.Helper()
	prefix := `cstalk_broker_connections{transport="` + transport + `"} `
	counts := make([]int, len(nodes))
	for i, base := range nodes {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatalf("metrics of %s: %v", base, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatalf("metrics of %s: %q", base, sc.Text())
				}
				counts[i] = int(f)
			}
		}
		resp.Body.Close()
	}
	return counts
}

// nodeWith waits until exactly one node holds want connections of
// transport and returns its index.
func nodeWith(t *testing.T, nodes []string, transport string, want int) int {
	t.Helper()
	at := -1
	waitFor(t, topologyWait, "one node holds the "+transport+" session", func() error {
		counts := connectionCounts(t, nodes, transport)
		at = -1
		for i, c := range counts {
			if c == want && at < 0 {
				at = i
			} else if c != 0 {
				return fmt.Errorf("counts %v", counts)
			}
		}
		if at < 0 {
			return fmt.Errorf("counts %v", counts)
		}
		return nil
	})
	return at
}

// nodeGained waits until one node holds one more connection of transport
// than before and returns its index.
func nodeGained(t *testing.T, nodes []string, transport string, before []int) int {
	t.Helper()
	at := -1
	waitFor(t, topologyWait, "a node gains a "+transport+" connection", func() error {
		counts := connectionCounts(t, nodes, transport)
		for i := range counts {
			if counts[i] == before[i]+1 {
				at = i
				return nil
			}
		}
		return fmt.Errorf("before %v, now %v", before, counts)
	})
	return at
}

// chatEvent is one chat event envelope.
type chatEvent = chattest.Event

func parseChatEvent(t *testing.T, body string) chatEvent {
	t.Helper()
	ev, err := chattest.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func chatMessage(text string) string {
	b, _ := json.Marshal(map[string]any{"eventName": "MESSAGE", "data": map[string]any{
		"messageType": 0, "message": text, "messageDetail": "", "clientMessageId": "c-" + randomHex(6),
	}})
	return string(b)
}

// jsAwait skips the JavaScript client's events on sub until match accepts one.
func jsAwait(t *testing.T, c *brokertest.JSClient, sub string, match func(chatEvent) bool) chatEvent {
	t.Helper()
	deadline := time.Now().Add(topologyWait)
	for time.Now().Before(deadline) {
		if ev := parseChatEvent(t, c.NextMessage(t, sub).Body); match(ev) {
			return ev
		}
	}
	t.Fatalf("no matching event on %s within %v", sub, topologyWait)
	return chatEvent{}
}

// counselorConn is a counselor's go-stomp connection over the raw
// WebSocket, with its subscriptions drained as events arrive (go-stomp's
// small per-subscription buffer would otherwise stall the connection).
type counselorConn struct {
	conn          *stomp.Conn
	private, room *chattest.Inbox
}

func dialCounselor(t *testing.T, wsURL, token string) *counselorConn {
	t.Helper()
	conn := brokertest.ConnectGo(t, wsURL, stomp.ConnOpt.HeartBeat(0, 0), stomp.ConnOpt.Header("Authorization", "Bearer "+token))
	c := &counselorConn{conn: conn}
	c.private = c.subscribe(t, "/user/session/message")
	return c
}

func (c *counselorConn) subscribe(t *testing.T, dest string) *chattest.Inbox {
	t.Helper()
	sub, err := c.conn.Subscribe(dest, stomp.AckAuto)
	if err != nil {
		t.Fatalf("counselor: subscribe %s: %v", dest, err)
	}
	return chattest.Drain(dest, sub)
}

// subscribeRoom subscribes to the room and waits for the MESSAGE_LIST a
// member gets on subscribing, so the subscription is live.
func (c *counselorConn) subscribeRoom(t *testing.T, dest string) {
	t.Helper()
	c.room = c.subscribe(t, dest)
	c.await(t, c.private, "MESSAGE_LIST", "")
}

// await skips events on in until one named name (with text, if not empty).
func (c *counselorConn) await(t *testing.T, in *chattest.Inbox, name, text string) chatEvent {
	t.Helper()
	ev, err := in.Await(name, func(ev chatEvent) bool { return text == "" || ev.Text() == text }, topologyWait)
	if err != nil {
		t.Fatalf("counselor: %v", err)
	}
	return ev
}

// send SENDs a chat event and waits for the receipt (the message is stored).
func (c *counselorConn) send(t *testing.T, body string) {
	t.Helper()
	if err := c.conn.Send("/pub/socket/message", "application/json", []byte(body), stomp.SendOpt.Receipt); err != nil {
		t.Fatalf("counselor: send: %v", err)
	}
}
