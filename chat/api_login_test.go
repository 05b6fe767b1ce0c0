package chat

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLoginThrottle(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	th := LoginThrottle{Limiter: NewMemoryLimiter(clock), PerAddress: 3, PerName: 5, Window: time.Minute}
	const here, there, far = "203.0.113.7:51234", "198.51.100.9:40000", "192.0.2.1:1"

	for i := range 3 {
		// Case and spaces do not make another login.
		if _, err := th.Reserve(ctx, "chat", []string{"agent1", " Agent1 ", "AGENT1"}[i], here); err != nil {
			t.Fatalf("check %d refused: %v", i+1, err)
		}
		advance(time.Second)
	}
	wait, err := th.Reserve(ctx, "chat", "agent1", here)
	if !errors.Is(err, ErrLoginThrottled) || wait != 57*time.Second || RetryAfter(wait) != "57" {
		t.Fatalf("fourth check from one address: %v, wait %v", err, wait)
	}
	// Another scope (the guide login) counts apart.
	if _, err := th.Reserve(ctx, "guide", "agent1", here); err != nil {
		t.Fatalf("guide scope: %v", err)
	}
	// Another address has its own allowance, up to the name's.
	for range 2 {
		if _, err := th.Reserve(ctx, "chat", "agent1", there); err != nil {
			t.Fatalf("another address: %v", err)
		}
	}
	if _, err := th.Reserve(ctx, "chat", "agent1", far); !errors.Is(err, ErrLoginThrottled) {
		t.Fatalf("sixth check of one name from anywhere: %v", err)
	}
	// A right password frees its address, not the name's ceiling.
	if err := th.Succeeded(ctx, "chat", "agent1", here); err != nil {
		t.Fatal(err)
	}
	if _, err := th.Reserve(ctx, "chat", "agent1", here); !errors.Is(err, ErrLoginThrottled) {
		t.Fatalf("the name's ceiling was reset by a success: %v", err)
	}
	advance(time.Minute)
	if _, err := th.Reserve(ctx, "chat", "agent1", far); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestMemoryLimiterBounded(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	l := NewMemoryLimiter(func() time.Time { return now })
	for i := range memoryLimiterMax * 2 {
		l.Take(context.Background(), "name"+idString(int64(i)), 1, 10, time.Hour)
		now = now.Add(time.Millisecond)
	}
	if n := len(l.windows); n > memoryLimiterMax {
		t.Fatalf("%d keys remembered, bound is %d", n, memoryLimiterMax)
	}
	if _, ok := l.windows["name"+idString(memoryLimiterMax*2-1)]; !ok {
		t.Error("the newest key was dropped")
	}
}
