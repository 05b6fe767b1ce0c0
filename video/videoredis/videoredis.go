// Package videoredis places video rooms on the nodes of a cluster through
// Redis (video.Placement): each room's node is recorded under a key that
// the node renews; a dead node's keys expire and the next join takes its
// rooms over. Closing a room is announced on a channel every node hears.
package videoredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/video"
)

// Options configure a Placement.
type Options struct {
	// URL of the Redis server, redis://[user:password@]host:port/db.
	URL string
	// Prefix is put in front of every key and channel ("cstalk:").
	Prefix string
	// Addr is this node's relay address: host:port of its HTTP listener as
	// the other nodes reach it.
	Addr string
	// Lease is how long a room stays this node's without a renewal
	// (default 10s): how long a dead node's rooms wait to be taken over.
	Lease time.Duration
	Log   *slog.Logger
}

// Placement is the Redis placement of one node.
type Placement struct {
	client *redis.Client
	pubsub *redis.PubSub
	prefix string
	// self is the value of this node's keys: a random id (a restarted node
	// at the same address is another node) and the relay address.
	self   string
	lease  time.Duration
	log    *slog.Logger
	closes chan video.RoomKey

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ video.Placement = (*Placement)(nil)

// claim records ARGV[1] as the room's node unless another node holds it,
// and returns the holder. Renewal is the same step.
var claim = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return v`)

var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// New connects to Redis and listens for close announcements.
func New(ctx context.Context, opts Options) (*Placement, error) {
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("videoredis: parse URL: %w", err)
	}
	if opts.Addr == "" || strings.ContainsAny(opts.Addr, " /") {
		return nil, fmt.Errorf("videoredis: relay address %q: want host:port", opts.Addr)
	}
	if opts.Lease <= 0 {
		opts.Lease = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("videoredis: node id: %w", err)
	}
	p := &Placement{client: redis.NewClient(ropts), prefix: opts.Prefix + "video:",
		self: hex.EncodeToString(id[:]) + " " + opts.Addr, lease: opts.Lease,
		log: opts.Log.With("component", "videoredis"), closes: make(chan video.RoomKey, 64)}
	p.pubsub = p.client.Subscribe(ctx, p.prefix+"close")
	if _, err := p.pubsub.Receive(ctx); err != nil {
		_ = p.pubsub.Close()
		_ = p.client.Close()
		return nil, fmt.Errorf("videoredis: subscribe: %w", err)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.listen()
	return p, nil
}

func (p *Placement) roomKey(k video.RoomKey) string { return p.prefix + "room:" + k.String() }

// Claim implements video.Placement.
func (p *Placement) Claim(ctx context.Context, key video.RoomKey) (string, bool, error) {
	v, err := claim.Run(ctx, p.client, []string{p.roomKey(key)}, p.self, p.lease.Milliseconds()).Text()
	if err != nil {
		return "", false, fmt.Errorf("videoredis: claim %s: %w", key, err)
	}
	_, addr, ok := strings.Cut(v, " ")
	if !ok {
		return "", false, fmt.Errorf("videoredis: room %s is held by %q", key, v)
	}
	return addr, v == p.self, nil
}

// Renew implements video.Placement: one round trip for all keys.
func (p *Placement) Renew(ctx context.Context, keys []video.RoomKey) ([]video.RoomKey, error) {
	if err := claim.Load(ctx, p.client).Err(); err != nil {
		return nil, fmt.Errorf("videoredis: renew: %w", err)
	}
	cmds := make([]*redis.Cmd, len(keys))
	_, err := p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = claim.EvalSha(ctx, pipe, []string{p.roomKey(k)}, p.self, p.lease.Milliseconds())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("videoredis: renew %d rooms: %w", len(keys), err)
	}
	var lost []video.RoomKey
	for i, c := range cmds {
		if v, _ := c.Text(); v != p.self {
			lost = append(lost, keys[i])
		}
	}
	return lost, nil
}

// Release implements video.Placement.
func (p *Placement) Release(ctx context.Context, key video.RoomKey) error {
	if err := release.Run(ctx, p.client, []string{p.roomKey(key)}, p.self).Err(); err != nil {
		return fmt.Errorf("videoredis: release %s: %w", key, err)
	}
	return nil
}

// Lease implements video.Placement.
func (p *Placement) Lease() time.Duration { return p.lease }

// AnnounceClose implements video.Placement.
func (p *Placement) AnnounceClose(ctx context.Context, key video.RoomKey) error {
	b, err := json.Marshal(key)
	if err != nil {
		return fmt.Errorf("videoredis: announce close: %w", err)
	}
	if err := p.client.Publish(ctx, p.prefix+"close", b).Err(); err != nil {
		return fmt.Errorf("videoredis: announce close of %s: %w", key, err)
	}
	return nil
}

// Closes implements video.Placement.
func (p *Placement) Closes() <-chan video.RoomKey { return p.closes }

// listen hands close announcements to Closes; go-redis resubscribes after
// a lost connection.
func (p *Placement) listen() {
	defer p.wg.Done()
	defer close(p.closes)
	msgs := p.pubsub.Channel()
	for {
		select {
		case <-p.ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			var key video.RoomKey
			if err := json.Unmarshal([]byte(m.Payload), &key); err != nil {
				p.log.Warn("bad room close announcement", "payload", m.Payload, "err", err)
				continue
			}
			select {
			case p.closes <- key:
			case <-p.ctx.Done():
				return
			}
		}
	}
}

// Close stops listening and disconnects; the rooms this node holds expire
// unless released before.
func (p *Placement) Close() error {
	p.cancel()
	err := p.pubsub.Close()
	p.wg.Wait()
	return errors.Join(err, p.client.Close())
}
