package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

type loadConfig struct {
	subs, pubs, dests int
	rate              float64 // published messages per second, all publishers together; 0 = as fast as the window allows
	duration, warmup  time.Duration
	drain             drainWait
	maxMessages       int64
	size              int
	inflight          int
	parallel          int
	jsonOut           bool
	serverPID         int
	pubURL            string // publishers' endpoint when it is another node than --url
}

// runLoad measures fan-out: subscribers spread over destinations, publishers
// sending round-robin to them with a timestamp in the body.
func runLoad(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var t target
	t.register(fs)
	var c loadConfig
	fs.IntVar(&c.subs, "subs", 100, "subscriber connections")
	fs.IntVar(&c.pubs, "pubs", 4, "publisher connections")
	fs.IntVar(&c.dests, "dests", 20, "destinations; subscriber i listens on destination i mod dests")
	fs.Float64Var(&c.rate, "rate", 0, "published messages/s over all publishers (0: as fast as --inflight allows)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long publishers send")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "initial part of --duration left out of the figures")
	c.drain.flags(fs)
	fs.Int64Var(&c.maxMessages, "max-messages", 50_000_000, "stop publishing after this many messages")
	fs.IntVar(&c.size, "size", 64, "message body bytes")
	fs.IntVar(&c.inflight, "inflight", 0, "with --rate 0: published messages not yet delivered, at most (closed loop; 0: 200 per destination, at most 2000)")
	fs.IntVar(&c.parallel, "connect-parallel", 32, "connections opened at a time")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	fs.IntVar(&c.serverPID, "pid", 0, "server process id: report its CPU use over the measured window (RabbitMQ: beam.smp)")
	fs.StringVar(&c.pubURL, "pub-url", "", "publishers connect here instead of --url (another node of a cluster: every delivery crosses the bus)")
	_ = fs.Parse(args)
	if err := t.resolve(); err != nil {
		return err
	}
	if c.pubURL != "" {
		pt := t
		pt.url = c.pubURL
		if err := pt.resolve(); err != nil {
			return fmt.Errorf("--pub-url: %w", err)
		}
	}
	if c.subs < 1 || c.pubs < 1 || c.dests < 1 || c.dests > c.subs {
		return errors.New("load: need subs >= dests >= 1 and pubs >= 1")
	}
	if c.inflight <= 0 {
		// Deep enough to keep the server busy, shallow enough that no
		// subscriber's queue at the server overflows.
		c.inflight = min(2000, 200*c.dests)
	}
	if c.warmup >= c.duration {
		return errors.New("load: --warmup must be shorter than --duration")
	}
	res, err := load(ctx, &t, c, log)
	if err != nil {
		return err
	}
	res.print(c.jsonOut)
	return nil
}

type loadResult struct {
	Mode             string  `json:"mode"` // load or chat
	Target           string  `json:"target"`
	Subs             int     `json:"subs"`
	Pubs             int     `json:"pubs"`
	Dests            int     `json:"dests"`
	Rate             float64 `json:"rate"`
	Published        int64   `json:"published"`
	PublishedPerSec  float64 `json:"published_per_sec"`
	Delivered        int64   `json:"delivered"`
	DeliveredPerSec  float64 `json:"delivered_per_sec"`
	Expected         int64   `json:"expected"`
	Lost             int64   `json:"lost"`
	Errors           int64   `json:"errors"`
	FirstError       string  `json:"first_error,omitempty"`
	LatencyP50us     int64   `json:"p50_us"`
	LatencyP90us     int64   `json:"p90_us"`
	LatencyP99us     int64   `json:"p99_us"`
	LatencyP999us    int64   `json:"p999_us"`
	LatencyMaxus     int64   `json:"max_us"`
	LatencySamples   int64   `json:"latency_samples"`
	MeasuredSeconds  float64 `json:"measured_seconds"`
	FanOutPerMessage float64 `json:"fan_out"`
	ServerCPUPct     float64 `json:"server_cpu_pct,omitempty"`
	// DeliveredPerCPUSec is delivered messages per second of server CPU:
	// steadier than msgs/s on a machine where other work takes the server's core.
	DeliveredPerCPUSec float64 `json:"delivered_per_server_cpu_sec,omitempty"`
	GeneratorCPUPct    float64 `json:"generator_cpu_pct"`
	// The chat workload: the database server's CPU (MariaDB) over the same
	// window, deliveries per CPU-second of both, and their CPU per message.
	DBCPUPct float64 `json:"db_cpu_pct,omitempty"`
	// Two nodes: the counselors' node and the bus's server, counted in the
	// totals too.
	MemberCPUPct            float64 `json:"member_cpu_pct,omitempty"`
	BusCPUPct               float64 `json:"bus_cpu_pct,omitempty"`
	DeliveredPerTotalCPUSec float64 `json:"delivered_per_total_cpu_sec,omitempty"`
	CPUMicrosPerMessage     float64 `json:"cpu_us_per_message,omitempty"`
	// RSSKiBPerConn is the server's memory growth per connection, read once
	// every connection had subscribed and before any message was sent.
	RSSKiBPerConn float64 `json:"rss_kib_per_conn,omitempty"`
	// The store over the window, from cstalk's /metrics: messages stored,
	// messages per group-commit batch, fsync/fdatasync calls per message.
	StoredMessages  int64   `json:"stored_messages,omitempty"`
	BatchMean       float64 `json:"batch_mean,omitempty"`
	SyncsPerMessage float64 `json:"fsyncs_per_message,omitempty"`
	// The server's Go heap and scheduler per stored message.
	AllocsPerMessage     float64 `json:"allocs_per_message,omitempty"`
	AllocKiBPerMessage   float64 `json:"alloc_kib_per_message,omitempty"`
	GoroutinesPerMessage float64 `json:"goroutines_per_message,omitempty"`
}

func (r loadResult) print(asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	rate := "max"
	if r.Rate > 0 {
		rate = strconv.FormatFloat(r.Rate, 'f', 0, 64) + "/s"
	}
	if r.Mode == "chat" {
		fmt.Printf("target %s: %d customers (one room each) and %d counselor connections, rate %s; each message delivered to its customer and counselor\n",
			r.Target, r.Pubs, r.Subs-r.Pubs, rate)
		if r.RSSKiBPerConn != 0 {
			fmt.Printf("server memory: %.1f KiB per connection (after subscribing, before sending)\n", r.RSSKiBPerConn)
		}
		if r.Published == 0 {
			return
		}
	} else {
		fmt.Printf("target %s: %d subscribers, %d publishers, %d destinations (fan-out %.1f), rate %s\n",
			r.Target, r.Subs, r.Pubs, r.Dests, r.FanOutPerMessage, rate)
	}
	fmt.Printf("published %d (%.0f/s)  delivered %d (%.0f/s over %.1fs)  lost %d  errors %d\n",
		r.Published, r.PublishedPerSec, r.Delivered, r.DeliveredPerSec, r.MeasuredSeconds, r.Lost, r.Errors)
	fmt.Printf("latency µs: p50 %d  p90 %d  p99 %d  p99.9 %d  max %d  (%d samples)\n",
		r.LatencyP50us, r.LatencyP90us, r.LatencyP99us, r.LatencyP999us, r.LatencyMaxus, r.LatencySamples)
	fmt.Printf("cpu over the measured window: server %.0f%%  generator %.0f%% (100%% = one core)", r.ServerCPUPct, r.GeneratorCPUPct)
	if r.DeliveredPerCPUSec > 0 {
		fmt.Printf("; %.0f deliveries per server CPU-second", r.DeliveredPerCPUSec)
	}
	fmt.Println()
	if r.MemberCPUPct > 0 || r.BusCPUPct > 0 {
		fmt.Printf("counselors' node cpu %.0f%%, bus server cpu %.0f%% (counted in the totals below)\n", r.MemberCPUPct, r.BusCPUPct)
	}
	if r.DBCPUPct > 0 {
		fmt.Printf("database cpu %.0f%%: %.0f deliveries per CPU-second of server and database together\n", r.DBCPUPct, r.DeliveredPerTotalCPUSec)
	}
	if r.CPUMicrosPerMessage > 0 {
		fmt.Printf("cpu per message (server and database): %.0f µs\n", r.CPUMicrosPerMessage)
	}
	if r.StoredMessages > 0 {
		fmt.Printf("store: %d messages in the window, %.1f per batch, %.2f fsyncs per message\n", r.StoredMessages, r.BatchMean, r.SyncsPerMessage)
		fmt.Printf("per message: %.0f allocations, %.1f KiB allocated, %.1f goroutines created\n", r.AllocsPerMessage, r.AllocKiBPerMessage, r.GoroutinesPerMessage)
	}
	if r.FirstError != "" {
		fmt.Printf("first error: %s\n", r.FirstError)
	}
}

func (r *loadResult) perCPU() {
	if r.ServerCPUPct > 0 {
		r.DeliveredPerCPUSec = r.DeliveredPerSec / (r.ServerCPUPct / 100)
	}
	if total := r.ServerCPUPct + r.DBCPUPct + r.MemberCPUPct + r.BusCPUPct; r.Mode == "chat" && total > 0 && r.DeliveredPerSec > 0 {
		r.DeliveredPerTotalCPUSec = r.DeliveredPerSec / (total / 100)
		// Two deliveries per message.
		r.CPUMicrosPerMessage = total / 100 * 1e6 / (r.DeliveredPerSec / r.FanOutPerMessage)
	}
}

// errorLog counts failures and keeps the first for the report.
type errorLog struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func (e *errorLog) add(err error) {
	if e.n.Add(1) == 1 {
		e.mu.Lock()
		e.first = err.Error()
		e.mu.Unlock()
	}
}

func (e *errorLog) firstText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.first
}

// window holds the measurement boundaries, in unix nanoseconds; subscribers
// read them on every message.
type window struct {
	from atomic.Int64 // end of warm-up
	to   atomic.Int64 // end of publishing (MaxInt64 until then)
}

type subscriber struct {
	c          *stompClient
	dest       int
	designated bool // the first subscriber of its destination returns in-flight tokens
	hist       *hdrhistogram.Histogram
	inWindow   int64
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
}

func load(ctx context.Context, t *target, c loadConfig, log *slog.Logger) (loadResult, error) {
	res := loadResult{Mode: "load", Target: t.url, Subs: c.subs, Pubs: c.pubs, Dests: c.dests, Rate: c.rate}
	fanout := make([]int64, c.dests)
	subs := make([]*subscriber, c.subs)
	for i := range subs {
		d := i % c.dests
		subs[i] = &subscriber{dest: d, designated: i < c.dests, hist: newHistogram()}
		fanout[d]++
	}
	log.Info("connecting subscribers", "n", c.subs)
	subClients, err := connectMany(ctx, t, c.subs, c.parallel, func(i int, sc *stompClient) error {
		return sc.subscribe("0", t.dest(subs[i].dest))
	})
	if err != nil {
		return res, fmt.Errorf("load: subscribers: %w", err)
	}
	defer closeAll(subClients)
	for i, sc := range subClients {
		subs[i].c = sc
	}
	log.Info("connecting publishers", "n", c.pubs)
	pubTarget := t
	if c.pubURL != "" {
		pt := *t
		pt.url = c.pubURL
		pubTarget = &pt
		res.Target = "subscribers " + t.url + ", publishers " + c.pubURL
	}
	pubClients, err := connectMany(ctx, pubTarget, c.pubs, c.parallel, nil)
	if err != nil {
		return res, fmt.Errorf("load: publishers: %w", err)
	}
	defer closeAll(pubClients)

	var (
		errs      errorLog
		delivered atomic.Int64
		win       window
		stopping  atomic.Bool // set before connections are closed on purpose
		readers   sync.WaitGroup
	)
	win.from.Store(math.MaxInt64)
	win.to.Store(math.MaxInt64)
	var tokens chan struct{}
	if c.rate == 0 {
		tokens = make(chan struct{}, c.inflight)
	}
	for _, s := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err := s.read(&win, &delivered, tokens); err != nil && !stopping.Load() {
				errs.add(fmt.Errorf("subscriber: %w", err))
			}
		}()
	}

	// Publishing.
	start := time.Now()
	win.from.Store(start.Add(c.warmup).UnixNano())
	pubCtx, pubCancel := context.WithDeadline(ctx, start.Add(c.duration))
	defer pubCancel()
	var (
		published atomic.Int64
		perDest   = make([]atomic.Int64, c.dests)
		pubs      sync.WaitGroup
	)
	log.Info("publishing", "duration", c.duration, "rate", c.rate)
	for j, pc := range pubClients {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			if err := publish(pubCtx, pc, j, t, c, start, tokens, &published, perDest); err != nil {
				errs.add(fmt.Errorf("publisher %d: %w", j, err))
			}
		}()
	}
	var cpuFrom cpuSample
	select {
	case <-time.After(time.Until(start.Add(c.warmup))):
		cpuFrom = sampleCPU(c.serverPID)
	case <-pubCtx.Done():
	}
	pubs.Wait()
	pubEnd := time.Now()
	cpuTo := sampleCPU(c.serverPID)
	win.to.Store(pubEnd.UnixNano())

	var expected int64
	for d := range perDest {
		expected += perDest[d].Load() * fanout[d]
	}
	c.drain.await(ctx, &delivered, expected)
	stopping.Store(true)
	closeAll(subClients)
	readers.Wait()

	hist := newHistogram()
	var inWindow int64
	for _, s := range subs {
		hist.Merge(s.hist)
		inWindow += s.inWindow
	}
	measured := pubEnd.Sub(start.Add(c.warmup)).Seconds()
	res.Published = published.Load()
	res.PublishedPerSec = float64(res.Published) / pubEnd.Sub(start).Seconds()
	res.Delivered = delivered.Load()
	res.DeliveredPerSec = float64(inWindow) / measured
	res.MeasuredSeconds = measured
	res.Expected = expected
	res.Lost = expected - res.Delivered
	res.Errors = errs.n.Load()
	res.FirstError = errs.firstText()
	res.LatencyP50us = hist.ValueAtQuantile(50)
	res.LatencyP90us = hist.ValueAtQuantile(90)
	res.LatencyP99us = hist.ValueAtQuantile(99)
	res.LatencyP999us = hist.ValueAtQuantile(99.9)
	res.LatencyMaxus = hist.Max()
	res.LatencySamples = hist.TotalCount()
	res.FanOutPerMessage = float64(c.subs) / float64(c.dests)
	if !cpuFrom.at.IsZero() {
		res.ServerCPUPct, res.GeneratorCPUPct = cpuTo.since(cpuFrom)
		res.perCPU()
	}
	return res, nil
}

// read consumes MESSAGE frames until the connection ends, recording latency
// from the timestamp at the start of each body.
func (s *subscriber) read(win *window, delivered *atomic.Int64, tokens chan struct{}) error {
	for {
		f, err := s.c.in.next()
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		switch string(f.command) {
		case "MESSAGE":
		case "ERROR":
			return fmt.Errorf("ERROR frame: %s", f.header("message"))
		default:
			continue
		}
		delivered.Add(1)
		if s.designated && tokens != nil {
			select {
			case <-tokens:
			default:
			}
		}
		sent, ok := parseStamp(f.body)
		if !ok {
			continue
		}
		if now >= win.from.Load() {
			_ = s.hist.RecordValue(max((now-sent)/int64(time.Microsecond), 0))
			if now <= win.to.Load() {
				s.inWindow++
			}
		}
	}
}

// publish sends until ctx ends or the message budget is spent, paced by
// the rate, or without a rate by an in-flight token taken before each message.
func publish(ctx context.Context, pc *stompClient, j int, t *target, c loadConfig, start time.Time,
	tokens chan struct{}, published *atomic.Int64, perDest []atomic.Int64) error {
	body := make([]byte, 0, max(c.size, 64))
	dests := make([]string, c.dests)
	for d := range dests {
		dests[d] = t.dest(d)
	}
	p := newPacer(start, c.rate/float64(c.pubs), j, c.pubs)
	for k := 0; ; k++ {
		if ctx.Err() != nil {
			return nil
		}
		if tokens != nil {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
		}
		stamp, ok := p.wait(ctx)
		if !ok {
			return nil
		}
		if published.Add(1) > c.maxMessages {
			published.Add(-1)
			return nil
		}
		d := (j + k) % c.dests
		body = appendStamp(body[:0], stamp.UnixNano(), d, c.size)
		if err := pc.write("SEND", body, "destination", dests[d], "content-type", "text/plain"); err != nil {
			published.Add(-1)
			return err
		}
		perDest[d].Add(1)
	}
}

// appendStamp writes "<unix-nanos>|<dest>|" padded with 'x' to size bytes.
func appendStamp(b []byte, nanos int64, dest, size int) []byte {
	b = strconv.AppendInt(b, nanos, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(dest), 10)
	b = append(b, '|')
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}

func parseStamp(body []byte) (int64, bool) {
	var n int64
	for i, ch := range body {
		if ch == '|' {
			return n, i > 0
		}
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	return 0, false
}

// pacer spaces one sender's messages at its share of the rate. It keeps a
// schedule and stamps each message with the time it was due (or sent, if
// earlier), so a server that falls behind shows in latency rather than
// silently slowing the generator. A zero rate does not pace.
type pacer struct {
	interval time.Duration
	due      time.Time
}

// newPacer paces sender j of n at rate messages/s, offset within the
// interval so the senders do not fire together.
func newPacer(start time.Time, rate float64, j, n int) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	interval := time.Duration(float64(time.Second) / rate)
	return &pacer{interval: interval, due: start.Add(time.Duration(j) * interval / time.Duration(n))}
}

// wait blocks until the next message is due and returns its stamp; false
// when ctx ends first.
func (p *pacer) wait(ctx context.Context) (time.Time, bool) {
	if ctx.Err() != nil {
		return time.Time{}, false
	}
	now := time.Now()
	if p.interval == 0 {
		return now, true
	}
	if ahead := p.due.Sub(now); ahead > 200*time.Microsecond {
		timer := time.NewTimer(ahead)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return time.Time{}, false
		}
		now = time.Now()
	}
	stamp := now
	if p.due.Before(now) {
		stamp = p.due
	}
	p.due = p.due.Add(p.interval)
	return stamp, true
}
