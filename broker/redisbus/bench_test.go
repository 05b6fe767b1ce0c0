package redisbus_test

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus"
)

// benchReceiver counts deliveries on node B and records the latency of each
// from the publish time stamped in its payload.
type benchReceiver struct {
	mu        sync.Mutex
	latencies []time.Duration
	count     atomic.Int64
	reached   chan struct{}
	target    atomic.Int64
}

func (r *benchReceiver) deliver(_ string, payload []byte) {
	sent := int64(binary.BigEndian.Uint64(payload))
	lat := time.Duration(time.Now().UnixNano() - sent)
	r.mu.Lock()
	r.latencies = append(r.latencies, lat)
	r.mu.Unlock()
	if r.count.Add(1) == r.target.Load() {
		r.reached <- struct{}{}
	}
}

func (r *benchReceiver) reset(target int) {
	r.mu.Lock()
	r.latencies = r.latencies[:0]
	r.mu.Unlock()
	r.count.Store(0)
	r.target.Store(int64(target))
}

func (r *benchReceiver) report(b *testing.B, elapsed time.Duration, n int) {
	r.mu.Lock()
	lat := slices.Clone(r.latencies)
	r.mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(pct(1), "max-µs")
}

func stamped(size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
	return p
}

// BenchmarkRedisBus measures publish on node A to delivery on node B through
// the Redis at CSTALK_TEST_REDIS (default 127.0.0.1:6379). msgs/s counts
// until the last message is delivered; latencies are publish call to
// deliver call.
func BenchmarkRedisBus(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
		lockstep bool // publish the next only after the previous arrived
		size     int
		opts     redisbus.Options
	}{
		{name: "lockstep/256B", lockstep: true, size: 256},
		{name: "serial/256B", size: 256},
		{name: "serial/4KiB", size: 4096},
		{name: "parallel/256B", parallel: true, size: 256},
		{name: "parallel-unbatched/256B", parallel: true, size: 256, opts: redisbus.Options{DisableBatching: true}},
		{name: "serial-unbatched/256B", size: 256, opts: redisbus.Options{DisableBatching: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buses := newBuses(b, redisURL(), 2, bc.opts)
			pub, sub := buses[0], buses[1]
			const topic = "sub/socket/room/bench"
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := sub.Subscribe(ctx, topic); err != nil {
				b.Fatal(err)
			}
			r := &benchReceiver{reached: make(chan struct{}, 1)}
			runDone := make(chan struct{})
			go func() {
				defer close(runDone)
				_ = sub.Run(ctx, r.deliver)
			}()
			defer func() { cancel(); <-runDone }()

			r.reset(b.N)
			b.SetBytes(int64(bc.size))
			b.ResetTimer()
			start := time.Now()
			switch {
			case bc.lockstep:
				for i := range b.N {
					r.target.Store(int64(i + 1))
					if err := pub.Publish(ctx, topic, stamped(bc.size)); err != nil {
						b.Fatal(err)
					}
					if i+1 < b.N {
						<-r.reached
					}
				}
			case bc.parallel:
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := pub.Publish(ctx, topic, stamped(bc.size)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			default:
				for range b.N {
					if err := pub.Publish(ctx, topic, stamped(bc.size)); err != nil {
						b.Fatal(err)
					}
				}
			}
			select {
			case <-r.reached:
			case <-time.After(time.Minute):
				b.Fatalf("delivered %d of %d", r.count.Load(), b.N)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			r.report(b, elapsed, b.N)
		})
	}
}
