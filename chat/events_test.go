package chat_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"

	"github.com/cstalk/cstalk/chat"
)

// pair is a customer and a counselor in one IN_PROGRESS room.
type pair struct {
	roomID    string
	cust      *stompClient
	custRoom  *stomp.Subscription
	agent     *stompClient
	agentRoom *stomp.Subscription
}

func (e *chatEnv) pair(number string, m *chat.Member, agentHeaders ...string) *pair {
	e.t.Helper()
	p := &pair{}
	var logined chatEvent
	p.cust, logined = e.customer(number, "고객"+number)
	p.roomID = roomIDOf(e.t, logined)
	p.custRoom = p.cust.room(p.roomID)
	p.cust.await(p.cust.private, "WELCOME_MESSAGE")
	p.agent = e.agent(m, agentHeaders...)
	p.agentRoom = p.agent.room(p.roomID)
	p.agent.await(p.agent.private, "MESSAGE_LIST")
	// The assignment notice went to the room: both have seen it after this.
	p.agent.awaitMatch(p.agentRoom, "MESSAGE", func(ev chatEvent) bool {
		return jsonNum(e.t, ev.obj("data", "message"), "isSystemMessage") == 1
	})
	// The customer present in the room gets the new ROOM_DETAIL privately.
	p.cust.awaitMatch(p.cust.private, "ROOM_DETAIL", func(ev chatEvent) bool {
		return ev.obj("data", "room")["status"] == "IN_PROGRESS"
	})
	return p
}

func messageTexts(t *testing.T, list chatEvent) []string {
	t.Helper()
	var out []string
	for _, raw := range list.data()["messages"].([]any) {
		out = append(out, jsonStr(t, raw.(map[string]any), "message"))
	}
	return out
}

func TestInternalNotesNeverReachTheCustomer(t *testing.T) {
	onEveryBackend(t, testInternalNotesNeverReachTheCustomer)
}

func testInternalNotesNeverReachTheCustomer(t *testing.T, e *chatEnv) {
	p := e.pair("1001", e.agent1)
	// A second counselor watching the room also gets the note.
	watcher := e.agent(e.agent2)
	watcherRoom := watcher.room(p.roomID)
	watcher.await(watcher.private, "MESSAGE_LIST")

	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "내부 메모: 요금 체납 고객", "messageAdminType": 1})
	note := p.agent.await(p.agent.private, "MESSAGE")
	nm := note.obj("data", "message")
	if jsonNum(t, nm, "messageAdminType") != 1 || jsonStr(t, note.M, "target") != "MEMBER" {
		t.Fatalf("note to its writer = %s", note.Raw)
	}
	watcher.awaitMatch(watcher.private, "MESSAGE", func(ev chatEvent) bool {
		return jsonNum(t, ev.obj("data", "message"), "messageAdminType") == 1
	})

	// A conversation message after the note: the customer sees it and
	// nothing of the note before it, on any channel.
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "안내해 드리겠습니다."})
	got := p.cust.collect(p.custRoom, "MESSAGE")
	got = append(got, drainEvents(p.cust.private)...)
	for _, ev := range got {
		if strings.Contains(ev.Raw, "내부 메모") || strings.Contains(ev.Raw, `"messageAdminType":1`) {
			t.Fatalf("customer received an internal note: %s", ev.Raw)
		}
	}
	if last := got[len(got)-1]; last.Name == "MESSAGE" && jsonStr(t, last.obj("data", "message"), "message") != "안내해 드리겠습니다." {
		t.Fatalf("customer got %s", last.Raw)
	}
	_ = watcherRoom

	// Listing: members see the note, the customer does not.
	p.cust.send("MESSAGE_LIST", map[string]any{})
	custList := p.cust.await(p.cust.private, "MESSAGE_LIST")
	for _, text := range messageTexts(t, custList) {
		if strings.Contains(text, "내부 메모") {
			t.Fatalf("customer MESSAGE_LIST has the note: %s", custList.Raw)
		}
	}
	p.agent.send("MESSAGE_LIST", map[string]any{"messageAdminType": 1})
	agentList := p.agent.await(p.agent.private, "MESSAGE_LIST")
	if !strings.Contains(agentList.Raw, "내부 메모") {
		t.Fatalf("member MESSAGE_LIST lacks the note: %s", agentList.Raw)
	}
	// ROOM_DETAIL's lastMessage is never the note.
	p.cust.send("ROOM_DETAIL", map[string]any{})
	if rd := p.cust.await(p.cust.private, "ROOM_DETAIL"); strings.Contains(rd.Raw, "내부 메모") {
		t.Fatalf("customer ROOM_DETAIL shows the note: %s", rd.Raw)
	}

	// A customer cannot write internal notes.
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "x", "messageAdminType": 1})
	if ev := p.cust.await(p.cust.private, "ERROR"); ev.reason() == "" {
		t.Fatalf("ERROR without reason: %s", ev.Raw)
	}
}

func TestClientMessageIDIsIdempotent(t *testing.T) {
	onEveryBackend(t, testClientMessageIDIsIdempotent)
}

func testClientMessageIDIsIdempotent(t *testing.T, e *chatEnv) {
	p := e.pair("1002", e.agent1)
	data := map[string]any{"messageType": 0, "message": "한 번만", "clientMessageId": "c-1"}
	p.cust.send("MESSAGE", data)
	first := p.agent.await(p.agentRoom, "MESSAGE")
	id := jsonNum(t, first.obj("data", "message"), "id")

	p.cust.send("MESSAGE", data) // a retry after a lost receipt
	again := p.cust.await(p.cust.private, "MESSAGE")
	if jsonNum(t, again.obj("data", "message"), "id") != id || jsonStr(t, again.M, "target") != "SELF" {
		t.Fatalf("retry answered %s, want the stored message %d privately", again.Raw, id)
	}
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "다음"})
	next := p.agent.await(p.agentRoom, "MESSAGE")
	if jsonStr(t, next.obj("data", "message"), "message") != "다음" {
		t.Fatalf("the room saw the retry again: %s", next.Raw)
	}
	p.agent.send("MESSAGE_LIST", map[string]any{})
	texts := messageTexts(t, p.agent.await(p.agent.private, "MESSAGE_LIST"))
	count := 0
	for _, text := range texts {
		if text == "한 번만" {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("stored %d copies: %v", count, texts)
	}
}

func TestEndReviewAndMessageAfterEnd(t *testing.T) {
	onEveryBackend(t, testEndReviewAndMessageAfterEnd)
}

func testEndReviewAndMessageAfterEnd(t *testing.T, e *chatEnv) {
	// Nothing to review before a counselor takes the room; once one has,
	// the review is taken before END as after it (the last one counts).
	waiting, waitingLogined := e.customer("1004", "고객1004")
	waiting.room(roomIDOf(t, waitingLogined))
	waiting.await(waiting.private, "WELCOME_MESSAGE")
	waiting.send("REVIEW", map[string]any{"reviewScore": 5})
	if ev := waiting.await(waiting.private, "ERROR"); ev.reason() != chat.Korean.T("review_unassigned") {
		t.Fatalf("review of a WAITING room: %s", ev.Raw)
	}

	p := e.pair("1003", e.agent1)
	lobby := e.agent(e.agent2)
	lobbySub := lobby.subscribe("/sub/socket/room/LOBBY1")
	lobby.send("ROOM_DETAIL", map[string]any{}, "roomId", p.roomID) // lobby subscription is active
	lobby.await(lobby.private, "ROOM_DETAIL")

	p.cust.send("REVIEW", map[string]any{"reviewScore": 5})
	if ev := p.cust.await(p.cust.private, "REVIEW"); ev.data()["success"] != true {
		t.Fatalf("review while the counselor is assigned: %s", ev.Raw)
	}
	p.agent.send("ROOM_DETAIL", map[string]any{})
	if rd := p.agent.await(p.agent.private, "ROOM_DETAIL"); jsonNum(t, rd.obj("data", "room"), "reviewScore") != 5 {
		t.Fatalf("review before END not stored: %s", rd.Raw)
	}

	p.agent.send("END", map[string]any{})
	end := p.cust.await(p.custRoom, "END")
	if d := end.data(); d == nil || len(d) != 0 || jsonStr(t, end.M, "roomId") != p.roomID {
		t.Fatalf("END = %s", end.Raw)
	}
	if rd := p.cust.await(p.cust.private, "ROOM_DETAIL"); jsonStr(t, rd.obj("data", "room"), "status") != "ENDED" {
		t.Fatalf("ROOM_DETAIL after END = %s", rd.Raw)
	}
	lobby.await(lobbySub, "RELOAD")
	ready := lobby.await(lobbySub, "RELOAD_READY")
	if jsonStr(t, ready.obj("data", "room"), "status") != "ENDED" {
		t.Fatalf("RELOAD_READY after END = %s", ready.Raw)
	}

	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "아직 있나요?"})
	if ev := p.cust.await(p.cust.private, "ERROR"); ev.reason() != chat.Korean.T("room_ended") || jsonStr(t, ev.M, "roomId") != p.roomID {
		t.Fatalf("MESSAGE after END: %s", ev.Raw)
	}
	p.cust.send("REVIEW", map[string]any{"reviewScore": 6})
	p.cust.await(p.cust.private, "ERROR")
	p.cust.send("REVIEW", map[string]any{"reviewScore": "4"})
	if ev := p.cust.await(p.cust.private, "REVIEW"); ev.data()["success"] != true {
		t.Fatalf("REVIEW = %s", ev.Raw)
	}
	p.agent.send("ROOM_DETAIL", map[string]any{})
	// The counselor, present in the room, first got the ENDED ROOM_DETAIL.
	rd := p.agent.awaitMatch(p.agent.private, "ROOM_DETAIL", func(ev chatEvent) bool { return jsonStr(t, ev.M, "target") == "SELF" })
	if jsonNum(t, rd.obj("data", "room"), "reviewScore") != 4 {
		t.Fatalf("review not stored: %s", rd.Raw)
	}
	// Ending twice is harmless.
	p.agent.send("END", map[string]any{})
	p.agent.await(p.agent.private, "END")

	// The customer's next session opens a new room.
	_, logined := e.customer("1003", "고객1003")
	if roomIDOf(t, logined) == p.roomID {
		t.Fatalf("customer was put back into its ENDED room %s", p.roomID)
	}
}

func TestDeleteMessage(t *testing.T) { onEveryBackend(t, testDeleteMessage) }

func testDeleteMessage(t *testing.T, e *chatEnv) {
	p := e.pair("1004", e.agent1)
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "지워질 메시지"})
	id := jsonNum(t, p.agent.await(p.agentRoom, "MESSAGE").obj("data", "message"), "id")

	// A counselor who is not an administrator may not delete it.
	p.agent.send("DELETE_MESSAGE", map[string]any{"id": id})
	if ev := p.agent.await(p.agent.private, "ERROR"); ev.reason() != chat.Korean.T("delete_forbidden") {
		t.Fatalf("member delete: %s", ev.Raw)
	}
	// Its writer may.
	p.cust.send("DELETE_MESSAGE", map[string]any{"id": strconv.FormatInt(id, 10)})
	del := p.agent.await(p.agentRoom, "DELETE_MESSAGE")
	if del.data()["success"] != true || jsonNum(t, del.data(), "id") != id || jsonStr(t, del.M, "roomId") != p.roomID {
		t.Fatalf("DELETE_MESSAGE = %s", del.Raw)
	}
	// MESSAGE_LIST leaves it out (the deployed pages know no isDeleted);
	// the REST view still lists it, marked, without its text.
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "남는 메시지"})
	p.agent.await(p.agentRoom, "MESSAGE")
	for _, c := range []*stompClient{p.cust, p.agent} {
		c.send("MESSAGE_LIST", map[string]any{})
		list := c.await(c.private, "MESSAGE_LIST")
		if texts := messageTexts(t, list); len(texts) != 2 || texts[1] != "남는 메시지" || strings.Contains(list.Raw, `"isDeleted":1`) {
			t.Fatalf("%s: MESSAGE_LIST after a delete: %s", c.name, list.Raw)
		}
	}
	type restMessage struct {
		ID        int64  `json:"id"`
		IsDeleted int    `json:"isDeleted"`
		Message   string `json:"message"`
	}
	var page struct{ Messages []restMessage }
	resp, body := e.rest().call("GET", "/api/rooms/"+p.roomID+"/messages", e.token(e.admin1))
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST messages: %d %s", resp.StatusCode, body)
	}
	if i := slices.IndexFunc(page.Messages, func(m restMessage) bool { return m.ID == id }); i < 0 ||
		page.Messages[i].IsDeleted != 1 || page.Messages[i].Message != "" {
		t.Fatalf("REST view of the deleted message: %s", body)
	}

	// An administrator may delete anyone's message.
	p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "관리자가 지울 메시지"})
	id2 := jsonNum(t, p.agent.await(p.agentRoom, "MESSAGE").obj("data", "message"), "id")
	admin := e.agent(e.admin1)
	admin.send("DELETE_MESSAGE", map[string]any{"id": id2})
	p.cust.awaitMatch(p.custRoom, "DELETE_MESSAGE", func(ev chatEvent) bool { return jsonNum(t, ev.data(), "id") == id2 })
	// Another company's counselor cannot even see it.
	other := e.agent(e.agent3)
	other.send("DELETE_MESSAGE", map[string]any{"id": id2})
	if ev := other.await(other.private, "ERROR"); ev.reason() != chat.Korean.T("message_not_found") {
		t.Fatalf("other company delete: %s", ev.Raw)
	}
	other.send("DELETE_MESSAGE", map[string]any{"id": 99999999})
	other.await(other.private, "ERROR")
}

func TestMessageListPages(t *testing.T) {
	onEveryBackend(t, testMessageListPages, func(c *chat.Config, _ *chat.Company) { c.PageSize = 5 })
}

func testMessageListPages(t *testing.T, e *chatEnv) {
	p := e.pair("1005", e.agent1)
	for i := 1; i <= 12; i++ {
		p.cust.send("MESSAGE", map[string]any{"messageType": 0, "message": "m" + strconv.Itoa(i)})
	}
	var lastID int64
	for i := 0; i < 12; i++ {
		lastID = jsonNum(t, p.agent.await(p.agentRoom, "MESSAGE").obj("data", "message"), "id")
	}
	p.cust.send("MESSAGE_LIST", map[string]any{"messageAdminType": 0})
	newest := p.cust.await(p.cust.private, "MESSAGE_LIST")
	if got := messageTexts(t, newest); strings.Join(got, ",") != "m8,m9,m10,m11,m12" {
		t.Fatalf("newest page = %v", got)
	}
	oldest := jsonNum(t, newest.data()["messages"].([]any)[0].(map[string]any), "id")
	// startId as a numeric string, as the deployed app sends it.
	p.cust.send("MESSAGE_LIST", map[string]any{"messageAdminType": 0, "startId": strconv.FormatInt(oldest, 10)})
	if got := messageTexts(t, p.cust.await(p.cust.private, "MESSAGE_LIST")); strings.Join(got, ",") != "m3,m4,m5,m6,m7" {
		t.Fatalf("older page = %v", got)
	}
	// And as a number, with the room named in the body.
	p.cust.sendRaw([]byte(`{"eventName":"MESSAGE_LIST","roomId":"` + p.roomID + `","data":{"startId":` + strconv.FormatInt(lastID, 10) + `}}`))
	if got := messageTexts(t, p.cust.await(p.cust.private, "MESSAGE_LIST")); strings.Join(got, ",") != "m7,m8,m9,m10,m11" {
		t.Fatalf("page before the last = %v", got)
	}
}

func TestImagesAndDeletingNotes(t *testing.T) { onEveryBackend(t, testImagesAndDeletingNotes) }

func testImagesAndDeletingNotes(t *testing.T, e *chatEnv) {
	p := e.pair("1006", e.agent1)
	// Files as POST /api/uploads leaves them for this room.
	dir := "/files/1/" + p.roomID + "/"
	full, thumb, plain := dir+strings.Repeat("a", 32)+".png", dir+strings.Repeat("a", 32)+".thumb.png", dir+strings.Repeat("b", 32)+".png"
	for _, f := range []string{full, thumb, plain} {
		path := filepath.Join(e.cfg.UploadDir, strings.TrimPrefix(f, "/files/"))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("\x89PNG"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.cust.send("MESSAGE", map[string]any{"messageType": 1, "message": "", "messageDetail": full, "thumbnail": thumb})
	img := p.agent.await(p.agentRoom, "MESSAGE").obj("data", "message")
	if jsonNum(t, img, "messageType") != 1 || jsonStr(t, img, "messageDetail") != full || jsonStr(t, img, "thumbnail") != thumb {
		t.Fatalf("image = %v", img)
	}
	p.cust.send("MESSAGE", map[string]any{"messageType": 1, "messageDetail": plain})
	if img := p.agent.await(p.agentRoom, "MESSAGE").obj("data", "message"); jsonStr(t, img, "thumbnail") != plain {
		t.Fatalf("image without thumbnail = %v", img)
	}
	// Paths that were not uploaded for this room are refused.
	for _, bad := range []string{"/files/1/a.png", "https://elsewhere.example/x.png", "/files/1/999/" + strings.Repeat("a", 32) + ".png", dir + "../../2/1/" + strings.Repeat("a", 32) + ".png"} {
		p.cust.send("MESSAGE", map[string]any{"messageType": 1, "messageDetail": bad})
		if ev := p.cust.await(p.cust.private, "ERROR"); !strings.Contains(ev.reason(), "messageDetail") {
			t.Fatalf("image %q: %s", bad, ev.Raw)
		}
	}

	// Deleting an internal note is announced to members only.
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "메모", "messageAdminType": 1})
	noteID := jsonNum(t, p.agent.await(p.agent.private, "MESSAGE").obj("data", "message"), "id")
	p.cust.send("DELETE_MESSAGE", map[string]any{"id": noteID})
	if ev := p.cust.await(p.cust.private, "ERROR"); ev.reason() != chat.Korean.T("message_not_found") {
		t.Fatalf("customer deleting a note: %s", ev.Raw)
	}
	p.agent.send("DELETE_MESSAGE", map[string]any{"id": noteID})
	del := p.agent.await(p.agent.private, "DELETE_MESSAGE")
	if jsonNum(t, del.data(), "id") != noteID || jsonStr(t, del.M, "target") != "MEMBER" {
		t.Fatalf("note DELETE_MESSAGE = %s", del.Raw)
	}
	p.agent.send("MESSAGE", map[string]any{"messageType": 0, "message": "marker"})
	var seen []chatEvent
	for ev := p.cust.next(p.custRoom); !isText("marker")(ev); ev = p.cust.next(p.custRoom) {
		seen = append(seen, ev)
	}
	for _, ev := range append(seen, drainEvents(p.cust.private)...) {
		if ev.Name == "DELETE_MESSAGE" || strings.Contains(ev.Raw, "메모") {
			t.Fatalf("customer learned of a note: %s", ev.Raw)
		}
	}
}
