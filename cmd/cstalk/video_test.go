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
	"github.com/pion/webrtc/v3"

	"github.com/cstalk/cstalk/broker/brokertest"
	"github.com/cstalk/cstalk/video"
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

// TestServeVideoRoomsScopedToCompany: members of two demo companies join
// channel c-1 of their own company through /signal; they are two rooms.
// agent3 (company 2) is shown nobody, is never announced to agent1
// (company 1) and cannot subscribe to it; agent2 (company 1) meets agent1.
// agent3 claiming company 1 is refused.
func TestServeVideoRoomsScopedToCompany(t *testing.T) {
	srv := startNode(t, testConfig(t))
	addr := srv.ln.Addr().String()
	join := func(login, community string) (*websocket.Conn, string, map[string]any) {
		t.Helper()
		token, user := memberCredentials(t, srv.server, login)
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/signal", nil)
		if err != nil {
			t.Fatalf("dial /signal: %v", err)
		}
		t.Cleanup(func() { ws.Close() })
		if err := ws.WriteJSON(map[string]any{"id": "joinRoom", "token": token, "userId": user, "communityId": community,
			"roomId": "c-1", "video": true, "audio": true}); err != nil {
			t.Fatal(err)
		}
		return ws, user, readSignal(t, ws)
	}
	members := func(m map[string]any) []any {
		t.Helper()
		if m["id"] != "existingParticipants" {
			t.Fatalf("join answered %v", m)
		}
		l, _ := m["members"].([]any)
		return l
	}

	a1, user1, m := join("agent1", "1")
	if l := members(m); len(l) != 0 {
		t.Fatalf("agent1 joined a room with %v", l)
	}
	if _, _, m := join("agent3", "1"); m["id"] != "error" || m["code"] != "forbidden" {
		t.Fatalf("agent3 claiming company 1: %v", m)
	}
	a3, _, m := join("agent3", "2")
	if l := members(m); len(l) != 0 {
		t.Fatalf("agent3 (company 2) is shown %v in c-1", l)
	}
	if err := a3.WriteJSON(map[string]any{"id": "receiveVideoFrom", "userId": user1, "sdpOffer": recvOffer(t)}); err != nil {
		t.Fatal(err)
	}
	if m := readSignal(t, a3); m["id"] != "error" || m["code"] != "unknownParticipant" {
		t.Fatalf("agent3 subscribing to agent1: %v", m)
	}
	_, user2, m := join("agent2", "1")
	if l := members(m); len(l) != 1 || l[0].(map[string]any)["userId"] != user1 {
		t.Fatalf("agent2 (company 1) is shown %v, want agent1 alone", l)
	}
	// agent3 joined before agent2: had they shared the room, agent1 would
	// hear of agent3 first.
	if m := readSignal(t, a1); m["id"] != "newParticipantArrived" || m["name"] != user2 {
		t.Fatalf("agent1's first news: %v, want agent2 (%s) arriving", m, user2)
	}
	key1, key2 := video.RoomKey{Company: "1", Kind: video.RoomChannel, Name: "1"}, video.RoomKey{Company: "2", Kind: video.RoomChannel, Name: "1"}
	if n1, n2 := len(srv.video.Participants(key1)), len(srv.video.Participants(key2)); n1 != 2 || n2 != 1 {
		t.Fatalf("participants: company 1 %d, company 2 %d", n1, n2)
	}
}

// recvOffer is a browser-like offer to receive one video track.
func recvOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}
