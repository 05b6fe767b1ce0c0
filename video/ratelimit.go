package video

import "time"

// TokenBucket bounds what one signaling connection may ask: rate tokens
// a second, at most burst saved up. The connection's reader owns it (it
// is not safe for concurrent use).
type TokenBucket struct {
	rate, burst float64
	tokens      float64
	refilled    time.Time
}

// NewTokenBucket returns a full bucket.
func NewTokenBucket(rate, burst float64, now time.Time) TokenBucket {
	return TokenBucket{rate: rate, burst: burst, tokens: burst, refilled: now}
}

// Allow takes cost tokens if there are that many.
func (b *TokenBucket) Allow(now time.Time, cost float64) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.refilled).Seconds()*b.rate)
	b.refilled = now
	if b.tokens < cost {
		return false
	}
	b.tokens -= cost
	return true
}
