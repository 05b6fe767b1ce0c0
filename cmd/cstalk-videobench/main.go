// Command cstalk-videobench measures the SFU: N publishers send synthetic
// VP8 (and Opus) into one room, M subscribers each receive every
// publisher, and the server's forwarded packets per second and per CPU
// core (its processes' CPU time from /proc) are reported.
//
// Without -nodes the SFU runs alone in a child process. With -nodes it
// runs against `cstalk serve` processes (their PIDs in -pids): the
// publishers join through the first node, which so hosts the room, the
// subscribers through every node in turn, and with two nodes the
// second relays its participants' signaling to the first.
//
// -joins N then times N joins of a fresh participant to its first video
// packet and keyframe, through the room's node (direct) and, with two
// nodes, through the other (relayed). -record then measures a room with
// recording on, and -record-rounds pairs of plain and recorded rooms in
// turn, and reports what recording costs: the extra CPU per recorded
// participant-second.
//
//	cstalk-videobench -publishers 4 -subscribers 8 -duration 20s [-joins 30] [-record]
//	cstalk-videobench -nodes http://127.0.0.1:18101,http://127.0.0.1:18102 -pids 123,456 -joins 30 -record
//
// run.sh beside this file runs the one- and two-node figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/rtp"
)

type options struct {
	publishers   int
	subscribers  int
	duration     time.Duration
	warmup       time.Duration
	fps          int
	frameBytes   int
	audio        bool
	serve        bool
	procs        int
	simulcast    bool
	record       bool
	recordRounds int
	joins        int
	nodes        string
	pids         string
	admin        string
	password     string
}

func main() {
	var o options
	flag.IntVar(&o.publishers, "publishers", 4, "publishers in the room")
	flag.IntVar(&o.subscribers, "subscribers", 8, "subscribers, each receiving every publisher")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured time")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "time to settle before measuring")
	flag.IntVar(&o.fps, "fps", 30, "video frames per second per publisher")
	flag.IntVar(&o.frameBytes, "frame-bytes", 2400, "bytes per video frame (1200-byte packets)")
	flag.BoolVar(&o.audio, "audio", true, "publish Opus too (50 packets/s)")
	flag.IntVar(&o.procs, "server-procs", 1, "GOMAXPROCS of the server child (without -nodes)")
	flag.BoolVar(&o.simulcast, "simulcast", false, "publish video in three simulcast layers (full, 1/4 and 1/16 of -frame-bytes); subscribers get the layer the layout allows")
	flag.BoolVar(&o.record, "record", false, "measure again in a room that is recorded, and report recording's CPU per recorded participant-second")
	flag.IntVar(&o.recordRounds, "record-rounds", 3, "with -record: pairs of a plain and a recorded room measured in turn")
	flag.IntVar(&o.joins, "joins", 0, "time this many joins to the first video frame (through each node)")
	flag.StringVar(&o.nodes, "nodes", "", "base URLs of `cstalk serve` nodes, comma-separated; the first hosts the room (empty: the SFU in a child process)")
	flag.StringVar(&o.pids, "pids", "", "the nodes' process ids, comma-separated, in -nodes order (their CPU time is read from /proc)")
	flag.StringVar(&o.admin, "admin", "admin1", "with -nodes: an administrator of company 1, who adds the bench's members")
	flag.StringVar(&o.password, "password", "demo1234", "with -nodes: the administrator's password, and the bench members'")
	flag.BoolVar(&o.serve, "serve", false, "internal: run the server side and print its address")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.serve {
		err = serveChild(ctx)
	} else {
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cstalk-videobench:", err)
		os.Exit(1)
	}
}

// parseNodes pairs the -nodes URLs with the -pids.
func parseNodes(urls, pids string) ([]node, error) {
	us, ps := strings.Split(urls, ","), strings.Split(pids, ",")
	if pids == "" || len(us) != len(ps) {
		return nil, fmt.Errorf("-nodes %q wants one process id each in -pids, got %q", urls, pids)
	}
	var out []node
	for i, u := range us {
		pid, err := strconv.Atoi(strings.TrimSpace(ps[i]))
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("-pids %q: %q is no process id", pids, ps[i])
		}
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("-nodes: %q is no http:// URL", u)
		}
		out = append(out, node{base: u, pid: pid})
	}
	return out, nil
}

func run(ctx context.Context, o options) error {
	if o.publishers < 1 || o.subscribers < 1 || o.fps < 1 || o.recordRounds < 1 {
		return errors.New("need at least one publisher, one subscriber, one frame per second and one recording round")
	}
	var cl *cluster
	if o.nodes == "" {
		n, wait, err := startSFU(ctx, o.procs)
		if err != nil {
			return err
		}
		defer wait()
		cl = sfuCluster(n)
		fmt.Printf("SFU alone in process %d (GOMAXPROCS=%d)", n.pid, o.procs)
	} else {
		nodes, err := parseNodes(o.nodes, o.pids)
		if err != nil {
			return err
		}
		if cl, err = cstalkCluster(ctx, nodes, o.admin, o.password); err != nil {
			return err
		}
		fmt.Printf("%d cstalk serve node(s): %v; the room on %s", len(nodes), nodes, nodes[0].base)
	}
	fmt.Printf("; bench GOMAXPROCS=%d, %d CPUs\n", runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("%d publishers x %d subscribers, %d fps x %d B video%s%s\n", o.publishers, o.subscribers, o.fps, o.frameBytes,
		map[bool]string{true: " in 3 simulcast layers (1/16, 1/4, all)", false: ""}[o.simulcast],
		map[bool]string{true: " + Opus 50 pkt/s", false: ""}[o.audio])

	// Room names of their own, so a run never meets an earlier run's room.
	stamp := strconv.FormatInt(time.Now().UnixMilli()%1e9, 36)
	if err := cl.setRecording(ctx, false); err != nil {
		return err
	}
	plain, err := runRoom(ctx, cl, "c-vb"+stamp, o, func(b *bench) error {
		if o.joins > 0 {
			return reportJoins(ctx, b, o.joins)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !o.record {
		return nil
	}
	// The machine's other work moves a run's CPU by more than recording
	// costs: plain and recorded rooms alternate, each pair a figure.
	var costs []float64
	for round := range o.recordRounds {
		if round > 0 {
			if err := cl.setRecording(ctx, false); err != nil {
				return err
			}
			fmt.Printf("round %d, plain:\n", round+1)
			if plain, err = runRoom(ctx, cl, fmt.Sprintf("c-vp%s%d", stamp, round), o, nil); err != nil {
				return err
			}
		}
		if err := cl.setRecording(ctx, true); err != nil {
			return err
		}
		fmt.Printf("round %d, recorded:\n", round+1)
		recorded, err := runRoom(ctx, cl, fmt.Sprintf("c-vr%s%d", stamp, round), o, nil)
		if off := cl.setRecording(context.WithoutCancel(ctx), false); err == nil {
			err = off
		}
		if err != nil {
			return err
		}
		costs = append(costs, recordingCost(plain, recorded, o.publishers))
		fmt.Printf("recording   %.1f ms CPU per recorded participant-second (%d recorded participants)\n", costs[round], o.publishers)
	}
	fmt.Printf("recording   %.1f ms CPU per recorded participant-second, mean of %d rounds %s\n", mean(costs), len(costs), fmtList(costs))
	return nil
}

func mean(xs []float64) float64 {
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(max(len(xs), 1))
}

func fmtList(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// recordingCost is the CPU milliseconds one recorded participant costs per
// second: the recorded room's server CPU over what the plain room's CPU
// per forwarded packet comes to at the recorded room's packets (a loaded
// machine does not always send the same), shared by the recorded
// participants (the publishers).
func recordingCost(plain, recorded result, participants int) float64 {
	expected := plain.cores
	if plain.forwarded > 0 {
		expected = plain.cores / plain.forwarded * recorded.forwarded
	}
	return (recorded.cores - expected) * 1000 / float64(participants)
}

// result is one measured interval.
type result struct {
	forwarded, received, cores, mbps float64
}

// runRoom fills room with the publishers and subscribers, measures it,
// runs then (if any) with the room still live, and empties it.
func runRoom(ctx context.Context, cl *cluster, room string, o options, then func(*bench) error) (result, error) {
	b, err := newBench(cl, room, o)
	if err != nil {
		return result{}, err
	}
	defer b.close()
	if err := b.setup(ctx); err != nil {
		return result{}, err
	}
	if err := pause(ctx, o.warmup); err != nil {
		return result{}, err
	}
	start, err := cl.sample(ctx, b.received())
	if err != nil {
		return result{}, err
	}
	if err := pause(ctx, o.duration); err != nil {
		return result{}, err
	}
	end, err := cl.sample(ctx, b.received())
	if err != nil {
		return result{}, err
	}
	r := measured(start, end)
	fmt.Printf("forwarded   %10.0f packets/s  %7.1f Mbit/s\n", r.forwarded, r.mbps)
	fmt.Printf("received    %10.0f packets/s  (%.2f%% of forwarded)\n", r.received, 100*r.received/max(r.forwarded, 1))
	fmt.Printf("server CPU  %10.2f cores (all nodes)\n", r.cores)
	if r.cores > 0 {
		fmt.Printf("per core    %10.0f forwarded packets/s\n", r.forwarded/r.cores)
	}
	fmt.Printf("load        %s\n", loadAverage())
	if then != nil {
		if err := then(b); err != nil {
			return r, err
		}
	}
	return r, nil
}

func measured(start, end sample) result {
	secs := end.at.Sub(start.at).Seconds()
	if secs <= 0 {
		return result{}
	}
	return result{
		forwarded: (end.forwarded - start.forwarded) / secs,
		received:  float64(end.received-start.received) / secs,
		cores:     (end.cpu - start.cpu) / secs,
		mbps:      (end.fwdBytes - start.fwdBytes) * 8 / secs / 1e6,
	}
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadAverage is the machine's load, as uptime shows it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return "load average " + strings.Join(f[:3], " ")
}

// reportJoins times joins through the room's node and, with two nodes,
// through the other, in turn, and prints their percentiles.
func reportJoins(ctx context.Context, b *bench, joins int) error {
	paths := []string{"direct"}
	if len(b.cl.nodes) > 1 {
		paths = append(paths, "relayed")
	}
	firstPacket := make([][]time.Duration, len(paths))
	firstKey := make([][]time.Duration, len(paths))
	for i := range joins {
		for p, path := range paths {
			pkt, key, err := b.timeJoin(ctx, b.cl.nodes[p], fmt.Sprintf("j%d%s", i, path[:1]), b.pubs[0])
			if err != nil {
				return fmt.Errorf("join %d %s: %w", i, path, err)
			}
			firstPacket[p] = append(firstPacket[p], pkt)
			firstKey[p] = append(firstKey[p], key)
		}
	}
	for p, path := range paths {
		fmt.Printf("join to first video packet, %-7s (%d joins via %s): %s\n", path, joins, b.cl.nodes[p].base, percentiles(firstPacket[p]))
		fmt.Printf("join to first keyframe,     %-7s (%d joins via %s): %s\n", path, joins, b.cl.nodes[p].base, percentiles(firstKey[p]))
	}
	fmt.Printf("load        %s\n", loadAverage())
	return nil
}

// timeJoin joins a fresh participant through via, subscribes to target
// and returns the time from opening the signaling socket to the first
// video packet and to the first keyframe packet; it leaves again.
func (b *bench) timeJoin(ctx context.Context, via node, name, target string) (firstPacket, firstKey time.Duration, err error) {
	if _, err := b.cl.admit(ctx, name); err != nil { // a login is no part of the join
		return 0, 0, err
	}
	var once sync.Once
	packet, key := make(chan time.Time, 1), make(chan time.Time, 1)
	start := time.Now()
	c, err := b.join(ctx, via, name)
	if err != nil {
		return 0, 0, err
	}
	defer c.close()
	err = b.subscribe(c, target, func(video bool, raw []byte) {
		if !video {
			return
		}
		now := time.Now()
		once.Do(func() { packet <- now })
		var p rtp.Packet
		if p.Unmarshal(raw) == nil && isVP8Keyframe(p.Payload) {
			select {
			case key <- now:
			default:
			}
		}
	})
	if err != nil {
		return 0, 0, err
	}
	var at [2]time.Time
	for i, ch := range []chan time.Time{packet, key} {
		select {
		case at[i] = <-ch:
		case <-time.After(signalWait):
			return 0, 0, fmt.Errorf("%s: no video from %s in %v", name, target, signalWait)
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	return at[0].Sub(start), at[1].Sub(start), nil
}

// percentiles summarises durations as min, p50, p90 and max in ms.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	return fmt.Sprintf("min %s  p50 %s  p90 %s  max %s ms", ms(s[0]), ms(at(0.5)), ms(at(0.9)), ms(s[len(s)-1]))
}
