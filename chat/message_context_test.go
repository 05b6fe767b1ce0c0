package chat_test

import (
	"testing"
)

// The lobby re-sorts on the first customer message nobody has answered,
// once per run of them; an internal note in between does not start a new
// run. MESSAGE decides this from the one-query context, or from the stored
// messages when the last one is a note.
func TestLobbyReloadOncePerUnansweredRun(t *testing.T) {
	onEveryBackend(t, testLobbyReloadOncePerUnansweredRun)
}

func testLobbyReloadOncePerUnansweredRun(t *testing.T, e *chatEnv) {
	lobby := e.agent(e.agent1)
	lobbySub := lobby.subscribe("/sub/socket/room/LOBBY1")
	// A receipt-ed no-op makes sure the lobby subscription is active.
	lobby.send("ROOM_DETAIL", map[string]any{}, "roomId", "999999")
	lobby.await(lobby.private, "ERROR")

	cust, logined := e.customer("7001", "박고객")
	roomID := roomIDOf(t, logined)
	custRoom := cust.room(roomID)
	lobby.collect(lobbySub, "RELOAD_READY") // the new room

	lobby.room(roomID) // takes the room
	lobby.await(lobby.private, "MESSAGE_LIST")
	lobby.collect(lobbySub, "RELOAD_READY") // the assignment

	say := func(c *stompClient, text string, adminType int) int64 {
		t.Helper()
		c.send("MESSAGE", map[string]any{"messageType": 0, "message": text, "messageAdminType": adminType})
		sub := custRoom
		if adminType == 1 {
			sub = c.private
		}
		ev := c.awaitMatch(sub, "MESSAGE", func(ev chatEvent) bool { return jsonStr(t, ev.obj("data", "message"), "message") == text })
		return jsonNum(t, ev.obj("data", "message"), "id")
	}
	reloads := func(evs []chatEvent) int {
		n := 0
		for _, ev := range evs {
			if ev.Name == "RELOAD" {
				n++
			}
		}
		return n
	}

	first := say(cust, "가스 냄새가 나요", 0)
	evs := lobby.collect(lobbySub, "RELOAD_READY")
	if ready := evs[len(evs)-1]; reloads(evs) != 1 || jsonNum(t, ready.obj("data", "room", "lastMessage"), "id") != first {
		t.Fatalf("after the first unanswered message: %v, RELOAD_READY %s", eventNames(evs), ready.Raw)
	}

	say(cust, "빨리 와 주세요", 0)
	say(lobby, "기사 배정 필요", 1)
	say(cust, "아직인가요?", 0)
	say(lobby, "곧 도착합니다", 0)
	last := say(cust, "감사합니다", 0)
	evs = lobby.collect(lobbySub, "RELOAD_READY")
	if ready := evs[len(evs)-1]; reloads(evs) != 1 || jsonNum(t, ready.obj("data", "room", "lastMessage"), "id") != last {
		t.Fatalf("one RELOAD for the run after the answer only, got %v, RELOAD_READY %s", eventNames(evs), ready.Raw)
	}
}
