package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cstalk/cstalk/broker/bustest"
	"github.com/cstalk/cstalk/broker/redisbus/redistest"
)

// holdFirstPipeline keeps the bus's first pipeline of publishes from being
// sent until release is closed, and records every such pipeline's size.
type holdFirstPipeline struct {
	held    chan struct{} // closed once the first pipeline waits
	release chan struct{}

	mu    sync.Mutex
	sizes []int
}

func (h *holdFirstPipeline) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdFirstPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *holdFirstPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if cmds[0].Name() != "publish" {
			return next(ctx, cmds) // a new connection's greeting
		}
		h.mu.Lock()
		h.sizes = append(h.sizes, len(cmds))
		first := len(h.sizes) == 1
		h.mu.Unlock()
		if first {
			close(h.held)
			<-h.release
		}
		return next(ctx, cmds)
	}
}

// TestPublishesShareAPipeline: what is queued while a pipeline is out goes
// as the next one, in order, each caller answered on its own; a caller
// that gave up while queued is answered so and its message not sent.
func TestPublishesShareAPipeline(t *testing.T) {
	srv := redistest.Start(t)
	ctx := bustest.Context(t)
	bus, err := New(ctx, Options{URL: srv.URL(), Prefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	hook := &holdFirstPipeline{held: make(chan struct{}), release: make(chan struct{})}
	bus.client.AddHook(hook)

	listener := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer listener.Close()
	sub := listener.Subscribe(ctx, "t:room")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}

	first, err := bus.submit(ctx, "t:room", []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	<-hook.held
	const queued = 99
	reqs := []*publishRequest{first}
	gaveUp, giveUp := context.WithCancel(ctx)
	for i := 1; i <= queued; i++ {
		reqCtx := ctx
		if i == 50 {
			reqCtx = gaveUp
		}
		req, err := bus.submit(reqCtx, "t:room", []byte(strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	giveUp()
	close(hook.release)
	for i, req := range reqs {
		err := <-req.done
		if i == 50 {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("publish 50, its caller gone: %v, want context.Canceled", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	hook.mu.Lock()
	sizes := fmt.Sprint(hook.sizes)
	hook.mu.Unlock()
	if want := fmt.Sprint([]int{1, queued - 1}); sizes != want {
		t.Errorf("pipelines of %s publishes, want %s", sizes, want)
	}
	if got := bus.Stats().PublishPipelines; got != 2 {
		t.Errorf("Stats().PublishPipelines = %d, want 2", got)
	}

	for i := 0; i <= queued; i++ {
		if i == 50 {
			continue
		}
		m, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Payload != strconv.Itoa(i) {
			t.Fatalf("message %d is %q: out of order or the abandoned one", i, m.Payload)
		}
	}
}

// TestPublishUnbatched: with DisableBatching every publish is its own round
// trip, not a pipeline.
func TestPublishUnbatched(t *testing.T) {
	srv := redistest.Start(t)
	ctx := bustest.Context(t)
	bus, err := New(ctx, Options{URL: srv.URL(), DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	for range 3 {
		if err := bus.Publish(ctx, "room", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if s := bus.Stats(); s.Published != 3 || s.PublishPipelines != 0 {
		t.Errorf("stats %+v: want 3 published, no pipeline", s)
	}
}
