package knowledgetalk_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video"
	kt "github.com/cstalk/cstalk/video/knowledgetalk"
	"github.com/cstalk/cstalk/video/knowledgetalk/kttest"
)

// TestLimits: a session silent for the idle timeout is closed (and leaves
// its room), a message over the size limit closes its connection, a burst
// over the rate gets 445, and a licence removed stops working once the
// cache lets go of it.
func TestLimits(t *testing.T) {
	h := start(t, func(c *kt.Config, _ *video.Config) {
		c.IdleTimeout = 2 * time.Second
		c.MaxMessageBytes = 4 << 10
		c.MessageRate, c.MessageBurst, c.HeavyCost = 1, 10, 5
		c.LicenceCacheTTL = 200 * time.Millisecond
	})
	// Both bots are running before a's idle clock starts: starting a bot
	// process can take longer than the idle timeout on a busy machine.
	a := h.bot("a", "v2", lic1)
	b := h.bot("b", "v4", lic1)
	id := a.CreateRoom()
	a.Join(id)
	b.Join(id)
	a.Await("StartSession")
	// b keeps talking, a goes silent: a is closed and b hears it left.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		b.Sync()
		time.Sleep(500 * time.Millisecond)
	}
	b.Await("Presence", "action", "exit", "userId", a.UserID)

	// A burst over the rate: the heavy requests run out first.
	c := h.bot("c", "v2", lic1)
	for range 3 {
		c.Emit(msg{"eventOp": "RoomJoin", "roomId": "12345678"})
	}
	c.Await("RoomJoin", "code", "445")

	// Too large: the connection is closed.
	d := h.bot("d", "v4", lic1)
	d.Emit(msg{"eventOp": "Chat", "roomId": id, "message": strings.Repeat("가", 4<<10)})
	d.AwaitEvent("disconnect")

	// A removed licence stops working everywhere within the cache's TTL.
	e := h.bot("e", "v2", lic2)
	e.CreateRoom()
	if err := h.store.DeleteKTLicence(t.Context(), lic2[0]); err != nil {
		t.Fatal(err)
	}
	// (SessionReserve answers 441 outside a room while the licence holds.)
	for start := time.Now(); ; time.Sleep(300 * time.Millisecond) {
		e.Emit(msg{"eventOp": "SessionReserve", "roomId": "12345678"})
		code := kttest.Str(e.Await("SessionReserve"), "code")
		if code == "401" {
			break
		}
		if code != "441" || time.Since(start) > 5*time.Second {
			t.Fatalf("SessionReserve after the licence went: %s", code)
		}
	}
}
