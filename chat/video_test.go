package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/chat"
)

// videoRooms records the calls chat closed, standing in for the video
// server's CloseRoom (cmd/cstalk's tests and the browser test run the real
// one).
type videoRooms struct {
	mu     sync.Mutex
	closed []string // "{companyId}/r-{roomId}"
}

func (v *videoRooms) CloseCall(companyID, roomID int64) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closed = append(v.closed, fmt.Sprintf("%d/%s", companyID, chat.VideoRoomID(roomID)))
	return 0
}

func (v *videoRooms) closedCount(id string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, c := range v.closed {
		if c == id {
			n++
		}
	}
	return n
}

// withVideo returns e with its clients on a node whose chat has the video
// server connected before it serves.
func withVideo(e *chatEnv, rooms chat.VideoRooms) *chatEnv {
	e.t.Helper()
	svc, err := chat.New(e.cfg, e.store, e.log)
	if err != nil {
		e.t.Fatalf("chat.New: %v", err)
	}
	svc.UseVideo(rooms)
	bus := broker.NewMemoryBus()
	srv, err := broker.New(broker.DefaultConfig(), svc, bus, nil, e.log)
	if err != nil {
		e.t.Fatalf("broker.New: %v", err)
	}
	svc.Bind(srv)
	ts := httptest.NewServer(srv.Handler())
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx, "test over")
		ts.Close()
		_ = bus.Close()
	})
	return e.via(&node{svc: svc, server: srv, httpURL: ts.URL + "/ws",
		wsURL: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/websocket"})
}

// videoRecord decodes the messageDetail of a call's system message.
func videoRecord(t *testing.T, msg map[string]any) chat.VideoRecord {
	t.Helper()
	var d chat.VideoDetail
	if err := json.Unmarshal([]byte(jsonStr(t, msg, "messageDetail")), &d); err != nil {
		t.Fatalf("messageDetail of %v: %v", msg, err)
	}
	return d.Video
}

// awaitVideoMessage waits for the call's system message with event kind.
func awaitVideoMessage(t *testing.T, c *stompClient, sub *stomp.Subscription, kind string) (map[string]any, chat.VideoRecord) {
	t.Helper()
	ev := c.awaitMatch(sub, "MESSAGE", func(ev chatEvent) bool {
		m := ev.obj("data", "message")
		return jsonNum(t, m, "isSystemMessage") == 1 && strings.Contains(jsonStr(t, m, "messageDetail"), `"event":"`+kind+`"`)
	})
	m := ev.obj("data", "message")
	return m, videoRecord(t, m)
}

func TestVideoCallFromChat(t *testing.T) {
	onEveryBackend(t, testVideoCallFromChat)
}

func testVideoCallFromChat(t *testing.T, e *chatEnv) {
	ctx := context.Background()
	rooms := &videoRooms{}
	e = withVideo(e, rooms)
	p := e.pair("2001", e.agent1)
	videoRoom := "r-" + p.roomID

	// The counselor calls: the invitation is stored in the room ...
	p.agent.send("VIDEO_START", map[string]any{}, "roomId", p.roomID)
	msg, rec := awaitVideoMessage(t, p.cust, p.custRoom, "invite")
	if got := jsonStr(t, msg, "message"); got != "김상담 상담사가 영상 상담을 요청했습니다." {
		t.Errorf("invitation text %q", got)
	}
	if rec.VideoRoomID != videoRoom || rec.IsCustomer != 0 || rec.Name != "김상담" || rec.SpeakerID == 0 {
		t.Errorf("invitation record %+v", rec)
	}
	agentSpeaker := rec.SpeakerID
	// ... and each side is invited privately; only the customer's copy
	// carries a token, its video token.
	agentInvite := p.agent.await(p.agent.private, "VIDEO_INVITE").data()
	if _, ok := agentInvite["token"]; ok || agentInvite["videoRoomId"] != videoRoom || agentInvite["communityId"] != "1" ||
		agentInvite["userId"] != jsonText(agentSpeaker) {
		t.Errorf("counselor's invitation %v", agentInvite)
	}
	invite := p.cust.await(p.cust.private, "VIDEO_INVITE").data()
	if invite["videoRoomId"] != videoRoom || invite["communityId"] != "1" {
		t.Errorf("customer's invitation %v", invite)
	}
	if from, _ := invite["from"].(map[string]any); jsonNum(t, from, "isMember") != 1 || jsonStr(t, from, "name") != "김상담" {
		t.Errorf("invitation from %v", invite["from"])
	}
	custToken, custUser := jsonStr(t, invite, "token"), jsonStr(t, invite, "userId")
	if ttl := jsonNum(t, invite, "expiresIn"); ttl <= 0 || ttl > 600 {
		t.Errorf("expiresIn %d, want at most 10 minutes", ttl)
	}

	// The customer accepts: the room hears it.
	p.cust.send("VIDEO_ACCEPT", map[string]any{}, "roomId", p.roomID)
	acc := p.agent.await(p.agentRoom, "VIDEO_ACCEPTED").data()
	if from, _ := acc["from"].(map[string]any); acc["videoRoomId"] != videoRoom || jsonNum(t, from, "isCustomer") != 1 {
		t.Errorf("VIDEO_ACCEPTED %v", acc)
	}

	// Both may join the call, as themselves only.
	who, err := e.svc.AuthorizeVideoJoin(ctx, chat.VideoJoin{Token: custToken, UserID: custUser, CommunityID: "1", ChatRoom: true, Ref: p.roomID})
	if err != nil || !who.Customer || who.Name != "고객2001" || who.UserID != custUser || who.CommunityID != "1" {
		t.Fatalf("customer join: %+v, %v", who, err)
	}
	agentUser := jsonText(agentSpeaker)
	who, err = e.svc.AuthorizeVideoJoin(ctx, chat.VideoJoin{Token: e.token(e.agent1), UserID: agentUser, CommunityID: "0", ChatRoom: true, Ref: p.roomID})
	if err != nil || who.Customer || who.Name != "김상담" || who.CommunityID != "1" {
		t.Fatalf("counselor join: %+v, %v", who, err)
	}

	// The video server reports the call; chat records it in the room.
	at := seoulAfternoon.Add(time.Minute)
	for _, ev := range []chat.VideoEvent{
		// Another company's room of the same name is not this room's call.
		{Kind: "joined", CompanyID: "2", RoomID: videoRoom, UserID: custUser, Customer: true, At: at},
		{Kind: "roomOpened", CompanyID: "1", RoomID: videoRoom, At: at},
		{Kind: "joined", CompanyID: "1", RoomID: videoRoom, UserID: agentUser, At: at},
		{Kind: "joined", CompanyID: "1", RoomID: videoRoom, UserID: custUser, Customer: true, At: at},
	} {
		e.svc.HandleVideoEvent(ctx, ev)
	}
	msg, rec = awaitVideoMessage(t, p.cust, p.custRoom, "joined")
	if jsonStr(t, msg, "message") != "김상담님이 영상 상담에 참여했습니다." || rec.SpeakerID != agentSpeaker {
		t.Errorf("counselor joined: %v %+v", msg["message"], rec)
	}
	msg, rec = awaitVideoMessage(t, p.cust, p.custRoom, "joined")
	if jsonStr(t, msg, "message") != "고객2001님이 영상 상담에 참여했습니다." || rec.IsCustomer != 1 {
		t.Errorf("customer joined: %v %+v", msg["message"], rec)
	}

	// Either side hangs up for both.
	p.cust.send("VIDEO_END", map[string]any{}, "roomId", p.roomID)
	ended := p.agent.await(p.agentRoom, "VIDEO_ENDED").data()
	if by, _ := ended["by"].(map[string]any); ended["videoRoomId"] != videoRoom || jsonNum(t, by, "isCustomer") != 1 {
		t.Errorf("VIDEO_ENDED %v", ended)
	}
	if rooms.closedCount("1/"+videoRoom) != 1 {
		t.Errorf("video rooms closed %v, want %s once", rooms.closed, videoRoom)
	}
	end := at.Add(95 * time.Second)
	for _, ev := range []chat.VideoEvent{
		{Kind: "left", CompanyID: "1", RoomID: videoRoom, UserID: agentUser, At: end, Duration: 95 * time.Second, Reason: "closed"},
		{Kind: "left", CompanyID: "1", RoomID: videoRoom, UserID: custUser, Customer: true, At: end, Duration: 95 * time.Second, Reason: "closed"},
		{Kind: "roomClosed", CompanyID: "1", RoomID: videoRoom, At: end, Duration: 95 * time.Second},
	} {
		e.svc.HandleVideoEvent(ctx, ev)
	}
	msg, rec = awaitVideoMessage(t, p.agent, p.agentRoom, "left")
	if jsonStr(t, msg, "message") != "김상담님이 영상 상담에서 나갔습니다." || rec.Duration == nil || *rec.Duration != 95 {
		t.Errorf("counselor left: %v %+v", msg["message"], rec)
	}
	msg, rec = awaitVideoMessage(t, p.agent, p.agentRoom, "ended")
	if got := jsonStr(t, msg, "message"); got != "영상 상담이 종료되었습니다. (통화 시간 1분 35초)" {
		t.Errorf("end text %q", got)
	}
	if rec.Duration == nil || *rec.Duration != 95 || rec.StartDate != "2026-11-23 15:32:37" || rec.EndDate != "2026-11-23 15:34:12" {
		t.Errorf("call record %+v", rec)
	}
	if d := p.agent.await(p.agentRoom, "VIDEO_ENDED").data(); jsonNum(t, d, "duration") != 95 {
		t.Errorf("VIDEO_ENDED after the room closed %v", d)
	}

	// The call survives a reload: the history holds every step.
	p.agent.send("MESSAGE_LIST", map[string]any{}, "roomId", p.roomID)
	list := p.agent.await(p.agent.private, "MESSAGE_LIST")
	var kinds []string
	for _, raw := range list.data()["messages"].([]any) {
		m := raw.(map[string]any)
		if strings.Contains(jsonStr(t, m, "messageDetail"), `"video"`) {
			kinds = append(kinds, videoRecord(t, m).Event)
		}
	}
	if want := []string{"invite", "joined", "joined", "left", "left", "ended"}; !slices.Equal(kinds, want) {
		t.Errorf("call history %v, want %v", kinds, want)
	}

	// Ending the conversation ends a call still running.
	p.agent.send("END", map[string]any{}, "roomId", p.roomID)
	p.cust.await(p.custRoom, "END")
	if rooms.closedCount("1/"+videoRoom) != 2 {
		t.Errorf("END closed video rooms %v, want %s again", rooms.closed, videoRoom)
	}
	// The customer's token no longer opens the ended room's call.
	if _, err := e.svc.AuthorizeVideoJoin(ctx, chat.VideoJoin{Token: custToken, UserID: custUser, ChatRoom: true, Ref: p.roomID}); !errors.Is(err, chat.ErrVideoForbidden) {
		t.Errorf("customer join after END: %v, want forbidden", err)
	}
	p.cust.send("VIDEO_TOKEN", map[string]any{}, "roomId", p.roomID)
	if r := p.cust.await(p.cust.private, "ERROR").reason(); r != "종료된 상담입니다." {
		t.Errorf("VIDEO_TOKEN in an ended room: %q", r)
	}
}

func TestVideoJoinRules(t *testing.T) {
	onEveryBackend(t, testVideoJoinRules)
}

func testVideoJoinRules(t *testing.T, e *chatEnv) {
	ctx := context.Background()
	e = withVideo(e, &videoRooms{})
	p := e.pair("2101", e.agent1)
	other := e.pair("2102", e.agent2)

	// The customer's token comes from VIDEO_TOKEN too; members may not ask.
	p.agent.send("VIDEO_TOKEN", map[string]any{}, "roomId", p.roomID)
	if r := p.agent.await(p.agent.private, "ERROR").reason(); r != "고객만 사용할 수 있는 기능입니다." {
		t.Errorf("member VIDEO_TOKEN: %q", r)
	}
	p.cust.send("VIDEO_TOKEN", map[string]any{}, "roomId", p.roomID)
	tok := p.cust.await(p.cust.private, "VIDEO_TOKEN").data()
	custToken, custUser := jsonStr(t, tok, "token"), jsonStr(t, tok, "userId")
	if tok["videoRoomId"] != "r-"+p.roomID || tok["communityId"] != "1" {
		t.Errorf("VIDEO_TOKEN %v", tok)
	}
	speakers := map[*chat.Member]string{}
	for _, m := range []*chat.Member{e.agent1, e.agent3} {
		sp, err := e.store.MemberSpeaker(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		speakers[m] = jsonText(sp.ID)
	}
	agentTok := e.token(e.agent1)
	cases := []struct {
		name string
		join chat.VideoJoin
		want error
	}{
		{"customer, own room", chat.VideoJoin{Token: custToken, UserID: custUser, ChatRoom: true, Ref: p.roomID}, nil},
		{"customer, community 0", chat.VideoJoin{Token: custToken, UserID: custUser, CommunityID: "0", ChatRoom: true, Ref: p.roomID}, nil},
		{"customer, another room", chat.VideoJoin{Token: custToken, UserID: custUser, ChatRoom: true, Ref: other.roomID}, chat.ErrVideoForbidden},
		{"customer, as someone else", chat.VideoJoin{Token: custToken, UserID: speakers[e.agent1], ChatRoom: true, Ref: p.roomID}, chat.ErrVideoForbidden},
		{"customer, a channel", chat.VideoJoin{Token: custToken, UserID: custUser, CommunityID: "1", Ref: p.roomID}, chat.ErrVideoForbidden},
		{"customer, another community", chat.VideoJoin{Token: custToken, UserID: custUser, CommunityID: "2", ChatRoom: true, Ref: p.roomID}, chat.ErrVideoForbidden},
		{"member, a room of its company", chat.VideoJoin{Token: agentTok, UserID: speakers[e.agent1], ChatRoom: true, Ref: other.roomID}, nil},
		{"member, Bearer prefix", chat.VideoJoin{Token: "Bearer " + agentTok, UserID: speakers[e.agent1], ChatRoom: true, Ref: p.roomID}, nil},
		{"member, its company's channel", chat.VideoJoin{Token: agentTok, UserID: speakers[e.agent1], CommunityID: "1", Ref: "lobby"}, nil},
		{"member, another company's channel", chat.VideoJoin{Token: agentTok, UserID: speakers[e.agent1], CommunityID: "2", Ref: "lobby"}, chat.ErrVideoForbidden},
		{"member, as someone else", chat.VideoJoin{Token: agentTok, UserID: custUser, ChatRoom: true, Ref: p.roomID}, chat.ErrVideoForbidden},
		{"member, no such room", chat.VideoJoin{Token: agentTok, UserID: speakers[e.agent1], ChatRoom: true, Ref: "999999"}, chat.ErrVideoForbidden},
		{"member of another company", chat.VideoJoin{Token: e.token(e.agent3), UserID: speakers[e.agent3], ChatRoom: true, Ref: p.roomID}, chat.ErrVideoForbidden},
		{"forged token", chat.VideoJoin{Token: custToken[:len(custToken)-4] + "AAAA", UserID: custUser, ChatRoom: true, Ref: p.roomID}, chat.ErrInvalidToken},
		{"no token", chat.VideoJoin{UserID: custUser, ChatRoom: true, Ref: p.roomID}, chat.ErrInvalidToken},
	}
	for _, tc := range cases {
		_, err := e.svc.AuthorizeVideoJoin(ctx, tc.join)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A video token is no member token.
	if _, err := e.svc.MemberFromToken(ctx, custToken); !errors.Is(err, chat.ErrInvalidToken) {
		t.Errorf("video token as a member token: %v", err)
	}
	// It lasts ten minutes.
	e.clock.Advance(11 * time.Minute)
	if _, err := e.svc.AuthorizeVideoJoin(ctx, chat.VideoJoin{Token: custToken, UserID: custUser, ChatRoom: true, Ref: p.roomID}); !errors.Is(err, chat.ErrInvalidToken) {
		t.Errorf("expired video token: %v", err)
	}
}

func TestVideoCallStartedByCustomer(t *testing.T) {
	e := withVideo(newEnv(t), &videoRooms{})
	p := e.pair("2201", e.agent1)
	// Companies let customers call only when they choose to.
	p.cust.send("VIDEO_START", map[string]any{}, "roomId", p.roomID)
	if r := p.cust.await(p.cust.private, "ERROR").reason(); r != "영상 상담은 상담사만 시작할 수 있습니다." {
		t.Errorf("customer VIDEO_START: %q", r)
	}

	allowing := withVideo(newEnv(t, func(_ *chat.Config, c *chat.Company) { c.AllowCustomerVideo = true }), &videoRooms{})
	p = allowing.pair("2202", allowing.agent1)
	p.cust.send("VIDEO_START", map[string]any{}, "roomId", p.roomID)
	msg, rec := awaitVideoMessage(t, p.agent, p.agentRoom, "invite")
	if jsonStr(t, msg, "message") != "고객2202 고객님이 영상 상담을 요청했습니다." || rec.IsCustomer != 1 {
		t.Errorf("customer's invitation %v %+v", msg["message"], rec)
	}
	p.cust.await(p.cust.private, "VIDEO_INVITE")
	p.agent.await(p.agent.private, "VIDEO_INVITE")
	// The counselor declines: stored, and the room hears it.
	p.agent.send("VIDEO_DECLINE", map[string]any{}, "roomId", p.roomID)
	msg, _ = awaitVideoMessage(t, p.cust, p.custRoom, "declined")
	if jsonStr(t, msg, "message") != "김상담님이 영상 상담을 거절했습니다." {
		t.Errorf("decline text %v", msg["message"])
	}
	p.cust.await(p.custRoom, "VIDEO_DECLINED")
}
