// Package redisbus carries broker messages between cstalk nodes through Redis
// pub/sub. It knows topics and opaque payloads, nothing of STOMP or chat.
//
// Each node holds one pub/sub connection and one Redis subscription per topic
// its hub holds (the hub subscribes for the first local subscriber and
// unsubscribes after the last). Every message is framed with the publishing
// node's id so that node drops its own copy: the publisher has already
// delivered it locally.
//
// Redis pub/sub keeps nothing for a disconnected subscriber, so messages
// published while a node is cut off from Redis do not reach it; cstalk stores
// messages before fanning them out, and clients fetch what they missed.
package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/rawconn"
)

var _ broker.Bus = (*Bus)(nil)

// ErrClosed is returned by every call on a closed Bus.
var ErrClosed = errors.New("redisbus: bus closed")

// Options configure a Bus. Only URL is required.
type Options struct {
	// URL of the Redis server, redis://[user:password@]host:port/db (rediss://
	// for TLS).
	URL string
	// Prefix is put in front of every topic to name its Redis channel, so
	// several deployments (or tests) can share one Redis: "cstalk:".
	Prefix string
	// NodeID names this node in every message it publishes (1 to 255 bytes).
	// Empty: a random id. Two nodes must never share one.
	NodeID string
	// Log receives connection trouble and recovery; nil discards.
	Log *slog.Logger
	// HealthInterval is how often the pub/sub connection is pinged. A
	// connection that stays silent for three intervals is replaced, so a
	// half-open connection is found without waiting for TCP. Default 3s.
	HealthInterval time.Duration
	// ReadyTimeout bounds the PING behind Ready. Default 1s.
	ReadyTimeout time.Duration
	// Inbox is how many received messages may wait for Run. Default 4096.
	Inbox int
	// DisableBatching sends every PUBLISH on its own round trip. By default
	// one goroutine sends them, whatever is queued as one pipeline (one
	// ordered stream), which saves a round trip for every publish that came
	// while another was sent and costs a lone publisher a goroutine switch.
	DisableBatching bool
}

// Bus is a broker.Bus on Redis pub/sub.
type Bus struct {
	log        *slog.Logger
	prefix     string
	nodeID     string
	health     time.Duration
	readyLimit time.Duration

	client    *redis.Client
	publishes chan *publishRequest // to runPublisher; nil with DisableBatching
	// subClient holds the pub/sub connection alone, so that every
	// connection it makes is a (re)subscription: conns counts them.
	subClient *redis.Client
	ps        *redis.PubSub
	conns     atomic.Uint64

	// topics is the set the hub holds. Run delivers only these, so once
	// Unsubscribe returns nothing more is delivered on the topic, not even
	// messages that were already on their way.
	topicsMu sync.RWMutex
	topics   map[string]struct{}

	barriers barriers
	inbox    chan inboxMessage
	running  atomic.Bool
	healthy  atomic.Bool // the pub/sub connection answered since it last failed

	stats counters

	ctx       context.Context // ends at Close; owns the goroutines below
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type inboxMessage struct {
	topic   string
	payload []byte
}

// New connects to Redis and starts the goroutines that keep the pub/sub
// connection alive; Close stops them. It fails if Redis cannot be reached
// now, so a misconfigured node does not start.
func New(ctx context.Context, opts Options) (*Bus, error) {
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redisbus: parse URL: %w", err)
	}
	if ropts.MaxRetries == 0 {
		// A retried PUBLISH whose first attempt reached Redis would be
		// delivered twice; the caller gets the error and decides instead.
		ropts.MaxRetries = -1
	}
	if ropts.DialerRetries == 0 {
		// While Redis is down a publish should fail at once, not after five
		// dial attempts; receive paces the pub/sub connection's redials.
		ropts.DialerRetries = 1
	}
	subDial := rawDialer(ropts, false)
	ropts.Dialer = rawDialer(ropts, true)
	nodeID := opts.NodeID
	if nodeID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("redisbus: node id: %w", err)
		}
		nodeID = hex.EncodeToString(b[:])
	}
	if len(nodeID) > maxNodeID {
		return nil, fmt.Errorf("redisbus: node id longer than %d bytes", maxNodeID)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		log:        log.With("component", "redisbus", "node", nodeID),
		prefix:     opts.Prefix,
		nodeID:     nodeID,
		health:     orDefault(opts.HealthInterval, 3*time.Second),
		readyLimit: orDefault(opts.ReadyTimeout, time.Second),
		client:     redis.NewClient(ropts),
		topics:     make(map[string]struct{}),
		inbox:      make(chan inboxMessage, orDefault(opts.Inbox, 4096)),
	}
	b.barriers.pending = make(map[string]chan error)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	subOpts := *ropts
	subOpts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		b.conns.Add(1)
		if ropts.OnConnect != nil {
			return ropts.OnConnect(ctx, cn)
		}
		return nil
	}
	subOpts.Dialer = subDial
	b.subClient = redis.NewClient(&subOpts)
	b.ps = b.subClient.Subscribe(b.ctx)

	if err := b.client.Ping(ctx).Err(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("redisbus: connect to %s: %w", ropts.Addr, err)
	}
	b.wg.Add(2)
	go b.receive()
	go b.keepAlive()
	if !opts.DisableBatching {
		b.publishes = make(chan *publishRequest, publishQueue)
		b.wg.Add(1)
		go b.runPublisher()
	}
	if err := b.barrier(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("redisbus: open pub/sub connection to %s: %w", ropts.Addr, err)
	}
	b.log.Info("connected", "addr", ropts.Addr, "prefix", b.prefix)
	return b, nil
}

// rawDialer dials the bus's plain TCP connections with rawconn, checked
// (for commands) or not (for pub/sub, which receives unasked): a publish
// through the runtime's syscall path kept waking its monitor thread. A
// Unix socket or TLS keeps go-redis's own dialer (nil).
func rawDialer(opts *redis.Options, checked bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if opts.Network != "tcp" || opts.TLSConfig != nil {
		return nil
	}
	timeout := opts.DialTimeout
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return rawconn.Dial(ctx, addr, checked)
	}
}

// onceMoreIfStale calls call again when it failed on a connection Redis
// had closed (a restart, its idle timeout): nothing was sent on that one,
// so Redis sees the command once, on a new connection.
func onceMoreIfStale(call func() error) error {
	err := call()
	if errors.Is(err, rawconn.ErrStale) {
		err = call()
	}
	return err
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// NodeID is the id this node stamps on what it publishes.
func (b *Bus) NodeID() string { return b.nodeID }

func (b *Bus) channel(topic string) string { return b.prefix + topic }

// Publish sends payload to the other nodes subscribed to topic. It returns
// once Redis has handed the message to every subscribed connection, so a
// later Publish from this node reaches each of them after it.
func (b *Bus) Publish(ctx context.Context, topic string, payload []byte) error {
	if b.ctx.Err() != nil {
		return ErrClosed
	}
	if err := b.publish(ctx, b.channel(topic), encode(b.nodeID, payload)); err != nil {
		b.stats.publishErrors.Add(1)
		return fmt.Errorf("redisbus: publish on %q: %w", topic, err)
	}
	b.stats.published.Add(1)
	return nil
}

func (b *Bus) publish(ctx context.Context, channel string, payload []byte) error {
	if b.publishes == nil {
		return onceMoreIfStale(func() error { return b.client.Publish(ctx, channel, payload).Err() })
	}
	req, err := b.submit(ctx, channel, payload)
	if err != nil {
		return err
	}
	return b.await(req)
}

// Subscribe returns once Redis has confirmed the subscription, so every
// message published on topic after it returns is delivered. On error the
// topic is not subscribed.
func (b *Bus) Subscribe(ctx context.Context, topic string) error {
	if b.ctx.Err() != nil {
		return ErrClosed
	}
	b.topicsMu.Lock()
	b.topics[topic] = struct{}{}
	b.topicsMu.Unlock()

	err := b.ps.Subscribe(ctx, b.channel(topic))
	if err == nil {
		err = b.barrier(ctx)
	}
	if err != nil {
		b.topicsMu.Lock()
		delete(b.topics, topic)
		b.topicsMu.Unlock()
		// go-redis remembers the channel even when SUBSCRIBE failed and would
		// subscribe it on the next reconnect; forget it.
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.readyLimit)
		_ = b.ps.Unsubscribe(undo, b.channel(topic))
		cancel()
		return fmt.Errorf("redisbus: subscribe to %q: %w", topic, err)
	}
	return nil
}

// Unsubscribe returns once Redis has dropped the subscription; nothing
// published on topic afterwards is delivered. A failed UNSUBSCRIBE still
// stops delivery here, and the channel is not resubscribed on reconnect.
func (b *Bus) Unsubscribe(ctx context.Context, topic string) error {
	if b.ctx.Err() != nil {
		return ErrClosed
	}
	b.topicsMu.Lock()
	delete(b.topics, topic)
	b.topicsMu.Unlock()

	err := b.ps.Unsubscribe(ctx, b.channel(topic))
	if err == nil {
		err = b.barrier(ctx)
	}
	if err != nil {
		return fmt.Errorf("redisbus: unsubscribe from %q: %w", topic, err)
	}
	return nil
}

func (b *Bus) subscribed(topic string) bool {
	b.topicsMu.RLock()
	_, ok := b.topics[topic]
	b.topicsMu.RUnlock()
	return ok
}

// Run hands deliver what other nodes publish on subscribed topics, in the
// order Redis received it, until ctx ends or the bus is closed; then it
// returns nil. Only one Run may be active at a time.
func (b *Bus) Run(ctx context.Context, deliver func(topic string, payload []byte)) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("redisbus: Run is already active")
	}
	defer b.running.Store(false)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.ctx.Done():
			return nil
		case m := <-b.inbox:
			if b.subscribed(m.topic) {
				b.stats.delivered.Add(1)
				deliver(m.topic, m.payload)
			}
		}
	}
}

// Ready reports an error while the pub/sub connection is down or Redis does
// not answer a PING within ReadyTimeout.
func (b *Bus) Ready(ctx context.Context) error {
	if b.ctx.Err() != nil {
		return ErrClosed
	}
	if !b.healthy.Load() {
		return errors.New("redisbus: pub/sub connection to Redis is down")
	}
	ctx, cancel := context.WithTimeout(ctx, b.readyLimit)
	defer cancel()
	if err := onceMoreIfStale(func() error { return b.client.Ping(ctx).Err() }); err != nil {
		return fmt.Errorf("redisbus: ping: %w", err)
	}
	return nil
}

// Continuity tells a subscriber that keeps state from what it receives
// whether it may have missed something: gen changes each time the pub/sub
// connection is replaced (Redis keeps nothing for a connection that is
// gone, so whatever was published in between is lost), and ok is false
// while the connection is known to be down. A half-open connection is
// only found out within three HealthIntervals.
func (b *Bus) Continuity() (gen uint64, ok bool) {
	return b.conns.Load(), b.healthy.Load()
}

// Close stops Run and the background goroutines and closes the connections.
// Calling it again does nothing.
func (b *Bus) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.cancel()
		psErr := b.ps.Close()
		b.wg.Wait()
		b.barriers.failAll(ErrClosed)
		err = errors.Join(psErr, b.subClient.Close(), b.client.Close())
		if err != nil {
			err = fmt.Errorf("redisbus: close: %w", err)
		}
	})
	return err
}

// Stats are running totals, for metrics.
type Stats struct {
	Published        uint64 // messages handed to Redis
	PublishErrors    uint64
	PublishPipelines uint64 // round trips that carried the batched publishes
	Received         uint64 // messages from other nodes read from Redis
	Delivered        uint64 // messages passed to Run's deliver
	OwnDropped       uint64 // this node's own messages coming back, dropped
	Reconnects       uint64 // pub/sub connection recoveries
	Topics           int    // topics currently subscribed
}

type counters struct {
	published, publishErrors, publishPipelines, received, delivered, ownDropped, reconnects atomic.Uint64
}

// Stats returns the running totals.
func (b *Bus) Stats() Stats {
	b.topicsMu.RLock()
	topics := len(b.topics)
	b.topicsMu.RUnlock()
	return Stats{
		Published:        b.stats.published.Load(),
		PublishErrors:    b.stats.publishErrors.Load(),
		PublishPipelines: b.stats.publishPipelines.Load(),
		Received:         b.stats.received.Load(),
		Delivered:        b.stats.delivered.Load(),
		OwnDropped:       b.stats.ownDropped.Load(),
		Reconnects:       b.stats.reconnects.Load(),
		Topics:           topics,
	}
}

func (b *Bus) topicOf(channel string) (string, bool) {
	return strings.CutPrefix(channel, b.prefix)
}
