// Command cstalk-bench measures cstalk's STOMP broker, and compares it with a
// peer broker (RabbitMQ Web-STOMP) run side by side on the same machine.
//
//	cstalk-bench broker --addr 127.0.0.1:18080        the broker package alone
//	cstalk-bench load   --url ws://... --subs N ...    throughput and latency
//	cstalk-bench idle   --url ws://... --conns K --pid PID   memory per connection
//	cstalk-bench chat   --http http://127.0.0.1:8080   the counseling chat end to end
//
// Every mode stops by itself (durations and counts are bounded) and talks to
// loopback addresses only. compare.sh runs the whole comparison.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "bench")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch mode, args := os.Args[1], os.Args[2:]; mode {
	case "broker":
		err = runBroker(ctx, args, log)
	case "load":
		err = runLoad(ctx, args, log)
	case "idle":
		err = runIdle(ctx, args, log)
	case "chat":
		err = runChat(ctx, args, log)
	case "-h", "--help", "help":
		usage()
		return
	default:
		fmt.Fprintf(os.Stderr, "cstalk-bench: unknown mode %q\n", mode)
		usage()
		os.Exit(2)
	}
	if err != nil {
		log.Error("failed", "err", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: cstalk-bench MODE [flags]

modes:
  broker  serve only the broker package (memory bus, permissive application)
  load    N subscribers, M publishers over raw WebSocket STOMP: msgs/s and latency
  idle    K idle connections (CONNECT + SUBSCRIBE): server RSS per connection
  chat    customers and counselors of the full chat server: delivery latency

cstalk-bench MODE -h lists the flags of a mode.
`)
}
