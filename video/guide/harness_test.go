package guide_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/store/storetest"
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/guide"
)

// manualClock is the guide's clock in tests: time moves only by Advance,
// which runs the timers that fall due, in order, on the caller's goroutine.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*manualTimer
}

type manualTimer struct {
	c    *manualClock
	at   time.Time
	seq  int
	f    func()
	done bool
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) guide.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &manualTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time by d, running every timer due on the way at its time.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *manualTimer
		for _, t := range c.timers {
			if !t.done && !t.at.After(target) && (next == nil || t.at.Before(next.at) || (t.at.Equal(next.at) && t.seq < next.seq)) {
				next = t
			}
		}
		if next == nil {
			c.now = target
			c.timers = slices.DeleteFunc(c.timers, func(t *manualTimer) bool { return t.done })
			c.mu.Unlock()
			return
		}
		next.done = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
	}
}

// Set moves time without running timers: a timer running late.
func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// recorder is the Notifier of the tests: it keeps every event per account.
type recorder struct {
	mu     sync.Mutex
	events map[int64][]guide.Event
}

func (r *recorder) Notify(_ context.Context, id int64, ev guide.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[id] = append(r.events[id], ev)
}

func (r *recorder) of(id int64, typ string) []guide.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []guide.Event
	for _, ev := range r.events[id] {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// rooms is the VideoRooms of the tests: it counts closes per room.
type rooms struct {
	mu     sync.Mutex
	closed map[video.RoomKey]int
}

func (r *rooms) CloseRoom(key video.RoomKey) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed[key]++
	return 2
}

// count is how often guide room id (of no company) was closed.
func (r *rooms) count(id string) int {
	key, _ := video.RoomKeyOf(video.NoCompany, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed[key]
}

var epoch = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type harness struct {
	t     *testing.T
	ctx   context.Context
	svc   *guide.Service
	store *store.Store
	clock *manualClock
	push  *recorder
	rooms *rooms
	cfg   guide.Config
}

func newHarness(t *testing.T, tune ...func(*guide.Config)) *harness {
	t.Helper()
	return newHarnessOn(t, "sqlite:"+filepath.Join(t.TempDir(), "guide.db"), tune...)
}

// harnessFor runs on "sqlite" or "mariadb", a fresh database of t's own
// (CSTALK_TEST_MYSQL=off skips it).
func harnessFor(t *testing.T, backend string) *harness {
	t.Helper()
	if backend == "mariadb" {
		dsn, _ := storetest.MariaDB(t, "guide")
		return newHarnessOn(t, dsn)
	}
	return newHarness(t)
}

func newHarnessOn(t *testing.T, dsn string, tune ...func(*guide.Config)) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	clock := &manualClock{now: epoch}
	cfg := guide.DefaultConfig()
	cfg.JWTSecret = []byte("0123456789abcdef-guide-tests")
	cfg.Now = clock.Now
	cfg.AfterFunc = clock.AfterFunc
	cfg.PasswordCost = bcrypt.MinCost
	for _, f := range tune {
		f(&cfg)
	}
	push := &recorder{events: map[int64][]guide.Event{}}
	rm := &rooms{closed: map[video.RoomKey]int{}}
	svc, err := guide.New(cfg, st, push, rm, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &harness{t: t, ctx: ctx, svc: svc, store: st, clock: clock, push: push, rooms: rm, cfg: cfg}
}

func (h *harness) user(login string, tickets int) *guide.Account {
	h.t.Helper()
	a, err := h.svc.CreateAccount(h.ctx, guide.RoleUser, login, "password-"+login, "사용자 "+login, tickets)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// mate creates a mate with a rating of sum/count stars.
func (h *harness) mate(login string, sum, count int64, availability guide.Availability) *guide.Account {
	h.t.Helper()
	a := &guide.Account{Role: guide.RoleMate, LoginName: login, Name: "메이트 " + login, PasswordHash: "-",
		Availability: availability, RatingSum: sum, RatingCount: count, CreatedAt: h.clock.Now()}
	if err := h.store.CreateGuideAccount(h.ctx, a); err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h *harness) account(id int64) *guide.Account {
	h.t.Helper()
	a, err := h.store.GuideAccount(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// running matches user with the best mate, approves and begins.
func (h *harness) running(user, mate *guide.Account) (gsSeq int64, b *guide.Begun) {
	h.t.Helper()
	h.befriend(user, mate)
	req, err := h.svc.Match(h.ctx, user, mate.ID)
	if err != nil {
		h.t.Fatalf("match: %v", err)
	}
	if req.Mate.ID != mate.ID {
		h.t.Fatalf("matched mate %d, want %d", req.Mate.ID, mate.ID)
	}
	if _, err := h.svc.Approve(h.ctx, mate, req.Session.ID); err != nil {
		h.t.Fatalf("approve: %v", err)
	}
	b, err = h.svc.Begin(h.ctx, user, req.Session.ID)
	if err != nil {
		h.t.Fatalf("begin: %v", err)
	}
	return req.Session.ID, b
}

// befriend makes mate a friend of user.
func (h *harness) befriend(user, mate *guide.Account) {
	h.t.Helper()
	if err := h.svc.AddFriend(h.ctx, user, mate.ID); err != nil {
		h.t.Fatal(err)
	}
}

func wantRefusal(t *testing.T, err error, key string) {
	t.Helper()
	e, ok := err.(*guide.Error)
	if !ok || e.Key != key {
		t.Fatalf("error %v, want refusal %q", err, key)
	}
}

// live lets d pass while both apps check the session every CheckInterval,
// as they do during a guide.
func (h *harness) live(u, m *guide.Account, gsSeq int64, d time.Duration) {
	h.t.Helper()
	for d > 0 {
		step := min(d, h.cfg.CheckInterval)
		h.clock.Advance(step)
		d -= step
		for _, a := range []*guide.Account{u, m} {
			if _, err := h.svc.Check(h.ctx, a, gsSeq); err != nil {
				h.t.Fatalf("check: %v", err)
			}
		}
	}
}

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }
