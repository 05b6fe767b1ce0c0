package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/video/videotest"
)

// videoMember is a demo counselor as a /signal client sees it.
type videoMember struct{ login, token, user string }

// videoMembers logs counselors in on base and finds their speaker ids (their
// user ids in video rooms) in the shared database.
func videoMembers(t *testing.T, dsn, base string, logins ...string) []videoMember {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []videoMember
	for _, l := range logins {
		m, err := st.MemberByLogin(ctx, l)
		if err != nil {
			t.Fatalf("member %s: %v", l, err)
		}
		sp, err := st.MemberSpeaker(ctx, m)
		if err != nil {
			t.Fatalf("speaker of %s: %v", l, err)
		}
		out = append(out, videoMember{login: l, token: login(t, base, l), user: strconv.FormatInt(sp.ID, 10)})
	}
	return out
}

func signalURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + "/signal" }

// joinVideo joins room c-1 of company 1 through base, joining again while
// the answer is shutdown (the room's node is gone and its lease not yet
// run out), and returns the client and its existingParticipants.
func joinVideo(t *testing.T, base string, m videoMember) (*videotest.Signal, videotest.Msg) {
	t.Helper()
	deadline := time.Now().Add(clusterWait)
	for tries := 1; ; tries++ {
		c := videotest.DialSignal(t, signalURL(base), m.user)
		c.Join(m.token, "1", "c-1")
		e := c.AwaitJoin(clusterWait)
		if e.Str("id") == "existingParticipants" {
			return c, e
		}
		c.Close()
		if e.Str("code") != "shutdown" || time.Now().After(deadline) {
			t.Fatalf("%s joining through %s (try %d): %v", m.login, base, tries, e)
		}
	}
}

// mediaWait bounds ICE and the first packets on a busy machine.
const mediaWait = 30 * time.Second

// metricLine fails unless base's /metrics has line.
func metricLine(t *testing.T, base, line string) {
	t.Helper()
	waitUntil(t, clusterWait, base+" /metrics has "+line, func() bool {
		_, body := getBody(t, base+"/metrics")
		return strings.Contains(body, line+"\n")
	})
}

// TestClusterVideoAcrossNodes: two `cstalk serve` processes on one MariaDB
// and Redis. agent1's signaling reaches node A, agent2's node B: the room
// lives on A (its first join), B relays agent2's signaling there, and both
// receive each other's media from A. A is killed: agent2 is told to rejoin,
// and once A's lease runs out B takes the room over and both meet again
// on B.
func TestClusterVideoAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cstalk and runs two nodes")
	}
	bin := buildCstalk(t)
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	common := []string{"--db", dsn, "--redis", rds.URL(), "--jwt-secret", "cluster-video-secret-" + randomHex(8),
		"--video-room-lease", "2s"}
	procA := startProcess(t, "node a", bin, append(common, "--demo")...)
	procB := startProcess(t, "node b", bin, common...)
	a, b := procA.node(), procB.node()
	waitReady(t, a.base, 200)
	waitReady(t, b.base, 200)
	members := videoMembers(t, dsn, a.base, "agent1", "agent2")
	m1, m2 := members[0], members[1]

	c1, welcome := joinVideo(t, a.base, m1)
	if others, _ := welcome["members"].([]any); len(others) != 0 {
		t.Fatalf("agent1 opened a room holding %v", others)
	}
	c1.Publish()
	relayedJoin := time.Now()
	c2, welcome := joinVideo(t, b.base, m2)
	if others, _ := welcome["members"].([]any); len(others) != 1 || others[0].(map[string]any)["userId"] != m1.user {
		t.Fatalf("agent2, relayed by node b, is shown %v; want agent1", welcome["members"])
	}
	c1.Await(clusterWait, "newParticipantArrived", "name", m2.user)
	c2.Publish()
	from2 := c1.Subscribe(m2.user)
	from1 := c2.Subscribe(m1.user)
	from1.AwaitMedia(t, "agent2 (relayed) receiving agent1", 1, mediaWait)
	t.Logf("relayed join to first video packet: %s", time.Since(relayedJoin).Round(time.Millisecond))
	from2.AwaitMedia(t, "agent1 receiving agent2", 50, mediaWait)
	from1.AwaitMedia(t, "agent2 (relayed) receiving agent1", 50, mediaWait)
	metricLine(t, a.base, `cstalk_video_rooms{frontend="signal"} 1`)
	metricLine(t, a.base, `cstalk_video_signaling_connections{transport="relay"} 1`)
	if _, body := getBody(t, b.base+"/metrics"); strings.Contains(body, `cstalk_video_rooms{frontend="signal"} 1`) {
		t.Fatalf("node b opened a room of its own: %s", grepLines(body, "cstalk_video_rooms"))
	}
	// State and leaving cross the relay too.
	c2.Send(map[string]any{"id": "videoStateFrom", "userId": m2.user, "video": false})
	c1.Await(clusterWait, "videoStateAnswer", "userId", m2.user)

	// The room's node dies: the relayed client hears at once that it must
	// rejoin; the room moves to b once a's lease has run out.
	killed := time.Now()
	if err := procA.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-procA.exited
	c2.Await(clusterWait, "error", "code", "shutdown")
	c1.Close()
	c2.Close()
	n1, _ := joinVideo(t, b.base, m1)
	t.Logf("room moved to node b %s after node a died", time.Since(killed).Round(10*time.Millisecond))
	n1.Publish()
	directJoin := time.Now()
	n2, welcome := joinVideo(t, b.base, m2)
	if others, _ := welcome["members"].([]any); len(others) != 1 {
		t.Fatalf("after the move agent2 is shown %v; want agent1", welcome["members"])
	}
	n2.Publish()
	// The same steps as the relayed join's above, for comparison.
	on1, on2 := n1.Subscribe(m2.user), n2.Subscribe(m1.user)
	on2.AwaitMedia(t, "agent2 on b", 1, mediaWait)
	t.Logf("direct join to first video packet: %s", time.Since(directJoin).Round(time.Millisecond))
	on1.AwaitMedia(t, "agent1 on b", 50, mediaWait)
	on2.AwaitMedia(t, "agent2 on b", 50, mediaWait)
	metricLine(t, b.base, `cstalk_video_rooms{frontend="signal"} 1`)
}

// TestClusterVideoEndAndDrain: a chat room's call lives on node A (the
// customer joined there first) and the counselor's signaling is relayed
// from node B. VIDEO_END sent on B closes the call on A for both sides.
// In a second call node A drains: both sides are told to rejoin, A gives
// its room up, and the rejoins open the call on B at once, long before
// A's lease would have run out.
func TestClusterVideoEndAndDrain(t *testing.T) {
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	cfg.VideoRoomLease = time.Hour
	a := startClusterNode(t, "a", cfg)
	b := startClusterNode(t, "b", cfg)
	waitReady(t, a.base, 200)
	waitReady(t, b.base, 200)
	agentM := videoMembers(t, dsn, b.base, "agent1")[0]

	cust := dialChat(t, "customer@a", a, customerHeaders("5301"))
	roomID := cust.await(cust.private, "LOGINED", nil).M["roomId"].(string)
	cust.subscribe("/sub/socket/room/" + roomID)
	cust.await(cust.private, "WELCOME_MESSAGE", nil)
	agent := dialChat(t, "agent1@b", b, memberHeaders(agentM.token))
	agentRoom := agent.subscribe("/sub/socket/room/" + roomID)
	agent.await(agent.private, "MESSAGE_LIST", nil)

	// call opens the chat room's call, the customer joining through a
	// and the counselor through b.
	call := func(custNode, agentNode *clusterNode) (custSig, agentSig *videotest.Signal) {
		t.Helper()
		agent.send("VIDEO_START", map[string]any{}, "roomId", roomID)
		invite := cust.await(cust.private, "VIDEO_INVITE", nil).Data()
		custM := videoMember{login: "customer", token: invite["token"].(string), user: invite["userId"].(string)}
		custSig = joinChatCall(t, custNode, custM, roomID)
		agentSig = joinChatCall(t, agentNode, agentM, roomID)
		custSig.Await(clusterWait, "newParticipantArrived", "name", agentM.user)
		return custSig, agentSig
	}
	custSig, agentSig := call(a, b)
	metricLine(t, a.base, `cstalk_video_signaling_connections{transport="relay"} 1`)

	agent.send("VIDEO_END", map[string]any{}, "roomId", roomID)
	agent.await(agentRoom, "VIDEO_ENDED", nil)
	custSig.Await(clusterWait, "error", "code", "roomClosed")
	agentSig.Await(clusterWait, "error", "code", "roomClosed")
	for _, s := range []*videotest.Signal{custSig, agentSig} {
		select {
		case <-s.Done():
		case <-time.After(clusterWait):
			t.Fatal("a socket stayed open after roomClosed")
		}
	}
	metricLine(t, a.base, `cstalk_video_rooms{frontend="signal"} 0`)

	custSig, agentSig = call(a, b)
	a.stop()
	custSig.Await(clusterWait, "error", "code", "shutdown")
	agentSig.Await(clusterWait, "error", "code", "shutdown")
	a.awaitDrained(t)
	custSig.Close()
	agentSig.Close()
	joinChatCall(t, b, agentM, roomID)
	metricLine(t, b.base, `cstalk_video_rooms{frontend="signal"} 1`)
}

// joinChatCall joins the call of chat room roomID (company 1) through n.
func joinChatCall(t *testing.T, n *clusterNode, m videoMember, roomID string) *videotest.Signal {
	t.Helper()
	c := videotest.DialSignal(t, signalURL(n.base), m.user)
	c.Join(m.token, "1", "r-"+roomID)
	if ans := c.AwaitJoin(clusterWait); ans.Str("id") != "existingParticipants" {
		t.Fatalf("%s joining r-%s through %s: %v", m.login, roomID, n.base, ans)
	}
	return c
}

// TestClusterVideoBrowsers: Chromium pages on two nodes decode each other's
// video: the room lives on node A (a pion client joined there first),
// agent1's page signals to A and agent2's to B, which relays it; the pion
// client receives both pages' media.
func TestClusterVideoBrowsers(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test; run without -short")
	}
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s is not installed", chromium)
	}
	_, modules := videotest.NodeModules(t, "playwright-core")
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	a := startClusterNode(t, "a", cfg)
	b := startClusterNode(t, "b", cfg)
	waitReady(t, a.base, 200)
	waitReady(t, b.base, 200)
	members := videoMembers(t, dsn, a.base, "admin1", "agent1", "agent2")
	goM, m1, m2 := members[0], members[1], members[2]

	// The page and SockJS's script come from a server of the test's own;
	// the pages signal to the nodes.
	mux := http.NewServeMux()
	mux.HandleFunc("/test/call.html", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../../video/testdata/call.html")
	})
	mux.HandleFunc("/test/sockjs.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(modules, "sockjs-client", "dist", "sockjs.min.js"))
	})
	pages := httptest.NewServer(mux)
	t.Cleanup(pages.Close)

	g, _ := joinVideo(t, a.base, goM)
	g.Publish()
	page := func(n *clusterNode, m videoMember) string {
		return m.user + "?" + url.Values{"signal": {n.base}, "token": {m.token}}.Encode()
	}
	browsers := videotest.StartNode(t, "playwright-core", "../../video/testdata/browser.cjs", pages.URL, "c-1", goM.user,
		page(a, m1), page(b, m2))
	// Chromium's start counts too: a busy machine takes a while.
	g.Await(90*time.Second, "newParticipantArrived", "name", m1.user)
	g.Await(90*time.Second, "newParticipantArrived", "name", m2.user)
	from1, from2 := g.Subscribe(m1.user), g.Subscribe(m2.user)
	line := browsers.Take(90*time.Second, func(l string) error {
		if !strings.Contains(l, `"ok":true`) {
			return fmt.Errorf("browsers: %s", l)
		}
		return nil
	})
	t.Logf("browsers: %s", line)
	from1.AwaitMedia(t, "pion <- agent1's page on a", 20, clusterWait)
	from2.AwaitMedia(t, "pion <- agent2's page on b", 20, clusterWait)
	metricLine(t, a.base, `cstalk_video_signaling_connections{transport="relay"} 1`)
}
