package redisbus

import (
	"context"
	"runtime"

	"github.com/redis/go-redis/v9"
)

// A node's publishes go out through one goroutine that sends whatever is
// queued as one pipeline: one write and one read for every PUBLISH waiting.
// Messages stored in one commit are published by as many callers at once,
// and each PUBLISH alone cost a write, a read and a wakeup of its own on
// both sides; with go-redis's autopipelining each still went alone, in a
// goroutine of its own, since nothing else was queued yet when it flushed.
const (
	// maxPublishBatch bounds the PUBLISHes of one pipeline, and
	// maxPublishBytes their payloads (soft: a batch takes its first
	// message whatever its size), so one write stays short.
	maxPublishBatch = 256
	maxPublishBytes = 256 << 10
	// publishQueue is how many publishes may wait for the publisher before
	// callers wait to queue theirs.
	publishQueue = 4096
)

type publishRequest struct {
	ctx     context.Context
	channel string
	payload []byte
	done    chan error // buffered: the publisher never waits for a caller
}

// submit queues a PUBLISH for the publisher goroutine.
func (b *Bus) submit(ctx context.Context, channel string, payload []byte) (*publishRequest, error) {
	req := &publishRequest{ctx: ctx, channel: channel, payload: payload, done: make(chan error, 1)}
	select {
	case b.publishes <- req:
		return req, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.ctx.Done():
		return nil, ErrClosed
	}
}

// await waits for the publisher's answer to req. A caller that gives up
// early gets its context's error; the message may still go out.
func (b *Bus) await(req *publishRequest) error {
	select {
	case err := <-req.done:
		return err
	case <-req.ctx.Done():
		return req.ctx.Err()
	case <-b.ctx.Done():
		return ErrClosed
	}
}

// runPublisher sends the queued publishes until the bus is closed.
func (b *Bus) runPublisher() {
	defer b.wg.Done()
	batch := make([]*publishRequest, 0, maxPublishBatch)
	for {
		select {
		case <-b.ctx.Done():
			return
		case req := <-b.publishes:
			// The first publish of a commit wakes the publisher at once; let
			// the other runnable callers queue theirs before the pipeline is
			// cut, as the store's writer does with its batch.
			runtime.Gosched()
			batch = b.fillPublishes(append(batch[:0], req))
			b.sendPublishes(batch)
			clear(batch) // let the payloads go
		}
	}
}

// fillPublishes adds whatever is queued right now, within the batch's
// bounds.
func (b *Bus) fillPublishes(batch []*publishRequest) []*publishRequest {
	size := len(batch[0].payload)
	for len(batch) < maxPublishBatch && size < maxPublishBytes {
		select {
		case req := <-b.publishes:
			batch = append(batch, req)
			size += len(req.payload)
		default:
			return batch
		}
	}
	return batch
}

// sendPublishes sends batch as one pipeline and answers each request. A
// request whose caller has given up is answered without being sent.
func (b *Bus) sendPublishes(batch []*publishRequest) {
	live := batch[:0]
	for _, req := range batch {
		if err := req.ctx.Err(); err != nil {
			req.done <- err
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	// Pipelined gives every command its own result, failed or not; its
	// error is only the first of them.
	var cmds []redis.Cmder
	_ = onceMoreIfStale(func() error {
		var err error
		cmds, err = b.client.Pipelined(b.ctx, func(p redis.Pipeliner) error {
			for _, req := range live {
				p.Publish(b.ctx, req.channel, req.payload)
			}
			return nil
		})
		return err
	})
	b.stats.publishPipelines.Add(1)
	for i, req := range live {
		req.done <- cmds[i].Err()
	}
}
