package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// target describes the server under test and how its destinations are
// spelled: cstalk uses sub/bench/N, RabbitMQ's STOMP topics /topic/bench.N.
type target struct {
	url        string
	style      string
	destPrefix string
	host       string
	login      string
	passcode   string
	headers    headerFlags
}

func (t *target) register(fs *flag.FlagSet) {
	fs.StringVar(&t.url, "url", "ws://127.0.0.1:18080/ws/websocket", "raw WebSocket STOMP endpoint (RabbitMQ: ws://127.0.0.1:15674/ws)")
	fs.StringVar(&t.style, "topic-style", "stomp", "destination spelling: stomp (sub/bench/N) or rabbit (/topic/bench.N, guest/guest)")
	fs.StringVar(&t.destPrefix, "dest-prefix", "", "destination prefix; the destination index is appended (default by --topic-style)")
	fs.StringVar(&t.host, "host", "/", "CONNECT host header (RabbitMQ virtual host)")
	fs.StringVar(&t.login, "login", "", "CONNECT login (default guest for --topic-style rabbit)")
	fs.StringVar(&t.passcode, "passcode", "", "CONNECT passcode (default guest for --topic-style rabbit)")
	fs.Var(&t.headers, "header", "extra CONNECT header key=value (repeatable)")
}

func (t *target) resolve() error {
	switch t.style {
	case "stomp":
		if t.destPrefix == "" {
			t.destPrefix = "sub/bench/"
		}
	case "rabbit":
		if t.destPrefix == "" {
			t.destPrefix = "/topic/bench."
		}
		if t.login == "" {
			t.login, t.passcode = "guest", "guest"
		}
	default:
		return fmt.Errorf("--topic-style %q: want stomp or rabbit", t.style)
	}
	if !strings.HasPrefix(t.url, "ws://127.") && !strings.HasPrefix(t.url, "ws://localhost") && !strings.HasPrefix(t.url, "ws://[::1]") {
		return fmt.Errorf("--url %s: the benchmark only talks to loopback", t.url)
	}
	return nil
}

func (t *target) dest(i int) string { return t.destPrefix + strconv.Itoa(i) }

func (t *target) dial(ctx context.Context) (*stompClient, error) {
	return dialSTOMP(ctx, dialOptions{url: t.url, host: t.host, login: t.login, passcd: t.passcode, headers: t.headers.m})
}

func (t *target) withHeaders(extra map[string]string) *target {
	c := *t
	c.headers.m = make(map[string]string, len(t.headers.m)+len(extra))
	for k, v := range t.headers.m {
		c.headers.m[k] = v
	}
	for k, v := range extra {
		c.headers.m[k] = v
	}
	return &c
}

type headerFlags struct{ m map[string]string }

func (h *headerFlags) String() string { return fmt.Sprint(h.m) }
func (h *headerFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	if h.m == nil {
		h.m = map[string]string{}
	}
	h.m[k] = v
	return nil
}

// connectMany opens n connections, at most parallel at a time; setup(i, c)
// runs on each new connection (e.g. SUBSCRIBE). On the first failure it
// closes what it opened and returns the error.
func connectMany(ctx context.Context, t *target, n, parallel int, setup func(i int, c *stompClient) error) ([]*stompClient, error) {
	return connectManyWith(ctx, t, n, parallel, nil, setup)
}

// connectManyWith is connectMany with CONNECT headers of each connection's
// own (added to the target's).
func connectManyWith(ctx context.Context, t *target, n, parallel int, headers func(i int) map[string]string,
	setup func(i int, c *stompClient) error) ([]*stompClient, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*stompClient, n)
	next := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				// A server out of sockets may accept and then never answer:
				// bound each connection's setup.
				connCtx, connCancel := context.WithTimeout(ctx, 30*time.Second)
				ct := t
				if headers != nil {
					ct = t.withHeaders(headers(i))
				}
				c, err := ct.dial(connCtx)
				connCancel()
				if err == nil && setup != nil {
					if err = setup(i, c); err != nil {
						c.close()
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					continue
				}
				clients[i] = c
			}
		}()
	}
feed:
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		closeAll(clients)
		return nil, firstErr
	}
	return clients, nil
}

func closeAll(clients []*stompClient) {
	var wg sync.WaitGroup
	for _, c := range clients {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.close() }()
		}
	}
	wg.Wait()
}
