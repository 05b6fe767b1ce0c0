package guide_test

import (
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/guide"
)

// The same guide on the real clock, with a short ticket: the warning and
// the expiry arrive by themselves (polled with a deadline, never slept).
func TestRealClock(t *testing.T) {
	h := newHarness(t, func(c *guide.Config) {
		c.Now, c.AfterFunc = nil, nil
		c.TicketDuration, c.WarnBefore = 400*time.Millisecond, 200*time.Millisecond
	})
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 1)
	gs, b := h.running(u, m)
	waitFor(t, 10*time.Second, func() bool { return len(h.push.of(u.ID, guide.EventWarning)) == 1 })
	waitFor(t, 10*time.Second, func() bool { return len(h.push.of(m.ID, guide.EventEnded)) == 1 })
	hist, err := h.store.GuideHistory(h.ctx, b.History.ID)
	if err != nil || hist.EndReason != guide.EndExpired || hist.Duration != 400*time.Millisecond || h.rooms.count(guide.RoomID(gs)) != 1 {
		t.Fatalf("history %+v: %v", hist, err)
	}
}

func TestHubDropsSlowSubscribers(t *testing.T) {
	hub := guide.NewHub(2, nil)
	events, cancel := hub.Subscribe(1)
	defer cancel()
	for range 3 {
		hub.Notify(t.Context(), 1, guide.Event{Type: guide.EventWarning})
	}
	n := 0
	for range events {
		n++
	}
	if n != 2 || hub.Subscribers(1) != 0 {
		t.Fatalf("%d events before the close, %d subscribers", n, hub.Subscribers(1))
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
