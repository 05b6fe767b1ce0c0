package main

import (
	"context"
	"flag"
	"sync/atomic"
	"time"
)

// drainWait is how long a run waits for deliveries after sending stops
// (await): idle without any, max in all.
type drainWait struct{ idle, max time.Duration }

// flags registers --drain and --drain-max on fs.
func (d *drainWait) flags(fs *flag.FlagSet) {
	fs.DurationVar(&d.idle, "drain", 5*time.Second, "after sending stops, how long to wait for the next delivery before counting what has not come as lost")
	fs.DurationVar(&d.max, "drain-max", 20*time.Second, "after sending stops, how long to wait for deliveries at most (a server working through a backlog keeps delivering)")
}

// drainPoll is how often await looks at the counter.
const drainPoll = 10 * time.Millisecond

// await waits, after sending stops, until delivered reaches expected, or
// until no delivery has come for d.idle, or until d.max has passed. A
// server still working through a backlog (at saturation) keeps
// delivering: its messages are late, not lost, and only what never
// arrives counts as lost.
func (d drainWait) await(ctx context.Context, delivered *atomic.Int64, expected int64) {
	start := time.Now()
	last, lastAt := delivered.Load(), start
	for ctx.Err() == nil {
		n, now := delivered.Load(), time.Now()
		if n >= expected || now.Sub(start) >= d.max {
			return
		}
		if n != last {
			last, lastAt = n, now
		} else if now.Sub(lastAt) >= d.idle {
			return
		}
		time.Sleep(drainPoll) // polling a counter the readers advance; nothing to await
	}
}
