package guide_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/video/guide"
)

// TestRelayAcrossNodes: two nodes share the store and a bus. The user asks
// on node A while the mate listens on node B (and on A too): each stream
// hears every event of the guide exactly once, in order, whichever node
// ran the step; the mate approves through B.
func TestRelayAcrossNodes(t *testing.T) {
	// No vanish watchdog within the test: it would end the guide on A by
	// itself and hide a clock that kept running after the end on B.
	h := newHarnessOn(t, "sqlite:"+filepath.Join(t.TempDir(), "guide.db"), func(c *guide.Config) { c.VanishAfter = 24 * time.Hour })
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
	a, b := node(), node()
	user := h.user("relay-user", 3)
	mate := h.mate("relay-mate", 0, 0, guide.Available)
	userOnA, stopUser := a.Hub().Subscribe(user.ID)
	defer stopUser()
	mateOnB, stopMateB := b.Hub().Subscribe(mate.ID)
	defer stopMateB()
	mateOnA, stopMateA := a.Hub().Subscribe(mate.ID)
	defer stopMateA()
	next := func(name string, events <-chan guide.Event) guide.Event {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatalf("%s heard nothing", name)
			return guide.Event{}
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
		if ev := next(name, events); ev.Type != guide.EventRequest || ev.GsSeq != gsSeq {
			t.Fatalf("%s: %+v, want guideRequest %d", name, ev, gsSeq)
		}
	}
	if _, err := b.Approve(h.ctx, mate, gsSeq); err != nil {
		t.Fatalf("approve on the other node: %v", err)
	}
	if ev := next("user on A", userOnA); ev.Type != guide.EventApproved || ev.Token == "" {
		t.Fatalf("user: %+v, want guideApproved with a token", ev)
	}
	if _, err := a.Begin(h.ctx, user, gsSeq); err != nil {
		t.Fatal(err)
	}
	// A duplicate guideRequest would come before guideBegun on either stream.
	for name, events := range map[string]<-chan guide.Event{"mate on B": mateOnB, "mate on A": mateOnA, "user on A": userOnA} {
		if ev := next(name, events); ev.Type != guide.EventBegun || ev.GsSeq != gsSeq {
			t.Fatalf("%s: %+v, want guideBegun", name, ev)
		}
	}
	if _, err := b.Complete(h.ctx, mate, gsSeq); err != nil {
		t.Fatal(err)
	}
	for name, events := range map[string]<-chan guide.Event{"mate on B": mateOnB, "mate on A": mateOnA, "user on A": userOnA} {
		if ev := next(name, events); ev.Type != guide.EventEnded || ev.Reason != "mateEnded" {
			t.Fatalf("%s: %+v, want guideEnded by the mate", name, ev)
		}
	}
	// Node A began the guide and ran its clock; the end on B stopped it.
	h.clock.Advance(2 * h.cfg.TicketDuration)
	for name, events := range map[string]<-chan guide.Event{"mate on A": mateOnA, "user on A": userOnA} {
		select {
		case ev := <-events:
			t.Fatalf("%s heard %+v after the guide ended on the other node", name, ev)
		default:
		}
	}
}
