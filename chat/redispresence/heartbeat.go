package redispresence

import (
	"context"
	"errors"
	"fmt"
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
	} else {
		// Nothing to refresh: still find out whether Redis is back.
		if err := p.client.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redispresence: ping: %w", err)
		}
	}
	if len(rewrite) > 0 {
		_, err := p.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			for id := range rewrite {
				p.queueRewrite(ctx, pipe, id)
			}
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
		if len(p.local) > 0 && p.healthy.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			_, err = p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
				for id := range p.local {
					pipe.Del(ctx, p.nodeKey(id))
					pipe.SRem(ctx, p.roomKey(id), p.nodeID)
				}
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
