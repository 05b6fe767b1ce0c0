package guide_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/guide"
)

func TestMatchBestRanked(t *testing.T) {
	h := newHarness(t)
	a := h.mate("a", 40, 10, guide.Available) // 4.0
	b := h.mate("b", 24, 5, guide.Available)  // 4.8
	h.mate("c", 10, 2, guide.Offline)         // 5.0, offline
	h.mate("d", 29, 6, guide.Busy)            // 4.83, busy elsewhere
	u1, u2, u3 := h.user("u1", 1), h.user("u2", 1), h.user("u3", 1)

	r1, err := h.svc.Match(h.ctx, u1, 0)
	if err != nil || r1.Mate.ID != b.ID || r1.Session.Kind != guide.MatchBest || r1.Session.RoomID != guide.RoomID(r1.Session.ID) {
		t.Fatalf("first match: %+v %v", r1, err)
	}
	if !r1.ExpiresAt.Equal(epoch.Add(h.cfg.RequestTimeout)) {
		t.Fatalf("expires %v", r1.ExpiresAt)
	}
	// b is held by u1's request: the next best is a.
	r2, err := h.svc.Match(h.ctx, u2, 0)
	if err != nil || r2.Mate.ID != a.ID {
		t.Fatalf("second match: %+v %v", r2, err)
	}
	_, err = h.svc.Match(h.ctx, u3, 0)
	wantRefusal(t, err, "noMateAvailable")
	// One open request per user.
	_, err = h.svc.Match(h.ctx, u1, 0)
	wantRefusal(t, err, "alreadyInGuide")

	pushed := h.push.of(b.ID, guide.EventRequest)
	if len(pushed) != 1 || pushed[0].GsSeq != r1.Session.ID || pushed[0].User == nil || pushed[0].User.ID != u1.ID {
		t.Fatalf("request pushed to b: %+v", pushed)
	}
	// The request is refused: b is free again and ranks first.
	if err := h.svc.Reject(h.ctx, b, r1.Session.ID); err != nil {
		t.Fatal(err)
	}
	if got := h.push.of(u1.ID, guide.EventRejected); len(got) != 1 {
		t.Fatalf("rejection told the user %d times", len(got))
	}
	r3, err := h.svc.Match(h.ctx, u3, 0)
	if err != nil || r3.Mate.ID != b.ID {
		t.Fatalf("after the refusal: %+v %v", r3, err)
	}
}

func TestMatchNeedsATicketAndAUser(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	_, err := h.svc.Match(h.ctx, h.user("broke", 0), 0)
	wantRefusal(t, err, "noTicket")
	_, err = h.svc.Match(h.ctx, m, 0)
	wantRefusal(t, err, "usersOnly")
}

func TestMatchFriend(t *testing.T) {
	h := newHarness(t)
	best := h.mate("best", 50, 10, guide.Available)
	friend := h.mate("friend", 30, 10, guide.Available)
	away := h.mate("away", 30, 10, guide.Offline)
	stranger := h.mate("stranger", 30, 10, guide.Available)
	u, other := h.user("u", 2), h.user("other", 2)
	h.befriend(u, friend)
	h.befriend(u, away)
	h.befriend(other, friend)

	_, err := h.svc.Match(h.ctx, u, stranger.ID)
	wantRefusal(t, err, "notFriend")
	_, err = h.svc.Match(h.ctx, u, away.ID)
	wantRefusal(t, err, "mateOffline")
	r, err := h.svc.Match(h.ctx, u, friend.ID)
	if err != nil || r.Mate.ID != friend.ID || r.Session.Kind != guide.MatchFriend {
		t.Fatalf("friend match (best-ranked %d ignored): %+v %v", best.ID, r, err)
	}
	// The friend is ringing for u: busy for anyone else.
	_, err = h.svc.Match(h.ctx, other, friend.ID)
	wantRefusal(t, err, "mateBusy")
	if _, err := h.svc.Approve(h.ctx, friend, r.Session.ID); err != nil {
		t.Fatal(err)
	}
	if h.account(friend.ID).Availability != guide.Busy {
		t.Fatal("an approving mate is not busy")
	}
	_, err = h.svc.Match(h.ctx, other, friend.ID)
	wantRefusal(t, err, "mateBusy")
}

func TestShake(t *testing.T) {
	picked := 0
	h := newHarness(t, func(c *guide.Config) {
		c.RandIntN = func(n int) int { picked = n; return n - 1 }
	})
	h.mate("m1", 50, 10, guide.Available)
	h.mate("m2", 40, 10, guide.Available)
	last := h.mate("m3", 30, 10, guide.Available)
	h.mate("m4", 50, 10, guide.Offline)
	r, err := h.svc.Shake(h.ctx, h.user("u", 1))
	if err != nil || r.Mate.ID != last.ID || r.Session.Kind != guide.MatchShake || picked != 3 {
		t.Fatalf("shake picked %+v among %d: %v", r, picked, err)
	}
	// The shaken mate is no longer a candidate.
	r, err = h.svc.Shake(h.ctx, h.user("u2", 1))
	if err != nil || r.Mate.ID == last.ID || picked != 2 {
		t.Fatalf("second shake %+v among %d: %v", r, picked, err)
	}
}

func TestApproveIssuesTokensForTheRoom(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	u, intruder := h.user("u", 1), h.user("intruder", 1)
	r, err := h.svc.Match(h.ctx, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := h.svc.Approve(h.ctx, m, r.Session.ID)
	if err != nil || ap.Session.Status != guide.StatusApproved || ap.Token == "" || ap.User.ID != u.ID {
		t.Fatalf("approve: %+v %v", ap, err)
	}
	approved := h.push.of(u.ID, guide.EventApproved)
	if len(approved) != 1 || approved[0].RoomID != "g-"+itoa(r.Session.ID) || approved[0].Token == "" || approved[0].Mate.ID != m.ID {
		t.Fatalf("approval pushed: %+v", approved)
	}
	_, err = h.svc.Approve(h.ctx, m, r.Session.ID)
	wantRefusal(t, err, "requestClosed")

	auth := h.svc.VideoAuthorizer(nil)
	room := guide.RoomID(r.Session.ID)
	id, err := auth.AuthorizeJoin(h.ctx, approved[0].Token, itoa(u.ID), "0", room)
	if err != nil || id.UserID != itoa(u.ID) || !id.Customer {
		t.Fatalf("user joins: %+v %v", id, err)
	}
	id, err = auth.AuthorizeJoin(h.ctx, ap.Token, "", "0", room)
	if err != nil || id.UserID != itoa(m.ID) || id.Customer {
		t.Fatalf("mate joins: %+v %v", id, err)
	}
	for name, c := range map[string]struct{ token, user, room string }{
		"other room":       {ap.Token, "", guide.RoomID(r.Session.ID + 1)},
		"someone else's":   {ap.Token, itoa(intruder.ID), room},
		"account token":    {mustToken(t, h, u), itoa(u.ID), room},
		"forged":           {ap.Token[:len(ap.Token)-2] + "xx", "", room},
		"chat room, no fn": {ap.Token, "", "r-1"},
	} {
		if _, err := auth.AuthorizeJoin(h.ctx, c.token, c.user, "0", c.room); err == nil {
			t.Errorf("%s: admitted", name)
		}
	}
	// Delegation of the rooms that are not the guide's.
	called := false
	next := video.AuthorizerFunc(func(_ context.Context, _, _, _, roomID string) (video.Identity, error) {
		called = roomID == "r-7"
		return video.Identity{UserID: "x"}, nil
	})
	if _, err := h.svc.VideoAuthorizer(next).AuthorizeJoin(h.ctx, "t", "x", "1", "r-7"); err != nil || !called {
		t.Fatalf("not delegated: %v", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 1)
	r, err := h.svc.Match(h.ctx, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.RequestTimeout - time.Nanosecond)
	if len(h.push.of(u.ID, guide.EventTimeout)) != 0 {
		t.Fatal("timed out early")
	}
	h.clock.Advance(time.Nanosecond)
	if got := h.push.of(u.ID, guide.EventTimeout); len(got) != 1 || got[0].Reason != "timeout" {
		t.Fatalf("timeout told the user: %+v", got)
	}
	if got := h.push.of(m.ID, guide.EventCancelled); len(got) != 1 {
		t.Fatalf("timeout told the mate: %+v", got)
	}
	_, err = h.svc.Approve(h.ctx, m, r.Session.ID)
	wantRefusal(t, err, "requestClosed")
	st, err := h.svc.Check(h.ctx, u, r.Session.ID)
	if err != nil || st.Session.Status != guide.StatusTimeout || st.GhSeq != 0 {
		t.Fatalf("state after timeout: %+v %v", st, err)
	}
	// The user may try again, the mate is free.
	if r2, err := h.svc.Match(h.ctx, u, 0); err != nil || r2.Mate.ID != m.ID {
		t.Fatalf("match after timeout: %+v %v", r2, err)
	}
}

func TestApprovedButNeverBegun(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 1)
	r, _ := h.svc.Match(h.ctx, u, 0)
	if _, err := h.svc.Approve(h.ctx, m, r.Session.ID); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.BeginTimeout)
	if got := h.push.of(u.ID, guide.EventCancelled); len(got) != 1 || got[0].Reason != "notBegun" {
		t.Fatalf("user told: %+v", got)
	}
	if h.rooms.count(guide.RoomID(r.Session.ID)) != 1 || h.account(m.ID).Availability != guide.Available {
		t.Fatal("room not closed or mate not freed")
	}
	_, err := h.svc.Begin(h.ctx, u, r.Session.ID)
	wantRefusal(t, err, "notApproved")
	if h.account(u.ID).Tickets != 1 {
		t.Fatal("a ticket was spent on a guide that never began")
	}
}

func mustToken(t *testing.T, h *harness, a *guide.Account) string {
	t.Helper()
	tok, _, err := h.svc.IssueToken(a)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCancelAndDeleteBeforeBegin(t *testing.T) {
	h := newHarness(t)
	m := h.mate("m", 0, 0, guide.Available)
	u := h.user("u", 1)
	r, _ := h.svc.Match(h.ctx, u, 0)
	if err := h.svc.Cancel(h.ctx, u, r.Session.ID); err != nil {
		t.Fatal(err)
	}
	if got := h.push.of(m.ID, guide.EventCancelled); len(got) != 1 || got[0].Reason != "cancelled" {
		t.Fatalf("mate told: %+v", got)
	}
	if got := h.push.of(u.ID, guide.EventCancelled); len(got) != 0 {
		t.Fatalf("the canceller was told: %+v", got)
	}
	_, err := h.svc.Approve(h.ctx, m, r.Session.ID)
	wantRefusal(t, err, "requestClosed")

	// Deleting an approved session withdraws it, closes the room, frees the mate.
	r, err = h.svc.Match(h.ctx, u, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Approve(h.ctx, m, r.Session.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Delete(h.ctx, m, r.Session.ID); err != nil {
		t.Fatal(err)
	}
	st, err := h.svc.Check(h.ctx, u, r.Session.ID)
	if err != nil || st.Session.Status != guide.StatusDeleted || h.rooms.count(guide.RoomID(r.Session.ID)) != 1 ||
		h.account(m.ID).Availability != guide.Available || h.account(u.ID).Tickets != 1 {
		t.Fatalf("after delete: %+v %v", st, err)
	}
}

func TestSeedDemo(t *testing.T) {
	h := newHarness(t)
	for range 2 {
		if err := h.svc.SeedDemo(h.ctx); err != nil {
			t.Fatal(err)
		}
	}
	u, err := h.svc.Login(h.ctx, "guide-user1", guide.DemoPassword)
	if err != nil || u.Tickets != 5 {
		t.Fatalf("demo user: %+v %v", u, err)
	}
	friends, err := h.svc.Friends(h.ctx, u)
	if err != nil || len(friends) != 1 || friends[0].LoginName != "guide-mate1" {
		t.Fatalf("demo friends: %+v %v", friends, err)
	}
	if top, _ := h.svc.TopMates(h.ctx, 10); len(top) != 3 {
		t.Fatalf("demo mates: %d", len(top))
	}
}
