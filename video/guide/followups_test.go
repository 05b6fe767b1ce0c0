package guide_test

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/guide"
)

// pausingStore is the real store with a gate on GuideAccount: while armed,
// a read tells entered and waits for release, holding its caller in the
// middle of what it does.
type pausingStore struct {
	guide.Store
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
	// extending is closed when ExtendGuide is called, which then waits for
	// extend.
	extending, extend chan struct{}
}

func (p *pausingStore) ExtendGuide(ctx context.Context, historyID int64, ticketsUsed int, endsAt time.Time) (*guide.History, int, error) {
	close(p.extending)
	<-p.extend
	return p.Store.ExtendGuide(ctx, historyID, ticketsUsed, endsAt)
}

// waitingForLock reports whether a goroutine running fn is waiting for a
// mutex.
func waitingForLock(fn string) bool {
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(g, "sync.(*Mutex).Lock") {
			return true
		}
	}
	return false
}

func (p *pausingStore) GuideAccount(ctx context.Context, id int64) (*guide.Account, error) {
	p.mu.Lock()
	armed := p.armed
	p.armed = false
	p.mu.Unlock()
	if armed {
		close(p.entered)
		<-p.release
	}
	return p.Store.GuideAccount(ctx, id)
}

// TestWarningNeverFollowsTheExtension: the warning is being prepared (its
// store read held) when the user extends. Whatever the interleaving, a
// warning never reaches a side after guideExtended: it is of the ticket
// the extension superseded.
func TestWarningNeverFollowsTheExtension(t *testing.T) {
	// No watchdog: nobody checks while the clock jumps to the warning.
	h := newHarness(t, func(c *guide.Config) { c.VanishAfter = 24 * time.Hour })
	gate := &pausingStore{Store: h.store, entered: make(chan struct{}), release: make(chan struct{}),
		extending: make(chan struct{}), extend: make(chan struct{})}
	svc, err := guide.New(h.cfg, gate, h.push, h.rooms, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	u := h.user("u", 3)
	m := h.mate("m", 0, 0, guide.Available)
	gs := beginOn(t, h, svc, u, m)
	gate.mu.Lock()
	gate.armed = true
	gate.mu.Unlock()
	warned := make(chan struct{})
	go func() {
		defer close(warned)
		h.clock.Advance(h.cfg.TicketDuration - h.cfg.WarnBefore)
	}()
	<-gate.entered // the warning is being prepared
	extended := make(chan error, 1)
	go func() {
		_, err := svc.Extend(h.ctx, u, gs)
		extended <- err
	}()
	// Either the extension waits for the warning to be sent (then the
	// warning goes first), or it gets to the store: let it finish before
	// the warning goes on, the interleaving that must not reorder them.
	deadline := time.Now().Add(10 * time.Second)
	for waiting := false; !waiting; {
		select {
		case <-gate.extending:
			close(gate.extend)
			if err := <-extended; err != nil {
				t.Fatalf("extend: %v", err)
			}
			extended <- nil
			waiting = true
		default:
			waiting = waitingForLock("guide.(*Service).Extend(")
			if !waiting && time.Now().After(deadline) {
				t.Fatal("the extension neither waits nor reaches the store")
			}
			runtime.Gosched()
		}
	}
	close(gate.release)
	<-warned
	select {
	case <-gate.extend:
	default:
		close(gate.extend)
	}
	if err := <-extended; err != nil {
		t.Fatalf("extend: %v", err)
	}
	for _, id := range []int64{u.ID, m.ID} {
		h.push.mu.Lock()
		events := append([]guide.Event(nil), h.push.events[id]...)
		h.push.mu.Unlock()
		sawExtension := false
		for _, ev := range events {
			switch ev.Type {
			case guide.EventExtended:
				sawExtension = true
			case guide.EventWarning:
				if sawExtension {
					t.Fatalf("account %d warned after the extension: %s", id, types(events))
				}
				if *ev.TicketsUsed != 1 || *ev.RemainingSeconds != int(h.cfg.WarnBefore/time.Second) {
					t.Fatalf("account %d: warning of another ticket: %+v", id, ev)
				}
			}
		}
		if !sawExtension {
			t.Fatalf("account %d: no guideExtended in %s", id, types(events))
		}
	}
}

func types(events []guide.Event) string {
	names := make([]string, len(events))
	for i, ev := range events {
		names[i] = ev.Type
	}
	return strings.Join(names, ", ")
}

// TestCheckAfterTheEnd: the session check of an ended guide is no longer
// valid and says how it ended; every check tells the warning lead.
func TestCheckAfterTheEnd(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(conformant(t, h.svc.Handler()))
	t.Cleanup(srv.Close)
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 2)
	gs, b := h.running(u, m)
	tok, _, _ := h.svc.IssueToken(m)
	c := &client{t: t, base: srv.URL, token: tok}
	path := "/guide/session/" + itoa(gs)
	out := c.want(200, c.do("GET", path, nil))
	if out["valid"] != true || num(out["warnBeforeSeconds"]) != 15 || out["history"] != nil {
		t.Fatalf("check while running: %v", out)
	}
	if _, err := h.svc.Complete(h.ctx, u, gs); err != nil {
		t.Fatal(err)
	}
	out = c.want(200, c.do("GET", path, nil))
	hist, _ := out["history"].(map[string]any)
	if out["valid"] != false || num(out["ghSeq"]) != 0 || hist == nil || num(hist["ghSeq"]) != b.History.ID ||
		hist["endReason"] != "userEnded" || num(hist["ticketsUsed"]) != 1 {
		t.Fatalf("check after the end: %v", out)
	}
}

// TestOpenRequests: a mate lists the requests still waiting for its
// answer (after its event stream missed guideRequest); answered and lapsed
// ones are not listed; users may not ask.
func TestOpenRequests(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(conformant(t, h.svc.Handler()))
	t.Cleanup(srv.Close)
	m := h.mate("m", 0, 0, guide.Available)
	u1, u2 := h.user("u1", 1), h.user("u2", 1)
	h.befriend(u1, m)
	h.befriend(u2, m)
	mateTok, _, _ := h.svc.IssueToken(m)
	mate := &client{t: t, base: srv.URL, token: mateTok}
	userTok, _, _ := h.svc.IssueToken(u1)
	user := &client{t: t, base: srv.URL, token: userTok}

	if out := mate.want(200, mate.do("GET", "/guide/requests", nil)); len(out["requests"].([]any)) != 0 {
		t.Fatalf("no request yet: %v", out)
	}
	r1, err := h.svc.Match(h.ctx, u1, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	out := mate.want(200, mate.do("GET", "/guide/requests", nil))
	list := out["requests"].([]any)
	if len(list) != 1 {
		t.Fatalf("one request: %v", out)
	}
	first := list[0].(map[string]any)
	if num(first["session"].(map[string]any)["gsSeq"]) != r1.Session.ID || first["user"].(map[string]any)["name"] != u1.Name ||
		first["expiresAt"] != r1.ExpiresAt.UTC().Format(time.RFC3339) {
		t.Fatalf("request: %v (want %+v)", first, r1)
	}
	// Answered: gone from the list.
	if err := h.svc.Reject(h.ctx, m, r1.Session.ID); err != nil {
		t.Fatal(err)
	}
	if out := mate.want(200, mate.do("GET", "/guide/requests", nil)); len(out["requests"].([]any)) != 0 {
		t.Fatalf("after the refusal: %v", out)
	}
	// Lapsed: gone too.
	if _, err := h.svc.Match(h.ctx, u2, m.ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.RequestTimeout)
	if out := mate.want(200, mate.do("GET", "/guide/requests", nil)); len(out["requests"].([]any)) != 0 {
		t.Fatalf("after the timeout: %v", out)
	}
	if out := user.want(403, user.do("GET", "/guide/requests", nil)); out["reason"] != "matesOnly" {
		t.Fatalf("a user asking: %v", out)
	}
}
