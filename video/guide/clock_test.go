package guide_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/guide"
)

func TestBeginWarnExtendExpire(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 3)
	gs, b := h.running(u, m)
	tick, warn := h.cfg.TicketDuration, h.cfg.WarnBefore
	if b.TicketsLeft != 2 || b.History.TicketsUsed != 1 || !b.History.EndsAt.Equal(epoch.Add(tick)) {
		t.Fatalf("begin: %+v", b)
	}
	begun := h.push.of(m.ID, guide.EventBegun)
	if len(begun) != 1 || begun[0].GhSeq != b.History.ID || *begun[0].RemainingSeconds != int(tick/time.Second) || begun[0].TicketsLeft != nil {
		t.Fatalf("mate told of the begin: %+v", begun)
	}
	if got := h.push.of(u.ID, guide.EventBegun); len(got) != 1 || *got[0].TicketsLeft != 2 {
		t.Fatalf("user told of the begin: %+v", got)
	}
	_, err := h.svc.Begin(h.ctx, u, gs)
	wantRefusal(t, err, "notApproved")

	// The warning comes at exactly WarnBefore ahead of the end, to both.
	h.live(u, m, gs, tick-warn-time.Nanosecond)
	if len(h.push.of(u.ID, guide.EventWarning)) != 0 {
		t.Fatal("warned early")
	}
	h.clock.Advance(time.Nanosecond)
	for _, id := range []int64{u.ID, m.ID} {
		w := h.push.of(id, guide.EventWarning)
		if len(w) != 1 || *w[0].RemainingSeconds != 15 || !w[0].At.Equal(epoch.Add(tick-warn)) {
			t.Fatalf("warning to %d: %+v", id, w)
		}
	}
	if w := h.push.of(u.ID, guide.EventWarning); *w[0].TicketsLeft != 2 {
		t.Fatalf("the user's warning offers %d tickets", *w[0].TicketsLeft)
	}
	// Extension after the warning: one more ticket, one more period.
	ext, err := h.svc.Extend(h.ctx, u, gs)
	if err != nil || ext.TicketsLeft != 1 || ext.History.TicketsUsed != 2 || !ext.History.EndsAt.Equal(epoch.Add(2*tick)) {
		t.Fatalf("extend: %+v %v", ext, err)
	}
	if got := h.push.of(m.ID, guide.EventExtended); len(got) != 1 || !got[0].EndsAt.Equal(epoch.Add(2*tick)) {
		t.Fatalf("extension told the mate: %+v", got)
	}
	// The old end passes quietly.
	h.live(u, m, gs, warn)
	if len(h.push.of(u.ID, guide.EventEnded)) != 0 {
		t.Fatal("ended at the first ticket's end despite the extension")
	}
	// An early extension (before the second warning) moves the warning too.
	ext, err = h.svc.Extend(h.ctx, u, gs)
	if err != nil || ext.TicketsLeft != 0 || ext.History.TicketsUsed != 3 {
		t.Fatalf("second extend: %+v %v", ext, err)
	}
	h.live(u, m, gs, 2*tick-warn) // now = epoch+3*tick-warn: the warning of the third ticket
	if got := h.push.of(m.ID, guide.EventWarning); len(got) != 2 || !got[1].At.Equal(epoch.Add(3*tick-warn)) {
		t.Fatalf("warnings: %+v", got)
	}
	_, err = h.svc.Extend(h.ctx, u, gs)
	wantRefusal(t, err, "noTicket")
	st, err := h.svc.Check(h.ctx, m, gs)
	if err != nil || st.GhSeq != b.History.ID || st.Remaining != warn || st.TicketsUsed != 3 {
		t.Fatalf("check before the end: %+v %v", st, err)
	}

	h.clock.Advance(warn)
	for _, id := range []int64{u.ID, m.ID} {
		ended := h.push.of(id, guide.EventEnded)
		if len(ended) != 1 || ended[0].Reason != string(guide.EndExpired) || *ended[0].TicketsUsed != 3 || *ended[0].DurationSeconds != int(3*tick/time.Second) {
			t.Fatalf("end told %d: %+v", id, ended)
		}
	}
	hist, err := h.store.GuideHistory(h.ctx, b.History.ID)
	if err != nil || hist.Duration != 3*tick || hist.TicketsUsed != 3 || hist.EndReason != guide.EndExpired {
		t.Fatalf("history: %+v %v", hist, err)
	}
	if h.account(u.ID).Tickets != 0 || h.account(m.ID).Availability != guide.Available || h.rooms.count(guide.RoomID(gs)) != 1 {
		t.Fatal("tickets, mate or room after expiry")
	}
	st, err = h.svc.Check(h.ctx, u, gs)
	if err != nil || st.GhSeq != 0 || st.Session.Status != guide.StatusCompleted {
		t.Fatalf("check after the end: %+v %v", st, err)
	}
	// The apps' own /guide/complete after the server's: the same history.
	c, err := h.svc.Complete(h.ctx, u, gs)
	if err != nil || !c.Already || c.History.ID != b.History.ID || c.History.EndReason != guide.EndExpired {
		t.Fatalf("late complete: %+v %v", c, err)
	}
	if err := h.svc.Delete(h.ctx, u, gs); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.svc.Check(h.ctx, m, gs); st.Session.Status != guide.StatusDeleted || st.GhSeq != 0 {
		t.Fatalf("after delete: %+v", st)
	}
	if len(h.push.of(u.ID, guide.EventEnded)) != 1 || h.rooms.count(guide.RoomID(gs)) != 1 {
		t.Fatal("ended twice")
	}
}

// Each way a guide ends completes it once: one ticket charged, one CRM
// record, both sides told once, the room closed once.
func TestEndingCases(t *testing.T) {
	for _, backend := range []string{"sqlite", "mariadb"} {
		t.Run(backend, func(t *testing.T) { endingCases(t, backend) })
	}
}

func endingCases(t *testing.T, backend string) {
	for _, c := range []struct {
		name   string
		reason guide.EndReason
		end    func(h *harness, gs int64, u, m *guide.Account)
		after  time.Duration
	}{
		{"user ends", guide.EndUser, func(h *harness, gs int64, u, m *guide.Account) {
			h.live(u, m, gs, time.Minute)
			mustComplete(h, u, gs)
		}, time.Minute},
		{"mate ends", guide.EndMate, func(h *harness, gs int64, u, m *guide.Account) {
			h.live(u, m, gs, 2*time.Minute)
			mustComplete(h, m, gs)
		}, 2 * time.Minute},
		{"user leaves the room", guide.EndUser, func(h *harness, gs int64, u, m *guide.Account) {
			h.live(u, m, gs, time.Minute)
			h.svc.ParticipantLeft(h.ctx, guide.RoomKey(gs), itoa(u.ID), "leave")
		}, time.Minute},
		{"mate leaves the room", guide.EndMate, func(h *harness, gs int64, u, m *guide.Account) {
			h.live(u, m, gs, time.Minute)
			h.svc.ParticipantLeft(h.ctx, guide.RoomKey(gs), itoa(m.ID), "leave")
		}, time.Minute},
		{"connection lost", guide.EndLost, func(h *harness, gs int64, u, m *guide.Account) {
			h.live(u, m, gs, 3*time.Minute)
			h.svc.ParticipantLeft(h.ctx, guide.RoomKey(gs), itoa(m.ID), "dropped")
		}, 3 * time.Minute},
		{"time runs out", guide.EndExpired, func(h *harness, gs int64, u, m *guide.Account) {
			h.live(u, m, gs, 15*time.Minute)
		}, 10 * time.Minute},
		{"both apps vanish", guide.EndVanished, func(h *harness, gs int64, u, m *guide.Account) {
			h.live(u, m, gs, time.Minute) // the last sign of life at 1 min
			h.clock.Advance(h.cfg.VanishAfter)
		}, time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := harnessFor(t, backend)
			m := h.mate("m", 0, 0, guide.Available)
			u := h.user("u", 5)
			gs, b := h.running(u, m)
			c.end(h, gs, u, m)
			// Anything after the end changes nothing.
			h.clock.Advance(time.Hour)
			h.svc.ParticipantLeft(h.ctx, guide.RoomKey(gs), itoa(u.ID), "dropped")
			mustComplete(h, m, gs)
			checkEndedOnce(t, h, gs, b.History.ID, u, m, c.reason, c.after, 1)
		})
	}
}

func mustComplete(h *harness, a *guide.Account, gs int64) *guide.Completion {
	h.t.Helper()
	c, err := h.svc.Complete(h.ctx, a, gs)
	if err != nil {
		h.t.Fatalf("complete: %v", err)
	}
	return c
}

func checkEndedOnce(t *testing.T, h *harness, gs, gh int64, u, m *guide.Account, reason guide.EndReason, duration time.Duration, tickets int) {
	checkEndedOnceLeft(t, h, gs, gh, u, m, reason, duration, tickets, 5-tickets)
}

func checkEndedOnceLeft(t *testing.T, h *harness, gs, gh int64, u, m *guide.Account, reason guide.EndReason, duration time.Duration, tickets, left int) {
	t.Helper()
	for _, id := range []int64{u.ID, m.ID} {
		ended := h.push.of(id, guide.EventEnded)
		if len(ended) != 1 || ended[0].Reason != string(reason) || ended[0].GhSeq != gh {
			t.Fatalf("account %d told of the end: %+v", id, ended)
		}
	}
	hist, err := h.store.GuideHistory(h.ctx, gh)
	if err != nil || hist.CompletedAt == nil || hist.EndReason != reason || hist.Duration != duration || hist.TicketsUsed != tickets {
		t.Fatalf("history %+v (want %s after %v): %v", hist, reason, duration, err)
	}
	crm, err := h.store.GuideCRM(h.ctx, gh)
	if err != nil || crm.EndReason != reason || crm.Duration != duration || crm.TicketsUsed != tickets {
		t.Fatalf("crm %+v: %v", crm, err)
	}
	if got := h.account(u.ID).Tickets; got != left {
		t.Fatalf("%d tickets left, want %d", got, left)
	}
	if n := h.rooms.count(guide.RoomID(gs)); n != 1 {
		t.Fatalf("room closed %d times", n)
	}
	if h.account(m.ID).Availability != guide.Available {
		t.Fatal("mate still busy")
	}
}

// Both sides end, the apps check and the timer fires at the same moment:
// one completion.
func TestSimultaneousEnds(t *testing.T) {
	for _, backend := range []string{"sqlite", "mariadb"} {
		t.Run(backend, func(t *testing.T) { simultaneousEnds(t, backend) })
	}
}

func simultaneousEnds(t *testing.T, backend string) {
	for round := range 5 {
		h := harnessFor(t, backend)
		m := h.mate("m", 0, 0, guide.Available)
		u := h.user("u", 5)
		gs, b := h.running(u, m)
		h.live(u, m, gs, h.cfg.TicketDuration-time.Second)
		var wg sync.WaitGroup
		var mu sync.Mutex
		firsts := 0
		count := func(c *guide.Completion, err error) {
			if err != nil {
				t.Error(err)
				return
			}
			if !c.Already {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		}
		wg.Go(func() { count(h.svc.Complete(h.ctx, u, gs)) })
		wg.Go(func() { count(h.svc.Complete(h.ctx, m, gs)) })
		wg.Go(func() { h.svc.Check(h.ctx, u, gs) })
		wg.Go(func() { h.svc.ParticipantLeft(h.ctx, guide.RoomKey(gs), itoa(m.ID), "dropped") })
		wg.Go(func() { h.clock.Advance(time.Second) })
		wg.Wait()
		if firsts > 1 {
			t.Fatalf("round %d: %d callers completed first", round, firsts)
		}
		for _, id := range []int64{u.ID, m.ID} {
			if n := len(h.push.of(id, guide.EventEnded)); n != 1 {
				t.Fatalf("round %d: account %d told %d times", round, id, n)
			}
		}
		hist, _ := h.store.GuideHistory(h.ctx, b.History.ID)
		if hist.CompletedAt == nil || h.rooms.count(guide.RoomID(gs)) != 1 || h.account(u.ID).Tickets != 4 {
			t.Fatalf("round %d: %+v, room closed %d times", round, hist, h.rooms.count(guide.RoomID(gs)))
		}
	}
}

// A session check at the end, while the timer is late, completes the guide;
// the late timer then finds nothing to do.
func TestCheckRacesTheTimer(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 2)
	gs, b := h.running(u, m)
	h.live(u, m, gs, h.cfg.TicketDuration-h.cfg.WarnBefore) // the warning fires
	h.clock.Set(epoch.Add(h.cfg.TicketDuration + 2*time.Second))
	st, err := h.svc.Check(h.ctx, m, gs)
	if err != nil || st.GhSeq != 0 || st.Session.Status != guide.StatusCompleted {
		t.Fatalf("check past the end: %+v %v", st, err)
	}
	// An extension now is too late.
	_, err = h.svc.Extend(h.ctx, u, gs)
	wantRefusal(t, err, "notActive")
	h.clock.Advance(time.Minute) // the late timer
	checkEndedOnceLeft(t, h, gs, b.History.ID, u, m, guide.EndExpired, h.cfg.TicketDuration, 1, 1)
}

// An extension racing the expiry: either the extension wins (and the guide
// goes on) or the expiry does (and the extension is refused, no ticket
// spent), never both.
func TestExtendRacesExpiry(t *testing.T) {
	for range 5 {
		h := newHarness(t)
		m := h.mate("m", 0, 0, guide.Available)
		u := h.user("u", 2)
		gs, b := h.running(u, m)
		h.live(u, m, gs, h.cfg.TicketDuration-time.Millisecond)
		var wg sync.WaitGroup
		var extErr error
		wg.Go(func() { _, extErr = h.svc.Extend(h.ctx, u, gs) })
		wg.Go(func() { h.clock.Advance(time.Millisecond) })
		wg.Wait()
		hist, _ := h.store.GuideHistory(h.ctx, b.History.ID)
		tickets := h.account(u.ID).Tickets
		if extErr == nil {
			if hist.CompletedAt != nil || hist.TicketsUsed != 2 || tickets != 0 {
				t.Fatalf("extension won but %+v, %d tickets", hist, tickets)
			}
		} else {
			wantRefusal(t, extErr, "notActive")
			if hist.CompletedAt == nil || hist.TicketsUsed != 1 || tickets != 1 {
				t.Fatalf("expiry won but %+v, %d tickets", hist, tickets)
			}
		}
	}
}

func TestRecoverAfterRestart(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 1)
	gs, b := h.running(u, m)
	h.svc.Close()
	// A new process on the same database, after the guide's time ran out.
	h.clock.Set(epoch.Add(h.cfg.TicketDuration + time.Minute))
	svc, err := guide.New(h.cfg, h.store, h.push, h.rooms, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	h.svc = svc
	if err := svc.Recover(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(0)
	checkEndedOnceLeft(t, h, gs, b.History.ID, u, m, guide.EndExpired, h.cfg.TicketDuration, 1, 0)
}

// TestRecoverWaitingSessions: a request and an approval outlive the
// process that made them; the next process times the request out and
// withdraws the approval never begun, freeing its mate, at their times.
func TestRecoverWaitingSessions(t *testing.T) {
	h := newHarness(t)
	asked, approving := h.mate("asked", 0, 0, guide.Available), h.mate("approving", 0, 0, guide.Available)
	u1, u2 := h.user("u1", 1), h.user("u2", 1)
	h.befriend(u1, asked)
	h.befriend(u2, approving)
	requested, err := h.svc.Match(h.ctx, u1, asked.ID)
	if err != nil {
		t.Fatal(err)
	}
	approved, err := h.svc.Match(h.ctx, u2, approving.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Approve(h.ctx, approving, approved.Session.ID); err != nil {
		t.Fatal(err)
	}
	h.svc.Close()
	// A new process on the same database, a moment later.
	h.clock.Set(epoch.Add(time.Second))
	svc, err := guide.New(h.cfg, h.store, h.push, h.rooms, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Recover(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.RequestTimeout - 2*time.Second)
	if len(h.push.of(u1.ID, guide.EventTimeout)) != 0 {
		t.Fatal("the request timed out early")
	}
	h.clock.Advance(time.Second) // the request's 30 s since it was made
	if got := h.push.of(u1.ID, guide.EventTimeout); len(got) != 1 || got[0].GsSeq != requested.Session.ID {
		t.Fatalf("request timeout: %+v", got)
	}
	h.clock.Advance(h.cfg.BeginTimeout - h.cfg.RequestTimeout) // the approval's 60 s
	if got := h.push.of(u2.ID, guide.EventCancelled); len(got) != 1 || got[0].GsSeq != approved.Session.ID {
		t.Fatalf("approval never begun: %+v", got)
	}
	if a := h.account(approving.ID); a.Availability != guide.Available {
		t.Fatalf("the approving mate is %s after the withdrawal", a.Availability)
	}
	for _, gs := range []int64{requested.Session.ID, approved.Session.ID} {
		if s, err := h.store.GuideSession(h.ctx, gs); err != nil || (s.Status != guide.StatusTimeout && s.Status != guide.StatusCancelled) {
			t.Fatalf("session %d: %+v %v", gs, s, err)
		}
	}
}
