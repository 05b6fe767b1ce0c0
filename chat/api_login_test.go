package chat

import (
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestLoginLimiter(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	l := newLoginLimiter(clock)

	req := httptest.NewRequest("POST", "/api/auth/login", nil)
	req.RemoteAddr = "203.0.113.7:51234"
	key := loginKey(req, " Agent1 ")
	if key != loginKey(req, "agent1") {
		t.Fatal("login keys must ignore case and spaces")
	}
	other := httptest.NewRequest("POST", "/api/auth/login", nil)
	other.RemoteAddr = "198.51.100.9:40000"
	otherKey := loginKey(other, "agent1")

	for i := range loginMaxFailures {
		if _, blocked := l.blocked(key); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.failed(key)
		advance(time.Second)
	}
	wait, blocked := l.blocked(key)
	if !blocked || wait <= 0 || wait > loginWindow {
		t.Fatalf("after %d failures: blocked %v for %v", loginMaxFailures, blocked, wait)
	}
	if retryAfter(wait) != strconv.Itoa(int(loginWindow/time.Second)-loginMaxFailures) {
		t.Errorf("Retry-After %s", retryAfter(wait))
	}
	if _, blocked := l.blocked(otherKey); blocked {
		t.Error("another address is blocked too")
	}
	advance(wait)
	if _, blocked := l.blocked(key); blocked {
		t.Error("still blocked after the window")
	}
	// A success forgets earlier failures.
	for range loginMaxFailures - 1 {
		l.failed(key)
	}
	l.succeeded(key)
	l.failed(key)
	if _, blocked := l.blocked(key); blocked {
		t.Error("blocked although a success came in between")
	}
}

func TestLoginLimiterBounded(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	l := newLoginLimiter(func() time.Time { return now })
	for i := range loginTrackedMax * 2 {
		l.failed("name" + strconv.Itoa(i))
		now = now.Add(time.Millisecond)
	}
	if n := len(l.failures); n > loginTrackedMax {
		t.Fatalf("%d entries tracked, bound is %d", n, loginTrackedMax)
	}
	// The newest are kept.
	if _, ok := l.failures["name"+strconv.Itoa(loginTrackedMax*2-1)]; !ok {
		t.Error("the newest failure was dropped")
	}
}
