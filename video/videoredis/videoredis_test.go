package videoredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/videoredis"
)

func newPlacement(t *testing.T, url, addr string, lease time.Duration) *videoredis.Placement {
	t.Helper()
	p, err := videoredis.New(context.Background(), videoredis.Options{URL: url, Prefix: "test:", Addr: addr, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func claim(t *testing.T, p *videoredis.Placement, key video.RoomKey) (string, bool) {
	t.Helper()
	addr, self, err := p.Claim(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return addr, self
}

// TestLease: the first claim holds a room; another node is sent there; a
// renewed hold lasts, an unrenewed one is taken over, and the node that
// lost it hears so when it renews; a release frees it at once.
func TestLease(t *testing.T) {
	srv := redistest.Start(t)
	const lease = 500 * time.Millisecond
	a := newPlacement(t, srv.URL(), "10.0.0.1:8080", lease)
	b := newPlacement(t, srv.URL(), "10.0.0.2:8080", lease)
	ctx := context.Background()
	room := video.RoomKey{Company: "1", Kind: video.RoomChat, Name: "7"}
	other := video.RoomKey{Company: "2", Kind: video.RoomChat, Name: "7"}

	if addr, self := claim(t, a, room); !self || addr != "10.0.0.1:8080" {
		t.Fatalf("first claim: %s %v", addr, self)
	}
	if addr, self := claim(t, b, room); self || addr != "10.0.0.1:8080" {
		t.Fatalf("second node's claim: %s %v, want node a", addr, self)
	}
	// The same name in another company is another room.
	if _, self := claim(t, b, other); !self {
		t.Fatal("company 2's r-7 is held by company 1's node")
	}
	// Renewed for three leases, a keeps it.
	for end := time.Now().Add(3 * lease); time.Now().Before(end); time.Sleep(lease / 3) {
		if lost, err := a.Renew(ctx, []video.RoomKey{room}); err != nil || len(lost) != 0 {
			t.Fatalf("renew: lost %v, %v", lost, err)
		}
	}
	if _, self := claim(t, b, room); self {
		t.Fatal("a renewed room was taken over")
	}
	// Unrenewed, it is taken over after the lease.
	deadline := time.Now().Add(10 * lease)
	for {
		if addr, self := claim(t, b, room); self && addr == "10.0.0.2:8080" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a dead node's room was never taken over")
		}
		time.Sleep(lease / 5)
	}
	if lost, err := a.Renew(ctx, []video.RoomKey{room}); err != nil || len(lost) != 1 || lost[0] != room {
		t.Fatalf("renew after the takeover: lost %v, %v", lost, err)
	}
	// a's release of a room it lost changes nothing; b's frees it.
	if err := a.Release(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, self := claim(t, a, room); self {
		t.Fatal("a released b's room")
	}
	if err := b.Release(ctx, room); err != nil {
		t.Fatal(err)
	}
	if _, self := claim(t, a, room); !self {
		t.Fatal("a released room is still held")
	}
}

// TestAnnounceClose: a close announced by one node reaches every node.
func TestAnnounceClose(t *testing.T) {
	srv := redistest.Start(t)
	a := newPlacement(t, srv.URL(), "10.0.0.1:8080", time.Second)
	b := newPlacement(t, srv.URL(), "10.0.0.2:8080", time.Second)
	room := video.RoomKey{Company: "1", Kind: video.RoomGuide, Name: "12"}
	if err := a.AnnounceClose(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*videoredis.Placement{a, b} {
		select {
		case got := <-p.Closes():
			if got != room {
				t.Fatalf("close of %v, want %v", got, room)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no close announcement")
		}
	}
}
