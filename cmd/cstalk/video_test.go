package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/gorilla/websocket"

	"github.com/cstalk/cstalk/broker/brokertest"
)

// TestServeVideo checks the wiring of the video server into a node: /signal
// and GET /video/ice-servers are served, joins are decided by chat (a
// member of the room's company may join its call, another company's may
// not, a forged token is unauthorized), a join is recorded in the chat
// room, and the drain closes the call.
func TestServeVideo(t *testing.T) {
	srv := startNode(t, testConfig(t))
	addr := srv.ln.Addr().String()

	// A customer in its room, listening to it.
	customer := brokertest.ConnectGo(t, "ws://"+addr+"/ws/websocket",
		stomp.ConnOpt.Header("companyId", "1"), stomp.ConnOpt.Header("gasappMemberNumber", "7001"))
	private, err := customer.Subscribe("/user/session/message", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := brokertest.NextGoMessage(private, 10*time.Second)
	if err != nil {
		t.Fatalf("LOGINED: %v", err)
	}
	var logined struct {
		RoomID string `json:"roomId"`
	}
	if err := json.Unmarshal(msg.Body, &logined); err != nil || logined.RoomID == "" {
		t.Fatalf("LOGINED %s: %v", msg.Body, err)
	}
	roomSub, err := customer.Subscribe("/sub/socket/room/"+logined.RoomID, stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	videoRoom := "r-" + logined.RoomID

	agentToken, agentUser := memberCredentials(t, srv.server, "agent1")
	otherToken, otherUser := memberCredentials(t, srv.server, "agent3") // company 2

	// ICE servers for a member allowed in the room; none without a token.
	iceURL := "http://" + addr + "/video/ice-servers?roomId=" + videoRoom + "&communityId=1&userId=" + agentUser
	req, _ := http.NewRequest(http.MethodGet, iceURL, nil)
	req.Header.Set("Authorization", "Bearer "+agentToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ice struct {
		IceServers []any `json:"iceServers"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ice)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || ice.IceServers == nil {
		t.Fatalf("ice servers: %d %+v %v", resp.StatusCode, ice, err)
	}
	if code, _ := getBody(t, iceURL); code != http.StatusUnauthorized {
		t.Fatalf("ice servers without a token: %d", code)
	}

	join := func(token, user string) (*websocket.Conn, map[string]any) {
		t.Helper()
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/signal", nil)
		if err != nil {
			t.Fatalf("dial /signal: %v", err)
		}
		t.Cleanup(func() { ws.Close() })
		if err := ws.WriteJSON(map[string]any{"id": "joinRoom", "token": token, "userId": user, "communityId": "1",
			"roomId": videoRoom, "video": true, "audio": true}); err != nil {
			t.Fatal(err)
		}
		return ws, readSignal(t, ws)
	}
	if _, m := join(otherToken, otherUser); m["id"] != "error" || m["code"] != "forbidden" {
		t.Fatalf("another company's member: %v", m)
	}
	if _, m := join(agentToken[:len(agentToken)-3]+"xyz", agentUser); m["id"] != "error" || m["code"] != "unauthorized" {
		t.Fatalf("forged token: %v", m)
	}
	ws, m := join(agentToken, agentUser)
	if m["id"] != "existingParticipants" {
		t.Fatalf("member of the company: %v", m)
	}

	// The join is recorded in the chat room.
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, err := brokertest.NextGoMessage(roomSub, time.Until(deadline))
		if err != nil {
			t.Fatalf("no join message in the chat room: %v", err)
		}
		if strings.Contains(string(msg.Body), "상담사1님이 영상 상담에 참여했습니다.") {
			break
		}
	}

	// The drain ends the call with the reason.
	srv.drain()
	for {
		m := readSignal(t, ws)
		if m["id"] == "error" {
			if m["code"] != "shutdown" {
				t.Fatalf("call ended with %v, want shutdown", m)
			}
			break
		}
	}
	srv.awaitRun(t, 15*time.Second)
}

// memberCredentials returns a demo member's bearer token and its id in
// video rooms (its speakerId).
func memberCredentials(t *testing.T, srv *server, login string) (token, userID string) {
	t.Helper()
	ctx := context.Background()
	m, err := srv.store.MemberByLogin(ctx, login)
	if err != nil {
		t.Fatalf("member %s: %v", login, err)
	}
	sp, err := srv.store.MemberSpeaker(ctx, m)
	if err != nil {
		t.Fatalf("speaker of %s: %v", login, err)
	}
	token, _, err = srv.chat.IssueToken(m)
	if err != nil {
		t.Fatal(err)
	}
	return token, strconv.FormatInt(sp.ID, 10)
}

func readSignal(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read signaling message: %v", err)
	}
	return m
}
