package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/recording"
)

// The SFU alone, in a child process so its CPU time is its own: no store
// behind the joins, no relay. A recorder is always there; POST /record
// with on=true or on=false decides whether rooms opened after it are
// recorded, as a company's setting does in cstalk serve.

// allowAll lets every bench client in.
type allowAll struct{}

func (allowAll) AuthorizeJoin(_ context.Context, _, userID, communityID, _ string) (video.Identity, error) {
	return video.Identity{UserID: userID, CommunityID: communityID}, nil
}

// serveSFU runs the SFU on ln until ctx ends or stop closes.
func serveSFU(ctx context.Context, ln net.Listener, stop <-chan struct{}, log *slog.Logger) error {
	cfg := video.DefaultConfig()
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.MaxParticipants, cfg.MaxPublishers, cfg.MaxSubscriptions = 1000, 1000, 1000
	cfg.MessageRate, cfg.MessageBurst = 10000, 100000
	reg := prometheus.NewRegistry()
	var rec *recording.Recorder
	// Set before any join, so before any event.
	cfg.OnEvent = func(ev video.Event) { rec.HandleEvent(ev) }
	srv, err := video.New(cfg, allowAll{}, reg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	var record atomic.Bool
	rec, done, err := newRecorder(ctx, srv, &record, log)
	if err != nil {
		return err
	}
	defer done()
	mux := http.NewServeMux()
	mux.Handle("/signal", srv.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /record", func(w http.ResponseWriter, r *http.Request) {
		on, err := strconv.ParseBool(r.FormValue("on"))
		if err != nil {
			http.Error(w, "on: want true or false", http.StatusBadRequest)
			return
		}
		record.Store(on)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case <-stop:
	}
	return hs.Close()
}

// serveChild is the child's main: the SFU on loopback until stdin closes
// (the parent is gone), its address on stdout.
func serveChild(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	return serveSFU(ctx, ln, stdinClosed, log)
}

// sfuCluster is the cluster of the in-process mode: one node, bench
// participants let in by name.
func sfuCluster(n node) *cluster {
	return &cluster{
		nodes:   []node{n},
		company: "1",
		admit: func(_ context.Context, name string) (participant, error) {
			return participant{token: "bench", userID: name}, nil
		},
		setRecording: func(ctx context.Context, on bool) error {
			status, err := cstalkCall(ctx, http.MethodPost, n.base+"/record?on="+strconv.FormatBool(on), "", nil, nil)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			if err != nil {
				return fmt.Errorf("switch recording: %w", err)
			}
			return nil
		},
	}
}

// startSFU runs this program with -serve and returns the child as a node.
func startSFU(ctx context.Context, procs int) (n node, wait func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return n, nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-serve")
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return n, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return n, nil, err
	}
	if err := cmd.Start(); err != nil {
		return n, nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return n, nil, fmt.Errorf("server did not start: %q %v", line, err)
	}
	n = node{base: "http://" + strings.TrimSpace(strings.TrimPrefix(line, "ADDR ")), pid: cmd.Process.Pid}
	return n, func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}, nil
}

// newRecorder records the rooms of srv opened while record is set into a
// temporary directory, with an SQLite store there; done finishes the files
// and removes it all.
func newRecorder(ctx context.Context, srv *video.Server, record *atomic.Bool, log *slog.Logger) (rec *recording.Recorder, done func(), err error) {
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
			Records: func(context.Context, video.RoomKey) (bool, error) { return record.Load(), nil }}, st, srv, log)
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
		if files > 0 {
			fmt.Fprintf(os.Stderr, "recorded %d files, %.1f MB\n", files, float64(bytes)/1e6)
		}
		_ = st.Close()
		_ = os.RemoveAll(dir)
	}, nil
}
