package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Deliveries that keep coming are waited for past idle; a stall ends the
// wait after idle; max ends it even while they come.
func TestDrainWait(t *testing.T) {
	ctx := context.Background()
	var delivered atomic.Int64
	feed := func(every time.Duration, upTo int64) (stop func()) {
		done := make(chan struct{})
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			tick := time.NewTicker(every)
			defer tick.Stop()
			for delivered.Load() < upTo {
				select {
				case <-done:
					return
				case <-tick.C:
					delivered.Add(1)
				}
			}
		}()
		return func() { close(done); <-ended }
	}

	// A slow backlog: 100 deliveries 20 ms apart take 2 s, longer than
	// idle (1 s); all of them arrive.
	stop := feed(20*time.Millisecond, 100)
	drainWait{idle: time.Second, max: time.Minute}.await(ctx, &delivered, 100)
	stop()
	if got := delivered.Load(); got != 100 {
		t.Fatalf("returned with %d of 100 delivered while they kept coming", got)
	}

	// A stall: nothing more comes, so the wait ends after idle.
	start := time.Now()
	drainWait{idle: 100 * time.Millisecond, max: time.Minute}.await(ctx, &delivered, 110)
	if el := time.Since(start); el < 100*time.Millisecond || el > 10*time.Second {
		t.Fatalf("a stalled drain took %v, want about the idle 100ms", el)
	}

	// max ends a drain that keeps progressing.
	delivered.Store(0)
	stop = feed(5*time.Millisecond, 1_000_000)
	start = time.Now()
	drainWait{idle: time.Second, max: 200 * time.Millisecond}.await(ctx, &delivered, 1_000_000)
	el := time.Since(start)
	stop()
	if el < 200*time.Millisecond || el > 10*time.Second {
		t.Fatalf("a drain bounded by 200ms took %v", el)
	}
}
