package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/broker"
)

// TestLoadAgainstBroker runs a short load against an in-process broker and
// checks the bookkeeping (nothing lost, no errors, latencies recorded); it
// asserts nothing about speed.
func TestLoadAgainstBroker(t *testing.T) {
	bus := broker.NewMemoryBus()
	srv, err := broker.New(broker.DefaultConfig(), openApp{}, bus, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx, "test over")
		ts.Close()
		_ = bus.Close()
	})
	tg := &target{url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/websocket", style: "stomp", host: "/"}
	if err := tg.resolve(); err != nil {
		t.Fatal(err)
	}
	for _, rate := range []float64{0, 2000} {
		res, err := load(context.Background(), tg, loadConfig{
			subs: 6, pubs: 2, dests: 3, rate: rate, duration: 600 * time.Millisecond, warmup: 100 * time.Millisecond,
			drain: 5 * time.Second, maxMessages: 1_000_000, size: 64, inflight: 100, parallel: 4,
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("rate %v: %v", rate, err)
		}
		if res.Published == 0 || res.Lost != 0 || res.Errors != 0 || res.LatencySamples == 0 {
			t.Errorf("rate %v: %+v", rate, res)
		}
		if res.Expected != 2*res.Published {
			t.Errorf("rate %v: expected %d deliveries for %d messages at fan-out 2", rate, res.Expected, res.Published)
		}
	}
}

func TestVmRSS(t *testing.T) {
	kib, err := vmRSSKiB(os.Getpid())
	if err != nil || kib <= 0 {
		t.Fatalf("vmRSSKiB = %d, %v", kib, err)
	}
}
