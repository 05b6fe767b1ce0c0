package redisbus_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// TestCommandConnectionClosedByRedis: a command connection Redis closed
// while it sat idle (its timeout, CLIENT KILL) costs no publish: nothing
// goes out on it, the publish goes once on a new connection.
func TestCommandConnectionClosedByRedis(t *testing.T) {
	srv := redistest.Start(t)
	buses := newBuses(t, srv.URL(), 2, redisbus.Options{})
	nodes := bustest.Start(t, []broker.Bus{buses[0], buses[1]})
	a, b := nodes[0], nodes[1]
	const topic = "sub/socket/room/1"
	bustest.MustSubscribe(t, b, topic)
	bustest.MustSubscribe(t, a, "sub/socket/room/2") // so a's pub/sub connection is one
	bustest.MustPublish(t, a, topic, []byte("before"))
	b.WaitFor(t, topic, []byte("before"))

	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer admin.Close()
	ctx := bustest.Context(t)
	// Every command connection but admin's own; the buses' pub/sub
	// connections (subscribed to a channel) stay. Redis has closed them
	// when each answer comes.
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	own, err := admin.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["sub"] != "0" || fields["id"] == strconv.FormatInt(own, 10) {
			continue
		}
		id, _ := strconv.ParseInt(fields["id"], 10, 64)
		if err := admin.ClientKillByFilter(ctx, "ID", strconv.FormatInt(id, 10)).Err(); err != nil {
			t.Fatalf("CLIENT KILL ID %d: %v", id, err)
		}
		killed++
	}
	if killed < 2 {
		t.Fatalf("killed %d command connections, want one per bus at least:\n%s", killed, list)
	}
	if err := a.Bus.Ready(ctx); err != nil {
		t.Fatalf("Ready after Redis closed the connection: %v", err)
	}
	if err := a.Bus.Publish(ctx, topic, []byte("after")); err != nil {
		t.Fatalf("Publish after Redis closed the connection: %v", err)
	}
	b.WaitFor(t, topic, []byte("after"))
	bustest.Settle(t, nodes)
	if n := b.Count(topic); n != 2 {
		t.Fatalf("%d messages delivered, want 2", n)
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
