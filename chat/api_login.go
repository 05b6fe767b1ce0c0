package chat

import (
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Password guessing is slowed per login name and client address: after
// loginMaxFailures wrong passwords within loginWindow, that pair is refused
// (429, before any password check) until the window ends. Keying on the
// address as well keeps a stranger from locking a counselor out from
// elsewhere; behind a load balancer it degrades to per login name.
const (
	loginMaxFailures = 10
	loginWindow      = 15 * time.Minute
	// loginTrackedMax bounds the memory an attacker trying many names can
	// make us spend.
	loginTrackedMax = 10000
)

type loginFailures struct {
	count int
	since time.Time
}

// loginLimiter counts recent failed logins. It lives in the API handler, one
// per node: a cluster-wide limit is not worth a Redis round trip per login.
type loginLimiter struct {
	now         func() time.Time
	maxFailures int

	mu       sync.Mutex
	failures map[string]*loginFailures
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, maxFailures: loginMaxFailures, failures: make(map[string]*loginFailures)}
}

func loginKey(r *http.Request, loginName string) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return normalizeLogin(loginName) + "\x00" + host
}

// blocked reports whether key is refused now, and for how long.
func (l *loginLimiter) blocked(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.failures[key]
	if !ok {
		return 0, false
	}
	left := f.since.Add(loginWindow).Sub(l.now())
	if left <= 0 {
		delete(l.failures, key)
		return 0, false
	}
	return left, f.count >= l.maxFailures
}

func (l *loginLimiter) failed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.failures[key]
	if ok && now.Sub(f.since) >= loginWindow {
		ok = false
	}
	if !ok {
		if len(l.failures) >= loginTrackedMax {
			l.pruneLocked(now)
		}
		f = &loginFailures{since: now}
		l.failures[key] = f
	}
	f.count++
}

func (l *loginLimiter) succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// pruneLocked drops finished windows and, if that is not enough, the
// oldest entries down to three quarters of the bound.
func (l *loginLimiter) pruneLocked(now time.Time) {
	for k, f := range l.failures {
		if now.Sub(f.since) >= loginWindow {
			delete(l.failures, k)
		}
	}
	excess := len(l.failures) - loginTrackedMax*3/4
	if excess <= 0 {
		return
	}
	keys := slices.Collect(maps.Keys(l.failures))
	slices.SortFunc(keys, func(a, b string) int { return l.failures[a].since.Compare(l.failures[b].since) })
	for _, k := range keys[:excess] {
		delete(l.failures, k)
	}
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}
