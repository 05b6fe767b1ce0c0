package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/guide"
)

// The guide tables on every backend: one database per backend, each case
// with its own accounts.
func TestGuideStore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, _ := b.open(t)
			for _, c := range []struct {
				name string
				run  func(t *testing.T, ctx context.Context, s *Store)
			}{
				{"Accounts", testGuideAccounts},
				{"Ranking", testGuideRanking},
				{"Lifecycle", testGuideLifecycle},
				{"CompleteRace", testGuideCompleteRace},
				{"NoTicket", testGuideNoTicket},
				{"MateHeld", testGuideMateHeld},
			} {
				t.Run(c.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					c.run(t, ctx, s)
				})
			}
		})
	}
}

func newGuideAccount(t *testing.T, ctx context.Context, s *Store, role guide.Role, tickets int) *guide.Account {
	t.Helper()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	a := &guide.Account{
		Role: role, LoginName: fmt.Sprintf("%s-%s-%x", t.Name(), role, suffix), Name: fmt.Sprintf("이름 %x", suffix),
		PasswordHash: "x", Tickets: tickets, CreatedAt: t0,
	}
	if role == guide.RoleMate {
		a.Availability = guide.Available
	}
	if err := s.CreateGuideAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	return a
}

func testGuideAccounts(t *testing.T, ctx context.Context, s *Store) {
	u := newGuideAccount(t, ctx, s, guide.RoleUser, 2)
	m := newGuideAccount(t, ctx, s, guide.RoleMate, 0)
	dup := *u
	if err := s.CreateGuideAccount(ctx, &dup); !errors.Is(err, guide.ErrConflict) {
		t.Fatalf("duplicate login: %v", err)
	}
	got, err := s.GuideAccountByLogin(ctx, u.LoginName)
	if err != nil || got.ID != u.ID || got.Tickets != 2 || got.Role != guide.RoleUser || got.Availability != guide.Offline {
		t.Fatalf("by login: %+v %v", got, err)
	}
	if _, err := s.GuideAccount(ctx, 1<<40); !errors.Is(err, guide.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if n, err := s.AddTickets(ctx, u.ID, 3); err != nil || n != 5 {
		t.Fatalf("add tickets: %d %v", n, err)
	}
	if n, err := s.AddTickets(ctx, u.ID, -9); err != nil || n != 0 {
		t.Fatalf("below zero: %d %v", n, err)
	}
	if _, err := s.AddTickets(ctx, m.ID, 1); !errors.Is(err, guide.ErrNotFound) {
		t.Fatalf("tickets to a mate: %v", err)
	}
	if err := s.SetAvailability(ctx, m.ID, guide.Busy); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAvailability(ctx, u.ID, guide.Busy); !errors.Is(err, guide.ErrNotFound) {
		t.Fatalf("availability of a user: %v", err)
	}
	for range 2 {
		if err := s.AddFriend(ctx, u.ID, m.ID, t0); err != nil {
			t.Fatal(err)
		}
	}
	friends, err := s.Friends(ctx, u.ID)
	if err != nil || len(friends) != 1 || friends[0].ID != m.ID || friends[0].Availability != guide.Busy {
		t.Fatalf("friends: %+v %v", friends, err)
	}
	if err := s.AddFriend(ctx, u.ID, 1<<40, t0); !errors.Is(err, guide.ErrNotFound) {
		t.Fatalf("friend that does not exist: %v", err)
	}
}

func testGuideRanking(t *testing.T, ctx context.Context, s *Store) {
	u := newGuideAccount(t, ctx, s, guide.RoleUser, 10)
	var mates []*guide.Account
	for range 3 {
		mates = append(mates, newGuideAccount(t, ctx, s, guide.RoleMate, 0))
	}
	rate := func(m *guide.Account, stars int) {
		t.Helper()
		gs := &guide.Session{UserID: u.ID, MateID: m.ID, Kind: guide.MatchBest, Status: guide.StatusApproved, CreatedAt: t0}
		must(t, s.CreateGuideSession(ctx, gs))
		h, _, err := s.BeginGuide(ctx, gs.ID, t0, t0.Add(time.Minute))
		must(t, err)
		_, done, err := s.CompleteGuide(ctx, h.ID, 0, t0.Add(time.Minute), guide.EndExpired)
		if err != nil || !done {
			t.Fatalf("complete: %v %v", done, err)
		}
		mate, err := s.Evaluate(ctx, &guide.Evaluation{HistoryID: h.ID, UserID: u.ID, MateID: m.ID, Stars: stars, CreatedAt: t0})
		must(t, err)
		*m = *mate
	}
	// mates[2]: 5,4 (4.5); mates[0]: 5,5,4,4 (4.5 with more ratings); mates[1]: 3.
	rate(mates[2], 5)
	rate(mates[2], 4)
	for _, stars := range []int{5, 5, 4, 4} {
		rate(mates[0], stars)
	}
	rate(mates[1], 3)
	if mates[0].Rating() != 4.5 || mates[0].RatingCount != 4 || mates[1].Rating() != 3 {
		t.Fatalf("ratings %+v %+v", mates[0], mates[1])
	}
	ranked, err := s.RankedMates(ctx, false, 1000)
	must(t, err)
	var order []int64
	for _, a := range ranked {
		for _, m := range mates {
			if a.ID == m.ID {
				order = append(order, a.ID)
			}
		}
	}
	if fmt.Sprint(order) != fmt.Sprint([]int64{mates[0].ID, mates[2].ID, mates[1].ID}) {
		t.Fatalf("order %v, want %d %d %d", order, mates[0].ID, mates[2].ID, mates[1].ID)
	}
	must(t, s.SetAvailability(ctx, mates[0].ID, guide.Offline))
	ranked, err = s.RankedMates(ctx, true, 1000)
	must(t, err)
	for _, a := range ranked {
		if a.ID == mates[0].ID || a.Availability != guide.Available {
			t.Fatalf("an unavailable mate among the available: %+v", a)
		}
	}
}

func testGuideLifecycle(t *testing.T, ctx context.Context, s *Store) {
	u := newGuideAccount(t, ctx, s, guide.RoleUser, 3)
	m := newGuideAccount(t, ctx, s, guide.RoleMate, 0)
	gs := &guide.Session{UserID: u.ID, MateID: m.ID, Kind: guide.MatchFriend, Status: guide.StatusRequested, CreatedAt: t0}
	must(t, s.CreateGuideSession(ctx, gs))
	if _, _, err := s.BeginGuide(ctx, gs.ID, t0, t0); !errors.Is(err, guide.ErrConflict) {
		t.Fatalf("begin before approval: %v", err)
	}
	requests, err := s.GuideRequestsFor(ctx, m.ID, t0.Add(-time.Second))
	if err != nil || len(requests) != 1 || requests[0].ID != gs.ID {
		t.Fatalf("open requests: %+v %v", requests, err)
	}
	waiting := func() bool {
		t.Helper()
		open, err := s.OpenGuideSessions(ctx)
		must(t, err)
		return slices.ContainsFunc(open, func(o guide.Session) bool { return o.ID == gs.ID })
	}
	if !waiting() {
		t.Fatal("a requested session is not among the open ones")
	}
	if open, err := s.GuideRequestsFor(ctx, m.ID, t0); err != nil || len(open) != 0 {
		t.Fatalf("requests made after the request: %+v %v", open, err)
	}
	ok, err := s.TransitionSession(ctx, gs.ID, []guide.SessionStatus{guide.StatusRequested}, guide.StatusApproved, t0.Add(time.Second))
	if err != nil || !ok {
		t.Fatalf("approve: %v %v", ok, err)
	}
	if open, err := s.GuideRequestsFor(ctx, m.ID, t0.Add(-time.Second)); err != nil || len(open) != 0 {
		t.Fatalf("open requests after the approval: %+v %v", open, err)
	}
	if ok, _ := s.TransitionSession(ctx, gs.ID, []guide.SessionStatus{guide.StatusRequested}, guide.StatusTimeout, t0); ok {
		t.Fatal("timed out an approved session")
	}
	must(t, s.SetAvailability(ctx, m.ID, guide.Busy))
	began := t0.Add(2 * time.Second)
	h, left, err := s.BeginGuide(ctx, gs.ID, began, began.Add(10*time.Minute))
	if err != nil || left != 2 || h.TicketsUsed != 1 || !h.EndsAt.Equal(began.Add(10*time.Minute)) {
		t.Fatalf("begin: %+v %d %v", h, left, err)
	}
	if _, _, err := s.BeginGuide(ctx, gs.ID, began, began); !errors.Is(err, guide.ErrConflict) {
		t.Fatalf("begin twice: %v", err)
	}
	if waiting() {
		t.Fatal("a begun session is still among the open ones")
	}
	got, err := s.GuideSession(ctx, gs.ID)
	if err != nil || got.Status != guide.StatusActive || got.HistoryID != h.ID || got.AnsweredAt == nil {
		t.Fatalf("session: %+v %v", got, err)
	}
	if _, _, err := s.ExtendGuide(ctx, h.ID, 2, began.Add(20*time.Minute)); !errors.Is(err, guide.ErrConflict) {
		t.Fatalf("extend from a stale view: %v", err)
	}
	h, left, err = s.ExtendGuide(ctx, h.ID, 1, began.Add(20*time.Minute))
	if err != nil || left != 1 || h.TicketsUsed != 2 {
		t.Fatalf("extend: %+v %d %v", h, left, err)
	}
	// The first ticket's time is over, but the guide was extended: the
	// expiry of the old end completes nothing.
	if got, done, err := s.CompleteGuide(ctx, h.ID, 1, began.Add(10*time.Minute), guide.EndExpired); err != nil || done || got.CompletedAt != nil {
		t.Fatalf("expiry of an extended guide: %+v %v %v", got, done, err)
	}
	open, err := s.OpenHistories(ctx)
	must(t, err)
	found := false
	for _, o := range open {
		found = found || o.ID == h.ID
	}
	if !found {
		t.Fatal("open history not listed")
	}
	if _, err := s.SetCRMNote(ctx, h.ID, m.ID, "x", t0); !errors.Is(err, guide.ErrNotFound) {
		t.Fatalf("note before completion: %v", err)
	}
	end := began.Add(13*time.Minute + 1500*time.Microsecond)
	h, done, err := s.CompleteGuide(ctx, h.ID, 0, end, guide.EndUser)
	if err != nil || !done || h.Duration != 13*time.Minute+time.Millisecond || h.EndReason != guide.EndUser {
		t.Fatalf("complete: %+v %v %v", h, done, err)
	}
	if _, _, err := s.ExtendGuide(ctx, h.ID, h.TicketsUsed, end); !errors.Is(err, guide.ErrConflict) {
		t.Fatalf("extend after completion: %v", err)
	}
	if acc, _ := s.GuideAccount(ctx, u.ID); acc.Tickets != 1 {
		t.Fatalf("tickets after extend failure: %d", acc.Tickets)
	}
	if acc, _ := s.GuideAccount(ctx, m.ID); acc.Availability != guide.Available {
		t.Fatalf("mate after completion: %s", acc.Availability)
	}
	crm, err := s.SetCRMNote(ctx, h.ID, m.ID, "가스 밸브 점검 안내", end)
	if err != nil || crm.Note != "가스 밸브 점검 안내" || crm.NoteBy != m.ID || crm.TicketsUsed != 2 || crm.EndReason != guide.EndUser ||
		!crm.EndedAt.Equal(dbTime(end)) || crm.Duration != h.Duration {
		t.Fatalf("crm: %+v %v", crm, err)
	}
	ev := &guide.Evaluation{HistoryID: h.ID, UserID: u.ID, MateID: m.ID, Stars: 4, Comment: "친절", CreatedAt: end}
	if _, err := s.Evaluate(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Evaluate(ctx, ev); !errors.Is(err, guide.ErrConflict) {
		t.Fatalf("second evaluation: %v", err)
	}
	if _, err := s.Evaluate(ctx, &guide.Evaluation{HistoryID: h.ID, Stars: 6}); err == nil {
		t.Fatal("six stars accepted")
	}
	mate, _ := s.GuideAccount(ctx, m.ID)
	if mate.RatingCount != 1 || mate.Rating() != 4 {
		t.Fatalf("rating after a refused second evaluation: %+v", mate)
	}
	ok, err = s.TransitionSession(ctx, gs.ID, []guide.SessionStatus{guide.StatusCompleted}, guide.StatusDeleted, end)
	if err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
}

// Both sides and the timer complete the same guide at once: one wins.
func testGuideCompleteRace(t *testing.T, ctx context.Context, s *Store) {
	u := newGuideAccount(t, ctx, s, guide.RoleUser, 1)
	m := newGuideAccount(t, ctx, s, guide.RoleMate, 0)
	gs := &guide.Session{UserID: u.ID, MateID: m.ID, Kind: guide.MatchBest, Status: guide.StatusApproved, CreatedAt: t0}
	must(t, s.CreateGuideSession(ctx, gs))
	h, _, err := s.BeginGuide(ctx, gs.ID, t0, t0.Add(time.Minute))
	must(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i, reason := range []guide.EndReason{guide.EndUser, guide.EndMate, guide.EndExpired, guide.EndLost} {
		wg.Go(func() {
			_, done, err := s.CompleteGuide(ctx, h.ID, 0, t0.Add(time.Duration(i+1)*time.Second), reason)
			if err != nil {
				t.Error(err)
			}
			if done {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d completions", wins)
	}
	if _, err := s.GuideCRM(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
}

func testGuideNoTicket(t *testing.T, ctx context.Context, s *Store) {
	u := newGuideAccount(t, ctx, s, guide.RoleUser, 0)
	m := newGuideAccount(t, ctx, s, guide.RoleMate, 0)
	gs := &guide.Session{UserID: u.ID, MateID: m.ID, Kind: guide.MatchShake, Status: guide.StatusApproved, CreatedAt: t0}
	must(t, s.CreateGuideSession(ctx, gs))
	if _, _, err := s.BeginGuide(ctx, gs.ID, t0, t0); !errors.Is(err, guide.ErrNoTicket) {
		t.Fatalf("begin without a ticket: %v", err)
	}
	// The refused begin changed nothing.
	got, _ := s.GuideSession(ctx, gs.ID)
	if got.Status != guide.StatusApproved || got.HistoryID != 0 {
		t.Fatalf("session after a refused begin: %+v", got)
	}
}

// testGuideMateHeld: a request holds its mate for any other request, made
// one at a time or at once, until it is answered or its window passes.
func testGuideMateHeld(t *testing.T, ctx context.Context, s *Store) {
	m := newGuideAccount(t, ctx, s, guide.RoleMate, 0)
	ask := func(at time.Time) (*guide.Session, error) {
		u := newGuideAccount(t, ctx, s, guide.RoleUser, 1)
		gs := &guide.Session{UserID: u.ID, MateID: m.ID, Kind: guide.MatchFriend, Status: guide.StatusRequested, CreatedAt: at}
		return gs, s.RequestGuideSession(ctx, gs, at.Add(-30*time.Second), at.Add(-time.Minute))
	}
	// Four asks at once: one gets the mate.
	errs := make(chan error, 4)
	for range 4 {
		go func() { _, err := ask(t0); errs <- err }()
	}
	var held *guide.Session
	won := 0
	for range 4 {
		if err := <-errs; err == nil {
			won++
		} else if !errors.Is(err, guide.ErrConflict) {
			t.Fatalf("a concurrent ask: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent asks got the mate, want 1", won)
	}
	open, err := s.GuideRequestsFor(ctx, m.ID, t0.Add(-time.Hour))
	if err != nil || len(open) != 1 {
		t.Fatalf("open requests %v %v", open, err)
	}
	held = &open[0]
	// Approved, it holds the mate while the begin may come.
	ok, err := s.TransitionSession(ctx, held.ID, []guide.SessionStatus{guide.StatusRequested}, guide.StatusApproved, t0.Add(10*time.Second))
	if err != nil || !ok {
		t.Fatalf("approve: %v %v", ok, err)
	}
	if _, err := ask(t0.Add(40 * time.Second)); !errors.Is(err, guide.ErrConflict) {
		t.Fatalf("ask while approved: %v", err)
	}
	// Past the begin window it no longer does.
	if _, err := ask(t0.Add(2 * time.Minute)); err != nil {
		t.Fatalf("ask after the approval's window: %v", err)
	}
}
