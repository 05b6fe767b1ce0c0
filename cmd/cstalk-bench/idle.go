package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// runIdle measures what an idle connection costs the server: the growth of
// the server process's resident memory over K connections that each CONNECT
// and SUBSCRIBE to a destination of their own, as a customer's app sitting
// in a waiting room does.
func runIdle(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var t target
	t.register(fs)
	conns := fs.Int("conns", 2000, "idle connections to open")
	pid := fs.Int("pid", 0, "server process id whose VmRSS is read (RabbitMQ: the beam.smp pid)")
	settle := fs.Duration("settle", 3*time.Second, "wait after the last connection before reading RSS again")
	parallel := fs.Int("connect-parallel", 32, "connections opened at a time")
	jsonOut := fs.Bool("json", false, "print the result as one JSON object")
	_ = fs.Parse(args)
	if err := t.resolve(); err != nil {
		return err
	}
	if *pid <= 0 {
		return errors.New("idle: --pid is required")
	}
	before, err := vmRSSKiB(*pid)
	if err != nil {
		return err
	}
	log.Info("opening idle connections", "n", *conns, "rss_kib_before", before)
	clients, err := connectMany(ctx, &t, *conns, *parallel, func(i int, c *stompClient) error {
		return c.subscribe("0", t.dest(i))
	})
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	defer closeAll(clients)
	// Let the server finish its own work for the new connections (GC, Erlang
	// process heaps) before reading; this is a measurement pause, not a
	// synchronisation.
	select {
	case <-time.After(*settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	after, err := vmRSSKiB(*pid)
	if err != nil {
		return err
	}
	perConn := float64(after-before) / float64(*conns)
	if *jsonOut {
		fmt.Printf(`{"target":%q,"conns":%d,"rss_kib_before":%d,"rss_kib_after":%d,"kib_per_conn":%.2f}`+"\n",
			t.url, *conns, before, after, perConn)
	} else {
		fmt.Printf("target %s: %d idle connections: VmRSS %d KiB -> %d KiB: %.1f KiB per connection\n",
			t.url, *conns, before, after, perConn)
	}
	return nil
}

// vmRSSKiB reads a process's resident set size from /proc/PID/status.
func vmRSSKiB(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read RSS of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				return strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
