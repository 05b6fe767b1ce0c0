package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// chatWorkload is a connected chat workload, whichever server it runs on:
// customer i sends to its room with sendHeaders[i], and every message
// reaches the room's customer and its counselor.
type chatWorkload struct {
	target      string
	customers   []*stompClient
	members     []*stompClient
	sendHeaders [][]string
	// body appends the SEND body of customer i's message stamped stamp.
	body func(b []byte, i int, stamp int64) []byte
	// metrics is the server's Prometheus endpoint (empty for a peer that
	// has none): the store's batches and syncs are read from it.
	metrics string
}

func (w *chatWorkload) close() {
	closeAll(w.customers)
	closeAll(w.members)
}

// measureChat sends at c.rate for c.duration and fills res with what the
// readers saw in the window after the warm-up, and the server's CPU (with
// the database's) over the same window.
func measureChat(ctx context.Context, c chatConfig, w *chatWorkload, res *loadResult, log *slog.Logger) error {
	readersOf := append(append([]*stompClient{}, w.customers...), w.members...)
	hists := make([]*hdrhistogram.Histogram, len(readersOf))
	inWindow := make([]int64, len(readersOf))
	var (
		errs      errorLog
		delivered atomic.Int64
		win       window
		stopping  atomic.Bool
		readers   sync.WaitGroup
	)
	win.from.Store(math.MaxInt64)
	win.to.Store(math.MaxInt64)
	for r, sc := range readersOf {
		hists[r] = newHistogram()
		readers.Add(1)
		go func() {
			defer readers.Done()
			err := sc.readChat(func(stamp, now int64) {
				delivered.Add(1)
				if now >= win.from.Load() {
					_ = hists[r].RecordValue(max((now-stamp)/int64(time.Microsecond), 0))
					if now <= win.to.Load() {
						inWindow[r]++
					}
				}
			})
			if err != nil && !stopping.Load() {
				errs.add(err)
			}
		}()
	}

	// Customers take turns; each sender goroutine owns a fixed set of
	// customers, so a connection has one writer.
	senders := min(len(w.customers), 4)
	start := time.Now()
	win.from.Store(start.Add(c.warmup).UnixNano())
	sendCtx, sendCancel := context.WithDeadline(ctx, start.Add(c.duration))
	defer sendCancel()
	var (
		sent sync.WaitGroup
		n    atomic.Int64
	)
	log.Info("sending", "rate", c.rate, "duration", c.duration)
	for s := 0; s < senders; s++ {
		sent.Add(1)
		go func() {
			defer sent.Done()
			p := newPacer(start, c.rate/float64(senders), s, senders)
			var owned []int
			for i := s; i < len(w.customers); i += senders {
				owned = append(owned, i)
			}
			var body []byte
			for k := 0; ; k++ {
				stamp, ok := p.wait(sendCtx)
				if !ok {
					return
				}
				if n.Add(1) > c.maxMessages {
					n.Add(-1)
					return
				}
				i := owned[k%len(owned)]
				body = w.body(body[:0], i, stamp.UnixNano())
				if err := w.customers[i].write("SEND", body, w.sendHeaders[i]...); err != nil {
					n.Add(-1)
					errs.add(fmt.Errorf("customer %d: %w", i, err))
					return
				}
			}
		}()
	}
	var (
		cpuFrom, dbFrom        cpuSample
		memberFrom, busFrom    cpuSample
		storeFrom, storeTo     storeCounters
		storeErrFrom, storeErr error
	)
	select {
	case <-time.After(time.Until(start.Add(c.warmup))):
		cpuFrom, dbFrom = sampleCPU(c.pid), sampleCPU(c.dbPID)
		memberFrom, busFrom = sampleCPU(c.memberPID), sampleCPU(c.busPID)
		if w.metrics != "" {
			storeFrom, storeErrFrom = scrapeStore(ctx, w.metrics)
		}
	case <-sendCtx.Done():
	}
	sent.Wait()
	sendEnd := time.Now()
	cpuTo, dbTo := sampleCPU(c.pid), sampleCPU(c.dbPID)
	memberTo, busTo := sampleCPU(c.memberPID), sampleCPU(c.busPID)
	if w.metrics != "" && !cpuFrom.at.IsZero() {
		storeTo, storeErr = scrapeStore(ctx, w.metrics)
	}
	win.to.Store(sendEnd.UnixNano())
	expected := 2 * n.Load()
	c.drain.await(ctx, &delivered, expected)
	stopping.Store(true)
	w.close()
	readers.Wait()

	hist := newHistogram()
	var counted int64
	for r := range hists {
		hist.Merge(hists[r])
		counted += inWindow[r]
	}
	measured := sendEnd.Sub(start.Add(c.warmup)).Seconds()
	res.Published, res.PublishedPerSec = n.Load(), float64(n.Load())/sendEnd.Sub(start).Seconds()
	res.Delivered, res.DeliveredPerSec = delivered.Load(), float64(counted)/measured
	res.Expected, res.Lost = expected, expected-delivered.Load()
	res.Errors, res.FirstError = errs.n.Load(), errs.firstText()
	res.LatencyP50us, res.LatencyP90us = hist.ValueAtQuantile(50), hist.ValueAtQuantile(90)
	res.LatencyP99us, res.LatencyP999us = hist.ValueAtQuantile(99), hist.ValueAtQuantile(99.9)
	res.LatencyMaxus, res.LatencySamples = hist.Max(), hist.TotalCount()
	res.MeasuredSeconds = measured
	if !cpuFrom.at.IsZero() {
		res.ServerCPUPct, res.GeneratorCPUPct = cpuTo.since(cpuFrom)
		if c.dbPID > 0 {
			res.DBCPUPct, _ = dbTo.since(dbFrom)
		}
		if c.memberPID > 0 {
			res.MemberCPUPct, _ = memberTo.since(memberFrom)
		}
		if c.busPID > 0 {
			res.BusCPUPct, _ = busTo.since(busFrom)
		}
		res.perCPU()
	}
	switch {
	case storeErrFrom != nil || storeErr != nil:
		log.Warn("store figures unavailable", "err", storeErrFrom, "err_end", storeErr)
	case w.metrics != "" && !cpuFrom.at.IsZero():
		res.storeFigures(storeTo.minus(storeFrom))
	}
	return nil
}
