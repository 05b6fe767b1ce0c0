package chat_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/chat"
)

// TestBadInput sends every kind of bad event: each gets an ERROR event with a
// reason in the connection's language, and the connection and the room carry
// on.
func TestBadInput(t *testing.T) { onEveryBackend(t, testBadInput) }

func testBadInput(t *testing.T, e *chatEnv) {
	p := e.pair("2001", e.agent1)
	english := e.agent(e.agent2, "accept-language", "en-US,en;q=0.9")
	englishRoom := english.room(p.roomID)
	english.await(english.private, "MESSAGE_LIST")

	// Another company's room.
	otherCust, otherLogined := e.customerOf(2, "2002", "인천고객")
	_ = otherCust
	otherRoom := roomIDOf(t, otherLogined)

	big := strings.Repeat("가", 100_000/3+1) // 100 KB of text
	cases := []struct {
		name   string
		body   string
		header []string
		key    string
		arg    any
	}{
		{"malformed JSON", `{"eventName":"MESSAGE","data":{`, nil, "malformed_json", nil},
		{"not an object", `["MESSAGE"]`, nil, "malformed_json", nil},
		{"no eventName", `{"data":{}}`, nil, "missing_field", "eventName"},
		{"unknown event", `{"eventName":"HACK","data":{}}`, nil, "unknown_event", "HACK"},
		{"data not an object", `{"eventName":"MESSAGE","data":"hi"}`, nil, "invalid_field", "data"},
		{"missing message", `{"eventName":"MESSAGE","data":{"messageType":0}}`, nil, "missing_field", "message"},
		{"message of wrong type", `{"eventName":"MESSAGE","data":{"messageType":0,"message":123}}`, nil, "invalid_field", "message"},
		{"messageType not a number", `{"eventName":"MESSAGE","data":{"messageType":"abc","message":"x"}}`, nil, "invalid_number", nil},
		{"messageType out of range", `{"eventName":"MESSAGE","data":{"messageType":7,"message":"x"}}`, nil, "invalid_field", "messageType"},
		{"image without path", `{"eventName":"MESSAGE","data":{"messageType":1,"message":""}}`, nil, "missing_field", "messageDetail"},
		{"startId not a number", `{"eventName":"MESSAGE_LIST","data":{"startId":"abc"}}`, nil, "invalid_number", nil},
		{"startId an object", `{"eventName":"MESSAGE_LIST","data":{"startId":{}}}`, nil, "invalid_number", nil},
		{"read without endId", `{"eventName":"READ_MESSAGE","data":{"startId":1}}`, nil, "missing_field", "endId"},
		{"read as someone else", `{"eventName":"READ_MESSAGE","data":{"startId":1,"endId":1,"speakerId":999}}`, nil, "speaker_mismatch", nil},
		{"delete without id", `{"eventName":"DELETE_MESSAGE","data":{}}`, nil, "missing_field", "id"},
		{"room of another company (body)", `{"eventName":"MESSAGE","roomId":"` + otherRoom + `","data":{"messageType":0,"message":"x"}}`, nil, "room_not_found", nil},
		{"room of another company (data)", `{"eventName":"MESSAGE_LIST","data":{"roomId":` + otherRoom + `}}`, nil, "room_not_found", nil},
		{"room of another company (header)", `{"eventName":"MESSAGE","data":{"messageType":0,"message":"x"}}`, []string{"roomId", otherRoom}, "room_not_found", nil},
		{"roomId header not a number", `{"eventName":"ROOM_DETAIL","data":{}}`, []string{"roomId", "1 OR 1=1"}, "invalid_field", "roomId"},
		{"100 KB message", `{"eventName":"MESSAGE","data":{"messageType":0,"message":"` + big + `"}}`, nil, "message_too_long", 32 << 10},
		{"customer internal note", `{"eventName":"MESSAGE","data":{"messageType":0,"message":"x","messageAdminType":1}}`, nil, "members_only", nil},
		{"customer ASSIGN", `{"eventName":"ASSIGN","data":{}}`, nil, "members_only", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.cust.sendRaw([]byte(tc.body), tc.header...)
			ev := p.cust.await(p.cust.private, "ERROR")
			want := chat.Korean.T(tc.key)
			if tc.arg != nil {
				want = fmt.Sprintf(want, tc.arg)
			}
			if ev.reason() != want {
				t.Fatalf("reason %q, want %q (%s)", ev.reason(), want, ev.Raw)
			}
			if jsonStr(t, ev.M, "companyId") != "1" || jsonStr(t, ev.M, "target") != "SELF" {
				t.Fatalf("ERROR envelope = %s", ev.Raw)
			}
		})
	}

	t.Run("invalid UTF-8", func(t *testing.T) {
		p.cust.sendRaw([]byte("{\"eventName\":\"MESSAGE\",\"data\":{\"messageType\":0,\"message\":\"\xff\xfe\"}}"))
		if ev := p.cust.await(p.cust.private, "ERROR"); ev.reason() != chat.Korean.T("invalid_utf8") {
			t.Fatalf("reason %q", ev.reason())
		}
	})

	t.Run("English reasons", func(t *testing.T) {
		english.sendRaw([]byte(`{"eventName":"NOPE"}`))
		ev := english.await(english.private, "ERROR")
		if want := fmt.Sprintf(chat.English.T("unknown_event"), "NOPE"); ev.reason() != want || want == fmt.Sprintf(chat.Korean.T("unknown_event"), "NOPE") {
			t.Fatalf("reason %q, want %q", ev.reason(), want)
		}
	})

	// Text that looks like SQL or markup is stored and returned verbatim.
	hostile := []string{
		`'); DROP TABLE messages; --`,
		`<script>alert("x")</script><img src=x onerror=alert(1)>`,
		`Robert"); DELETE FROM rooms WHERE 1=1; -- 😀 \u0000? \\n`,
	}
	for _, text := range hostile {
		p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": text})
		got := p.agent.await(p.agentRoom, "MESSAGE")
		if jsonStr(t, got.obj("data", "message"), "message") != text {
			t.Fatalf("stored %q as %q", text, got.obj("data", "message")["message"])
		}
	}
	p.agent.send("MESSAGE_LIST", map[string]any{})
	list := messageTexts(t, p.agent.await(p.agent.private, "MESSAGE_LIST"))
	if got := strings.Join(list[len(list)-3:], "|"); got != strings.Join(hostile, "|") {
		t.Fatalf("listed %q", got)
	}

	// After all that the conversation goes on for everyone.
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "아직 연결되어 있어요"})
	p.agent.awaitMatch(p.agentRoom, "MESSAGE", func(ev chatEvent) bool {
		return jsonStr(t, ev.obj("data", "message"), "message") == "아직 연결되어 있어요"
	})
	english.awaitMatch(englishRoom, "MESSAGE", func(ev chatEvent) bool {
		return jsonStr(t, ev.obj("data", "message"), "message") == "아직 연결되어 있어요"
	})
}

// customerOf connects a customer of any company.
func (e *chatEnv) customerOf(company int64, number, name string) (*stompClient, chatEvent) {
	e.t.Helper()
	c := e.mustDial("customer "+number, map[string]string{
		"companyId": fmt.Sprint(company), "gasappMemberNumber": number, "name": name,
	})
	c.subscribePrivate()
	return c, c.await(c.private, "LOGINED")
}

func TestSubscriptionRefusals(t *testing.T) {
	e := newEnv(t)
	cust, logined := e.customer("3001", "고객")
	roomID := roomIDOf(t, logined)
	_, other := e.customer("3002", "다른 고객")
	otherRoom := roomIDOf(t, other)
	agent3 := e.agent(e.agent3) // company 2

	refused := func(c *stompClient, dest, key string) {
		t.Helper()
		c.subscribe(dest)
		ev := c.await(c.private, "ERROR")
		if ev.reason() != chat.Korean.T(key) {
			t.Fatalf("subscribe %s: reason %q, want %q", dest, ev.reason(), chat.Korean.T(key))
		}
	}
	refused(cust, "/sub/socket/room/LOBBY1", "lobby_forbidden")
	refused(cust, "/sub/socket/room/"+otherRoom, "room_forbidden")
	refused(cust, "/sub/socket/room/abc", "destination_forbidden")
	refused(cust, "/user/session/message", "already_subscribed")
	refused(agent3, "/sub/socket/room/LOBBY1", "lobby_forbidden")
	refused(agent3, "/sub/socket/room/"+roomID, "room_not_found")
	refused(agent3, "/sub/socket/room/424242", "room_not_found")

	// Clients never SEND straight to a room: that would forge events.
	cust.conn.Send("/sub/socket/room/"+roomID, "application/json", []byte(`{"eventName":"END","companyId":"1","roomId":"`+roomID+`","data":{}}`), stomp.SendOpt.Receipt)
	if ev := cust.await(cust.private, "ERROR"); ev.reason() != chat.Korean.T("send_forbidden") {
		t.Fatalf("direct SEND: %s", ev.Raw)
	}

	// Their own things still work.
	croom := cust.room(roomID)
	cust.await(cust.private, "MESSAGE_LIST")
	cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "괜찮아요"})
	cust.await(croom, "MESSAGE")
	lobby := agent3.subscribe("/sub/socket/room/LOBBY2")
	e.customerOf(2, "3003", "인천")
	agent3.await(lobby, "RELOAD")

	// Without a private subscription a refusal is an ERROR frame.
	bare := e.mustDial("bare", map[string]string{"companyId": "1", "gasappMemberNumber": "3004"})
	sub := bare.subscribe("/sub/socket/room/LOBBY1")
	select {
	case msg := <-sub.C:
		if msg == nil || msg.Err == nil || !strings.Contains(msg.Err.Error(), chat.Korean.T("lobby_forbidden")) {
			t.Fatalf("want an ERROR frame, got %+v", msg)
		}
	case <-timeAfter():
		t.Fatalf("no ERROR frame")
	}
}
