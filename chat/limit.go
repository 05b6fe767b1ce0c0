package chat

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// Limiter counts what a key spends in windows of fixed length: password
// checks of a login, uploads and upload bytes of a customer or a room.
// MemoryLimiter serves one node; chat/redislimit shares the counts between
// every node, so a cluster allows no more than one node would.
type Limiter interface {
	// Take spends n of key's limit in its current window (of length window,
	// begun by the first Take after the last one ended). When that would
	// pass limit it spends nothing and answers false with the time until
	// the window ends. Concurrent Takes never spend more than limit.
	Take(ctx context.Context, key string, n, limit int64, window time.Duration) (ok bool, retryAfter time.Duration, err error)
	// Reset ends key's window: everything it spent is forgotten.
	Reset(ctx context.Context, key string) error
}

// memoryLimiterMax bounds the keys a MemoryLimiter remembers: an attacker
// trying many names must not make it grow without end.
const memoryLimiterMax = 10000

// MemoryLimiter is the Limiter of a single node.
type MemoryLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	windows map[string]*limitWindow
}

type limitWindow struct {
	spent int64
	ends  time.Time
}

var _ Limiter = (*MemoryLimiter)(nil)

// NewMemoryLimiter returns a MemoryLimiter on clock now (nil: time.Now).
func NewMemoryLimiter(now func() time.Time) *MemoryLimiter {
	if now == nil {
		now = time.Now
	}
	return &MemoryLimiter{now: now, windows: make(map[string]*limitWindow)}
}

func (l *MemoryLimiter) Take(_ context.Context, key string, n, limit int64, window time.Duration) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	w := l.windows[key]
	if w == nil || !now.Before(w.ends) {
		if w == nil && len(l.windows) >= memoryLimiterMax {
			l.pruneLocked(now)
		}
		w = &limitWindow{ends: now.Add(window)}
		l.windows[key] = w
	}
	if w.spent+n > limit {
		return false, w.ends.Sub(now), nil
	}
	w.spent += n
	return true, 0, nil
}

func (l *MemoryLimiter) Reset(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.windows, key)
	return nil
}

// pruneLocked drops ended windows and, if that is not enough, those that
// end first, down to three quarters of the bound.
func (l *MemoryLimiter) pruneLocked(now time.Time) {
	for k, w := range l.windows {
		if !now.Before(w.ends) {
			delete(l.windows, k)
		}
	}
	excess := len(l.windows) - memoryLimiterMax*3/4
	if excess <= 0 {
		return
	}
	keys := slices.Collect(maps.Keys(l.windows))
	slices.SortFunc(keys, func(a, b string) int { return l.windows[a].ends.Compare(l.windows[b].ends) })
	for _, k := range keys[:excess] {
		delete(l.windows, k)
	}
}
