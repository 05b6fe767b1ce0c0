// Command cstalk-videobench measures the SFU's forwarding cost: N
// publishers send synthetic VP8 (and Opus) into one room, M subscribers
// each receive every publisher, and the server, running in a child
// process so its CPU time is its own, reports forwarded packets per second
// and per CPU core. With -record the server also records every publisher
// (package video/recording, files in a temporary directory), so the two
// runs' CPU tell what recording costs.
//
//	cstalk-videobench -publishers 4 -subscribers 8 -duration 20s [-record]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/recording"
)

type options struct {
	publishers  int
	subscribers int
	duration    time.Duration
	warmup      time.Duration
	fps         int
	frameBytes  int
	audio       bool
	serve       bool
	procs       int
	simulcast   bool
	record      bool
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
	flag.IntVar(&o.procs, "server-procs", 1, "GOMAXPROCS of the server process")
	flag.BoolVar(&o.simulcast, "simulcast", false, "publish video in three simulcast layers (full, 1/4 and 1/16 of -frame-bytes); subscribers get the layer the layout allows")
	flag.BoolVar(&o.record, "record", false, "the server records every publisher to WebM (in a temporary directory)")
	flag.BoolVar(&o.serve, "serve", false, "internal: run the server side and print its address")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.serve {
		err = serve(ctx, o.record)
	} else {
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cstalk-videobench:", err)
		os.Exit(1)
	}
}

// allowAll lets every bench client in.
type allowAll struct{}

func (allowAll) AuthorizeJoin(_ context.Context, _, userID, communityID, _ string) (video.Identity, error) {
	return video.Identity{UserID: userID, CommunityID: communityID}, nil
}

// serve runs the SFU on loopback until stdin closes (the parent is gone);
// with record, a recorder writes every participant to a temporary
// directory.
func serve(ctx context.Context, record bool) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := video.DefaultConfig()
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.MaxParticipants, cfg.MaxPublishers, cfg.MaxSubscriptions = 1000, 1000, 1000
	cfg.MessageRate, cfg.MessageBurst = 10000, 100000
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var rec *recording.Recorder
	if record {
		// Set before any join, so before any event.
		cfg.OnEvent = func(ev video.Event) { rec.HandleEvent(ev) }
	}
	srv, err := video.New(cfg, allowAll{}, reg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	if record {
		var done func()
		if rec, done, err = newRecorder(ctx, srv, log); err != nil {
			return err
		}
		defer done()
	}
	mux := http.NewServeMux()
	mux.Handle("/signal", srv.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	fmt.Printf("ADDR %s\n", ln.Addr())
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-ctx.Done():
	case <-stdinClosed:
	}
	_ = hs.Close()
	return nil
}

// startServer runs this program with -serve and returns its address.
func startServer(ctx context.Context, procs int, record bool) (addr string, wait func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	args := []string{"-serve"}
	if record {
		args = append(args, "-record")
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		_ = cmd.Process.Kill()
		return "", nil, fmt.Errorf("server did not start: %q %v", line, err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "ADDR ")), func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}, nil
}

type sample struct {
	at        time.Time
	forwarded float64 // packets
	fwdBytes  float64
	cpu       float64 // seconds
	received  int64   // by the bench's subscribers
}

func run(ctx context.Context, o options) error {
	if o.publishers < 1 || o.subscribers < 1 {
		return errors.New("need at least one publisher and one subscriber")
	}
	addr, wait, err := startServer(ctx, o.procs, o.record)
	if err != nil {
		return err
	}
	defer wait()
	b := &bench{addr: addr, opts: o}
	defer b.close()
	fmt.Printf("server %s (GOMAXPROCS=%d), bench GOMAXPROCS=%d, %d CPUs\n", addr, o.procs, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("%d publishers x %d subscribers, %d fps x %d B video%s%s%s\n", o.publishers, o.subscribers, o.fps, o.frameBytes,
		map[bool]string{true: " in 3 simulcast layers (1/16, 1/4, all)", false: ""}[o.simulcast],
		map[bool]string{true: " + Opus 50 pkt/s", false: ""}[o.audio], map[bool]string{true: ", every publisher recorded", false: ""}[o.record])
	if err := b.setup(ctx); err != nil {
		return err
	}
	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	start, err := b.sample()
	if err != nil {
		return err
	}
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
	}
	end, err := b.sample()
	if err != nil {
		return err
	}
	secs := end.at.Sub(start.at).Seconds()
	fwd := (end.forwarded - start.forwarded) / secs
	rcv := float64(end.received-start.received) / secs
	cores := (end.cpu - start.cpu) / secs
	mbps := (end.fwdBytes - start.fwdBytes) * 8 / secs / 1e6
	fmt.Printf("forwarded   %10.0f packets/s  %7.1f Mbit/s\n", fwd, mbps)
	fmt.Printf("received    %10.0f packets/s  (%.2f%% of forwarded)\n", rcv, 100*rcv/max(fwd, 1))
	fmt.Printf("server CPU  %10.2f cores\n", cores)
	if cores > 0 {
		fmt.Printf("per core    %10.0f forwarded packets/s\n", fwd/cores)
	}
	return nil
}

// metrics reads the server's forwarded counters and CPU seconds.
func (b *bench) sample() (sample, error) {
	s := sample{at: time.Now(), received: b.received()}
	resp, err := http.Get("http://" + b.addr + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "cstalk_video_forwarded_packets_total"):
			s.forwarded += v
		case strings.HasPrefix(name, "cstalk_video_forwarded_bytes_total"):
			s.fwdBytes += v
		case name == "process_cpu_seconds_total":
			s.cpu = v
		}
	}
	return s, sc.Err()
}

// newRecorder records every room of srv into a temporary directory, with
// an SQLite store there; done finishes the files and removes it all.
func newRecorder(ctx context.Context, srv *video.Server, log *slog.Logger) (rec *recording.Recorder, done func(), err error) {
	dir, err := os.MkdirTemp("", "cstalk-videobench-*")
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, "sqlite:"+dir+"/bench.db", log)
	if err == nil {
		err = st.Migrate(ctx)
	}
	if err == nil {
		rec, err = recording.New(recording.Config{Dir: dir + "/recordings", Limits: recording.DefaultLimits,
			Records: func(context.Context, video.RoomKey) (bool, error) { return true, nil }}, st, srv, log)
	}
	if err != nil {
		if st != nil {
			_ = st.Close()
		}
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	return rec, func() {
		// Runs before the server closes: the files are finished here and
		// the rooms' last events find nothing left to do.
		rec.Close()
		files, bytes := 0, int64(0)
		_ = filepath.WalkDir(dir+"/recordings", func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					files, bytes = files+1, bytes+info.Size()
				}
			}
			return nil
		})
		fmt.Fprintf(os.Stderr, "recorded %d files, %.1f MB\n", files, float64(bytes)/1e6)
		_ = st.Close()
		_ = os.RemoveAll(dir)
	}, nil
}
