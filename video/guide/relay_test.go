package guide_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/video/guide"
)

// twoNodes runs two guide services on one store and one clock, joined by
// relays over an in-process bus network, as two cstalk nodes with Redis.
func twoNodes(t *testing.T, tune ...func(*guide.Config)) (h *harness, a, b *guide.Service) {
	t.Helper()
	h = newHarnessOn(t, "sqlite:"+filepath.Join(t.TempDir(), "guide.db"), tune...)
	network := broker.NewMemoryNetwork()
	node := func() *guide.Service {
		relay := guide.NewRelay(network.Node(), nil)
		svc, err := guide.New(h.cfg, h.store, relay, h.rooms, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := relay.Start(h.ctx, svc); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close(); relay.Close() })
		return svc
	}
	return h, node(), node()
}

func nextEvent(t *testing.T, name string, events <-chan guide.Event) guide.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("%s heard nothing", name)
		return guide.Event{}
	}
}

// silent fails if a stream holds an event. Timers run on the clock's
// Advance and the hub queues synchronously, so whatever a step caused is
// queued when the step returns; relayed events are awaited before.
func silent(t *testing.T, streams map[string]<-chan guide.Event) {
	t.Helper()
	for name, events := range streams {
		select {
		case ev := <-events:
			t.Fatalf("%s heard %+v", name, ev)
		default:
		}
	}
}

// TestRelayAcrossNodes: the user asks on node A while the mate listens on
// node B (and on A too): each stream hears every event of the guide
// exactly once, in order, whichever node ran the step. The mate approves
// on B, the user begins on A (A runs the clock), extends on B (A's clock
// follows: no expiry at the first ticket's end, one warning before the
// second's), and the mate ends on B, which stops A's clock.
func TestRelayAcrossNodes(t *testing.T) {
	// No vanish watchdog within the test: it would end the guide on A by
	// itself and hide a clock that kept running after the end on B.
	h, a, b := twoNodes(t, func(c *guide.Config) { c.VanishAfter = 24 * time.Hour })
	user := h.user("relay-user", 3)
	mate := h.mate("relay-mate", 0, 0, guide.Available)
	userOnA, stopUser := a.Hub().Subscribe(user.ID)
	defer stopUser()
	mateOnB, stopMateB := b.Hub().Subscribe(mate.ID)
	defer stopMateB()
	mateOnA, stopMateA := a.Hub().Subscribe(mate.ID)
	defer stopMateA()
	all := map[string]<-chan guide.Event{"mate on B": mateOnB, "mate on A": mateOnA, "user on A": userOnA}
	expectAll := func(typ string, check func(guide.Event) bool) {
		t.Helper()
		for name, events := range all {
			if ev := nextEvent(t, name, events); ev.Type != typ || !check(ev) {
				t.Fatalf("%s: %+v, want %s", name, ev, typ)
			}
		}
	}

	if err := a.AddFriend(h.ctx, user, mate.ID); err != nil {
		t.Fatal(err)
	}
	req, err := a.Match(h.ctx, user, mate.ID)
	if err != nil {
		t.Fatal(err)
	}
	gsSeq := req.Session.ID
	for name, events := range map[string]<-chan guide.Event{"mate on B": mateOnB, "mate on A": mateOnA} {
		if ev := nextEvent(t, name, events); ev.Type != guide.EventRequest || ev.GsSeq != gsSeq {
			t.Fatalf("%s: %+v, want guideRequest %d", name, ev, gsSeq)
		}
	}
	if _, err := b.Approve(h.ctx, mate, gsSeq); err != nil {
		t.Fatalf("approve on the other node: %v", err)
	}
	if ev := nextEvent(t, "user on A", userOnA); ev.Type != guide.EventApproved || ev.Token == "" {
		t.Fatalf("user: %+v, want guideApproved with a token", ev)
	}
	began := h.clock.Now()
	if _, err := a.Begin(h.ctx, user, gsSeq); err != nil {
		t.Fatal(err)
	}
	// A duplicate guideRequest would come before guideBegun on either stream.
	expectAll(guide.EventBegun, func(ev guide.Event) bool { return ev.GsSeq == gsSeq })

	ticket := h.cfg.TicketDuration
	ext, err := b.Extend(h.ctx, user, gsSeq)
	if err != nil {
		t.Fatalf("extend on the node without the clock: %v", err)
	}
	if ext.TicketsLeft != 1 || ext.History.TicketsUsed != 2 || !ext.History.EndsAt.Equal(began.Add(2*ticket)) {
		t.Fatalf("extended: %+v", ext)
	}
	expectAll(guide.EventExtended, func(ev guide.Event) bool {
		return *ev.TicketsUsed == 2 && ev.EndsAt.Equal(began.Add(2*ticket))
	})
	// A's clock follows: the first ticket's end passes quietly, the warning
	// comes once, WarnBefore before the second's.
	h.clock.Advance(2*ticket - h.cfg.WarnBefore - time.Second)
	silent(t, all)
	h.clock.Advance(time.Second)
	expectAll(guide.EventWarning, func(ev guide.Event) bool { return *ev.RemainingSeconds == int(h.cfg.WarnBefore/time.Second) })

	if _, err := b.Complete(h.ctx, mate, gsSeq); err != nil {
		t.Fatal(err)
	}
	expectAll(guide.EventEnded, func(ev guide.Event) bool { return ev.Reason == "mateEnded" && *ev.TicketsUsed == 2 })
	// Node A ran the clock; the end on B stopped it.
	h.clock.Advance(2 * ticket)
	silent(t, all)
	if u := h.account(user.ID); u.Tickets != 1 {
		t.Fatalf("user has %d tickets, want 1 (3 - begin - extension)", u.Tickets)
	}
}

// beginOn runs a guide of user with mate on node n from request to begin:
// n runs its clock.
func beginOn(t *testing.T, h *harness, n *guide.Service, user, mate *guide.Account) (gsSeq int64) {
	t.Helper()
	if err := n.AddFriend(h.ctx, user, mate.ID); err != nil {
		t.Fatal(err)
	}
	req, err := n.Match(h.ctx, user, mate.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Approve(h.ctx, mate, req.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Begin(h.ctx, user, req.Session.ID); err != nil {
		t.Fatal(err)
	}
	return req.Session.ID
}

// TestClockNodeGone: the node running a guide's clock goes away; the other
// node completes the guide when a session check comes after its end, once.
func TestClockNodeGone(t *testing.T) {
	h, a, b := twoNodes(t)
	user := h.user("gone-user", 2)
	mate := h.mate("gone-mate", 0, 0, guide.Available)
	mateOnB, stop := b.Hub().Subscribe(mate.ID)
	defer stop()
	gsSeq := beginOn(t, h, a, user, mate)
	for _, typ := range []string{guide.EventRequest, guide.EventBegun} {
		if ev := nextEvent(t, "mate on B", mateOnB); ev.Type != typ {
			t.Fatalf("mate: %+v, want %s", ev, typ)
		}
	}
	a.Close() // the node and its clock are gone
	end := h.clock.Now().Add(h.cfg.TicketDuration)
	h.clock.Set(end.Add(2 * time.Second))
	for range 2 { // the second check finds it completed
		st, err := b.Check(h.ctx, mate, gsSeq)
		if err != nil || st.GhSeq != 0 {
			t.Fatalf("check after the end: %+v %v", st, err)
		}
	}
	if ev := nextEvent(t, "mate on B", mateOnB); ev.Type != guide.EventEnded || ev.Reason != "expired" {
		t.Fatalf("mate: %+v, want guideEnded (expired)", ev)
	}
	silent(t, map[string]<-chan guide.Event{"mate on B": mateOnB})
	gs, err := h.store.GuideSession(h.ctx, gsSeq)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := h.store.GuideHistory(h.ctx, gs.HistoryID)
	if err != nil || hist.CompletedAt == nil || !hist.CompletedAt.Equal(end) || hist.EndReason != guide.EndExpired {
		t.Fatalf("history: %+v %v", hist, err)
	}
}

// TestChecksOnOtherNode: the apps' checks all land on the node without the
// clock; the clock's node counts them and does not take the apps for
// vanished, and does once they stop.
func TestChecksOnOtherNode(t *testing.T) {
	h, a, b := twoNodes(t, func(c *guide.Config) { c.TicketDuration = time.Hour })
	user := h.user("check-user", 1)
	mate := h.mate("check-mate", 0, 0, guide.Available)
	gsSeq := beginOn(t, h, a, user, mate)
	var last time.Time
	for range 4 * int(h.cfg.VanishAfter/h.cfg.CheckInterval) {
		h.clock.Advance(h.cfg.CheckInterval)
		last = h.clock.Now()
		for _, acc := range []*guide.Account{user, mate} {
			if st, err := b.Check(h.ctx, acc, gsSeq); err != nil || st.GhSeq == 0 {
				t.Fatalf("check at %v: %+v %v", last.Sub(epoch), st, err)
			}
		}
	}
	h.clock.Advance(h.cfg.VanishAfter + time.Second)
	gs, err := h.store.GuideSession(h.ctx, gsSeq)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := h.store.GuideHistory(h.ctx, gs.HistoryID)
	if err != nil || hist.CompletedAt == nil || hist.EndReason != guide.EndVanished || !hist.CompletedAt.Equal(last) {
		t.Fatalf("history: %+v %v (last check at %v)", hist, err, last)
	}
}

// TestHoldsFollowOtherNodes: node B learns of a request when the mate
// approves through it, and holds the mate and the user while it waits for
// the begin. The guide begins and ends on node A; when B's wait is over, B
// lets go of both, so they can ask and be asked through B again.
func TestHoldsFollowOtherNodes(t *testing.T) {
	h, a, b := twoNodes(t, func(c *guide.Config) { c.TicketDuration = time.Minute })
	user := h.user("held-user", 2)
	mate := h.mate("held-mate", 0, 0, guide.Available)
	if err := a.AddFriend(h.ctx, user, mate.ID); err != nil {
		t.Fatal(err)
	}
	req, err := a.Match(h.ctx, user, mate.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Approve(h.ctx, mate, req.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Begin(h.ctx, user, req.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Complete(h.ctx, user, req.Session.ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.BeginTimeout) // B's wait for the begin is over
	again, err := b.Match(h.ctx, user, mate.ID)
	if err != nil {
		t.Fatalf("asking again through B: %v", err)
	}
	if again.Mate.ID != mate.ID {
		t.Fatalf("matched %+v", again.Mate)
	}
}

// TestMateHeldForEveryNode: a mate asked through node A is held for node B
// too, though B has no hold of its own: a friend's ask through B is
// refused as busy, and a ranked ask through B gets the next mate. Once
// the mate answers no, B may ask it.
func TestMateHeldForEveryNode(t *testing.T) {
	h, a, b := twoNodes(t)
	best := h.mate("held-best", 50, 10, guide.Available)
	next := h.mate("held-next", 30, 10, guide.Available)
	u1, u2, u3 := h.user("held-u1", 1), h.user("held-u2", 1), h.user("held-u3", 1)
	h.befriend(u1, best)
	h.befriend(u2, best)
	req, err := a.Match(h.ctx, u1, best.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Match(h.ctx, u2, best.ID)
	wantRefusal(t, err, "mateBusy")
	ranked, err := b.Match(h.ctx, u3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ranked.Mate.ID != next.ID {
		t.Fatalf("a ranked ask through B got mate %d, want %d (%d is asked through A)", ranked.Mate.ID, next.ID, best.ID)
	}
	if err := a.Reject(h.ctx, best, req.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Match(h.ctx, u2, best.ID); err != nil {
		t.Fatalf("asking the mate again after it said no: %v", err)
	}
}
