package chat_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/chat"
)

// jsEvent waits on a JavaScript client for the chat event name on
// subscription sub and returns it decoded.
func jsEvent(t *testing.T, c *brokertest.JSClient, sub, name string) chatEvent {
	t.Helper()
	ev := c.Expect(t, func(e brokertest.Event) bool {
		if e.Ev == "error" || e.Ev == "close" {
			return true // fail below rather than time out
		}
		if e.Ev != "message" || e.Sub != sub {
			return false
		}
		var head struct {
			EventName string `json:"eventName"`
		}
		return json.Unmarshal([]byte(e.Body), &head) == nil && head.EventName == name
	}, waitTimeout)
	if ev.Ev != "message" {
		t.Fatalf("waiting for %s on %s: %s", name, sub, ev.Raw)
	}
	out := chatEvent{Raw: ev.Body, Dest: ev.Destination, Name: name}
	if err := json.Unmarshal([]byte(ev.Body), &out.M); err != nil {
		t.Fatalf("%s is not JSON: %v", ev.Body, err)
	}
	return out
}

func jsSend(t *testing.T, c *brokertest.JSClient, receipt string, v any, headers ...string) {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	c.SendReceipt(t, "pub/socket/message", h, string(body), receipt)
}

// TestScenarioWithDeployedClients runs a whole consultation with the npm
// clients the deployed apps use: the customer app's stompjs 2.x over
// sockjs-client exactly as seed 003 shows (no leading slashes), and a console
// on @stomp/stompjs 7 (leading slashes, SockJS xhr-streaming).
func TestScenarioWithDeployedClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Node clients")
	}
	e := newEnv(t, func(_ *chat.Config, c *chat.Company) { c.LegacyKeyPrefix = "CS_" })

	console := brokertest.StartNode(t, brokertest.WithName("console"))
	console.Connect(t, brokertest.ConnectOptions{
		Lib: brokertest.LibStompJS7, URL: e.httpURL, Transport: brokertest.TransportXHRStreaming,
		Headers: map[string]string{"Authorization": "Bearer " + e.token(e.agent1)},
	})
	console.Subscribe(t, "private", "/user/session/message", nil)
	console.Subscribe(t, "lobby", "/sub/socket/room/LOBBY1", nil)

	app := brokertest.StartNode(t, brokertest.WithName("customer app"))
	app.Connect(t, brokertest.ConnectOptions{
		Lib: brokertest.LibStompJS2, URL: e.httpURL, Transport: brokertest.TransportWebSocket,
		Headers: map[string]string{"companyId": "1", "gasappMemberNumber": "3825", "name": "안치성", "secretKey": "CS_20261123"},
	})
	app.Subscribe(t, "private", "user/session/message", nil)
	logined := jsEvent(t, app, "private", "LOGINED")
	roomID := jsonStr(t, logined.M, "roomId")
	jsEvent(t, console, "lobby", "RELOAD")

	// The app enters its room as the deployed page does, from LOGINED.
	app.Subscribe(t, "room", "sub/socket/room/"+roomID, nil)
	jsEvent(t, app, "private", "JOINED")
	jsEvent(t, app, "private", "ROOM_DETAIL")
	jsEvent(t, app, "private", "MESSAGE_LIST")
	jsEvent(t, app, "private", "WELCOME_MESSAGE")
	jsEvent(t, console, "lobby", "ONLINE")

	jsSend(t, app, "m1", map[string]any{"eventName": "MESSAGE", "data": map[string]any{"messageType": 0, "message": "1111", "messageDetail": ""}})
	jsEvent(t, console, "lobby", "RELOAD")

	// The console swaps the lobby for the room and takes it.
	console.Unsubscribe(t, "lobby")
	console.Subscribe(t, "room", "/sub/socket/room/"+roomID, nil)
	consoleSpeaker := jsonNum(t, jsEvent(t, console, "private", "JOINED").obj("data", "profile"), "speakerId")
	if rd := jsEvent(t, console, "private", "ROOM_DETAIL"); jsonStr(t, rd.obj("data", "room"), "status") != "IN_PROGRESS" {
		t.Fatalf("console ROOM_DETAIL = %s", rd.Raw)
	}
	list := jsEvent(t, console, "private", "MESSAGE_LIST")
	if !strings.Contains(list.Raw, `"message":"1111"`) {
		t.Fatalf("console MESSAGE_LIST = %s", list.Raw)
	}
	jsEvent(t, app, "private", "ROOM_DETAIL")
	// The deployed console never marks history read: its entering did, and
	// both sides were told.
	for _, c := range []*brokertest.JSClient{app, console} {
		if read := jsEvent(t, c, "room", "READ_MESSAGE"); jsonNum(t, read.data(), "speakerId") != consoleSpeaker || jsonStr(t, read.data(), "roomId") != roomID {
			t.Fatalf("READ_MESSAGE of the console entering = %s", read.Raw)
		}
	}

	// An internal note, then an answer: the app sees only the answer.
	jsSend(t, console, "n1", map[string]any{"eventName": "MESSAGE", "data": map[string]any{"messageType": 0, "message": "메모: 확인 필요", "messageAdminType": 1}})
	jsEvent(t, console, "private", "MESSAGE")
	jsSend(t, console, "a1", map[string]any{"eventName": "MESSAGE", "data": map[string]any{"messageType": 0, "message": "안녕하세요 고객님", "messageDetail": ""}})
	answer := jsEvent(t, app, "room", "MESSAGE")
	for answer.obj("data", "message")["message"] != "안녕하세요 고객님" {
		if strings.Contains(answer.Raw, "메모") {
			t.Fatalf("the app got the internal note: %s", answer.Raw)
		}
		answer = jsEvent(t, app, "room", "MESSAGE")
	}
	for _, ev := range app.Pending() {
		if strings.Contains(ev.Body, "메모") {
			t.Fatalf("the app got the internal note: %s", ev.Raw)
		}
	}
	answerID := jsonNum(t, answer.obj("data", "message"), "id")

	// The app reads it (startId as the deployed app may send it, a string).
	jsSend(t, app, "r1", map[string]any{"eventName": "READ_MESSAGE", "data": map[string]any{"startId": answerID, "endId": answerID}})
	read := jsEvent(t, console, "room", "READ_MESSAGE")
	if jsonStr(t, read.data(), "roomId") != roomID || jsonNum(t, read.data(), "endId") != answerID {
		t.Fatalf("READ_MESSAGE = %s", read.Raw)
	}
	jsSend(t, app, "l1", map[string]any{"eventName": "MESSAGE_LIST", "data": map[string]any{"messageAdminType": 0, "startId": "999999"}})
	older := jsEvent(t, app, "private", "MESSAGE_LIST")
	if strings.Contains(older.Raw, "메모") {
		t.Fatalf("the app listed the internal note: %s", older.Raw)
	}

	// Bad input from the app: an ERROR event, and the app carries on.
	app.SendReceipt(t, "pub/socket/message", nil, `{"eventName":`, "bad")
	if ev := jsEvent(t, app, "private", "ERROR"); !strings.Contains(ev.reason(), "JSON") {
		t.Fatalf("ERROR = %s", ev.Raw)
	}

	// The console ends the consultation; the app is told and cannot write.
	jsSend(t, console, "e1", map[string]any{"eventName": "END", "data": map[string]any{}})
	jsEvent(t, app, "room", "END")
	jsSend(t, app, "m2", map[string]any{"eventName": "MESSAGE", "data": map[string]any{"messageType": 0, "message": "끝났나요?"}})
	jsEvent(t, app, "private", "ERROR")
	jsSend(t, app, "rv", map[string]any{"eventName": "REVIEW", "data": map[string]any{"reviewScore": 5}})
	jsEvent(t, app, "private", "REVIEW")

	app.Disconnect(t, "")
	console.Disconnect(t, "bye")
}
