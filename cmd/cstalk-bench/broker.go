package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/redisbus"
)

// runBroker serves the broker package alone, so it can be pinned to a core
// and measured without the chat domain or a store in the way.
func runBroker(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("broker", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18080", "listen address (loopback)")
	lifetime := fs.Duration("for", 30*time.Minute, "stop after this long even without a signal")
	queue := fs.Int("outbound-queue", broker.DefaultConfig().OutboundQueue, "frames queued per connection before it counts as slow")
	redisURL := fs.String("redis", "", "empty: in-process bus; redis://127.0.0.1:PORT/0: Redis bus, so several broker processes form one cluster")
	_ = fs.Parse(args)

	cfg := broker.DefaultConfig()
	cfg.OutboundQueue = *queue
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var bus broker.Bus = broker.NewMemoryBus()
	if *redisURL != "" {
		rb, err := redisbus.New(ctx, redisbus.Options{URL: *redisURL, Prefix: "cstalk-bench:", Log: quiet})
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		bus = rb
	}
	defer func() { _ = bus.Close() }()
	srv, err := broker.New(cfg, openApp{}, bus, prometheus.NewRegistry(), quiet)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("broker: listen: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("broker listening", "addr", ln.Addr().String(), "pid", os.Getpid(), "redis", *redisURL != "",
		"ws", "ws://"+ln.Addr().String()+cfg.Path+"/websocket")

	ctx, cancel := context.WithTimeout(ctx, *lifetime)
	defer cancel()
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("broker: serve: %w", err)
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopCancel()
	_ = srv.Shutdown(stopCtx, "benchmark over")
	if err := hs.Shutdown(stopCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("broker: http shutdown: %w", err)
	}
	return nil
}

// openApp admits every connection and lets anyone send to and subscribe to
// any destination: the benchmark measures the broker, not authorization.
type openApp struct{}

func (openApp) Authenticate(context.Context, *broker.Conn, broker.Header) (any, error) {
	return "bench", nil
}
func (openApp) AuthorizeSubscribe(context.Context, *broker.Conn, string, broker.Header) error {
	return nil
}
func (openApp) HandleSend(context.Context, *broker.Conn, string, broker.Header, []byte) error {
	return nil
}
func (openApp) AuthorizeSend(context.Context, *broker.Conn, string, broker.Header) error {
	return nil
}
func (openApp) Subscribed(context.Context, *broker.Conn, string, broker.Header) {}
func (openApp) Unsubscribed(context.Context, *broker.Conn, string)              {}
func (openApp) Disconnected(context.Context, *broker.Conn)                      {}
