package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
)

// TestClusterRoomChangesReachCachedContexts: each node keeps the message
// contexts of its rooms in memory; the end of a room committed on the other
// node reaches it before the customer, who heard of the end, sends again.
func TestClusterRoomChangesReachCachedContexts(t *testing.T) {
	rds := redistest.Start(t)
	dsn, db := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	a := startClusterNode(t, "a", cfg)
	b := startClusterNode(t, "b", cfg)

	cust := dialChat(t, "customer@b", b, customerHeaders("5031"))
	roomID := cust.await(cust.private, "LOGINED", nil).M["roomId"].(string)
	roomDest := "/sub/socket/room/" + roomID
	custRoom := cust.subscribe(roomDest)
	cust.await(cust.private, "WELCOME_MESSAGE", nil)
	// Node b reads the room's context, still waiting, and keeps it.
	cust.send("MESSAGE", textMessage("첫 질문", "c-1"))
	cust.await(custRoom, "MESSAGE", withText("첫 질문"))

	agent := dialChat(t, "agent1@a", a, memberHeaders(login(t, a.base, "agent1")))
	agentRoom := agent.subscribe(roomDest)
	agent.await(agent.private, "MESSAGE_LIST", nil)
	cust.await(cust.private, "JOINED", nil)
	agent.send("MESSAGE", textMessage("답변입니다", ""))
	cust.await(custRoom, "MESSAGE", withText("답변입니다"))
	cust.send("MESSAGE", textMessage("두 번째", "c-2"))
	agent.await(agentRoom, "MESSAGE", withText("두 번째"))

	agent.send("END", map[string]any{})
	cust.await(custRoom, "END", nil)
	cust.send("MESSAGE", textMessage("끝난 뒤", "c-3"))
	if ev := cust.await(cust.private, "ERROR", nil); !strings.Contains(ev.Raw, "종료된 상담입니다") {
		t.Fatalf("MESSAGE after the other node ended the room: %s", ev.Raw)
	}
	if slices.Contains(storedBodies(t, db, roomID), "끝난 뒤") {
		t.Fatal("a message to a room another node ended was stored")
	}
}
