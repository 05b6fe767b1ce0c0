package redisbus_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/bustest"
	"github.com/cstalk/cstalk/broker/redisbus"
)

// redisURL is the Redis the tests use: 127.0.0.1:6379 unless
// CSTALK_TEST_REDIS names another (host:port or a redis:// URL). There is no
// skipping: a test run without Redis fails.
func redisURL() string {
	addr := os.Getenv("CSTALK_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	if strings.Contains(addr, "://") {
		return addr
	}
	return "redis://" + addr + "/0"
}

func uniquePrefix(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "cstalk-test:" + hex.EncodeToString(b[:]) + ":"
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newBuses connects nodes buses to url under one prefix of their own.
func newBuses(t testing.TB, url string, nodes int, opts redisbus.Options) []*redisbus.Bus {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = uniquePrefix(t)
	}
	opts.URL = url
	opts.Log = testLogger(t)
	buses := make([]*redisbus.Bus, nodes)
	for i := range buses {
		o := opts
		o.NodeID = fmt.Sprintf("%s-%c", cmp.Or(opts.NodeID, "node"), 'A'+i)
		ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
		bus, err := redisbus.New(ctx, o)
		cancel()
		if err != nil {
			t.Fatalf("redisbus.New(%s): %v", url, err)
		}
		t.Cleanup(func() { _ = bus.Close() })
		buses[i] = bus
	}
	return buses
}

func TestContract(t *testing.T) {
	bustest.Run(t, cluster(redisbus.Options{}))
}

func TestContractUnbatched(t *testing.T) {
	bustest.Run(t, cluster(redisbus.Options{DisableBatching: true}))
}

func cluster(opts redisbus.Options) bustest.NewCluster {
	return func(t *testing.T, nodes int) []broker.Bus {
		var out []broker.Bus
		for _, b := range newBuses(t, redisURL(), nodes, opts) {
			out = append(out, b)
		}
		return out
	}
}

func TestNewFailsWithoutRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), bustest.Timeout)
	defer cancel()
	port := freePort(t)
	bus, err := redisbus.New(ctx, redisbus.Options{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)})
	if err == nil {
		_ = bus.Close()
		t.Fatal("New succeeded with nothing listening")
	}
}

func TestOptionsValidation(t *testing.T) {
	ctx := bustest.Context(t)
	if _, err := redisbus.New(ctx, redisbus.Options{URL: "http://127.0.0.1:6379"}); err == nil {
		t.Error("New accepted a non-redis URL")
	}
	if _, err := redisbus.New(ctx, redisbus.Options{URL: redisURL(), NodeID: strings.Repeat("n", 256)}); err == nil {
		t.Error("New accepted a 256-byte node id")
	}
}

// TestPrefixIsolation: buses under different prefixes do not hear each other
// even on the same topic.
func TestPrefixIsolation(t *testing.T) {
	x := newBuses(t, redisURL(), 2, redisbus.Options{})
	y := newBuses(t, redisURL(), 2, redisbus.Options{})
	nodes := bustest.Start(t, []broker.Bus{x[0], x[1], y[0], y[1]})
	x0, x1, y0, y1 := nodes[0], nodes[1], nodes[2], nodes[3]
	const topic = "sub/socket/room/1"
	bustest.MustSubscribe(t, x0, topic)
	bustest.MustSubscribe(t, y1, topic)
	bustest.MustPublish(t, y0, topic, []byte("other prefix"))
	y1.WaitFor(t, topic, []byte("other prefix"))
	// Had it crossed prefixes, it would reach x0 before this later message.
	bustest.MustPublish(t, x1, topic, []byte("own prefix"))
	x0.WaitFor(t, topic, []byte("own prefix"))
	if got := x0.Received(topic); len(got) != 1 {
		t.Fatalf("bus received messages from another prefix: %q", got)
	}
}

func TestStats(t *testing.T) {
	buses := newBuses(t, redisURL(), 2, redisbus.Options{})
	nodes := bustest.Start(t, []broker.Bus{buses[0], buses[1]})
	const topic = "sub/socket/room/stats"
	bustest.MustSubscribe(t, nodes[0], topic)
	bustest.MustSubscribe(t, nodes[1], topic)
	bustest.MustPublish(t, nodes[0], topic, []byte("x"))
	nodes[1].WaitFor(t, topic, []byte("x"))
	bustest.Settle(t, nodes)
	// Settle's own markers may still be on their way back to their
	// publishers; closing waits for the readers, so the figures hold still
	// between Stats and the scrape.
	for _, bus := range buses {
		if err := bus.Close(); err != nil {
			t.Fatal(err)
		}
	}

	a, b := buses[0].Stats(), buses[1].Stats()
	if a.Published < 1 || a.OwnDropped < 1 {
		t.Errorf("publisher stats %+v: want Published and OwnDropped counted", a)
	}
	if b.Received < 1 || b.Delivered < 1 || b.Topics != 2 {
		t.Errorf("receiver stats %+v: want Received, Delivered and 2 topics", b)
	}

	// The same figures, scraped.
	for i, want := range []redisbus.Stats{a, b} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(buses[i].Collector("chat"))
		got := scrape(t, reg, "chat")
		wantMetrics := map[string]float64{
			"cstalk_bus_published_total": float64(want.Published), "cstalk_bus_publish_errors_total": float64(want.PublishErrors),
			"cstalk_bus_publish_round_trips_total": float64(want.PublishPipelines), "cstalk_bus_received_total": float64(want.Received),
			"cstalk_bus_delivered_total": float64(want.Delivered), "cstalk_bus_own_dropped_total": float64(want.OwnDropped),
			"cstalk_bus_reconnects_total": float64(want.Reconnects), "cstalk_bus_topics": float64(want.Topics),
		}
		if !maps.Equal(got, wantMetrics) {
			t.Errorf("bus %d scraped %v, its stats say %v", i, got, wantMetrics)
		}
	}
}

// scrape gathers reg and returns the value of each metric labelled
// bus=name.
func scrape(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "bus" || m.GetLabel()[0].GetValue() != name {
				t.Fatalf("%s: labels %v", f.GetName(), m.GetLabel())
			}
			v := m.GetCounter().GetValue()
			if f.GetType() == dto.MetricType_GAUGE {
				v = m.GetGauge().GetValue()
			}
			out[f.GetName()] = v
		}
	}
	return out
}
