package video

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestRoomsScopedToCompany: company 1's c-1 and company 2's c-1 are two
// rooms. A participant of one is never listed to, announced to, relayed
// to or subscribable by the other, and closing one leaves the other open.
func TestRoomsScopedToCompany(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal") // company 1
	a.joinIn("1", "c-1", true, true)
	a.publish()

	x := dial(t, ts, "3", "/signal") // company 2, same room name
	if ex := x.joinIn("2", "c-1", true, true); len(ex["members"].([]any)) != 0 {
		t.Fatalf("company 2 is shown company 1's participants: %v", ex)
	}
	x.publish()
	x.send(map[string]any{"id": "receiveVideoFrom", "userId": "1", "sdpOffer": validOffer(t)})
	x.awaitError(CodeUnknownParticipant)

	// Company 1's next joiner is the first arrival a hears of, and it is
	// shown a alone.
	b := dial(t, ts, "2", "/signal")
	if ex := b.joinIn("1", "c-1", false, false); fmt.Sprint(ex["data"]) != "[1]" {
		t.Fatalf("company 1's joiner sees %v", ex["data"])
	}
	if m := a.await("newParticipantArrived"); m.str("name") != "2" {
		t.Fatalf("company 1 was told of %v", m)
	}
	aFromB := b.subscribe("1")
	awaitMedia(t, "2<-1 within company 1", aFromB, 10)

	c1, c2 := RoomKey{Company: "1", Kind: RoomChannel, Name: "1"}, RoomKey{Company: "2", Kind: RoomChannel, Name: "1"}
	if got := ts.Participants(c1); len(got) != 2 || got[0].UserID != "1" || got[1].UserID != "2" {
		t.Fatalf("company 1's room: %v", got)
	}
	if got := ts.Participants(c2); len(got) != 1 || got[0].UserID != "3" {
		t.Fatalf("company 2's room: %v", got)
	}
	if got := ts.Rooms(); !slices.Equal(got, []RoomKey{c1, c2}) {
		t.Fatalf("rooms %v", got)
	}
	checkFor(t, 5*time.Second, func() error {
		ts.events.mu.Lock()
		defer ts.events.mu.Unlock()
		for _, e := range ts.events.evs {
			if e.Kind == EventJoined && e.User.UserID == "3" {
				if e.Room != c2 {
					return fmt.Errorf("company 2's join reported in %v", e.Room)
				}
				return nil
			}
		}
		return errors.New("no join event of company 2")
	})

	if n := ts.CloseRoom(c2); n != 1 {
		t.Fatalf("CloseRoom(company 2's c-1) = %d", n)
	}
	x.awaitError(CodeRoomClosed)
	if got := ts.Participants(c1); len(got) != 2 {
		t.Fatalf("closing company 2's room touched company 1's: %v", got)
	}
	if !a.none("participantLeft") || !b.none("participantLeft") {
		t.Fatal("company 1 was told of company 2's leave")
	}
	a.checkRules()
	b.checkRules()
	x.checkRules()
}

// TestRoomNeedsVouchedCompany: a join the authorizer vouches for without a
// canonical company is refused, never put in a room of no company or of
// the client's spelling ("01" is not "1").
func TestRoomNeedsVouchedCompany(t *testing.T) {
	ts := startServer(t, nil)
	for _, company := range []string{"01", "x", "-1"} {
		c := dial(t, ts, "1", "/signal")
		c.send(map[string]any{"id": "joinRoom", "token": "tok-1", "userId": "1", "communityId": company, "roomId": "c-1"})
		c.awaitError(CodeInternal)
		c.close()
	}
	if rooms := ts.Rooms(); len(rooms) != 0 {
		t.Fatalf("rooms opened: %v", rooms)
	}
}
