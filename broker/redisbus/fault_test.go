package redisbus_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/bustest"
	"github.com/cstalk/cstalk/broker/redisbus"
	"github.com/cstalk/cstalk/broker/redisbus/redistest"
)

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRedisRestart: while Redis is down the bus says so and Publish and
// Subscribe fail; when it is back, delivery resumes on every topic held
// before, without anyone calling Subscribe again.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	buses := newBuses(t, srv.URL(), 2, redisbus.Options{HealthInterval: 500 * time.Millisecond})
	nodes := bustest.Start(t, []broker.Bus{buses[0], buses[1]})
	a, b := nodes[0], nodes[1]
	topics := []string{"sub/socket/room/1", "sub/socket/room/LOBBY1", "user/session/message/s-1"}
	bustest.MustSubscribe(t, b, topics...)
	bustest.MustSubscribe(t, a, topics[0])
	for _, topic := range topics {
		bustest.MustPublish(t, a, topic, []byte("before"))
		b.WaitFor(t, topic, []byte("before"))
	}

	srv.Kill()
	for _, n := range nodes {
		bustest.Eventually(t, bustest.Timeout, 20*time.Millisecond, "node "+n.Name+" to report not ready", func() bool {
			return n.Bus.Ready(context.Background()) != nil
		})
	}
	ctx := bustest.Context(t)
	if err := a.Bus.Publish(ctx, topics[0], []byte("lost")); err == nil {
		t.Fatal("Publish succeeded while Redis was down")
	}
	const failedTopic = "sub/socket/room/subscribed-while-down"
	shortCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := b.Bus.Subscribe(shortCtx, failedTopic)
	cancel()
	if err == nil {
		t.Fatal("Subscribe succeeded while Redis was down")
	}

	srv.Restart()
	for _, n := range nodes {
		bustest.Eventually(t, bustest.Timeout, 20*time.Millisecond, "node "+n.Name+" to be ready again", func() bool {
			return n.Bus.Ready(context.Background()) == nil
		})
	}
	// Ready means the pub/sub connection is back with every subscription.
	for _, topic := range topics {
		bustest.MustPublish(t, a, topic, []byte("after"))
		b.WaitFor(t, topic, []byte("after"))
	}
	bustest.MustPublish(t, b, topics[0], []byte("after, other way"))
	a.WaitFor(t, topics[0], []byte("after, other way"))

	// The failed Subscribe left nothing behind to be resubscribed.
	bustest.MustPublish(t, a, failedTopic, []byte("not subscribed"))
	bustest.Settle(t, nodes)
	if n := b.Count(failedTopic); n != 0 {
		t.Errorf("a failed Subscribe was resubscribed on reconnect: %d messages", n)
	}
	if b.Contains(topics[0], []byte("lost")) {
		t.Error("a message whose Publish failed was delivered")
	}
	if got := buses[1].Stats().Reconnects; got < 1 {
		t.Errorf("Stats().Reconnects = %d after a restart", got)
	}
}

// TestRestartBeforeRun: the connection is restored even while nothing
// consumes deliveries yet.
func TestRestartBeforeRun(t *testing.T) {
	srv := redistest.Start(t)
	buses := newBuses(t, srv.URL(), 2, redisbus.Options{HealthInterval: 500 * time.Millisecond})
	if err := buses[1].Subscribe(bustest.Context(t), "sub/socket/room/1"); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	bustest.Eventually(t, bustest.Timeout, 20*time.Millisecond, "not ready", func() bool {
		return buses[1].Ready(context.Background()) != nil
	})
	srv.Restart()
	bustest.Eventually(t, bustest.Timeout, 20*time.Millisecond, "ready again", func() bool {
		return buses[1].Ready(context.Background()) == nil
	})
	nodes := bustest.Start(t, []broker.Bus{buses[0], buses[1]})
	bustest.MustPublish(t, nodes[0], "sub/socket/room/1", []byte("x"))
	nodes[1].WaitFor(t, "sub/socket/room/1", []byte("x"))
}

// TestClosedBus: every call on a closed bus fails with ErrClosed.
func TestClosedBus(t *testing.T) {
	bus := newBuses(t, redisURL(), 1, redisbus.Options{})[0]
	if err := bus.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := bustest.Context(t)
	for name, err := range map[string]error{
		"Publish":     bus.Publish(ctx, "t", nil),
		"Subscribe":   bus.Subscribe(ctx, "t"),
		"Unsubscribe": bus.Unsubscribe(ctx, "t"),
		"Ready":       bus.Ready(ctx),
	} {
		if !errors.Is(err, redisbus.ErrClosed) {
			t.Errorf("%s on a closed bus: %v, want ErrClosed", name, err)
		}
	}
	if err := bus.Run(ctx, func(string, []byte) {}); err != nil {
		t.Errorf("Run on a closed bus: %v, want nil", err)
	}
}
