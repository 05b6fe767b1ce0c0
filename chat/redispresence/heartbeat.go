package redispresence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// failed marks Redis unreachable until the next successful heartbeat.
func (p *Presence) failed(op string, err error) {
	p.metrics.errors.Inc()
	if p.healthy.Swap(false) {
		select {
		case p.outage <- struct{}{}:
		default:
		}
		p.metrics.healthy.Set(0)
		p.log.Warn("redis unreachable, serving this node's presence only", "op", op, "err", err)
	}
}

func (p *Presence) setHealthy(v bool) {
	p.healthy.Store(v)
	if v {
		p.metrics.healthy.Set(1)
	} else {
		p.metrics.healthy.Set(0)
	}
}

// outageProbe is how often the heartbeat tries Redis while it is
// unreachable, so the cluster view is whole again soon after it returns.
const outageProbe = 250 * time.Millisecond

// beat refreshes this node's entries every heartbeat until Close.
func (p *Presence) beat() {
	defer p.wg.Done()
	timer := time.NewTimer(p.heartbeat)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.outage:
			// A call just failed: probe soon rather than at the next beat.
			timer.Reset(outageProbe)
			continue
		case <-timer.C:
		}
		if err := p.refresh(p.ctx); err != nil && p.ctx.Err() == nil {
			p.failed("heartbeat", err)
		} else if err == nil && p.gone != nil {
			// Only a node that announces departures claims dead nodes;
			// unclaimed rosters expire by themselves.
			p.sweep(p.ctx)
		}
		next := p.heartbeat
		if !p.healthy.Load() {
			next = min(next, outageProbe)
		}
		timer.Reset(next)
	}
}

// refresh extends the TTL of every key this node holds and rewrites the rooms
// whose entries are missing (expired during a stall, or lost in a Redis
// restart) or dirty. It marks the Presence healthy once Redis matches local.
func (p *Presence) refresh(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*p.timeout) // one pipelined round trip per step
	defer cancel()

	rooms := make([]int64, 0, len(p.local))
	for id := range p.local {
		rooms = append(rooms, id)
	}
	rewrite := make(map[int64]struct{}, len(p.dirty))
	for id := range p.dirty {
		rewrite[id] = struct{}{}
	}
	missing, err := p.scripts.alive.Run(ctx, p.client, []string{p.aliveKey(), p.rosterKey()}, p.nodeID, p.ttl.Milliseconds(), p.rosterTTL().Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redispresence: heartbeat: %w", err)
	}
	if missing == 1 {
		// Swept as dead, or Redis lost everything: say it all again.
		p.log.Warn("this node's presence was gone from Redis; rewriting it", "rooms", len(rooms))
		for _, id := range rooms {
			rewrite[id] = struct{}{}
		}
	}
	if len(rooms) > 0 {
		cmds, err := p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, id := range rooms {
				pipe.PExpire(ctx, p.nodeKey(id), p.ttl)
				pipe.PExpire(ctx, p.roomKey(id), p.ttl)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redispresence: refresh %d rooms: %w", len(rooms), err)
		}
		for i, id := range rooms {
			if !cmds[2*i].(*redis.BoolCmd).Val() || !cmds[2*i+1].(*redis.BoolCmd).Val() {
				rewrite[id] = struct{}{}
			}
		}
	}
	if len(rewrite) > 0 {
		_, err := p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			for id := range rewrite {
				p.queueRewrite(ctx, pipe, id)
			}
			p.queueRoster(ctx, pipe)
			return nil
		})
		if err != nil {
			return fmt.Errorf("redispresence: rewrite %d rooms: %w", len(rewrite), err)
		}
		p.metrics.rewrites.Add(float64(len(rewrite)))
		clear(p.dirty)
	}
	if !p.healthy.Load() {
		p.setHealthy(true)
		p.log.Info("redis reachable again, presence rewritten", "rooms", len(rewrite))
	}
	return nil
}

// queueRewrite replaces this node's entries of a room with the local ones.
func (p *Presence) queueRewrite(ctx context.Context, pipe redis.Pipeliner, roomID int64) {
	nodeKey, roomKey := p.nodeKey(roomID), p.roomKey(roomID)
	pipe.Del(ctx, nodeKey)
	room := p.local[roomID]
	if len(room) == 0 {
		pipe.SRem(ctx, roomKey, p.nodeID)
		return
	}
	fields := make([]any, 0, 2*len(room))
	for sid, a := range room {
		fields = append(fields, sid, encodeAttendee(a))
	}
	pipe.HSet(ctx, nodeKey, fields...)
	pipe.PExpire(ctx, nodeKey, p.ttl)
	pipe.SAdd(ctx, roomKey, p.nodeID)
	pipe.PExpire(ctx, roomKey, p.ttl)
}

// queueRoster replaces this node's roster with its local entries.
func (p *Presence) queueRoster(ctx context.Context, pipe redis.Pipeliner) {
	pipe.Del(ctx, p.rosterKey())
	var fields []any
	for roomID, room := range p.local {
		for sid, a := range room {
			fields = append(fields, rosterField(roomID, sid), encodeAttendee(a))
		}
	}
	if len(fields) > 0 {
		pipe.HSet(ctx, p.rosterKey(), fields...)
		pipe.PExpire(ctx, p.rosterKey(), p.rosterTTL())
	}
}

// maxSweep bounds how many dead nodes one heartbeat claims.
const maxSweep = 16

// sweep claims nodes that died without a Close and hands each connection
// they held to Gone. A node claimed here is gone from every other node's
// sweep, so each departure is announced once.
func (p *Presence) sweep(ctx context.Context) {
	for range maxSweep {
		callCtx, cancel := p.callContext(ctx)
		res, err := p.scripts.sweep.Run(callCtx, p.client, []string{p.aliveKey()}, p.rosterKeyPrefix(), p.prefix+"presence:").StringSlice()
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				p.failed("sweep", err)
			}
			return
		}
		if len(res) == 0 {
			return
		}
		node, entries := res[0], res[1:]
		p.metrics.sweptNodes.Inc()
		p.log.Warn("node died without leaving; its connections are gone", "dead", node, "connections", len(entries)/2)
		if node == p.nodeID {
			continue // this node stalled past its TTL; the next beat rewrites it
		}
		for i := 0; i+1 < len(entries); i += 2 {
			room, session, ok := strings.Cut(entries[i], "/")
			roomID, err := strconv.ParseInt(room, 10, 64)
			if !ok || err != nil {
				continue
			}
			a, err := decodeAttendee(session, entries[i+1])
			if err != nil {
				continue
			}
			if p.gone != nil {
				p.gone(ctx, roomID, a)
			}
		}
	}
}

// Close stops the heartbeat and removes this node's entries, so the other
// nodes see its connections leave at once rather than after TTL.
func (p *Presence) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.cancel()
		p.mu.Unlock()
		p.wg.Wait()

		p.mu.Lock()
		defer p.mu.Unlock()
		if p.healthy.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			_, err = p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
				for id := range p.local {
					pipe.Del(ctx, p.nodeKey(id))
					pipe.SRem(ctx, p.roomKey(id), p.nodeID)
				}
				pipe.Del(ctx, p.rosterKey())
				pipe.ZRem(ctx, p.aliveKey(), p.nodeID)
				return nil
			})
			cancel()
			if err != nil {
				// Not fatal: the entries expire after TTL.
				err = fmt.Errorf("redispresence: remove entries: %w", err)
			}
		}
		clear(p.local)
		err = errors.Join(err, p.client.Close())
	})
	return err
}
