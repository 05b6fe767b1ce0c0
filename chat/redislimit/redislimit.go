// Package redislimit is the chat.Limiter every node shares through Redis:
// a login's password checks and a customer's uploads are counted once for
// the whole cluster, not once per node.
//
// A key's window is one Redis string, {prefix}limit:{key}, holding what
// was spent, expiring when the window ends. One Lua script reads, checks
// and spends atomically, so concurrent Takes on any nodes never spend past
// the limit.
package redislimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/chat"
)

var _ chat.Limiter = (*Limiter)(nil)

// Options configure a Limiter. Only URL is required.
type Options struct {
	// URL of the Redis server, redis://[user:password@]host:port/db.
	URL string
	// Prefix is put in front of every key: "cstalk:".
	Prefix string
	// Timeout bounds each Redis call. Default 1s.
	Timeout time.Duration
}

// Limiter is a chat.Limiter on Redis.
type Limiter struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
}

// take spends ARGV[1] of KEYS[1]'s limit ARGV[2] in a window of ARGV[3]
// milliseconds: {1, 0} when spent, {0, ms until the window ends} when it
// would pass the limit (nothing spent).
var take = redis.NewScript(`
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local n, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if spent + n > limit then
	local left = redis.call('PTTL', KEYS[1])
	if left < 0 then left = window end
	return {0, left}
end
if redis.call('INCRBY', KEYS[1], n) == n then
	redis.call('PEXPIRE', KEYS[1], window)
end
return {1, 0}
`)

// New connects to Redis; it fails if Redis cannot be reached now, so a
// misconfigured node does not start.
func New(ctx context.Context, opts Options) (*Limiter, error) {
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redislimit: parse URL: %w", err)
	}
	// A Take that fails is answered 503 at once; the client retries.
	ropts.MaxRetries = 1
	l := &Limiter{client: redis.NewClient(ropts), prefix: opts.Prefix, timeout: opts.Timeout}
	if l.timeout <= 0 {
		l.timeout = time.Second
	}
	if err := l.client.Ping(ctx).Err(); err != nil {
		l.client.Close()
		return nil, fmt.Errorf("redislimit: ping: %w", err)
	}
	if err := take.Load(ctx, l.client).Err(); err != nil {
		l.client.Close()
		return nil, fmt.Errorf("redislimit: load script: %w", err)
	}
	return l, nil
}

func (l *Limiter) key(k string) string { return l.prefix + "limit:" + k }

// Take implements chat.Limiter.
func (l *Limiter) Take(ctx context.Context, key string, n, limit int64, window time.Duration) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	ms := max(1, window.Milliseconds())
	res, err := take.Run(ctx, l.client, []string{l.key(key)}, n, limit, ms).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("redislimit: take %q: %w", key, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("redislimit: take %q: answer %v", key, res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}

// Reset implements chat.Limiter.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.client.Del(ctx, l.key(key)).Err(); err != nil {
		return fmt.Errorf("redislimit: reset %q: %w", key, err)
	}
	return nil
}

// Close releases the connections.
func (l *Limiter) Close() error { return l.client.Close() }
