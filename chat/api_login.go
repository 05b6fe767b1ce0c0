package chat

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
)

// LoginThrottle bounds the password checks of a login: at most PerAddress
// per login name and client address, and PerName per login name from any
// address, in each Window. A check is reserved before it runs, so however
// many arrive at once no more run than allowed; a right password frees its
// address's count. Keying on the address keeps a stranger from locking a
// counselor out from elsewhere, PerName caps a guesser with many addresses.
// Behind a load balancer the address is the client's only when the
// balancer is trusted (cstalk serve --trusted-proxies). With a shared
// Limiter (chat/redislimit) every node counts against the same allowance.
// The counseling login and the guide login use one throttle, each in a
// scope of its own.
type LoginThrottle struct {
	Limiter    Limiter
	PerAddress int64
	// PerName is 0 for no limit across addresses.
	PerName int64
	Window  time.Duration
}

// DefaultLoginThrottle allows 10 checks per login name and address and 100
// per login name in 15 minutes, counted on this node.
func DefaultLoginThrottle() LoginThrottle {
	return LoginThrottle{Limiter: NewMemoryLimiter(nil), PerAddress: 10, PerName: 100, Window: 15 * time.Minute}
}

// ErrLoginThrottled is Reserve's refusal: no check is left for now.
var ErrLoginThrottled = errors.New("chat: too many login attempts")

// Reserve takes one password check of loginName in scope ("chat", "guide")
// from remoteAddr (host:port). It wraps ErrLoginThrottled, with the time
// until a check frees, when none is left; any other error means the count
// could not be read and no check may run.
func (t LoginThrottle) Reserve(ctx context.Context, scope, loginName, remoteAddr string) (retryAfter time.Duration, err error) {
	ok, wait, err := t.Limiter.Take(ctx, t.addressKey(scope, loginName, remoteAddr), 1, t.PerAddress, t.Window)
	if err != nil {
		return 0, err
	}
	if ok && t.PerName > 0 {
		if ok, wait, err = t.Limiter.Take(ctx, t.nameKey(scope, loginName), 1, t.PerName, t.Window); err != nil {
			return 0, err
		}
	}
	if !ok {
		return wait, ErrLoginThrottled
	}
	return 0, nil
}

// Succeeded frees loginName's checks from remoteAddr after a right password
// (not those across addresses: a guesser must not get them back by
// waiting for the counselor to log in).
func (t LoginThrottle) Succeeded(ctx context.Context, scope, loginName, remoteAddr string) error {
	return t.Limiter.Reset(ctx, t.addressKey(scope, loginName, remoteAddr))
}

func (t LoginThrottle) nameKey(scope, loginName string) string {
	return "login:" + scope + ":" + strconv.Quote(strings.ToLower(strings.TrimSpace(loginName)))
}

func (t LoginThrottle) addressKey(scope, loginName, remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return t.nameKey(scope, loginName) + ":" + strconv.Quote(host)
}

// RetryAfter renders a wait as a Retry-After header value (whole seconds,
// at least 1).
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
