package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// The routing, template and figures part of chat.Store: cases of the
// contract suite (TestStoreContract), on every backend.

var counselingContract = []struct {
	name string
	run  func(t *testing.T, e env)
}{
	{"MemberStatusAndCapacity", testMemberStatusAndCapacity},
	{"AutoAssignPicks", testAutoAssignPicks},
	{"AutoAssignRace", testAutoAssignRace},
	{"AutoAssignAcrossNodes", testAutoAssignAcrossNodes},
	{"RoomsToRoute", testRoomsToRoute},
	{"TransferRoom", testTransferRoom},
	{"CannedResponses", testCannedResponses},
	{"MessagesAfter", testMessagesAfter},
	{"Stats", testStats},
	{"CounselingMigrationRunsAgain", testCounselingMigrationRunsAgain},
}

// routingFixture is a company with auto-assignment on and counselors
// that are AVAILABLE (in the order given, a minute apart) with their
// speakers.
type routingFixture struct {
	company  *chat.Company
	members  []*chat.Member
	speakers []int64
}

func newRouting(t *testing.T, e env, n int) routingFixture {
	t.Helper()
	f := routingFixture{company: newCompany(t, e, "라우팅")}
	must(t, e.s.SetAutoAssign(e.ctx, f.company.ID, true))
	for i := range n {
		m := newMember(t, e, f.company.ID, fmt.Sprint("router", i))
		sp, err := e.s.MemberSpeaker(e.ctx, m)
		must(t, err)
		_, err = e.s.SetMemberStatus(e.ctx, m.ID, chat.MemberAvailable, t0.Add(time.Duration(i)*time.Minute))
		must(t, err)
		f.members = append(f.members, m)
		f.speakers = append(f.speakers, sp.ID)
	}
	return f
}

// waitingRoom opens a room for a new customer who has written once.
func (f routingFixture) waitingRoom(t *testing.T, e env, number string) *chat.Room {
	t.Helper()
	c, err := e.s.EnsureCustomer(e.ctx, f.company.ID, number, "고객"+number)
	must(t, err)
	sp, err := e.s.CustomerSpeaker(e.ctx, c)
	must(t, err)
	r, _, err := e.s.OpenRoom(e.ctx, c, t0)
	must(t, err)
	appendOK(t, e, &chat.Message{RoomID: r.ID, SpeakerID: sp.ID, SpeakerName: c.Name, Body: "문의", IsCustomer: true})
	return r
}

func (f routingFixture) assign(t *testing.T, e env, r *chat.Room, at time.Time) int64 {
	t.Helper()
	got, err := e.s.AutoAssignRoom(e.ctx, r.ID, f.speakers, at)
	must(t, err)
	if got.Status != chat.StatusInProgress || got.MemberID == nil || got.AssignDate == nil || !got.AssignDate.Equal(at) {
		t.Fatalf("AutoAssignRoom = %+v", got)
	}
	return *got.MemberID
}

func testMemberStatusAndCapacity(t *testing.T, e env) {
	co := newCompany(t, e, "상태")
	m := newMember(t, e, co.ID, "status")
	if m.Status != chat.MemberOffline || m.Capacity != chat.DefaultCapacity {
		t.Fatalf("new member: status %q capacity %d", m.Status, m.Capacity)
	}
	got, err := e.s.SetMemberStatus(e.ctx, m.ID, chat.MemberAvailable, t0)
	must(t, err)
	if got.Status != chat.MemberAvailable {
		t.Fatalf("status = %q", got.Status)
	}
	if _, err := e.s.SetMemberStatus(e.ctx, m.ID, "BUSY", t0); err == nil {
		t.Fatal("status BUSY accepted")
	}
	for _, c := range []int{-1, chat.MaxCapacity + 1} {
		if _, err := e.s.SetMemberCapacity(e.ctx, m.ID, c); err == nil {
			t.Fatalf("capacity %d accepted", c)
		}
	}
	got, err = e.s.SetMemberCapacity(e.ctx, m.ID, 0)
	must(t, err)
	if got.Capacity != 0 {
		t.Fatalf("capacity = %d", got.Capacity)
	}
	members, err := e.s.Members(e.ctx, co.ID)
	must(t, err)
	if len(members) != 1 || members[0].Status != chat.MemberAvailable || members[0].Capacity != 0 {
		t.Fatalf("Members = %+v", members)
	}
	if co.AutoAssign {
		t.Fatal("a new company has auto-assignment on")
	}
	must(t, e.s.SetAutoAssign(e.ctx, co.ID, true))
	c, err := e.s.Company(e.ctx, co.ID)
	must(t, err)
	if !c.AutoAssign {
		t.Fatal("SetAutoAssign(true) not stored")
	}
	if err := e.s.SetAutoAssign(e.ctx, 1<<40, true); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("SetAutoAssign of a missing company: %v", err)
	}
}

func testAutoAssignPicks(t *testing.T, e env) {
	f := newRouting(t, e, 3)
	a, b, c := f.members[0], f.members[1], f.members[2]

	// Everyone has no room: the one AVAILABLE longest (a) gets the first,
	// then the fewest rooms decide (b, c); with one room each, a's wait
	// since its room is the longest.
	at := t0.Add(time.Hour)
	var order []int64
	for i := range 4 {
		order = append(order, f.assign(t, e, f.waitingRoom(t, e, fmt.Sprint(100+i)), at.Add(time.Duration(i)*time.Second)))
	}
	if want := []int64{a.ID, b.ID, c.ID, a.ID}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("assignment order %v, want %v (fewest rooms, then longest wait)", order, want)
	}

	// Fewest open rooms before the wait: b and c have 1, a has 2.
	_, err := e.s.SetMemberStatus(e.ctx, b.ID, chat.MemberAway, at)
	must(t, err)
	if got := f.assign(t, e, f.waitingRoom(t, e, "200"), at.Add(time.Minute)); got != c.ID {
		t.Fatalf("with b AWAY the room went to %d, want c %d", got, c.ID)
	}
	// A member whose console is not connected is not picked.
	r := f.waitingRoom(t, e, "201")
	got, err := e.s.AutoAssignRoom(e.ctx, r.ID, []int64{f.speakers[0]}, at.Add(2*time.Minute))
	must(t, err)
	if *got.MemberID != a.ID {
		t.Fatalf("only a connected: room went to %d", *got.MemberID)
	}
	// Capacity: a has 3 rooms; at capacity 3 it is full, c (2 rooms, capacity 2) too.
	_, err = e.s.SetMemberCapacity(e.ctx, a.ID, 3)
	must(t, err)
	_, err = e.s.SetMemberCapacity(e.ctx, c.ID, 2)
	must(t, err)
	full := f.waitingRoom(t, e, "202")
	if _, err := e.s.AutoAssignRoom(e.ctx, full.ID, f.speakers, at.Add(3*time.Minute)); !errors.Is(err, chat.ErrNoAssignee) {
		t.Fatalf("everyone full or away: %v, want ErrNoAssignee", err)
	}
	// Ending one of c's rooms frees capacity.
	rooms, err := e.s.Rooms(e.ctx, f.company.ID, chat.StatusInProgress, 100)
	must(t, err)
	for _, r := range rooms {
		if *r.MemberID == c.ID {
			_, _, err := e.s.EndRoom(e.ctx, r.ID, at.Add(4*time.Minute))
			must(t, err)
			break
		}
	}
	if got := f.assign(t, e, full, at.Add(5*time.Minute)); got != c.ID {
		t.Fatalf("after c freed a room it went to %d", got)
	}
	// Nobody connected, or auto-assignment off: nobody.
	r = f.waitingRoom(t, e, "203")
	if _, err := e.s.AutoAssignRoom(e.ctx, r.ID, nil, at); !errors.Is(err, chat.ErrNoAssignee) {
		t.Fatalf("no console: %v", err)
	}
	_, err = e.s.SetMemberStatus(e.ctx, b.ID, chat.MemberAvailable, at)
	must(t, err)
	must(t, e.s.SetAutoAssign(e.ctx, f.company.ID, false))
	if _, err := e.s.AutoAssignRoom(e.ctx, r.ID, f.speakers, at); !errors.Is(err, chat.ErrNoAssignee) {
		t.Fatalf("auto-assignment off: %v", err)
	}
	must(t, e.s.SetAutoAssign(e.ctx, f.company.ID, true))
	// Another company's member is never picked, even when its speaker is named.
	other := newRouting(t, e, 1)
	if _, err := e.s.AutoAssignRoom(e.ctx, r.ID, other.speakers, at); !errors.Is(err, chat.ErrNoAssignee) {
		t.Fatalf("another company's member: %v", err)
	}
	// An assigned (or ended) room is decided already.
	if got := f.assign(t, e, r, at); got != b.ID {
		t.Fatalf("b back AVAILABLE with 1 room: got %d", got)
	}
	if _, err := e.s.AutoAssignRoom(e.ctx, r.ID, f.speakers, at); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("assigned room: %v, want ErrConflict", err)
	}
}

// testAutoAssignRace: many rooms decided at once for a few members of
// capacity 2: every room at most once, nobody over capacity.
func testAutoAssignRace(t *testing.T, e env) {
	raceAutoAssign(t, e, e.s, e.s)
}

func testAutoAssignAcrossNodes(t *testing.T, e env) {
	if e.dsn == "" {
		t.Skip("an in-memory database has one node")
	}
	raceAutoAssign(t, e, e.s, openForTest(t, e.dsn))
}

func raceAutoAssign(t *testing.T, e env, a, b *Store) {
	f := newRouting(t, e, 3)
	for _, m := range f.members {
		_, err := e.s.SetMemberCapacity(e.ctx, m.ID, 2)
		must(t, err)
	}
	var rooms []*chat.Room
	for i := range 8 {
		rooms = append(rooms, f.waitingRoom(t, e, fmt.Sprint(300+i)))
	}
	var mu sync.Mutex
	given := map[int64]int64{} // room -> member
	perMember := map[int64]int{}
	noAssignee := 0
	// Each room is tried four times at once, by both nodes.
	parallel(t, 4*len(rooms), func(i int) (int64, error) {
		s := a
		if i%2 == 1 {
			s = b
		}
		r := rooms[i%len(rooms)]
		got, err := s.AutoAssignRoom(e.ctx, r.ID, f.speakers, t0.Add(time.Hour))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, chat.ErrConflict):
			return 0, nil
		case errors.Is(err, chat.ErrNoAssignee):
			noAssignee++
			return 0, nil
		case err != nil:
			return 0, err
		}
		if prev, ok := given[r.ID]; ok {
			return 0, fmt.Errorf("room %d given twice: to %d and %d", r.ID, prev, *got.MemberID)
		}
		given[r.ID] = *got.MemberID
		perMember[*got.MemberID]++
		return 0, nil
	})
	if len(given) != 6 {
		t.Fatalf("%d rooms given, want 6 (3 members × capacity 2): %v", len(given), given)
	}
	for m, n := range perMember {
		if n != 2 {
			t.Fatalf("member %d got %d rooms, capacity 2: %v", m, n, perMember)
		}
	}
	if noAssignee == 0 {
		t.Fatal("the two rooms beyond capacity found an assignee")
	}
}

func testRoomsToRoute(t *testing.T, e env) {
	f := newRouting(t, e, 1)
	written := f.waitingRoom(t, e, "400")
	c, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "401", "조용한 고객")
	must(t, err)
	_, _, err = e.s.OpenRoom(e.ctx, c, t0) // no message yet
	must(t, err)
	taken := f.waitingRoom(t, e, "402")
	f.assign(t, e, taken, t0)
	rooms, err := e.s.RoomsToRoute(e.ctx, f.company.ID, 10)
	must(t, err)
	if len(rooms) != 1 || rooms[0].ID != written.ID {
		t.Fatalf("RoomsToRoute = %+v, want only room %d", rooms, written.ID)
	}
}

func testTransferRoom(t *testing.T, e env) {
	f := newFixture(t, e)
	at := t0.Add(time.Hour)
	// A WAITING room goes to a member only while unassigned.
	if _, err := e.s.TransferRoom(e.ctx, f.room.ID, &f.agent.ID, f.agent2.ID, at); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("transfer from a non-assignee: %v", err)
	}
	r, err := e.s.TransferRoom(e.ctx, f.room.ID, nil, f.agent.ID, at)
	must(t, err)
	if r.Status != chat.StatusInProgress || *r.MemberID != f.agent.ID || r.AssignDate == nil || !r.AssignDate.Equal(at) {
		t.Fatalf("transfer of a waiting room: %+v", r)
	}
	later := at.Add(time.Minute)
	r, err = e.s.TransferRoom(e.ctx, f.room.ID, &f.agent.ID, f.agent2.ID, later)
	must(t, err)
	if *r.MemberID != f.agent2.ID || !r.AssignDate.Equal(at) {
		t.Fatalf("transfer keeps the first assignment date: %+v", r)
	}
	// From an assignee it no longer has.
	if _, err := e.s.TransferRoom(e.ctx, f.room.ID, &f.agent.ID, f.agent.ID, later); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("stale transfer: %v", err)
	}
	outsider := newFixture(t, e)
	if _, err := e.s.TransferRoom(e.ctx, f.room.ID, &f.agent2.ID, outsider.agent.ID, later); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("transfer to another company: %v", err)
	}
	_, _, err = e.s.EndRoom(e.ctx, f.room.ID, later)
	must(t, err)
	if _, err := e.s.TransferRoom(e.ctx, f.room.ID, &f.agent2.ID, f.agent.ID, later); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("transfer of an ended room: %v", err)
	}
}

func testCannedResponses(t *testing.T, e env) {
	co, other := newCompany(t, e, "템플릿"), newCompany(t, e, "다른 회사")
	hello := &chat.CannedResponse{CompanyID: co.ID, Shortcut: "인사", Title: "첫 인사", Text: "안녕하세요, 무엇을 도와드릴까요? 😊"}
	must(t, e.s.CreateCannedResponse(e.ctx, hello))
	bill := &chat.CannedResponse{CompanyID: co.ID, Shortcut: "bill", Title: "요금", Text: "요금은 앱에서 확인하실 수 있습니다."}
	must(t, e.s.CreateCannedResponse(e.ctx, bill))
	if hello.ID == 0 || hello.CreatedAt.IsZero() {
		t.Fatalf("created = %+v", hello)
	}
	dup := &chat.CannedResponse{CompanyID: co.ID, Shortcut: "bill", Title: "x", Text: "y"}
	if err := e.s.CreateCannedResponse(e.ctx, dup); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("duplicate shortcut: %v", err)
	}
	// Another company may use the same shortcut and sees nothing of ours.
	theirs := &chat.CannedResponse{CompanyID: other.ID, Shortcut: "bill", Title: "타사", Text: "타사"}
	must(t, e.s.CreateCannedResponse(e.ctx, theirs))
	list, err := e.s.CannedResponses(e.ctx, co.ID)
	must(t, err)
	if len(list) != 2 || list[0].Shortcut != "bill" || list[1].Text != hello.Text {
		t.Fatalf("CannedResponses = %+v", list)
	}
	hello.Text = "반갑습니다."
	must(t, e.s.UpdateCannedResponse(e.ctx, hello))
	list, err = e.s.CannedResponses(e.ctx, co.ID)
	must(t, err)
	if list[1].Text != "반갑습니다." {
		t.Fatalf("after update: %+v", list)
	}
	stolen := *theirs
	stolen.CompanyID = co.ID
	if err := e.s.UpdateCannedResponse(e.ctx, &stolen); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("update of another company's template: %v", err)
	}
	if err := e.s.DeleteCannedResponse(e.ctx, co.ID, theirs.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("delete of another company's template: %v", err)
	}
	bill.Shortcut = "인사"
	if err := e.s.UpdateCannedResponse(e.ctx, bill); !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("update onto a taken shortcut: %v", err)
	}
	must(t, e.s.DeleteCannedResponse(e.ctx, co.ID, hello.ID))
	if err := e.s.DeleteCannedResponse(e.ctx, co.ID, hello.ID); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if list, _ := e.s.CannedResponses(e.ctx, other.ID); len(list) != 1 {
		t.Fatalf("the other company's list: %+v", list)
	}
}

func testMessagesAfter(t *testing.T, e env) {
	f := newFixture(t, e)
	var ids []int64
	for i := range 5 {
		m := f.msg(f.agentSp, fmt.Sprint("m", i))
		if i == 2 {
			m.AdminType = 1
		}
		ids = append(ids, appendOK(t, e, m).ID)
	}
	got, err := e.s.MessagesAfter(e.ctx, f.room.ID, ids[0], 2, false)
	must(t, err)
	if len(got) != 2 || got[0].ID != ids[1] || got[1].ID != ids[3] {
		t.Fatalf("MessagesAfter without notes = %+v", got)
	}
	got, err = e.s.MessagesAfter(e.ctx, f.room.ID, 0, 10, true)
	must(t, err)
	if len(got) != 5 || got[2].AdminType != 1 {
		t.Fatalf("MessagesAfter with notes: %d", len(got))
	}
}

func testStats(t *testing.T, e env) {
	f := newFixture(t, e)
	day := t0.Truncate(24 * time.Hour)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	say := func(r *chat.Room, sp *chat.Speaker, when time.Time, mod func(*chat.Message)) {
		m := &chat.Message{RoomID: r.ID, SpeakerID: sp.ID, SpeakerName: sp.Name, Body: "x",
			IsCustomer: sp.CustomerID != nil, IsEmployee: sp.MemberID != nil, CreateDate: when}
		if mod != nil {
			mod(m)
		}
		appendOK(t, e, m)
	}
	// Room 1: customer at 10:00, a note and a system line at 10:01, the
	// agent answers at 10:03; assigned 10:02, ended 11:02, reviewed 4.
	r1 := f.room
	say(r1, f.customerSp, at(10, 0), nil)
	say(r1, f.agentSp, at(10, 1), func(m *chat.Message) { m.AdminType = 1 })
	say(r1, f.agentSp, at(10, 1), func(m *chat.Message) { m.IsSystem = true })
	_, _, err := e.s.AssignRoom(e.ctx, r1.ID, f.agent.ID, at(10, 2))
	must(t, err)
	say(r1, f.agentSp, at(10, 3), nil)
	say(r1, f.customerSp, at(10, 4), nil)
	_, _, err = e.s.EndRoom(e.ctx, r1.ID, at(11, 2))
	must(t, err)
	must(t, e.s.SetReview(e.ctx, r1.ID, 4, at(11, 5)))
	// Room 2 (another customer): the agent greets first (00:30, before the
	// customer), customer 23:00, agent2 answers the next day 00:10.
	c2, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "2002", "둘째")
	must(t, err)
	c2sp, err := e.s.CustomerSpeaker(e.ctx, c2)
	must(t, err)
	r2, _, err := e.s.OpenRoom(e.ctx, c2, at(0, 0))
	must(t, err)
	say(r2, f.agent2Sp, at(0, 30), nil)
	say(r2, c2sp, at(23, 0), nil)
	say(r2, f.agent2Sp, at(24, 10), nil)

	fr, err := e.s.FirstResponses(e.ctx, f.company.ID, day, day.Add(48*time.Hour))
	must(t, err)
	if len(fr) != 2 || fr[0].RoomID != r1.ID || fr[0].MemberID != f.agent.ID || fr[0].ResponseAt.Sub(fr[0].CustomerAt) != 3*time.Minute ||
		fr[1].MemberID != f.agent2.ID || fr[1].ResponseAt.Sub(fr[1].CustomerAt) != 70*time.Minute {
		t.Fatalf("FirstResponses = %+v", fr)
	}
	// Only the answers in the period.
	if fr, _ := e.s.FirstResponses(e.ctx, f.company.ID, day, day.Add(24*time.Hour)); len(fr) != 1 || fr[0].RoomID != r1.ID {
		t.Fatalf("FirstResponses of the first day = %+v", fr)
	}
	hr, err := e.s.HandledRooms(e.ctx, f.company.ID, day, day.Add(24*time.Hour))
	must(t, err)
	if len(hr) != 1 || hr[0].MemberID != f.agent.ID || hr[0].AssignDate == nil || hr[0].EndDate.Sub(*hr[0].AssignDate) != time.Hour {
		t.Fatalf("HandledRooms = %+v", hr)
	}
	if hr, _ := e.s.HandledRooms(e.ctx, f.company.ID, day.Add(24*time.Hour), day.Add(48*time.Hour)); len(hr) != 0 {
		t.Fatalf("HandledRooms of the next day = %+v", hr)
	}
	rv, err := e.s.Reviews(e.ctx, f.company.ID, day, day.Add(24*time.Hour))
	must(t, err)
	if len(rv) != 1 || rv[0].Score != 4 || rv[0].MemberID != f.agent.ID || !rv[0].Date.Equal(at(11, 5)) {
		t.Fatalf("Reviews = %+v", rv)
	}
	counts, err := e.s.MessageCounts(e.ctx, f.company.ID, []time.Time{day, day.Add(24 * time.Hour), day.Add(48 * time.Hour)})
	must(t, err)
	got := map[string]int{}
	for _, c := range counts {
		got[fmt.Sprintf("%d/%d", c.Day, c.MemberID)] = c.Count
	}
	want := map[string]int{
		fmt.Sprintf("0/%d", f.agent.ID): 1, fmt.Sprintf("0/%d", f.agent2.ID): 1, "0/0": 3,
		fmt.Sprintf("1/%d", f.agent2.ID): 1,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("MessageCounts = %v, want %v", got, want)
	}
	// One day: no CASE to tell days apart.
	counts, err = e.s.MessageCounts(e.ctx, f.company.ID, []time.Time{day.Add(24 * time.Hour), day.Add(48 * time.Hour)})
	must(t, err)
	if len(counts) != 1 || counts[0].Day != 0 || counts[0].MemberID != f.agent2.ID || counts[0].Count != 1 {
		t.Fatalf("MessageCounts of one day = %+v", counts)
	}
	// Nothing of another company.
	outsider := newFixture(t, e)
	if c, _ := e.s.MessageCounts(e.ctx, outsider.company.ID, []time.Time{day, day.Add(48 * time.Hour)}); len(c) != 0 {
		t.Fatalf("another company's counts: %+v", c)
	}
}

// testCounselingMigrationRunsAgain: MySQL cannot roll DDL back, so an
// interrupted migration runs again over what it had done; here it runs
// over all of it.
func testCounselingMigrationRunsAgain(t *testing.T, e env) {
	must(t, e.s.db.WithContext(e.ctx).Transaction(e.s.migrateCounseling))
}
