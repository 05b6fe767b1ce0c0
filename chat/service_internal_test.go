package chat

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestFlexInt(t *testing.T) {
	for _, tc := range []struct {
		in    string
		set   bool
		v     int64
		fails bool
	}{
		{`31`, true, 31, false},
		{`"31"`, true, 31, false},
		{`" 31 "`, true, 31, false},
		{`3.0`, true, 3, false},
		{`null`, false, 0, false},
		{`""`, false, 0, false},
		{`true`, true, 1, false},
		{`"abc"`, false, 0, true},
		{`3.5`, false, 0, true},
		{`{}`, false, 0, true},
		{`[1]`, false, 0, true},
		{`"1e3"`, true, 1000, false},
		{`99999999999999999999`, false, 0, true},
	} {
		var f flexInt
		err := json.Unmarshal([]byte(tc.in), &f)
		if (err != nil) != tc.fails || (err == nil && (f.set != tc.set || f.v != tc.v)) {
			t.Errorf("%s -> %+v, %v; want set=%v v=%d fails=%v", tc.in, f, err, tc.set, tc.v, tc.fails)
		}
	}
}

func TestInWindow(t *testing.T) {
	at := func(h, m int) int { return h*60 + m }
	for _, tc := range []struct {
		minute     int
		start, end string
		want       bool
	}{
		{at(9, 0), "09:00", "18:00", true},
		{at(17, 59), "09:00", "18:00", true},
		{at(18, 0), "09:00", "18:00", false},
		{at(8, 59), "09:00", "18:00", false},
		{at(23, 0), "22:00", "06:00", true}, // night shift wraps midnight
		{at(5, 0), "22:00", "06:00", true},
		{at(12, 0), "22:00", "06:00", false},
		{at(12, 0), "", "", false},
		{at(12, 0), "noon", "13:00", false},
		{at(12, 0), "12:00", "12:00", false},
	} {
		if got := inWindow(tc.minute, tc.start, tc.end); got != tc.want {
			t.Errorf("inWindow(%d, %s, %s) = %v", tc.minute, tc.start, tc.end, got)
		}
	}
}

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		dest string
		kind destKind
		id   int64
	}{
		{"user/session/message", destPrivate, 0},
		{"/user/session/message", destPrivate, 0},
		{"sub/socket/room/LOBBY1", destLobby, 1},
		{"/sub/socket/room/LOBBY12", destLobby, 12},
		{"sub/socket/room/147", destRoom, 147},
		{"/sub/socket/room/147", destRoom, 147},
		{"sub/socket/room/0", destOther, 0},
		{"sub/socket/room/-1", destOther, 0},
		{"sub/socket/room/1/x", destOther, 0},
		{"sub/socket/room/LOBBY", destOther, 0},
		{"sub/socket/room/LOBBYx", destOther, 0},
		{"sub/socket/room/", destOther, 0},
		{"sub/other", destOther, 0},
		{"sub/socket/room/99999999999999999999", destOther, 0},
	} {
		kind, id := parseDestination(tc.dest)
		if kind != tc.kind || id != tc.id {
			t.Errorf("parseDestination(%q) = %v, %d; want %v, %d", tc.dest, kind, id, tc.kind, tc.id)
		}
	}
}

func TestFormatDate(t *testing.T) {
	seoul := DefaultConfig().Zone
	at := time.Date(2020, 12, 18, 6, 31, 37, 999_000_000, time.UTC)
	if got := FormatDate(at, seoul); got != "2020-12-18 15:31:37" {
		t.Fatalf("FormatDate = %q", got)
	}
	if got := FormatDate(time.Time{}, seoul); got != "" {
		t.Fatalf("zero time = %q", got)
	}
}

func TestMemoryPresence(t *testing.T) {
	ctx := context.Background()
	p := NewMemoryPresence()
	_ = p.Enter(ctx, 1, Attendee{SessionID: "b", SpeakerID: 2, IsMember: true})
	_ = p.Enter(ctx, 1, Attendee{SessionID: "a", SpeakerID: 1})
	_ = p.Enter(ctx, 2, Attendee{SessionID: "a", SpeakerID: 1})
	got, _ := p.Attendees(ctx, 1)
	if len(got) != 2 || got[0].SessionID != "a" || got[1].SessionID != "b" {
		t.Fatalf("attendees = %+v", got)
	}
	for _, c := range []struct {
		room, speaker int64
		want          bool
	}{{1, 1, true}, {1, 2, true}, {2, 1, true}, {2, 2, false}, {1, 3, false}, {3, 1, false}} {
		if got, _ := p.Present(ctx, c.room, c.speaker); got != c.want {
			t.Fatalf("Present(%d, %d) = %v", c.room, c.speaker, got)
		}
	}
	_ = p.Leave(ctx, 1, "a")
	_ = p.Leave(ctx, 1, "a")
	_ = p.Leave(ctx, 1, "b")
	if got, _ := p.Attendees(ctx, 1); len(got) != 0 {
		t.Fatalf("after leaving: %+v", got)
	}
	if got, _ := p.Present(ctx, 1, 1); got {
		t.Fatal("present after leaving")
	}
	if len(p.rooms) != 1 {
		t.Fatalf("empty rooms are kept: %v", p.rooms)
	}
}

// Connections of a company share one copy of it while the store reads the
// same, and get the store's new values once it changes.
func TestSharedCompany(t *testing.T) {
	s := &Service{}
	text := func(v string) *string { return &v }
	first := &Company{ID: 1, Name: "가", WaitingText: text("기다려 주세요")}
	if got := s.sharedCompany(first); got != first {
		t.Fatalf("first read: %p, want %p", got, first)
	}
	same := &Company{ID: 1, Name: "가", WaitingText: text("기다려 주세요")}
	if got := s.sharedCompany(same); got != first {
		t.Fatalf("an equal read is not shared: %p, want %p", got, first)
	}
	changed := &Company{ID: 1, Name: "가", WaitingText: text("곧 답해 드립니다")}
	if got := s.sharedCompany(changed); got != changed || *got.WaitingText != "곧 답해 드립니다" {
		t.Fatalf("a changed company reads %+v", got)
	}
	if got := s.sharedCompany(&Company{ID: 2, Name: "가", WaitingText: text("곧 답해 드립니다")}); got == changed || got.ID != 2 {
		t.Fatalf("another company shares the first's copy: %+v", got)
	}
	if *first.WaitingText != "기다려 주세요" {
		t.Fatal("a shared copy was modified")
	}
}

func TestSharedMembers(t *testing.T) {
	var rows sharedRows[Member]
	first := &Member{ID: 7, CompanyID: 1, LoginName: "kim", Name: "김상담"}
	if got := rows.share(7, first); got != first {
		t.Fatalf("first read: %p, want %p", got, first)
	}
	if got := rows.share(7, &Member{ID: 7, CompanyID: 1, LoginName: "kim", Name: "김상담"}); got != first {
		t.Fatalf("an equal read is not shared: %p, want %p", got, first)
	}
	// A connection made after the member was renamed holds the new name;
	// one made before keeps what it read.
	renamed := &Member{ID: 7, CompanyID: 1, LoginName: "kim", Name: "김선임"}
	if got := rows.share(7, renamed); got != renamed {
		t.Fatalf("a renamed member reads %+v", got)
	}
	if got := rows.share(7, &Member{ID: 7, CompanyID: 1, LoginName: "kim", Name: "김선임"}); got != renamed {
		t.Fatalf("the renamed row is not shared: %+v", got)
	}
	if first.Name != "김상담" {
		t.Fatal("a shared copy was modified")
	}
	if got := rows.share(8, &Member{ID: 8, CompanyID: 1, LoginName: "kim", Name: "김선임"}); got == renamed || got.ID != 8 {
		t.Fatalf("another member shares the first's copy: %+v", got)
	}
	runtime.KeepAlive(renamed)
	// Once no connection holds a row, its entry goes: the cleanup runs
	// on the runtime's own goroutine after a collection finds the row gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		rows.mu.Lock()
		n := len(rows.rows)
		rows.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries kept after their rows were dropped", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCatalogsComplete(t *testing.T) {
	for key, tx := range eventTexts {
		if strings.TrimSpace(tx.ko) == "" || strings.TrimSpace(tx.en) == "" {
			t.Errorf("text %q lacks a language", key)
		}
		if strings.Count(tx.ko, "%") != strings.Count(tx.en, "%") {
			t.Errorf("text %q: formats differ between languages", key)
		}
	}
	// Every reason the handlers can give has a text.
	for _, key := range []string{"internal", "unauthorized", "already_subscribed", "lobby_forbidden",
		"destination_forbidden", "send_forbidden", "room_not_found", "room_forbidden", "no_room",
		"room_ended", "room_taken", "body_too_large", "invalid_utf8", "malformed_json", "missing_field",
		"invalid_field", "invalid_number", "unknown_event", "message_too_long", "members_only",
		"customers_only", "speaker_mismatch", "message_not_found", "delete_forbidden", "system_delete_forbidden", "invalid_review",
		"review_unassigned", "history_too_long", "system_assigned", "start_working", "start_after_hours",
		"start_lunch", "chatbot_name"} {
		if _, ok := eventTexts[key]; !ok {
			t.Errorf("no text for %q", key)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(DefaultConfig(), nil, nil); err == nil {
		t.Fatal("nil store accepted")
	}
}
