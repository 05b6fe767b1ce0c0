package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
	kt "github.com/cstalk/cstalk/video/knowledgetalk"
)

// The KnowledgeTalk licences and rooms on every backend.
func TestKnowledgeTalkStore(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, _ := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c1, c2 := &chat.Company{Name: "가스 1"}, &chat.Company{Name: "가스 2"}
			for _, c := range []*chat.Company{c1, c2} {
				if err := s.SaveCompany(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			t.Run("Licences", func(t *testing.T) { testKTLicences(t, ctx, s, c1.ID, c2.ID) })
			t.Run("Rooms", func(t *testing.T) { testKTRooms(t, ctx, s, c1.ID, c2.ID) })
		})
	}
}

func testKTLicences(t *testing.T, ctx context.Context, s *Store, c1, c2 int64) {
	l := &kt.Licence{CPCode: "KP-20200101-01", CompanyID: c1, AuthKeyHash: kt.HashAuthKey("key one"), CreatedAt: t0}
	if err := s.SaveKTLicence(ctx, l); err != nil {
		t.Fatal(err)
	}
	got, err := s.KTLicence(ctx, "KP-20200101-01")
	if err != nil {
		t.Fatal(err)
	}
	if got.CompanyID != c1 || !got.Matches("key one") || got.Matches("key two") || !got.CreatedAt.Equal(t0) {
		t.Fatalf("licence %+v", got)
	}
	// Byte for byte: another case is another cpCode.
	if _, err := s.KTLicence(ctx, "kp-20200101-01"); !errors.Is(err, kt.ErrNotFound) {
		t.Fatalf("lower-case cpCode: %v, want not found", err)
	}
	// Saving again replaces company and key.
	l2 := &kt.Licence{CPCode: "KP-20200101-01", CompanyID: c2, AuthKeyHash: kt.HashAuthKey("key two"), CreatedAt: t0.Add(time.Hour)}
	if err := s.SaveKTLicence(ctx, l2); err != nil {
		t.Fatal(err)
	}
	if got, err = s.KTLicence(ctx, "KP-20200101-01"); err != nil || got.CompanyID != c2 || !got.Matches("key two") {
		t.Fatalf("replaced licence %+v, %v", got, err)
	}
	if err := s.SaveKTLicence(ctx, &kt.Licence{CPCode: "B", CompanyID: c2, AuthKeyHash: kt.HashAuthKey("b"), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	list, err := s.KTLicences(ctx, c2)
	if err != nil || len(list) != 2 || list[0].CPCode != "B" || list[1].CPCode != "KP-20200101-01" {
		t.Fatalf("licences of company 2: %+v, %v", list, err)
	}
	if list, err = s.KTLicences(ctx, c1); err != nil || len(list) != 0 {
		t.Fatalf("licences of company 1: %+v, %v", list, err)
	}
	for _, bad := range []*kt.Licence{
		{CPCode: "", CompanyID: c1, AuthKeyHash: kt.HashAuthKey("x"), CreatedAt: t0},
		{CPCode: string(make([]byte, maxCPCodeBytes+1)), CompanyID: c1, AuthKeyHash: kt.HashAuthKey("x"), CreatedAt: t0},
		{CPCode: "X", CompanyID: c1, AuthKeyHash: "plain key", CreatedAt: t0},
	} {
		if err := s.SaveKTLicence(ctx, bad); err == nil {
			t.Errorf("licence %q with hash %q saved", bad.CPCode, bad.AuthKeyHash)
		}
	}
	if err := s.SaveKTLicence(ctx, &kt.Licence{CPCode: "X", CompanyID: 99999, AuthKeyHash: kt.HashAuthKey("x"), CreatedAt: t0}); !errors.Is(err, kt.ErrNotFound) {
		t.Errorf("licence of a missing company: %v, want not found", err)
	}
	if err := s.DeleteKTLicence(ctx, "B"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKTLicence(ctx, "B"); !errors.Is(err, kt.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testKTRooms(t *testing.T, ctx context.Context, s *Store, c1, c2 int64) {
	r := &kt.Room{ID: "01234567", CompanyID: c1, Capacity: 24, CreatedAt: t0, ActiveAt: t0}
	if err := s.CreateKTRoom(ctx, r); err != nil {
		t.Fatal(err)
	}
	// The id is unique across companies.
	if err := s.CreateKTRoom(ctx, &kt.Room{ID: "01234567", CompanyID: c2, Capacity: 24, CreatedAt: t0, ActiveAt: t0}); !errors.Is(err, kt.ErrConflict) {
		t.Fatalf("same id for company 2: %v, want conflict", err)
	}
	got, err := s.KTRoom(ctx, c1, "01234567")
	if err != nil || got.Capacity != 24 || got.CompanyID != c1 || !got.ActiveAt.Equal(t0) {
		t.Fatalf("room %+v, %v", got, err)
	}
	if _, err := s.KTRoom(ctx, c2, "01234567"); !errors.Is(err, kt.ErrNotFound) {
		t.Fatalf("company 2 sees company 1's room: %v", err)
	}
	for _, id := range []string{"1234567", "123456789", "1234567a", "' OR 1=1"} {
		if err := s.CreateKTRoom(ctx, &kt.Room{ID: id, CompanyID: c1, Capacity: 2, CreatedAt: t0, ActiveAt: t0}); err == nil {
			t.Errorf("room id %q accepted", id)
		}
		if _, err := s.KTRoom(ctx, c1, id); !errors.Is(err, kt.ErrNotFound) {
			t.Errorf("room %q: %v", id, err)
		}
	}
	for i := range 3 {
		id := fmt.Sprintf("9000000%d", i)
		if err := s.CreateKTRoom(ctx, &kt.Room{ID: id, CompanyID: c2, Capacity: 5, CreatedAt: t0, ActiveAt: t0.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TouchKTRooms(ctx, []string{"90000000"}, t0.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Idle before t0+90min: 01234567 (t0) and 90000001 (t0+1h).
	n, err := s.DeleteIdleKTRooms(ctx, t0.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("deleted %d idle rooms, %v; want 2", n, err)
	}
	for id, want := range map[string]bool{"01234567": false, "90000000": true, "90000001": false, "90000002": true} {
		company := c2
		if id == "01234567" {
			company = c1
		}
		_, err := s.KTRoom(ctx, company, id)
		if (err == nil) != want {
			t.Errorf("room %s present %v, want %v (%v)", id, err == nil, want, err)
		}
	}
	if err := s.DeleteKTRoom(ctx, "90000000"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKTRoom(ctx, "90000000"); err != nil {
		t.Fatalf("deleting a gone room: %v", err)
	}
}
