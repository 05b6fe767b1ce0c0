package guide_test

import (
	"testing"
	"time"

	"github.com/cstalk/cstalk/video/guide"
)

func TestCRMAndRatings(t *testing.T) {
	h := newHarness(t)
	m1 := h.mate("m1", 0, 0, guide.Available)
	m2 := h.mate("m2", 0, 0, guide.Available)
	m3 := h.mate("m3", 0, 0, guide.Available)
	u := h.user("u", 10)
	stranger := h.user("stranger", 1)

	guideWith := func(m *guide.Account) int64 {
		t.Helper()
		gs, b := h.running(u, m)
		h.live(u, m, gs, time.Minute)
		if _, err := h.svc.Evaluate(h.ctx, u, b.History.ID, 5, ""); err == nil {
			t.Fatal("rated a guide still running")
		} else {
			wantRefusal(t, err, "notCompleted")
		}
		_, err := h.svc.SetCRMNote(h.ctx, m, b.History.ID, "early")
		wantRefusal(t, err, "notCompleted")
		mustComplete(h, m, gs)
		return b.History.ID
	}
	rate := func(gh int64, stars int) *guide.Rated {
		t.Helper()
		r, err := h.svc.Evaluate(h.ctx, u, gh, stars, "감사합니다")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	g1 := guideWith(m1)
	r := rate(g1, 4)
	if r.Mate.ID != m1.ID || r.Mate.Rating() != 4 || r.Mate.RatingCount != 1 || r.Rank != 1 {
		t.Fatalf("first rating: %+v", r)
	}
	_, err := h.svc.Evaluate(h.ctx, u, g1, 5, "")
	wantRefusal(t, err, "alreadyEvaluated")
	_, err = h.svc.Evaluate(h.ctx, stranger, g1, 5, "")
	wantRefusal(t, err, "historyNotFound")
	_, err = h.svc.Evaluate(h.ctx, m1, g1, 5, "")
	wantRefusal(t, err, "usersOnly")
	for _, stars := range []int{0, 6, -1} {
		_, err = h.svc.Evaluate(h.ctx, u, g1, stars, "")
		wantRefusal(t, err, "badStars")
	}

	crm, err := h.svc.SetCRMNote(h.ctx, m1, g1, "보일러 점화 불량 안내, 재방문 예약")
	if err != nil || crm.Note != "보일러 점화 불량 안내, 재방문 예약" || crm.NoteBy != m1.ID || crm.EndReason != guide.EndMate || crm.Duration != time.Minute {
		t.Fatalf("crm: %+v %v", crm, err)
	}
	if _, err := h.svc.CRMRecord(h.ctx, stranger, g1); err == nil {
		t.Fatal("a stranger read the CRM record")
	}

	r = rate(guideWith(m2), 5)
	if r.Rank != 1 {
		t.Fatalf("m2 at 5.0 ranks %d", r.Rank)
	}
	rate(guideWith(m3), 5)
	r = rate(guideWith(m3), 4) // 4.5
	if r.Rank != 2 || r.Mate.Rating() != 4.5 {
		t.Fatalf("m3 at 4.5: %+v", r)
	}
	top, err := h.svc.TopMates(h.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var order []int64
	for _, m := range top {
		order = append(order, m.ID)
		if m.Rank != len(order) {
			t.Fatalf("rank %d at place %d", m.Rank, len(order))
		}
	}
	want := []int64{m2.ID, m3.ID, m1.ID}
	if len(order) != 3 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Fatalf("ranking %v, want %v", order, want)
	}
	// Quick connect draws from the ranking.
	req, err := h.svc.Match(h.ctx, u, 0)
	if err != nil || req.Mate.ID != m2.ID {
		t.Fatalf("quick connect after ratings: %+v %v", req, err)
	}
}
