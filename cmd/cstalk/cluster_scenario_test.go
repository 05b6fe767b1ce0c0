package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/broker/redisbus/redistest"
)

// jsEvent waits on a JavaScript client for the chat event name on
// subscription sub (that match accepts, when given) and returns it.
func jsEvent(t *testing.T, c *brokertest.JSClient, sub, name string, match func(event) bool) event {
	t.Helper()
	var got event
	ev := c.Expect(t, func(e brokertest.Event) bool {
		if e.Ev == "error" || e.Ev == "close" {
			return true // fail below rather than time out
		}
		if e.Ev != "message" || e.Sub != sub {
			return false
		}
		var parsed event
		parsed.Raw = e.Body
		if json.Unmarshal([]byte(e.Body), &parsed.M) != nil {
			return false
		}
		parsed.Name, _ = parsed.M["eventName"].(string)
		if parsed.Name != name || (match != nil && !match(parsed)) {
			return false
		}
		got = parsed
		return true
	}, clusterWait)
	if ev.Ev != "message" {
		t.Fatalf("waiting for %s on %s: %s", name, sub, ev.Raw)
	}
	return got
}

func jsSend(t *testing.T, c *brokertest.JSClient, receipt, name string, data any) {
	t.Helper()
	c.SendReceipt(t, "/pub/socket/message", nil, string(chatBody(name, data)), receipt)
}

func jsToken(t *testing.T, base, name string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + login(t, base, name)}
}

func roomStatus(ev event) string {
	room, _ := ev.Data()["room"].(map[string]any)
	s, _ := room["status"].(string)
	return s
}

func noteFree(t *testing.T, who string, events []brokertest.Event) {
	t.Helper()
	for _, ev := range events {
		if strings.Contains(ev.Body, "메모") {
			t.Fatalf("%s got the internal note: %s", who, ev.Raw)
		}
	}
}

// TestClusterScenarioWithDeployedClients runs a consultation across two
// nodes with the npm clients the deployed apps use: the customer app
// (stompjs 2.x over sockjs-client, as seed 003) on node A, its counselor
// (@stomp/stompjs 7 over SockJS xhr-streaming) on node B, and a second
// counselor (@stomp/stompjs 7 on the raw WebSocket) on node A. Every event
// crosses the nodes both ways; the internal note reaches the counselor on A
// and never the customer; ONLINE/OFFLINE follow the customer's connections
// on both nodes.
func TestClusterScenarioWithDeployedClients(t *testing.T) {
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	a := startClusterNode(t, "a", cfg)
	b := startClusterNode(t, "b", cfg)

	counselor := brokertest.StartNode(t, brokertest.WithName("counselor@b"))
	counselor.Connect(t, brokertest.ConnectOptions{Lib: brokertest.LibStompJS7, URL: b.sockJSURL(),
		Transport: brokertest.TransportXHRStreaming, Headers: jsToken(t, b.base, "agent1")})
	counselor.Subscribe(t, "private", "/user/session/message", nil)
	counselor.Subscribe(t, "lobby", "/sub/socket/room/LOBBY1", nil)

	colleague := brokertest.StartNode(t, brokertest.WithName("colleague@a"))
	colleague.Connect(t, brokertest.ConnectOptions{Lib: brokertest.LibStompJS7, URL: a.sockJSURL(),
		Transport: brokertest.TransportRaw, Headers: jsToken(t, a.base, "agent2")})
	colleague.Subscribe(t, "private", "/user/session/message", nil)
	colleague.Subscribe(t, "lobby", "/sub/socket/room/LOBBY1", nil)
	lobbies := map[string]*brokertest.JSClient{"counselor@b": counselor, "colleague@a": colleague}

	app := brokertest.StartNode(t, brokertest.WithName("customer@a"))
	app.Connect(t, brokertest.ConnectOptions{Lib: brokertest.LibStompJS2, URL: a.sockJSURL(),
		Transport: brokertest.TransportWebSocket, Headers: map[string]string{"companyId": "1", "gasappMemberNumber": "3825", "name": "안치성"}})
	app.Subscribe(t, "private", "user/session/message", nil)
	logined := jsEvent(t, app, "private", "LOGINED", nil)
	roomID, _ := logined.M["roomId"].(string)
	appSession, _ := logined.M["sessionId"].(string)
	if roomID == "" || appSession == "" {
		t.Fatalf("LOGINED = %s", logined.Raw)
	}
	for who, c := range lobbies {
		jsEvent(t, c, "lobby", "RELOAD", nil)
		if ev := jsEvent(t, c, "lobby", "RELOAD_READY", nil); roomStatus(ev) != "WAITING" {
			t.Fatalf("%s: RELOAD_READY = %s", who, ev.Raw)
		}
	}

	app.Subscribe(t, "room", "sub/socket/room/"+roomID, nil)
	jsEvent(t, app, "private", "JOINED", nil)
	jsEvent(t, app, "private", "ROOM_DETAIL", nil)
	jsEvent(t, app, "private", "MESSAGE_LIST", nil)
	jsEvent(t, app, "private", "WELCOME_MESSAGE", nil)
	for _, c := range lobbies {
		jsEvent(t, c, "lobby", "ONLINE", nil)
	}
	jsSend(t, app, "m1", "MESSAGE", textMessage("1111", "app-1"))
	for _, c := range lobbies {
		jsEvent(t, c, "lobby", "RELOAD", nil)
	}

	// The counselor on B takes the room.
	counselor.Unsubscribe(t, "lobby")
	counselor.Subscribe(t, "room", "/sub/socket/room/"+roomID, nil)
	counselorSpeaker, _ := jsEvent(t, counselor, "private", "JOINED", nil).Data()["profile"].(map[string]any)["speakerId"].(float64)
	if ev := jsEvent(t, counselor, "private", "ROOM_DETAIL", nil); roomStatus(ev) != "IN_PROGRESS" {
		t.Fatalf("counselor ROOM_DETAIL = %s", ev.Raw)
	}
	if ev := jsEvent(t, counselor, "private", "MESSAGE_LIST", nil); !slices.Contains(ev.ListTexts(), "1111") {
		t.Fatalf("counselor MESSAGE_LIST = %s", ev.Raw)
	}
	// Others' JOINED and the new status reach each connection in the room
	// privately, across the nodes.
	jsEvent(t, app, "private", "JOINED", nil)
	if ev := jsEvent(t, app, "private", "ROOM_DETAIL", nil); roomStatus(ev) != "IN_PROGRESS" {
		t.Fatalf("customer ROOM_DETAIL = %s", ev.Raw)
	}
	jsEvent(t, colleague, "lobby", "RELOAD_READY", func(ev event) bool { return roomStatus(ev) == "IN_PROGRESS" })
	// Taking the room read the customer's message: both nodes hear it.
	for who, c := range map[string]*brokertest.JSClient{"counselor@b": counselor, "customer@a": app} {
		if ev := jsEvent(t, c, "room", "READ_MESSAGE", nil); ev.Data()["speakerId"] != counselorSpeaker || ev.Data()["roomId"] != roomID {
			t.Fatalf("%s: READ_MESSAGE of the counselor entering = %s", who, ev.Raw)
		}
	}

	// MESSAGE both ways.
	jsSend(t, app, "m2", "MESSAGE", textMessage("2222", "app-2"))
	fromApp := jsEvent(t, counselor, "room", "MESSAGE", withText("2222"))
	if online, _ := fromApp.Message()["isOnline"].(float64); online != 1 {
		t.Fatalf("isOnline of the customer's message: %s", fromApp.Raw)
	}
	appMessageID := fromApp.Message()["id"]

	// The colleague on A joins the room; the counselor's note reaches it
	// across the nodes, privately, and never the customer.
	colleague.Subscribe(t, "room", "/sub/socket/room/"+roomID, nil)
	jsEvent(t, colleague, "private", "MESSAGE_LIST", nil)
	jsSend(t, counselor, "n1", "MESSAGE", map[string]any{"messageType": 0, "message": "메모: 확인 필요", "messageAdminType": 1})
	note := jsEvent(t, colleague, "private", "MESSAGE", withText("메모: 확인 필요"))
	if note.M["target"] != "MEMBER" {
		t.Fatalf("note = %s", note.Raw)
	}
	noteID := note.Message()["id"]
	jsEvent(t, counselor, "private", "MESSAGE", withText("메모: 확인 필요"))
	jsSend(t, counselor, "a1", "MESSAGE", textMessage("안녕하세요 고객님", "agent-1"))
	answer := jsEvent(t, app, "room", "MESSAGE", withText("안녕하세요 고객님"))
	jsEvent(t, colleague, "room", "MESSAGE", withText("안녕하세요 고객님"))
	noteFree(t, "the customer", app.Pending())

	// READ_MESSAGE from A reaches B.
	answerID := answer.Message()["id"]
	jsSend(t, app, "r1", "READ_MESSAGE", map[string]any{"startId": answerID, "endId": answerID})
	if ev := jsEvent(t, counselor, "room", "READ_MESSAGE", nil); ev.Data()["endId"] != answerID || ev.Data()["roomId"] != roomID {
		t.Fatalf("READ_MESSAGE = %s", ev.Raw)
	}

	// MESSAGE_LIST on each side: the note for members only.
	jsSend(t, app, "l1", "MESSAGE_LIST", map[string]any{"messageAdminType": 0})
	appList := jsEvent(t, app, "private", "MESSAGE_LIST", nil)
	if texts := appList.ListTexts(); !slices.Contains(texts, "안녕하세요 고객님") || slices.Contains(texts, "메모: 확인 필요") {
		t.Fatalf("customer MESSAGE_LIST = %q", texts)
	}
	jsSend(t, counselor, "l2", "MESSAGE_LIST", map[string]any{"messageAdminType": 1})
	if texts := jsEvent(t, counselor, "private", "MESSAGE_LIST", nil).ListTexts(); !slices.Contains(texts, "메모: 확인 필요") || !slices.Contains(texts, "2222") {
		t.Fatalf("counselor MESSAGE_LIST = %q", texts)
	}

	// DELETE_MESSAGE both ways: the customer's own message reaches B; the
	// note's deletion reaches the colleague on A privately.
	jsSend(t, app, "d1", "DELETE_MESSAGE", map[string]any{"id": appMessageID})
	if ev := jsEvent(t, counselor, "room", "DELETE_MESSAGE", nil); ev.Data()["id"] != appMessageID || ev.Data()["success"] != true {
		t.Fatalf("DELETE_MESSAGE = %s", ev.Raw)
	}
	jsSend(t, counselor, "d2", "DELETE_MESSAGE", map[string]any{"id": noteID})
	jsEvent(t, colleague, "private", "DELETE_MESSAGE", func(ev event) bool { return ev.Data()["id"] == noteID })
	noteFree(t, "the customer", app.Pending())

	// The customer writes from a connection on B that is not in the room:
	// the message counts as written online, because its app on A is there.
	other := dialChat(t, "customer without the room@b", b, customerHeaders("3825"))
	other.await(other.private, "LOGINED", nil)
	other.send("MESSAGE", textMessage("다른 기기에서", "app-3"), "roomId", roomID)
	if ev := jsEvent(t, counselor, "room", "MESSAGE", withText("다른 기기에서")); ev.Message()["isOnline"] != float64(1) {
		t.Fatalf("isOnline of a message from another node: %s", ev.Raw)
	}

	// The customer opens the app a second time, on node B. Leaving on A is
	// then no OFFLINE; leaving on B as well is.
	second := dialChat(t, "customer@b", b, customerHeaders("3825"))
	secondSession, _ := second.await(second.private, "LOGINED", nil).M["sessionId"].(string)
	second.subscribe("/sub/socket/room/" + roomID)
	second.await(second.private, "WELCOME_MESSAGE", nil)
	app.Disconnect(t, "")
	waitPresenceGone(t, rds.URL(), roomID, appSession)
	if err := second.conn.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if ev := jsEvent(t, colleague, "lobby", "OFFLINE", nil); ev.M["sessionId"] != secondSession {
		t.Fatalf("OFFLINE while the customer was still on node b: %s (second session %s)", ev.Raw, secondSession)
	}

	// END on B reaches the room on A and the lobby on A.
	jsSend(t, counselor, "e1", "END", map[string]any{})
	jsEvent(t, colleague, "room", "END", nil)
	jsEvent(t, colleague, "lobby", "RELOAD", nil)
	jsEvent(t, colleague, "lobby", "RELOAD_READY", func(ev event) bool { return roomStatus(ev) == "ENDED" })
	counselor.Disconnect(t, "bye")
	colleague.Disconnect(t, "bye")
}

// waitPresenceGone polls Redis until no node lists session in room.
func waitPresenceGone(t *testing.T, redisURL, roomID, session string) {
	t.Helper()
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	ctx := context.Background()
	waitUntil(t, clusterWait, "session "+session+" leaves room "+roomID, func() bool {
		keys, err := client.Keys(ctx, "cstalk:presence:{"+roomID+"}:node:*").Result()
		if err != nil {
			return false
		}
		for _, k := range keys {
			if present, err := client.HExists(ctx, k, session).Result(); err != nil || present {
				return false
			}
		}
		return true
	})
}
