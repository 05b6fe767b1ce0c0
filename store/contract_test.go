package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// The behavioural contract of chat.Store, run against every backend. Each
// case builds its own company, so cases share one database without seeing
// each other's rows.

type env struct {
	s   *Store
	dsn string
	ctx context.Context
}

var contract = []struct {
	name string
	run  func(t *testing.T, e env)
}{
	{"Ping", testPing},
	{"MigrateIsIdempotent", testMigrateIdempotent},
	{"Companies", testCompanies},
	{"Members", testMembers},
	{"Customers", testCustomers},
	{"Speakers", testSpeakers},
	{"OpenRoom", testOpenRoom},
	{"OpenRoomConcurrent", testOpenRoomConcurrent},
	{"RoomsOrderAndFilter", testRooms},
	{"RoomsOrderSubSecond", testRoomsSubSecond},
	{"CustomerRooms", testCustomerRooms},
	{"AssignRoom", testAssignRoom},
	{"AssignRoomRace", testAssignRoomRace},
	{"EndRoom", testEndRoom},
	{"SetReview", testSetReview},
	{"AppendAndPage", testAppendAndPage},
	{"AppendDuplicates", testAppendDuplicates},
	{"AppendConcurrent", testAppendConcurrent},
	{"AppendDuplicatesAcrossNodes", testAppendDuplicatesAcrossNodes},
	{"AppendRefusals", testAppendRefusals},
	{"InternalNotes", testInternalNotes},
	{"SoftDelete", testSoftDelete},
	{"ReadPositions", testReadPositions},
	{"TextRoundTrip", testTextRoundTrip},
	{"InvalidUTF8", testInvalidUTF8},
	{"TimesInUTC", testTimesInUTC},
	{"Close", testClose},
	{"CloseUnderLoad", testCloseUnderLoad},
}

func TestStoreContract(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, dsn := b.open(t)
			for _, c := range append(contract, counselingContract...) {
				t.Run(c.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					c.run(t, env{s: s, dsn: dsn, ctx: ctx})
				})
			}
		})
	}
}

// t0 is the fixtures' clock; tests pass times explicitly.
var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

type fixture struct {
	company       *chat.Company
	agent, agent2 *chat.Member
	customer      *chat.Customer
	agentSp       *chat.Speaker
	agent2Sp      *chat.Speaker
	customerSp    *chat.Speaker
	room          *chat.Room
}

func newCompany(t *testing.T, e env, name string) *chat.Company {
	t.Helper()
	c := &chat.Company{Name: name}
	must(t, e.s.SaveCompany(e.ctx, c))
	return c
}

func newMember(t *testing.T, e env, companyID int64, login string) *chat.Member {
	t.Helper()
	m := &chat.Member{CompanyID: companyID, LoginName: fmt.Sprintf("%s-%d", login, companyID), Name: "상담원 " + login, PasswordHash: "$2a$10$hash"}
	must(t, e.s.CreateMember(e.ctx, m))
	return m
}

func newFixture(t *testing.T, e env) fixture {
	t.Helper()
	var f fixture
	var err error
	f.company = newCompany(t, e, "서울도시가스")
	f.agent = newMember(t, e, f.company.ID, "agent1")
	f.agent2 = newMember(t, e, f.company.ID, "agent2")
	f.customer, err = e.s.EnsureCustomer(e.ctx, f.company.ID, "1001", "김고객")
	must(t, err)
	f.agentSp, err = e.s.MemberSpeaker(e.ctx, f.agent)
	must(t, err)
	f.agent2Sp, err = e.s.MemberSpeaker(e.ctx, f.agent2)
	must(t, err)
	f.customerSp, err = e.s.CustomerSpeaker(e.ctx, f.customer)
	must(t, err)
	f.room, _, err = e.s.OpenRoom(e.ctx, f.customer, t0)
	must(t, err)
	return f
}

func (f fixture) msg(sp *chat.Speaker, body string) *chat.Message {
	return &chat.Message{RoomID: f.room.ID, SpeakerID: sp.ID, SpeakerName: sp.Name, Body: body, IsCustomer: sp.CustomerID != nil, IsEmployee: sp.MemberID != nil}
}

func appendOK(t *testing.T, e env, m *chat.Message) *chat.Message {
	t.Helper()
	stored, dup, err := e.s.AppendMessage(e.ctx, m)
	must(t, err)
	if dup {
		t.Fatalf("append %q: unexpected duplicate", m.Body)
	}
	return stored
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %v", err, target)
	}
}

func testPing(t *testing.T, e env) {
	must(t, e.s.Ping(e.ctx))
}

func testMigrateIdempotent(t *testing.T, e env) {
	must(t, e.s.Migrate(e.ctx))
}

func testCompanies(t *testing.T, e env) {
	cfg, wait := `{"video":true}`, "상담원을 연결하고 있습니다"
	c := &chat.Company{
		Name: "인천도시가스", LegacyKeyPrefix: "ICN_", SigningSecret: "s3cret", RequireSigned: true,
		UseConfigJSON: &cfg, WaitingText: &wait, WorkStart: "09:00", WorkEnd: "18:00",
		LunchStart: "12:00", LunchEnd: "13:00", WorkingText: "근무 중", AfterHoursText: "업무 시간이 아닙니다",
		LunchText: "점심 시간", AllowCustomerVideo: true, ContractsURL: "https://crm.example.com/contracts?key=abc",
	}
	must(t, e.s.SaveCompany(e.ctx, c))
	if c.ID == 0 {
		t.Fatal("SaveCompany did not set ID")
	}
	got, err := e.s.Company(e.ctx, c.ID)
	must(t, err)
	if !equalCompany(got, c) {
		t.Fatalf("Company = %+v, want %+v", got, c)
	}
	if got.ReplyText != nil {
		t.Fatalf("ReplyText = %q, want nil", *got.ReplyText)
	}

	// Update by ID replaces every field, nil pointers included.
	c.Name, c.UseConfigJSON, c.RequireSigned = "인천도시가스(주)", nil, false
	must(t, e.s.SaveCompany(e.ctx, c))
	got, err = e.s.Company(e.ctx, c.ID)
	must(t, err)
	if !equalCompany(got, c) {
		t.Fatalf("after update Company = %+v, want %+v", got, c)
	}

	// Insert with a chosen ID (the demo tenants are 1 and 2).
	fixed := &chat.Company{ID: c.ID + 1000, Name: "고정 ID"}
	must(t, e.s.SaveCompany(e.ctx, fixed))
	if fixed.ID != c.ID+1000 {
		t.Fatalf("ID = %d, want %d", fixed.ID, c.ID+1000)
	}
	got, err = e.s.Company(e.ctx, fixed.ID)
	must(t, err)
	if got.Name != "고정 ID" {
		t.Fatalf("Name = %q", got.Name)
	}

	_, err = e.s.Company(e.ctx, 1<<40)
	wantErr(t, err, chat.ErrNotFound)
	err = e.s.SaveCompany(e.ctx, &chat.Company{Name: strings.Repeat("가", maxNameChars+1)})
	if err == nil {
		t.Fatal("SaveCompany accepted an over-long name")
	}
	err = e.s.SaveCompany(e.ctx, &chat.Company{Name: "긴 주소", ContractsURL: "https://x.example/" + strings.Repeat("a", maxURLBytes)})
	if err == nil {
		t.Fatal("SaveCompany accepted an over-long contracts URL")
	}
}

func equalCompany(a, b *chat.Company) bool {
	eq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	ac, bc := *a, *b
	ac.UseConfigJSON, ac.WaitingText, ac.ReplyText = nil, nil, nil
	bc.UseConfigJSON, bc.WaitingText, bc.ReplyText = nil, nil, nil
	return ac == bc && eq(a.UseConfigJSON, b.UseConfigJSON) && eq(a.WaitingText, b.WaitingText) && eq(a.ReplyText, b.ReplyText)
}

func testMembers(t *testing.T, e env) {
	co := newCompany(t, e, "A")
	other := newCompany(t, e, "B")
	login := fmt.Sprintf("Agent-%d", co.ID)
	m := &chat.Member{CompanyID: co.ID, LoginName: login, Name: "관리자", PasswordHash: "$2a$10$x", IsAdmin: true}
	must(t, e.s.CreateMember(e.ctx, m))
	if m.ID == 0 || m.CreatedAt.IsZero() {
		t.Fatalf("CreateMember did not set ID/CreatedAt: %+v", m)
	}
	for _, get := range []func() (*chat.Member, error){
		func() (*chat.Member, error) { return e.s.Member(e.ctx, m.ID) },
		func() (*chat.Member, error) { return e.s.MemberByLogin(e.ctx, login) },
	} {
		got, err := get()
		must(t, err)
		if *got != *m {
			t.Fatalf("member = %+v, want %+v", got, m)
		}
	}

	// Login names are global and exact.
	err := e.s.CreateMember(e.ctx, &chat.Member{CompanyID: other.ID, LoginName: login, Name: "x"})
	wantErr(t, err, chat.ErrConflict)
	lower := &chat.Member{CompanyID: co.ID, LoginName: strings.ToLower(login), Name: "소문자"}
	must(t, e.s.CreateMember(e.ctx, lower))
	_, err = e.s.MemberByLogin(e.ctx, login+" ")
	wantErr(t, err, chat.ErrNotFound)
	_, err = e.s.MemberByLogin(e.ctx, "nobody-"+login)
	wantErr(t, err, chat.ErrNotFound)
	_, err = e.s.Member(e.ctx, 1<<40)
	wantErr(t, err, chat.ErrNotFound)
	err = e.s.CreateMember(e.ctx, &chat.Member{CompanyID: 1 << 40, LoginName: "orphan-" + login})
	wantErr(t, err, chat.ErrNotFound)
	if err := e.s.CreateMember(e.ctx, &chat.Member{CompanyID: co.ID}); err == nil {
		t.Fatal("CreateMember accepted an empty login name")
	}

	newMember(t, e, other.ID, "elsewhere")
	list, err := e.s.Members(e.ctx, co.ID)
	must(t, err)
	if len(list) != 2 || list[0].ID != m.ID || list[1].ID != lower.ID {
		t.Fatalf("Members = %+v, want [%d %d]", list, m.ID, lower.ID)
	}
}

func testCustomers(t *testing.T, e env) {
	co := newCompany(t, e, "A")
	other := newCompany(t, e, "B")
	c, err := e.s.EnsureCustomer(e.ctx, co.ID, "0012345", "홍길동")
	must(t, err)
	if c.ID == 0 || c.GasappMemberNumber != "0012345" || c.Name != "홍길동" || c.CompanyID != co.ID {
		t.Fatalf("EnsureCustomer = %+v", c)
	}
	again, err := e.s.EnsureCustomer(e.ctx, co.ID, "0012345", "")
	must(t, err)
	if again.ID != c.ID || again.Name != "홍길동" {
		t.Fatalf("second EnsureCustomer = %+v, want same customer with the old name", again)
	}
	renamed, err := e.s.EnsureCustomer(e.ctx, co.ID, "0012345", "홍길순")
	must(t, err)
	if renamed.ID != c.ID || renamed.Name != "홍길순" {
		t.Fatalf("rename = %+v", renamed)
	}
	got, err := e.s.Customer(e.ctx, c.ID)
	must(t, err)
	if got.Name != "홍길순" || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("Customer = %+v", got)
	}
	// Member numbers are per company, compared exactly.
	elsewhere, err := e.s.EnsureCustomer(e.ctx, other.ID, "0012345", "")
	must(t, err)
	stripped, err := e.s.EnsureCustomer(e.ctx, co.ID, "12345", "")
	must(t, err)
	if elsewhere.ID == c.ID || stripped.ID == c.ID {
		t.Fatal("different customers share an ID")
	}
	_, err = e.s.Customer(e.ctx, 1<<40)
	wantErr(t, err, chat.ErrNotFound)
	_, err = e.s.EnsureCustomer(e.ctx, 1<<40, "1", "")
	wantErr(t, err, chat.ErrNotFound)
	if _, err := e.s.EnsureCustomer(e.ctx, co.ID, "", "x"); err == nil {
		t.Fatal("EnsureCustomer accepted an empty number")
	}

	// Concurrent first contact converges on one row.
	ids := parallel(t, 12, func(int) (int64, error) {
		c, err := e.s.EnsureCustomer(e.ctx, co.ID, "777", "동시")
		if err != nil {
			return 0, err
		}
		return c.ID, nil
	})
	if ids[0] != ids[len(ids)-1] {
		t.Fatalf("concurrent EnsureCustomer gave IDs %v", ids)
	}
}

// parallel runs fn n times at once and returns the results sorted.
func parallel(t *testing.T, n int, fn func(i int) (int64, error)) []int64 {
	t.Helper()
	out := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i], errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	must(t, errors.Join(errs...))
	slices.Sort(out)
	return out
}

func testSpeakers(t *testing.T, e env) {
	f := newFixture(t, e)
	if f.agentSp.MemberID == nil || *f.agentSp.MemberID != f.agent.ID || f.agentSp.CustomerID != nil || f.agentSp.CompanyID != f.company.ID || f.agentSp.Name != f.agent.Name {
		t.Fatalf("member speaker = %+v", f.agentSp)
	}
	if f.customerSp.CustomerID == nil || *f.customerSp.CustomerID != f.customer.ID || f.customerSp.MemberID != nil || f.customerSp.Name != "김고객" {
		t.Fatalf("customer speaker = %+v", f.customerSp)
	}
	again, err := e.s.MemberSpeaker(e.ctx, f.agent)
	must(t, err)
	if again.ID != f.agentSp.ID {
		t.Fatalf("second MemberSpeaker = %d, want %d", again.ID, f.agentSp.ID)
	}
	got, err := e.s.Speaker(e.ctx, f.customerSp.ID)
	must(t, err)
	if got.ID != f.customerSp.ID || got.Name != "김고객" {
		t.Fatalf("Speaker = %+v", got)
	}
	// A renamed customer's speaker follows the name.
	renamed, err := e.s.EnsureCustomer(e.ctx, f.company.ID, f.customer.GasappMemberNumber, "김새이름")
	must(t, err)
	sp, err := e.s.CustomerSpeaker(e.ctx, renamed)
	must(t, err)
	if sp.ID != f.customerSp.ID || sp.Name != "김새이름" {
		t.Fatalf("renamed speaker = %+v", sp)
	}
	_, err = e.s.Speaker(e.ctx, 1<<40)
	wantErr(t, err, chat.ErrNotFound)
	_, err = e.s.MemberSpeaker(e.ctx, &chat.Member{ID: 1 << 40, CompanyID: f.company.ID})
	wantErr(t, err, chat.ErrNotFound)

	c2, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "2002", "동시")
	must(t, err)
	ids := parallel(t, 12, func(int) (int64, error) {
		sp, err := e.s.CustomerSpeaker(e.ctx, c2)
		if err != nil {
			return 0, err
		}
		return sp.ID, nil
	})
	if ids[0] != ids[len(ids)-1] {
		t.Fatalf("concurrent CustomerSpeaker gave IDs %v", ids)
	}
}

func testOpenRoom(t *testing.T, e env) {
	f := newFixture(t, e)
	r := f.room
	if r.Status != chat.StatusWaiting || r.Name != "김고객" || r.CustomerID != f.customer.ID || r.CompanyID != f.company.ID ||
		r.MemberID != nil || r.LastMessageID != 0 || !r.CreateDate.Equal(t0) || !r.UpdateDate.Equal(t0) || r.EndDate != nil {
		t.Fatalf("new room = %+v", r)
	}
	again, created, err := e.s.OpenRoom(e.ctx, f.customer, t0.Add(time.Hour))
	must(t, err)
	if created || again.ID != r.ID {
		t.Fatalf("second OpenRoom = %d created=%v, want %d created=false", again.ID, created, r.ID)
	}
	got, err := e.s.Room(e.ctx, r.ID)
	must(t, err)
	if *got != *r {
		t.Fatalf("Room = %+v, want %+v", got, r)
	}
	// An assigned room is still the open one.
	_, _, err = e.s.AssignRoom(e.ctx, r.ID, f.agent.ID, t0)
	must(t, err)
	again, created, err = e.s.OpenRoom(e.ctx, f.customer, t0)
	must(t, err)
	if created || again.ID != r.ID {
		t.Fatalf("OpenRoom of an IN_PROGRESS room = %d created=%v", again.ID, created)
	}
	_, err = e.s.Room(e.ctx, 1<<40)
	wantErr(t, err, chat.ErrNotFound)
	_, _, err = e.s.OpenRoom(e.ctx, &chat.Customer{ID: 1 << 40, CompanyID: f.company.ID}, t0)
	wantErr(t, err, chat.ErrNotFound)
}

func testOpenRoomConcurrent(t *testing.T, e env) {
	co := newCompany(t, e, "A")
	for round := range 3 {
		c, err := e.s.EnsureCustomer(e.ctx, co.ID, fmt.Sprint(5000+round), "동시")
		must(t, err)
		var mu sync.Mutex
		created := 0
		ids := parallel(t, 16, func(int) (int64, error) {
			r, isNew, err := e.s.OpenRoom(e.ctx, c, t0)
			if err != nil {
				return 0, err
			}
			if isNew {
				mu.Lock()
				created++
				mu.Unlock()
			}
			return r.ID, nil
		})
		if ids[0] != ids[len(ids)-1] || created != 1 {
			t.Fatalf("16 concurrent OpenRoom: IDs %v, %d created; want one room created once", ids, created)
		}
	}
}

func testRooms(t *testing.T, e env) {
	co := newCompany(t, e, "A")
	other := newCompany(t, e, "B")
	m := newMember(t, e, co.ID, "lister")
	open := func(companyID int64, number string, at time.Time) *chat.Room {
		c, err := e.s.EnsureCustomer(e.ctx, companyID, number, "고객"+number)
		must(t, err)
		r, _, err := e.s.OpenRoom(e.ctx, c, at)
		must(t, err)
		return r
	}
	a := open(co.ID, "1", t0)
	b := open(co.ID, "2", t0.Add(time.Minute))
	c := open(co.ID, "3", t0.Add(time.Minute)) // ties with b: higher ID first
	d := open(co.ID, "4", t0.Add(-time.Minute))
	open(other.ID, "1", t0.Add(time.Hour))
	_, _, err := e.s.AssignRoom(e.ctx, d.ID, m.ID, t0.Add(2*time.Minute)) // activity moves d to the top
	must(t, err)
	_, _, err = e.s.EndRoom(e.ctx, a.ID, t0.Add(-time.Hour)) // older than a's activity: a keeps its date
	must(t, err)

	ids := func(status chat.RoomStatus, limit int) []int64 {
		rooms, err := e.s.Rooms(e.ctx, co.ID, status, limit)
		must(t, err)
		var out []int64
		for _, r := range rooms {
			if r.CompanyID != co.ID {
				t.Fatalf("Rooms leaked room %d of company %d", r.ID, r.CompanyID)
			}
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		status chat.RoomStatus
		limit  int
		want   []int64
	}{
		{"", 0, []int64{d.ID, c.ID, b.ID, a.ID}},
		{"", 2, []int64{d.ID, c.ID}},
		{chat.StatusWaiting, 10, []int64{c.ID, b.ID}},
		{chat.StatusInProgress, 10, []int64{d.ID}},
		{chat.StatusEnded, 10, []int64{a.ID}},
	} {
		if got := ids(tc.status, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("Rooms(%q, %d) = %v, want %v", tc.status, tc.limit, got, tc.want)
		}
	}
	got, err := e.s.Room(e.ctx, a.ID)
	must(t, err)
	if !got.UpdateDate.Equal(t0) {
		t.Errorf("EndRoom with an older time moved UpdateDate back to %v", got.UpdateDate)
	}
}

// CustomerRooms lists one customer's rooms, newest first, below a room.
func testCustomerRooms(t *testing.T, e env) {
	co := newCompany(t, e, "A")
	m := newMember(t, e, co.ID, "history")
	c, err := e.s.EnsureCustomer(e.ctx, co.ID, "77", "단골")
	must(t, err)
	neighbour, err := e.s.EnsureCustomer(e.ctx, co.ID, "78", "이웃")
	must(t, err)
	var ids []int64
	for i := range 3 {
		r, _, err := e.s.OpenRoom(e.ctx, c, t0.Add(time.Duration(i)*time.Hour))
		must(t, err)
		// The neighbour's rooms interleave and are never listed.
		_, _, err = e.s.OpenRoom(e.ctx, neighbour, t0)
		must(t, err)
		ids = append(ids, r.ID)
		if i < 2 {
			_, _, err = e.s.AssignRoom(e.ctx, r.ID, m.ID, t0)
			must(t, err)
			_, _, err = e.s.EndRoom(e.ctx, r.ID, t0)
			must(t, err)
		}
	}
	list := func(before int64, limit int) []int64 {
		rooms, err := e.s.CustomerRooms(e.ctx, c.ID, before, limit)
		must(t, err)
		out := []int64{}
		for _, r := range rooms {
			if r.CustomerID != c.ID {
				t.Fatalf("CustomerRooms listed room %d of customer %d", r.ID, r.CustomerID)
			}
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		before int64
		limit  int
		want   []int64
	}{
		{0, 0, []int64{ids[2], ids[1], ids[0]}},
		{ids[2], 0, []int64{ids[1], ids[0]}},
		{ids[2], 1, []int64{ids[1]}},
		{ids[0], 10, []int64{}},
	} {
		if got := list(tc.before, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("CustomerRooms(before %d, limit %d) = %v, want %v", tc.before, tc.limit, got, tc.want)
		}
	}
	if rooms, err := e.s.CustomerRooms(e.ctx, 1<<40, 0, 10); err != nil || len(rooms) != 0 {
		t.Errorf("CustomerRooms of nobody = %v, %v", rooms, err)
	}
}

// Sub-second activity orders rooms too (SQLite compares stored times as
// text, so its format must sort like time).
func testRoomsSubSecond(t *testing.T, e env) {
	co := newCompany(t, e, "A")
	var rooms []*chat.Room
	for i, offset := range []time.Duration{0, 500 * time.Millisecond, 250 * time.Millisecond, time.Second + 5*time.Microsecond, time.Second} {
		c, err := e.s.EnsureCustomer(e.ctx, co.ID, fmt.Sprint(i), "")
		must(t, err)
		r, _, err := e.s.OpenRoom(e.ctx, c, t0.Add(offset))
		must(t, err)
		rooms = append(rooms, r)
	}
	// An older time must not move a room back.
	_, _, err := e.s.EndRoom(e.ctx, rooms[2].ID, t0.Add(100*time.Millisecond))
	must(t, err)
	list, err := e.s.Rooms(e.ctx, co.ID, "", 0)
	must(t, err)
	var got []int64
	for _, r := range list {
		got = append(got, r.ID)
	}
	want := []int64{rooms[3].ID, rooms[4].ID, rooms[1].ID, rooms[2].ID, rooms[0].ID}
	if !slices.Equal(got, want) {
		t.Fatalf("Rooms = %v, want %v", got, want)
	}
}

func testAssignRoom(t *testing.T, e env) {
	f := newFixture(t, e)
	at := t0.Add(5 * time.Minute)
	r, changed, err := e.s.AssignRoom(e.ctx, f.room.ID, f.agent.ID, at)
	must(t, err)
	if !changed || r.Status != chat.StatusInProgress || r.MemberID == nil || *r.MemberID != f.agent.ID || !r.UpdateDate.Equal(at) {
		t.Fatalf("AssignRoom = %+v changed=%v", r, changed)
	}
	r, changed, err = e.s.AssignRoom(e.ctx, f.room.ID, f.agent.ID, at)
	must(t, err)
	if changed || r.Status != chat.StatusInProgress {
		t.Fatalf("repeated AssignRoom = %+v changed=%v, want unchanged", r, changed)
	}
	_, _, err = e.s.AssignRoom(e.ctx, f.room.ID, f.agent2.ID, at)
	wantErr(t, err, chat.ErrConflict)

	outsider := newMember(t, e, newCompany(t, e, "B").ID, "outsider")
	c2, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "3003", "")
	must(t, err)
	waiting, _, err := e.s.OpenRoom(e.ctx, c2, t0)
	must(t, err)
	_, _, err = e.s.AssignRoom(e.ctx, waiting.ID, outsider.ID, at)
	wantErr(t, err, chat.ErrNotFound)
	_, _, err = e.s.AssignRoom(e.ctx, waiting.ID, 1<<40, at)
	wantErr(t, err, chat.ErrNotFound)
	_, _, err = e.s.AssignRoom(e.ctx, 1<<40, f.agent.ID, at)
	wantErr(t, err, chat.ErrNotFound)
	got, err := e.s.Room(e.ctx, waiting.ID)
	must(t, err)
	if got.Status != chat.StatusWaiting || got.MemberID != nil {
		t.Fatalf("refused assignments changed the room: %+v", got)
	}

	_, _, err = e.s.EndRoom(e.ctx, waiting.ID, at)
	must(t, err)
	_, _, err = e.s.AssignRoom(e.ctx, waiting.ID, f.agent.ID, at)
	wantErr(t, err, chat.ErrConflict)
}

func testAssignRoomRace(t *testing.T, e env) {
	f := newFixture(t, e)
	members := []*chat.Member{f.agent, f.agent2}
	for i := range 6 {
		members = append(members, newMember(t, e, f.company.ID, fmt.Sprint("racer", i)))
	}
	var mu sync.Mutex
	winners, conflicts := 0, 0
	parallel(t, len(members), func(i int) (int64, error) {
		_, changed, err := e.s.AssignRoom(e.ctx, f.room.ID, members[i].ID, t0)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, chat.ErrConflict):
			conflicts++
			return 0, nil
		case err != nil:
			return 0, err
		case changed:
			winners++
		}
		return 0, nil
	})
	if winners != 1 || conflicts != len(members)-1 {
		t.Fatalf("%d members racing: %d won, %d conflicts", len(members), winners, conflicts)
	}
}

func testEndRoom(t *testing.T, e env) {
	f := newFixture(t, e)
	at := t0.Add(time.Hour)
	r, changed, err := e.s.EndRoom(e.ctx, f.room.ID, at)
	must(t, err)
	if !changed || r.Status != chat.StatusEnded || r.EndDate == nil || !r.EndDate.Equal(at) || !r.UpdateDate.Equal(at) {
		t.Fatalf("EndRoom = %+v changed=%v", r, changed)
	}
	r2, changed, err := e.s.EndRoom(e.ctx, f.room.ID, at.Add(time.Hour))
	must(t, err)
	if changed || !r2.EndDate.Equal(at) {
		t.Fatalf("second EndRoom = %+v changed=%v", r2, changed)
	}
	_, _, err = e.s.EndRoom(e.ctx, 1<<40, at)
	wantErr(t, err, chat.ErrNotFound)
	// The customer's next contact opens a new room.
	next, created, err := e.s.OpenRoom(e.ctx, f.customer, at)
	must(t, err)
	if !created || next.ID == f.room.ID || next.Status != chat.StatusWaiting {
		t.Fatalf("OpenRoom after END = %+v created=%v", next, created)
	}
}

func testSetReview(t *testing.T, e env) {
	f := newFixture(t, e)
	must(t, e.s.SetReview(e.ctx, f.room.ID, 5, t0))
	must(t, e.s.SetReview(e.ctx, f.room.ID, 5, t0)) // same value again is fine
	must(t, e.s.SetReview(e.ctx, f.room.ID, 4, t0))
	r, err := e.s.Room(e.ctx, f.room.ID)
	must(t, err)
	if r.ReviewScore == nil || *r.ReviewScore != 4 {
		t.Fatalf("ReviewScore = %v, want 4", r.ReviewScore)
	}
	wantErr(t, e.s.SetReview(e.ctx, 1<<40, 3, t0), chat.ErrNotFound)
	for _, bad := range []int{0, 6, -1} {
		if err := e.s.SetReview(e.ctx, f.room.ID, bad, t0); err == nil {
			t.Fatalf("SetReview accepted score %d", bad)
		}
	}
}

func testAppendAndPage(t *testing.T, e env) {
	f := newFixture(t, e)
	var all []int64
	for i := range 75 {
		sp := f.customerSp
		if i%3 == 0 {
			sp = f.agentSp
		}
		m := f.msg(sp, fmt.Sprint("메시지 ", i))
		m.CreateDate = t0.Add(time.Duration(i) * time.Second)
		stored := appendOK(t, e, m)
		if m.ID != stored.ID || stored.ID == 0 || stored.CompanyID != f.company.ID || !stored.CreateDate.Equal(m.CreateDate) || !stored.UpdateDate.Equal(m.CreateDate) {
			t.Fatalf("stored = %+v, input after append = %+v", stored, m)
		}
		if len(all) > 0 && stored.ID <= all[len(all)-1] {
			t.Fatalf("ID %d after %d", stored.ID, all[len(all)-1])
		}
		all = append(all, stored.ID)
	}
	r, err := e.s.Room(e.ctx, f.room.ID)
	must(t, err)
	if r.LastMessageID != all[74] || !r.UpdateDate.Equal(t0.Add(74*time.Second)) {
		t.Fatalf("room after appends: LastMessageID %d UpdateDate %v", r.LastMessageID, r.UpdateDate)
	}
	got, err := e.s.Message(e.ctx, all[10])
	must(t, err)
	if got.Body != "메시지 10" || got.SpeakerID != f.customerSp.ID || !got.IsCustomer || got.IsEmployee {
		t.Fatalf("Message = %+v", got)
	}
	_, err = e.s.Message(e.ctx, 1<<40)
	wantErr(t, err, chat.ErrNotFound)

	// Paging from the newest backwards visits everything once, ascending.
	var seen []int64
	before := int64(0)
	for {
		page, err := e.s.Messages(e.ctx, f.room.ID, before, 0, false)
		must(t, err)
		if len(page) == 0 {
			break
		}
		if len(page) > defaultMessageLimit {
			t.Fatalf("page of %d", len(page))
		}
		var ids []int64
		for _, m := range page {
			ids = append(ids, m.ID)
		}
		if !slices.IsSorted(ids) {
			t.Fatalf("page not ascending: %v", ids)
		}
		seen = append(ids, seen...)
		before = ids[0]
	}
	if !slices.Equal(seen, all) {
		t.Fatalf("paged %d messages, want %d in order", len(seen), len(all))
	}
	page, err := e.s.Messages(e.ctx, f.room.ID, all[5], 3, false)
	must(t, err)
	if len(page) != 3 || page[0].ID != all[2] || page[2].ID != all[4] {
		t.Fatalf("Messages(before %d, 3) = %v", all[5], page)
	}
	empty, err := e.s.Messages(e.ctx, 1<<40, 0, 10, true)
	must(t, err)
	if len(empty) != 0 {
		t.Fatalf("unknown room has %d messages", len(empty))
	}
	// A message without dates gets the store's clock.
	now := appendOK(t, e, f.msg(f.agentSp, "지금"))
	if time.Since(now.CreateDate).Abs() > time.Minute || now.CreateDate.Location() != time.UTC {
		t.Fatalf("default CreateDate = %v", now.CreateDate)
	}
}

func testAppendDuplicates(t *testing.T, e env) {
	f := newFixture(t, e)
	m := f.msg(f.customerSp, "한 번만")
	m.ClientMessageID = "c-1"
	first := appendOK(t, e, m)

	retry := f.msg(f.customerSp, "다른 본문")
	retry.ClientMessageID = "c-1"
	again, dup, err := e.s.AppendMessage(e.ctx, retry)
	must(t, err)
	if !dup || again.ID != first.ID || again.Body != "한 번만" || retry.ID != 0 {
		t.Fatalf("retry = %+v dup=%v (input ID %d)", again, dup, retry.ID)
	}
	// Another speaker, another room, another case, no id: all new messages.
	other := f.msg(f.agentSp, "상담원")
	other.ClientMessageID = "c-1"
	upper := f.msg(f.customerSp, "대문자")
	upper.ClientMessageID = "C-1"
	c2, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "4004", "")
	must(t, err)
	room2, _, err := e.s.OpenRoom(e.ctx, c2, t0)
	must(t, err)
	elsewhere := &chat.Message{RoomID: room2.ID, SpeakerID: f.agentSp.ID, Body: "다른 방", ClientMessageID: "c-1"}
	ids := map[int64]bool{first.ID: true}
	for _, m := range []*chat.Message{other, upper, elsewhere, f.msg(f.customerSp, "no id"), f.msg(f.customerSp, "no id")} {
		stored := appendOK(t, e, m)
		if ids[stored.ID] {
			t.Fatalf("%q reused ID %d", m.Body, stored.ID)
		}
		ids[stored.ID] = true
	}

	// Concurrent retries of one message: one stored, everyone told its ID.
	var mu sync.Mutex
	fresh := 0
	got := parallel(t, 24, func(i int) (int64, error) {
		m := f.msg(f.customerSp, fmt.Sprint("동시 ", i))
		m.ClientMessageID = "burst"
		stored, dup, err := e.s.AppendMessage(e.ctx, m)
		if err != nil {
			return 0, err
		}
		if !dup {
			mu.Lock()
			fresh++
			mu.Unlock()
		}
		return stored.ID, nil
	})
	if fresh != 1 || got[0] != got[len(got)-1] {
		t.Fatalf("24 concurrent appends of one client id: %d stored, IDs %v", fresh, got)
	}
	list, err := e.s.Messages(e.ctx, f.room.ID, 0, 100, true)
	must(t, err)
	n := 0
	for _, m := range list {
		if m.ClientMessageID == "burst" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d copies of the burst message stored", n)
	}
}

func testAppendConcurrent(t *testing.T, e env) {
	f := newFixture(t, e)
	c2, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "6006", "")
	must(t, err)
	room2, _, err := e.s.OpenRoom(e.ctx, c2, t0)
	must(t, err)
	const writers, each = 16, 40
	perWriter := make([][]int64, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m := f.msg(f.customerSp, fmt.Sprintf("w%d-%d", w, i))
				if w%2 == 1 {
					m.RoomID = room2.ID
				}
				stored, _, err := e.s.AppendMessage(e.ctx, m)
				if err != nil {
					errs <- err
					return
				}
				perWriter[w] = append(perWriter[w], stored.ID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for w, ids := range perWriter {
		if !slices.IsSorted(ids) {
			t.Fatalf("writer %d got IDs out of order: %v", w, ids)
		}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("ID %d given twice", id)
			}
			seen[id] = true
		}
	}
	for _, room := range []int64{f.room.ID, room2.ID} {
		list, err := e.s.Messages(e.ctx, room, 0, maxMessageLimit, true)
		must(t, err)
		if len(list) != writers/2*each {
			t.Fatalf("room %d holds %d messages, want %d", room, len(list), writers/2*each)
		}
		for _, m := range list {
			if !seen[m.ID] {
				t.Fatalf("stored message %d was not reported to its writer", m.ID)
			}
		}
		r, err := e.s.Room(e.ctx, room)
		must(t, err)
		if r.LastMessageID != list[len(list)-1].ID {
			t.Fatalf("room %d LastMessageID %d, newest message %d", room, r.LastMessageID, list[len(list)-1].ID)
		}
	}
}

// Two stores on one database stand for two nodes: their duplicate checks
// cannot see each other's uncommitted batches, so the unique key decides.
func testAppendDuplicatesAcrossNodes(t *testing.T, e env) {
	if e.dsn == "" {
		t.Skip("an in-memory database has one node")
	}
	other := openForTest(t, e.dsn)
	f := newFixture(t, e)
	for round := range 5 {
		cid := fmt.Sprint("node-", round)
		var mu sync.Mutex
		fresh := 0
		ids := parallel(t, 16, func(i int) (int64, error) {
			s := e.s
			if i%2 == 1 {
				s = other
			}
			m := f.msg(f.customerSp, "두 노드")
			m.ClientMessageID = cid
			stored, dup, err := s.AppendMessage(e.ctx, m)
			if err != nil {
				return 0, err
			}
			if !dup {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
			return stored.ID, nil
		})
		if fresh != 1 || ids[0] != ids[len(ids)-1] {
			t.Fatalf("round %d: %d stored, IDs %v", round, fresh, ids)
		}
	}
}

func testAppendRefusals(t *testing.T, e env) {
	f := newFixture(t, e)
	outsider := newFixture(t, e)
	good := f.msg(f.customerSp, "정상")
	cases := []struct {
		name   string
		msg    *chat.Message
		target error // nil: any error
	}{
		{"unknown room", &chat.Message{RoomID: 1 << 40, SpeakerID: f.customerSp.ID, Body: "x"}, chat.ErrNotFound},
		{"unknown speaker", &chat.Message{RoomID: f.room.ID, SpeakerID: 1 << 40, Body: "x"}, chat.ErrNotFound},
		{"speaker of another company", &chat.Message{RoomID: f.room.ID, SpeakerID: outsider.customerSp.ID, Body: "x"}, nil},
		{"company mismatch", &chat.Message{RoomID: f.room.ID, CompanyID: outsider.company.ID, SpeakerID: f.customerSp.ID, Body: "x"}, nil},
		{"no room", &chat.Message{SpeakerID: f.customerSp.ID, Body: "x"}, nil},
		{"client id too long", &chat.Message{RoomID: f.room.ID, SpeakerID: f.customerSp.ID, Body: "x", ClientMessageID: strings.Repeat("x", maxClientIDBytes+1)}, nil},
		{"date beyond DATETIME", &chat.Message{RoomID: f.room.ID, SpeakerID: f.customerSp.ID, Body: "x", CreateDate: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"type out of INT range", &chat.Message{RoomID: f.room.ID, SpeakerID: f.customerSp.ID, Body: "x", Type: 1 << 40}, nil},
	}
	// Sent together with a good message, so they likely share its batch:
	// a refused message must not take the others down with it.
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, c := range cases {
		wg.Go(func() { _, _, errs[i] = e.s.AppendMessage(e.ctx, c.msg) })
	}
	var goodErr error
	wg.Go(func() { _, _, goodErr = e.s.AppendMessage(e.ctx, good) })
	wg.Wait()
	must(t, goodErr)
	for i, c := range cases {
		switch {
		case errs[i] == nil:
			t.Errorf("%s: stored", c.name)
		case c.target != nil && !errors.Is(errs[i], c.target):
			t.Errorf("%s: error %v, want %v", c.name, errs[i], c.target)
		}
	}
	list, err := e.s.Messages(e.ctx, f.room.ID, 0, 100, true)
	must(t, err)
	if len(list) != 1 || list[0].ID != good.ID {
		t.Fatalf("room holds %v, want only the good message %d", list, good.ID)
	}
	// A context that ended before the append stores nothing.
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	_, _, err = e.s.AppendMessage(ctx, f.msg(f.customerSp, "취소"))
	wantErr(t, err, context.Canceled)
	list, err = e.s.Messages(e.ctx, f.room.ID, 0, 100, true)
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("cancelled append stored a message: %v", list)
	}
}

func testInternalNotes(t *testing.T, e env) {
	f := newFixture(t, e)
	conv := appendOK(t, e, f.msg(f.customerSp, "고객 메시지"))
	noteMsg := f.msg(f.agentSp, "내부 메모")
	noteMsg.AdminType = 1
	note := appendOK(t, e, noteMsg)
	reply := appendOK(t, e, f.msg(f.agentSp, "답변"))
	for _, tc := range []struct {
		withInternal bool
		want         []int64
	}{
		{false, []int64{conv.ID, reply.ID}},
		{true, []int64{conv.ID, note.ID, reply.ID}},
	} {
		list, err := e.s.Messages(e.ctx, f.room.ID, 0, 10, tc.withInternal)
		must(t, err)
		var ids []int64
		for _, m := range list {
			ids = append(ids, m.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("Messages(withInternal=%v) = %v, want %v", tc.withInternal, ids, tc.want)
		}
	}
	// The customer's unread count ignores the note.
	n, err := e.s.UnreadCount(e.ctx, f.room.ID, f.customerSp.ID)
	must(t, err)
	if n != 1 {
		t.Fatalf("customer unread = %d, want 1 (the reply)", n)
	}
}

func testSoftDelete(t *testing.T, e env) {
	f := newFixture(t, e)
	a := appendOK(t, e, f.msg(f.agentSp, "지울 메시지"))
	b := appendOK(t, e, f.msg(f.agentSp, "남는 메시지"))
	changed, err := e.s.DeleteMessage(e.ctx, a.ID, t0.Add(time.Hour))
	must(t, err)
	if !changed {
		t.Fatal("first delete reported no change")
	}
	changed, err = e.s.DeleteMessage(e.ctx, a.ID, t0.Add(2*time.Hour))
	must(t, err)
	if changed {
		t.Fatal("second delete reported a change")
	}
	_, err = e.s.DeleteMessage(e.ctx, 1<<40, t0)
	wantErr(t, err, chat.ErrNotFound)
	list, err := e.s.Messages(e.ctx, f.room.ID, 0, 10, false)
	must(t, err)
	if len(list) != 2 || !list[0].Deleted || list[1].Deleted || list[0].Body != "지울 메시지" || !list[0].UpdateDate.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after delete: %+v", list)
	}
	n, err := e.s.UnreadCount(e.ctx, f.room.ID, f.customerSp.ID)
	must(t, err)
	if n != 1 {
		t.Fatalf("unread = %d, want 1 (deleted messages do not count)", n)
	}
	// Pages without deleted messages are full pages of the others.
	c := appendOK(t, e, f.msg(f.customerSp, "지울 두 번째"))
	d := appendOK(t, e, f.msg(f.customerSp, "마지막"))
	_, err = e.s.DeleteMessage(e.ctx, c.ID, t0)
	must(t, err)
	ids := func(list []chat.Message) []int64 {
		out := []int64{}
		for _, m := range list {
			if m.Deleted {
				t.Fatalf("UndeletedMessages gave deleted message %d", m.ID)
			}
			out = append(out, m.ID)
		}
		return out
	}
	for _, tc := range []struct {
		before int64
		limit  int
		want   []int64
	}{
		{0, 2, []int64{b.ID, d.ID}},
		{0, 10, []int64{b.ID, d.ID}},
		{d.ID, 1, []int64{b.ID}},
		{b.ID, 10, []int64{}},
	} {
		list, err := e.s.UndeletedMessages(e.ctx, f.room.ID, tc.before, tc.limit, true)
		must(t, err)
		if got := ids(list); !slices.Equal(got, tc.want) {
			t.Errorf("UndeletedMessages(before %d, limit %d) = %v, want %v", tc.before, tc.limit, got, tc.want)
		}
	}
}

func testReadPositions(t *testing.T, e env) {
	f := newFixture(t, e)
	var ids []int64
	for i := range 6 {
		sp := f.customerSp
		if i%2 == 1 {
			sp = f.agentSp
		}
		ids = append(ids, appendOK(t, e, f.msg(sp, fmt.Sprint(i))).ID)
	}
	unread := func(sp *chat.Speaker) int {
		n, err := e.s.UnreadCount(e.ctx, f.room.ID, sp.ID)
		must(t, err)
		return n
	}
	if c, a := unread(f.customerSp), unread(f.agentSp); c != 3 || a != 3 {
		t.Fatalf("unread before reading: customer %d agent %d, want 3 3", c, a)
	}
	mark := func(sp *chat.Speaker, last int64, want bool) {
		t.Helper()
		moved, err := e.s.MarkRead(e.ctx, f.room.ID, sp.ID, last)
		must(t, err)
		if moved != want {
			t.Fatalf("MarkRead(%d) moved=%v, want %v", last, moved, want)
		}
	}
	mark(f.customerSp, ids[3], true)
	mark(f.customerSp, ids[1], false) // never backward
	mark(f.customerSp, ids[3], false)
	mark(f.agentSp, ids[4], true)
	mark(f.agentSp, ids[5], true)
	pos, err := e.s.ReadPositions(e.ctx, f.room.ID)
	must(t, err)
	if len(pos) != 2 || pos[f.customerSp.ID] != ids[3] || pos[f.agentSp.ID] != ids[5] {
		t.Fatalf("ReadPositions = %v", pos)
	}
	if c, a := unread(f.customerSp), unread(f.agentSp); c != 1 || a != 0 {
		t.Fatalf("unread after reading: customer %d agent %d, want 1 0", c, a)
	}
	if n := unread(f.agent2Sp); n != 6 {
		t.Fatalf("unread for a speaker who never read = %d, want 6", n)
	}
	_, err = e.s.MarkRead(e.ctx, 1<<40, f.agentSp.ID, 1)
	wantErr(t, err, chat.ErrNotFound)
	// Nobody reads past the newest message.
	mark(f.customerSp, 1<<40, true)
	pos, err = e.s.ReadPositions(e.ctx, f.room.ID)
	must(t, err)
	if pos[f.customerSp.ID] != ids[5] {
		t.Fatalf("position after reading the future = %d, want the newest message %d", pos[f.customerSp.ID], ids[5])
	}
	mark(f.customerSp, 1<<40, false)

	// Concurrent marks end at the highest.
	parallel(t, 12, func(i int) (int64, error) {
		_, err := e.s.MarkRead(e.ctx, f.room.ID, f.agent2Sp.ID, ids[i%len(ids)])
		return 0, err
	})
	pos, err = e.s.ReadPositions(e.ctx, f.room.ID)
	must(t, err)
	if pos[f.agent2Sp.ID] != ids[5] {
		t.Fatalf("after concurrent marks position %d, want %d", pos[f.agent2Sp.ID], ids[5])
	}
}

func testTextRoundTrip(t *testing.T, e env) {
	f := newFixture(t, e)
	texts := []string{
		"안녕하세요 😀👍🏽👨‍👩‍👧 가스 점검 문의드립니다",
		"'; DROP TABLE messages; --",
		`Robert'); DELETE FROM rooms WHERE ('1'='1`,
		`back\slash \' \" \\ %_ ? $1 :name @var`,
		"줄바꿈\n탭\t캐리지\r끝",
		"nul\x00byte",
		"𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b zero-width \ufeff bom",
		strings.Repeat("긴 메시지 ", 12000), // > 64 KiB: beyond a MySQL TEXT
		"",
	}
	for i, text := range texts {
		m := f.msg(f.customerSp, text)
		m.Detail, m.Thumbnail, m.SpeakerName = fmt.Sprintf("/files/사진 %d.png", i), "/files/썸네일.png", "김😀"
		m.ClientMessageID = "id-😀-" + fmt.Sprint(len(text))
		stored := appendOK(t, e, m)
		got, err := e.s.Message(e.ctx, stored.ID)
		must(t, err)
		if got.Body != text || got.Detail != m.Detail || got.Thumbnail != m.Thumbnail || got.SpeakerName != "김😀" || got.ClientMessageID != m.ClientMessageID {
			t.Errorf("round trip of %q: got %q", trim(text), trim(got.Body))
		}
	}
	// Names and logins too.
	c, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "8008", "이름'; --😀")
	must(t, err)
	got, err := e.s.Customer(e.ctx, c.ID)
	must(t, err)
	if got.Name != "이름'; --😀" {
		t.Errorf("customer name = %q", got.Name)
	}
	login := fmt.Sprintf("상담원😀-%d", f.company.ID)
	must(t, e.s.CreateMember(e.ctx, &chat.Member{CompanyID: f.company.ID, LoginName: login, Name: "x"}))
	m, err := e.s.MemberByLogin(e.ctx, login)
	must(t, err)
	if m.LoginName != login {
		t.Errorf("login = %q", m.LoginName)
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Invalid UTF-8 is stored with U+FFFD in place of the bad bytes, the same on
// every backend, rather than refused by one and kept by another.
func testInvalidUTF8(t *testing.T, e env) {
	f := newFixture(t, e)
	m := f.msg(f.customerSp, "깨진\xff\xfe바이트\xc3")
	m.ClientMessageID = "bad\xffid"
	stored := appendOK(t, e, m)
	got, err := e.s.Message(e.ctx, stored.ID)
	must(t, err)
	if got.Body != "깨진\uFFFD바이트\uFFFD" || got.ClientMessageID != "bad\uFFFDid" {
		t.Fatalf("stored %q / %q", got.Body, got.ClientMessageID)
	}
	// The cleaned id still deduplicates the same raw retry.
	retry := f.msg(f.customerSp, "retry")
	retry.ClientMessageID = "bad\xffid"
	_, dup, err := e.s.AppendMessage(e.ctx, retry)
	must(t, err)
	if !dup {
		t.Fatal("retry with the same invalid id was stored again")
	}
	c, err := e.s.EnsureCustomer(e.ctx, f.company.ID, "9009", "\xff고객")
	must(t, err)
	if c.Name != "\uFFFD고객" {
		t.Fatalf("customer name %q", c.Name)
	}
}

func testTimesInUTC(t *testing.T, e env) {
	f := newFixture(t, e)
	seoul := time.FixedZone("KST", 9*3600)
	local := time.Date(2026, 11, 23, 18, 30, 15, 123456789, seoul)
	m := f.msg(f.agentSp, "시간")
	m.CreateDate = local
	stored := appendOK(t, e, m)
	got, err := e.s.Message(e.ctx, stored.ID)
	must(t, err)
	want := local.Truncate(time.Microsecond)
	if !got.CreateDate.Equal(want) || got.CreateDate.Location() != time.UTC || !stored.CreateDate.Equal(got.CreateDate) {
		t.Fatalf("CreateDate = %v (%v), want %v in UTC", got.CreateDate, got.CreateDate.Location(), want)
	}
	r, _, err := e.s.EndRoom(e.ctx, f.room.ID, local)
	must(t, err)
	if r.EndDate.Location() != time.UTC || !r.EndDate.Equal(want) {
		t.Fatalf("EndDate = %v", r.EndDate)
	}
}

func testClose(t *testing.T, e env) {
	if e.dsn == "" {
		t.Skip("an in-memory database ends with its store")
	}
	f := newFixture(t, e)
	s, err := Open(e.ctx, e.dsn, testLogger(t))
	must(t, err)
	stored, _, err := s.AppendMessage(e.ctx, f.msg(f.customerSp, "닫기 전"))
	must(t, err)
	must(t, s.Close())
	must(t, s.Close()) // twice is harmless
	if _, _, err := s.AppendMessage(e.ctx, f.msg(f.customerSp, "닫은 후")); err == nil {
		t.Fatal("AppendMessage after Close succeeded")
	}
	got, err := e.s.Message(e.ctx, stored.ID)
	must(t, err)
	if got.Body != "닫기 전" {
		t.Fatalf("message stored before Close = %q", got.Body)
	}
}

// Closing while messages are in flight: every append either succeeds and
// its message is stored, or fails as closed and its message is not.
func testCloseUnderLoad(t *testing.T, e env) {
	if e.dsn == "" {
		t.Skip("an in-memory database ends with its store")
	}
	f := newFixture(t, e)
	s, err := Open(e.ctx, e.dsn, testLogger(t))
	must(t, err)
	const senders = 32
	var (
		mu        sync.Mutex
		outcomes  = map[string]error{}
		succeeded int
		wg        sync.WaitGroup
	)
	for w := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				m := f.msg(f.customerSp, "closing")
				m.ClientMessageID = fmt.Sprintf("close-%d-%d", w, i)
				_, _, err := s.AppendMessage(e.ctx, m)
				mu.Lock()
				outcomes[m.ClientMessageID] = err
				if err == nil {
					succeeded++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	// Close once messages are flowing.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := succeeded
		mu.Unlock()
		if n >= 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d appends succeeded", n)
		}
	}
	must(t, s.Close())
	wg.Wait()

	stored := map[string]bool{}
	for before := int64(0); ; {
		page, err := e.s.Messages(e.ctx, f.room.ID, before, maxMessageLimit, true)
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			stored[m.ClientMessageID] = true
		}
		before = page[0].ID
	}
	for cid, err := range outcomes {
		switch {
		case err == nil && !stored[cid]:
			t.Errorf("%s: acknowledged but not stored", cid)
		case err != nil && !errors.Is(err, errClosed):
			t.Errorf("%s: %v, want a closed error", cid, err)
		case err != nil && stored[cid]:
			t.Errorf("%s: refused as closed but stored", cid)
		}
	}
	if len(stored) != succeeded {
		t.Errorf("%d messages stored, %d acknowledged", len(stored), succeeded)
	}
}
