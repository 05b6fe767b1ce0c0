// Package redispresence is the cluster-wide chat.Presence on Redis: which
// connections, on any node, are present in which room. It knows rooms,
// sessions and speakers as chat.Attendee values, nothing of STOMP or SQL.
//
// Layout, for room R and node N (the braces keep a room's keys in one Redis
// Cluster slot):
//
//	{prefix}presence:{R}:node:N  hash  session id -> "m:<speakerId>" | "c:<speakerId>"
//	{prefix}presence:{R}:nodes   set   nodes that have a hash for R
//
// Both keys expire after TTL unless the owning node's heartbeat refreshes
// them, so the entries of a node that dies (SIGKILL, lost host) disappear by
// themselves; readers drop a set member whose hash has expired. A node never
// writes another node's hash.
//
// Redis is the shared view, the node's own map is the truth about its own
// connections. While Redis cannot be reached, Enter and Leave only update the
// local map and Attendees answers with this node's connections: the node keeps
// serving its own clients (isOnline and notes for local counselors stay
// right) instead of failing every subscription. The heartbeat rewrites what
// changed meanwhile, and everything after a Redis restart lost the keys.
package redispresence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/chat"
)

var _ chat.Presence = (*Presence)(nil)

// ErrClosed is returned by every call on a closed Presence.
var ErrClosed = errors.New("redispresence: closed")

// Options configure a Presence. Only URL is required.
type Options struct {
	// URL of the Redis server, redis://[user:password@]host:port/db.
	URL string
	// Prefix is put in front of every key, so deployments (or tests) can
	// share one Redis: "cstalk:".
	Prefix string
	// NodeID names this node's entries; two live nodes must never share one.
	// Empty: a random id.
	NodeID string
	// Heartbeat is how often the node refreshes (and, when needed,
	// rewrites) its entries. Default 5s.
	Heartbeat time.Duration
	// TTL is how long entries outlive their node's last heartbeat: the time
	// a dead node's connections still count as present. Default three
	// heartbeats; it must exceed Heartbeat.
	TTL time.Duration
	// Timeout bounds each Redis call. Default 1s.
	Timeout time.Duration
	// Log receives Redis trouble and recovery; nil discards.
	Log *slog.Logger
	// Registerer receives the presence metrics; nil registers none.
	Registerer prometheus.Registerer
	// Gone is called, on one live node, for each connection a dead node held
	// (its heartbeats stopped without a Close), about TTL after it died: chat
	// tells the lobby its customers are OFFLINE. nil: nobody is told; the
	// entries expire all the same.
	Gone func(ctx context.Context, roomID int64, a chat.Attendee)
}

// Presence is a chat.Presence shared by every node through Redis.
type Presence struct {
	log       *slog.Logger
	prefix    string
	nodeID    string
	heartbeat time.Duration
	ttl       time.Duration
	timeout   time.Duration
	client    *redis.Client
	metrics   *metrics

	gone    func(ctx context.Context, roomID int64, a chat.Attendee)
	scripts scripts

	// mu guards the local state and orders this node's Redis writes, so a
	// heartbeat's rewrite can never resurrect a session that just left.
	mu    sync.Mutex
	local map[int64]map[string]chat.Attendee
	// dirty holds rooms whose Redis entries may differ from local, because a
	// write failed or was skipped while Redis was unreachable.
	dirty map[int64]struct{}
	// healthy is false from a failed Redis call until a heartbeat has
	// brought Redis back in line with local.
	healthy atomic.Bool
	// outage wakes the heartbeat when a call finds Redis unreachable.
	outage chan struct{}

	ctx       context.Context // ends at Close; owns the heartbeat goroutine
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New connects to Redis and starts the heartbeat; Close stops it. It fails if
// Redis cannot be reached now, so a misconfigured node does not start.
func New(ctx context.Context, opts Options) (*Presence, error) {
	ropts, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redispresence: parse URL: %w", err)
	}
	// While Redis is down a call should fail at once and the node carry on
	// locally; the heartbeat is the retry.
	ropts.DialerRetries = 1
	ropts.MaxRetries = 1 // every call is idempotent; one retry replaces a connection a Redis restart broke
	nodeID := opts.NodeID
	if nodeID == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("redispresence: node id: %w", err)
		}
		nodeID = hex.EncodeToString(b[:])
	}
	heartbeat := opts.Heartbeat
	if heartbeat <= 0 {
		heartbeat = 5 * time.Second
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = 3 * heartbeat
	}
	if ttl <= heartbeat {
		return nil, fmt.Errorf("redispresence: TTL %v must exceed the heartbeat %v", ttl, heartbeat)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Presence{
		log:       log.With("component", "redispresence", "node", nodeID),
		prefix:    opts.Prefix,
		nodeID:    nodeID,
		heartbeat: heartbeat,
		ttl:       ttl,
		timeout:   timeout,
		client:    redis.NewClient(ropts),
		local:     make(map[int64]map[string]chat.Attendee),
		dirty:     make(map[int64]struct{}),
		outage:    make(chan struct{}, 1),
		gone:      opts.Gone,
		scripts:   newScripts(),
	}
	if p.metrics, err = newMetrics(opts.Registerer, p); err != nil {
		_ = p.client.Close()
		return nil, err
	}
	if err := p.client.Ping(ctx).Err(); err != nil {
		_ = p.client.Close()
		return nil, fmt.Errorf("redispresence: connect to %s: %w", ropts.Addr, err)
	}
	// Registered before the first entry, so a roster is never without the
	// heartbeat record that lets another node sweep it.
	if err := p.scripts.alive.Run(ctx, p.client, []string{p.aliveKey(), p.rosterKey()}, p.nodeID, p.ttl.Milliseconds(), p.rosterTTL().Milliseconds()).Err(); err != nil {
		_ = p.client.Close()
		return nil, fmt.Errorf("redispresence: register node: %w", err)
	}
	p.setHealthy(true)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.beat()
	return p, nil
}

// NodeID is the id of this node's entries.
func (p *Presence) NodeID() string { return p.nodeID }

// Room keys are spelled here and in the sweep script.
func (p *Presence) roomKey(roomID int64) string {
	return p.prefix + "presence:{" + strconv.FormatInt(roomID, 10) + "}:nodes"
}

func (p *Presence) nodeKeyPrefix(roomID int64) string {
	return p.prefix + "presence:{" + strconv.FormatInt(roomID, 10) + "}:node:"
}

func (p *Presence) nodeKey(roomID int64) string { return p.nodeKeyPrefix(roomID) + p.nodeID }

// aliveKey is the sorted set of nodes by the (Redis) time their entries
// expire; rosterKey is a node's hash of all its entries, "room/session" ->
// attendee, which outlives the node so its departures can be announced.
func (p *Presence) aliveKey() string { return p.prefix + "presence:alive" }

func (p *Presence) rosterKeyPrefix() string { return p.prefix + "presence:roster:" }

func (p *Presence) rosterKey() string { return p.rosterKeyPrefix() + p.nodeID }

// rosterTTL is how long a roster outlives its node's last heartbeat: long
// enough for a live node to sweep it, bounded so a cluster that is gone
// altogether leaves nothing behind.
func (p *Presence) rosterTTL() time.Duration { return 3 * p.ttl }

func rosterField(roomID int64, sessionID string) string {
	return strconv.FormatInt(roomID, 10) + "/" + sessionID
}

// Enter records a in the room. It fails only on a closed Presence: Redis
// trouble leaves the entry to the heartbeat.
func (p *Presence) Enter(ctx context.Context, roomID int64, a chat.Attendee) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return ErrClosed
	}
	room := p.local[roomID]
	if room == nil {
		room = make(map[string]chat.Attendee)
		p.local[roomID] = room
	}
	room[a.SessionID] = a
	if !p.healthy.Load() {
		p.dirty[roomID] = struct{}{}
		return nil
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	_, err := p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		nodeKey, roomKey := p.nodeKey(roomID), p.roomKey(roomID)
		pipe.HSet(ctx, nodeKey, a.SessionID, encodeAttendee(a))
		pipe.PExpire(ctx, nodeKey, p.ttl)
		pipe.SAdd(ctx, roomKey, p.nodeID)
		pipe.PExpire(ctx, roomKey, p.ttl)
		pipe.HSet(ctx, p.rosterKey(), rosterField(roomID, a.SessionID), encodeAttendee(a))
		pipe.PExpire(ctx, p.rosterKey(), p.rosterTTL())
		return nil
	})
	if err != nil {
		p.dirty[roomID] = struct{}{}
		p.failed("enter", err)
	}
	return nil
}

// Leave forgets the session in the room; leaving twice is harmless.
func (p *Presence) Leave(ctx context.Context, roomID int64, sessionID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		return ErrClosed
	}
	if room := p.local[roomID]; room != nil {
		delete(room, sessionID)
		if len(room) == 0 {
			delete(p.local, roomID)
		}
	}
	if !p.healthy.Load() {
		p.dirty[roomID] = struct{}{}
		return nil
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	if err := p.scripts.leave.Run(ctx, p.client, []string{p.nodeKey(roomID), p.roomKey(roomID), p.rosterKey()},
		sessionID, p.nodeID, rosterField(roomID, sessionID)).Err(); err != nil {
		p.dirty[roomID] = struct{}{}
		p.failed("leave", err)
	}
	return nil
}

// Attendees lists the room's connections on every live node, ordered by
// session ID. This node's own connections come from its local map, which is
// exact even while its Redis entries lag behind.
func (p *Presence) Attendees(ctx context.Context, roomID int64) ([]chat.Attendee, error) {
	if p.ctx.Err() != nil {
		return nil, ErrClosed
	}
	out := p.remoteAttendees(ctx, roomID)
	p.mu.Lock()
	for _, a := range p.local[roomID] {
		out = append(out, a)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].SessionID < out[j].SessionID })
	return out, nil
}

// Present reports whether the speaker has a connection in the room on any
// live node. This node's own connections answer first, without a Redis
// round trip: a message's writer is nearly always connected here.
func (p *Presence) Present(ctx context.Context, roomID, speakerID int64) (bool, error) {
	if p.ctx.Err() != nil {
		return false, ErrClosed
	}
	p.mu.Lock()
	for _, a := range p.local[roomID] {
		if a.SpeakerID == speakerID {
			p.mu.Unlock()
			return true, nil
		}
	}
	p.mu.Unlock()
	for _, a := range p.remoteAttendees(ctx, roomID) {
		if a.SpeakerID == speakerID {
			return true, nil
		}
	}
	return false, nil
}

// remoteAttendees lists the room's connections on the other live nodes;
// none while Redis is unreachable, when the node answers for its own alone.
func (p *Presence) remoteAttendees(ctx context.Context, roomID int64) []chat.Attendee {
	if !p.healthy.Load() {
		return nil
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	res, err := p.scripts.attendees.Run(ctx, p.client, []string{p.roomKey(roomID)}, p.nodeKeyPrefix(roomID)).StringSlice()
	if err != nil {
		p.failed("attendees", err)
		return nil
	}
	var remote []chat.Attendee
	for i := 0; i+2 < len(res); i += 3 {
		if res[i] == p.nodeID {
			continue
		}
		a, err := decodeAttendee(res[i+1], res[i+2])
		if err != nil {
			p.log.Warn("unreadable entry", "room", roomID, "from", res[i], "err", err)
			continue
		}
		remote = append(remote, a)
	}
	return remote
}

func (p *Presence) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.timeout)
}

func encodeAttendee(a chat.Attendee) string {
	kind := "c:"
	if a.IsMember {
		kind = "m:"
	}
	return kind + strconv.FormatInt(a.SpeakerID, 10)
}

func decodeAttendee(sessionID, v string) (chat.Attendee, error) {
	kind, id, ok := strings.Cut(v, ":")
	speaker, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || (kind != "m" && kind != "c") {
		return chat.Attendee{}, fmt.Errorf("redispresence: malformed entry %q", v)
	}
	return chat.Attendee{SessionID: sessionID, SpeakerID: speaker, IsMember: kind == "m"}, nil
}
