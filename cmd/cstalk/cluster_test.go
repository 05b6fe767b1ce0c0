package main

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/go-stomp/stomp/v3/frame"
)

// The cluster tests run several nodes that share one MariaDB database (fresh
// per test) and one redis-server (of the test's own, so it can be killed),
// and check that they behave as one server through faults, losing nothing a
// client was told is stored.

// TestClusterRedisRestart: while Redis is down both nodes say they are not
// ready, yet each keeps serving its own clients and storing; when Redis is
// back they reconnect and resubscribe by themselves, and a counselor on the
// other node recovers what it missed with MESSAGE_LIST.
func TestClusterRedisRestart(t *testing.T) {
	rds := redistest.Start(t)
	dsn, db := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	a := startClusterNode(t, "a", cfg)
	b := startClusterNode(t, "b", cfg)
	waitReady(t, a.base, 200)
	waitReady(t, b.base, 200)

	cust := dialChat(t, "customer@a", a, customerHeaders("5001"))
	roomID := cust.await(cust.private, "LOGINED", nil).M["roomId"].(string)
	roomDest := "/sub/socket/room/" + roomID
	custRoom := cust.subscribe(roomDest)
	cust.await(cust.private, "WELCOME_MESSAGE", nil)

	agent := dialChat(t, "agent1@b", b, memberHeaders(login(t, b.base, "agent1")))
	agentRoom := agent.subscribe(roomDest)
	agent.await(agent.private, "MESSAGE_LIST", nil)
	watcher := dialChat(t, "agent2@a", a, memberHeaders(login(t, a.base, "agent2")))
	watcherRoom := watcher.subscribe(roomDest)
	watcher.await(watcher.private, "MESSAGE_LIST", nil)

	cust.send("MESSAGE", textMessage("before", "c-before"))
	agent.await(agentRoom, "MESSAGE", withText("before"))

	if m := metricsText(t, a.base); !strings.Contains(m, "cstalk_presence_redis_up 1") || !strings.Contains(m, "cstalk_presence_local_attendees 2") {
		t.Fatalf("presence metrics:\n%s", grepLines(m, "cstalk_presence_"))
	}
	// Node a published the message, node b delivered it; each node's three
	// buses are scraped apart.
	busA, busB := metricValues(t, a.base, "cstalk_bus_"), metricValues(t, b.base, "cstalk_bus_")
	if busA[`cstalk_bus_published_total{bus="chat"}`] < 1 || busB[`cstalk_bus_delivered_total{bus="chat"}`] < 1 ||
		busA[`cstalk_bus_reconnects_total{bus="chat"}`] != 0 {
		t.Fatalf("bus metrics: node a %v, node b %v", busA, busB)
	}
	for _, bus := range []string{"chat", "rooms", "guide"} {
		if _, ok := busA[`cstalk_bus_topics{bus="`+bus+`"}`]; !ok {
			t.Fatalf("no metrics of the %s bus: %v", bus, busA)
		}
	}
	rds.Kill()
	waitReady(t, a.base, 503)
	waitReady(t, b.base, 503)
	// The customer's node still stores and serves its own subscribers; the
	// receipt comes once the message is stored.
	cust.send("MESSAGE", textMessage("during", "c-during"))
	if !slices.Contains(storedBodies(t, db, roomID), "during") {
		t.Fatal("a receipted message is not in the store")
	}
	watcher.await(watcherRoom, "MESSAGE", withText("during"))
	cust.await(custRoom, "MESSAGE", withText("during"))
	// A customer who arrives during the outage is served by its node, and
	// must hear from the other node once Redis is back.
	late := dialChat(t, "late customer@a", a, customerHeaders("5010"))
	lateRoomID := late.await(late.private, "LOGINED", nil).M["roomId"].(string)
	lateRoom := late.subscribe("/sub/socket/room/" + lateRoomID)
	late.await(late.private, "WELCOME_MESSAGE", nil)

	rds.Restart()
	waitReady(t, a.base, 200)
	waitReady(t, b.base, 200)
	waitUntil(t, clusterWait, "presence back in line with Redis", func() bool {
		return strings.Contains(metricsText(t, a.base), "cstalk_presence_redis_up 1")
	})
	if n := metricValues(t, a.base, "cstalk_bus_")[`cstalk_bus_reconnects_total{bus="chat"}`]; n < 1 {
		t.Fatalf("the chat bus counts %v reconnects after Redis came back", n)
	}
	// Nobody subscribed again: the nodes did.
	cust.send("MESSAGE", textMessage("after", "c-after"))
	got := agent.await(agentRoom, "MESSAGE", nil)
	if got.Text() != "after" {
		t.Fatalf("first message after the outage on node b: %s", got.Raw)
	}
	agent.send("MESSAGE", textMessage("답변", ""))
	cust.await(custRoom, "MESSAGE", withText("답변"))

	lateAgent := dialChat(t, "agent2@b", b, memberHeaders(login(t, b.base, "agent2")))
	lateAgent.subscribe("/sub/socket/room/" + lateRoomID)
	lateAgent.await(lateAgent.private, "MESSAGE_LIST", nil)
	late.await(late.private, "ROOM_DETAIL", nil) // the assignment, from node b
	lateAgent.send("MESSAGE", textMessage("늦어서 죄송합니다", ""))
	late.await(lateRoom, "MESSAGE", withText("늦어서 죄송합니다"))

	// The counselor catches up with what Redis could not carry.
	agent.send("MESSAGE_LIST", map[string]any{"messageAdminType": 0})
	texts := agent.await(agent.private, "MESSAGE_LIST", nil).ListTexts()
	if i, j, k := slices.Index(texts, "before"), slices.Index(texts, "during"), slices.Index(texts, "after"); i < 0 || j < i || k < j {
		t.Fatalf("MESSAGE_LIST after the outage: %q", texts)
	}
}

// TestClusterDatabaseOutage: a node whose database is cut off refuses a
// MESSAGE with an ERROR event and no receipt, delivers it nowhere, and says
// it is not ready; when the database is back the client's retry (same
// clientMessageId) is stored once and delivered on both nodes.
func TestClusterDatabaseOutage(t *testing.T) {
	rds := redistest.Start(t)
	dsn, db := freshMariaDB(t)
	// The proxy stands in for whichever server CSTALK_TEST_MYSQL_DSN names.
	dbURL, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", dsn, err)
	}
	proxy := startProxy(t, dbURL.Host)
	cfgB := clusterConfig(t, dsn, rds.URL())
	cfgA := cfgB
	cfgA.DB = strings.Replace(dsn, dbURL.Host, proxy.addr(), 1)
	b := startClusterNode(t, "b", cfgB) // b creates the demo data
	a := startClusterNode(t, "a", cfgA)

	cust := dialRaw(t, "customer@a", a, customerHeaders("5002"))
	roomID := cust.expectEvent("LOGINED").M["roomId"].(string)
	roomDest := "/sub/socket/room/" + roomID
	cust.write(frame.New(frame.SUBSCRIBE, frame.Id, "room", frame.Destination, roomDest))
	cust.awaitEvent("/user/session/message", "WELCOME_MESSAGE")

	agent := dialChat(t, "agent1@b", b, memberHeaders(login(t, b.base, "agent1")))
	agentRoom := agent.subscribe(roomDest)
	agent.await(agent.private, "MESSAGE_LIST", nil)

	cust.sendEvent("r-first", "MESSAGE", textMessage("first", "c-first"))
	cust.awaitReceipt("r-first")
	if !slices.Contains(storedBodies(t, db, roomID), "first") {
		t.Fatal("a receipted message is not in the store")
	}
	agent.await(agentRoom, "MESSAGE", withText("first"))

	proxy.setCut(true)
	waitReady(t, a.base, 503)
	cust.sendEvent("r-lost", "MESSAGE", textMessage("lost", "c-lost"))
	if ev := cust.expectEvent("ERROR"); !strings.Contains(ev.Raw, "일시적인 오류") {
		t.Fatalf("ERROR event: %s", ev.Raw)
	}
	// Frames on a connection keep their order: had the refused MESSAGE been
	// receipted or delivered, that would arrive before the probe's answer.
	probe := frame.New(frame.SEND, frame.Destination, "/pub/socket/message", frame.Receipt, "r-probe")
	probe.Body = []byte(`{"eventName":`)
	cust.write(probe)
	cust.expectEvent("ERROR")
	if r := cust.expect(frame.RECEIPT); r.Header.Get(frame.ReceiptId) != "r-probe" {
		t.Fatalf("RECEIPT %v", r.Header)
	}

	proxy.setCut(false)
	waitReady(t, a.base, 200)
	cust.sendEvent("r-retry", "MESSAGE", textMessage("lost", "c-lost"))
	cust.awaitReceipt("r-retry")
	if got := agent.await(agentRoom, "MESSAGE", nil); got.Text() != "lost" {
		t.Fatalf("first message node b got after the outage: %s", got.Raw)
	}
	bodies := storedBodies(t, db, roomID)
	first, lost := slices.Index(bodies, "first"), slices.Index(bodies, "lost")
	if first < 0 || lost < first || slices.Index(bodies[lost+1:], "lost") >= 0 {
		t.Fatalf("stored: %q", bodies)
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValues scrapes base's /metrics and returns the samples whose
// names start with prefix, by name and labels as written.
func metricValues(t *testing.T, base, prefix string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(grepLines(metricsText(t, base), prefix), "\n") {
		sample, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[sample] = v
	}
	return out
}

func grepLines(text, prefix string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
