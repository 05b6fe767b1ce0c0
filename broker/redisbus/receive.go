package redisbus

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const healthPing = "health"

// receive is the only reader of the pub/sub connection. go-redis redials and
// resubscribes every channel it holds when a read fails; this loop paces the
// retries and keeps Ready honest.
func (b *Bus) receive() {
	defer b.wg.Done()
	failures := 0
	for {
		// A healthy connection answers keepAlive's pings well within this
		// deadline. A read that hits it makes go-redis drop the connection and
		// dial a new one, which is how a half-open connection is replaced.
		ctx, cancel := context.WithTimeout(b.ctx, 3*b.health)
		msg, err := b.ps.Receive(ctx)
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			b.healthy.Store(false)
			// Replies to pings written on the lost connection never come;
			// waiters ping again on the new one.
			b.barriers.failAll(errReconnect)
			if failures == 0 {
				b.log.Warn("pub/sub connection lost", "err", err)
			} else {
				b.log.Debug("pub/sub reconnect failed", "err", err, "attempt", failures)
			}
			failures++
			if !b.pause(backoff(failures)) {
				return
			}
			// Dials, resubscribes, and gets an answer the next read sees.
			ping, cancel := context.WithTimeout(b.ctx, b.health)
			_ = b.ps.Ping(ping, healthPing)
			cancel()
			continue
		}
		if failures > 0 {
			b.log.Info("pub/sub connection restored", "attempts", failures)
			b.stats.reconnects.Add(1)
			failures = 0
		}
		b.healthy.Store(true)

		switch msg := msg.(type) {
		case *redis.Message:
			b.handle(msg)
		case *redis.Pong:
			b.barriers.done(msg.Payload)
		case *redis.Subscription:
			// Confirmations are awaited through the ping that follows them.
		}
	}
}

func (b *Bus) handle(msg *redis.Message) {
	topic, ok := b.topicOf(msg.Channel)
	if !ok {
		return
	}
	origin, payload, err := decode(msg.Payload)
	if err != nil {
		b.log.Warn("dropping malformed message", "channel", msg.Channel, "err", err)
		return
	}
	if origin == b.nodeID {
		b.stats.ownDropped.Add(1)
		return
	}
	b.stats.received.Add(1)
	select {
	case b.inbox <- inboxMessage{topic: topic, payload: payload}:
	case <-b.ctx.Done():
	}
}

// pause waits d unless the bus closes first.
func (b *Bus) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

func backoff(failures int) time.Duration {
	d := 50 * time.Millisecond << min(failures-1, 5)
	return min(d, time.Second)
}

// keepAlive pings the pub/sub connection so receive always has something to
// read from a live server.
func (b *Bus) keepAlive() {
	defer b.wg.Done()
	t := time.NewTicker(b.health)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(b.ctx, b.health)
			if err := b.ps.Ping(ctx, healthPing); err != nil && b.ctx.Err() == nil {
				b.log.Debug("health ping failed", "err", err)
			}
			cancel()
		}
	}
}

var errReconnect = errors.New("redisbus: pub/sub connection replaced")

// barrier returns once Redis has processed every command this node wrote
// on the pub/sub connection before it: Redis answers a connection's commands
// in order, so the reply to a PING written after SUBSCRIBE means the
// subscription is active. If the connection is replaced meanwhile, go-redis
// has resubscribed on the new one and the PING is repeated there.
func (b *Bus) barrier(ctx context.Context) error {
	writeFailures := 0
	for {
		token, done := b.barriers.add()
		err := b.ps.Ping(ctx, token)
		if err == nil {
			select {
			case err = <-done:
			case <-ctx.Done():
				err = ctx.Err()
			}
		} else if ctx.Err() == nil && b.ctx.Err() == nil && writeFailures < 2 {
			// A write on a connection that just died fails, and go-redis
			// dials a new one (resubscribing) before returning: try there.
			writeFailures++
			err = errReconnect
		}
		b.barriers.remove(token)
		if !errors.Is(err, errReconnect) {
			return err
		}
	}
}

// barriers are the pings awaiting their reply, by payload.
type barriers struct {
	mu      sync.Mutex
	seq     uint64
	pending map[string]chan error
}

func (s *barriers) add() (string, <-chan error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	token := "barrier:" + strconv.FormatUint(s.seq, 10)
	done := make(chan error, 1)
	s.pending[token] = done
	return token, done
}

func (s *barriers) remove(token string) {
	s.mu.Lock()
	delete(s.pending, token)
	s.mu.Unlock()
}

func (s *barriers) done(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if done, ok := s.pending[token]; ok {
		done <- nil
		delete(s.pending, token)
	}
}

func (s *barriers) failAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for token, done := range s.pending {
		done <- err
		delete(s.pending, token)
	}
}
