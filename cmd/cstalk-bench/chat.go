package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// runChat drives the full chat server as its users do: customers connect
// with their company headers, get LOGINED with their room and enter it;
// counselors log in over the REST API, connect with the bearer token and
// enter those rooms (taking them). Customers then SEND MESSAGE events to
// pub/socket/message; every message is stored and delivered on
// sub/socket/room/{id} to the customer and the counselor, where the latency
// from the send is measured.
func runChat(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("chat", flag.ExitOnError)
	base := fs.String("http", "http://127.0.0.1:8080", "the cstalk server (loopback); STOMP at <http>/ws/websocket")
	company := fs.Int("company", 1, "company the customers and counselors belong to")
	memberLogins := fs.String("members", "agent1,agent2", "counselor logins, comma-separated (cstalk serve --demo creates agent1 and agent2)")
	password := fs.String("password", "demo1234", "the counselors' password")
	customers := fs.Int("customers", 40, "customer connections, one room each")
	firstNumber := fs.Int64("member-number", 0, "gasappMemberNumber of the first customer (0: derived from the clock, so every run gets fresh rooms)")
	rate := fs.Float64("rate", 200, "MESSAGE events per second over all customers (stored messages: the store bounds this)")
	duration := fs.Duration("duration", 10*time.Second, "how long customers send")
	warmup := fs.Duration("warmup", 2*time.Second, "initial part of --duration left out of the figures")
	drain := fs.Duration("drain", 5*time.Second, "how long to wait for deliveries after sending stops")
	maxMessages := fs.Int64("max-messages", 1_000_000, "stop sending after this many messages")
	parallel := fs.Int("connect-parallel", 8, "connections opened at a time")
	pid := fs.Int("pid", 0, "server process id: report its CPU use over the measured window")
	jsonOut := fs.Bool("json", false, "print the result as one JSON object")
	memberBase := fs.String("member-http", "", "counselors use this node instead of --http (another node of a cluster: every message crosses the bus)")
	_ = fs.Parse(args)

	u, err := url.Parse(*base)
	if err != nil || u.Scheme != "http" || !isLoopback(u.Hostname()) {
		return fmt.Errorf("chat: --http %s: want http:// on a loopback address", *base)
	}
	if *memberBase == "" {
		*memberBase = *base
	}
	mu, err := url.Parse(*memberBase)
	if err != nil || mu.Scheme != "http" || !isLoopback(mu.Hostname()) {
		return fmt.Errorf("chat: --member-http %s: want http:// on a loopback address", *memberBase)
	}
	memberWS := "ws://" + mu.Host + "/ws/websocket"
	if *rate <= 0 || *customers < 1 || *warmup >= *duration {
		return errors.New("chat: need --rate > 0, --customers >= 1 and --warmup < --duration")
	}
	logins := strings.Split(*memberLogins, ",")
	// A counselor's connection holds its private channel and its rooms, and
	// the broker bounds subscriptions per connection (64 by default).
	if *customers > len(logins)*60 {
		return fmt.Errorf("chat: %d customers need at least %d counselors (60 rooms each)", *customers, (*customers+59)/60)
	}
	if *firstNumber == 0 {
		*firstNumber = time.Now().Unix() * 1000
	}
	wsURL := "ws://" + u.Host + "/ws/websocket"
	companyID := strconv.Itoa(*company)

	// Customers: CONNECT, private subscription, LOGINED names the room, enter it.
	log.Info("connecting customers", "n", *customers)
	rooms := make([]string, *customers)
	custTarget := &target{url: wsURL, host: "/"}
	customerHeaders := func(i int) map[string]string {
		return map[string]string{
			"companyId":          companyID,
			"gasappMemberNumber": strconv.FormatInt(*firstNumber+int64(i), 10),
			"name":               "bench " + strconv.Itoa(i),
		}
	}
	custClients, err := connectManyWith(ctx, custTarget, *customers, *parallel, customerHeaders, func(i int, c *stompClient) error {
		// LOGINED may come before the receipt, so await it instead.
		if err := c.write("SUBSCRIBE", nil, "id", "private", "destination", "user/session/message"); err != nil {
			return err
		}
		room, err := c.awaitEvent("private", "LOGINED")
		if err != nil {
			return err
		}
		if room.RoomID == "" {
			return errors.New("LOGINED without roomId")
		}
		rooms[i] = room.RoomID
		return c.subscribe("room", "sub/socket/room/"+room.RoomID)
	})
	if err != nil {
		return fmt.Errorf("chat: customers: %w", err)
	}
	defer closeAll(custClients)

	// Counselors: log in, CONNECT with the token, enter their share of rooms.
	log.Info("connecting counselors", "n", len(logins))
	memberClients := make([]*stompClient, len(logins))
	defer closeAll(memberClients)
	for m, login := range logins {
		token, err := memberToken(ctx, *memberBase, login, *password)
		if err != nil {
			return err
		}
		mt := &target{url: memberWS, host: "/", headers: headerFlags{m: map[string]string{"Authorization": "Bearer " + token}}}
		c, err := mt.dial(ctx)
		if err != nil {
			return fmt.Errorf("chat: counselor %s: %w", login, err)
		}
		memberClients[m] = c
		if err := c.subscribe("private", "user/session/message"); err != nil {
			return fmt.Errorf("chat: counselor %s: %w", login, err)
		}
		for i := m; i < *customers; i += len(logins) {
			if err := c.subscribe("room-"+rooms[i], "sub/socket/room/"+rooms[i]); err != nil {
				return fmt.Errorf("chat: counselor %s, room %s: %w", login, rooms[i], err)
			}
		}
	}

	// Every room message reaches its customer and its counselor.
	readersOf := append(append([]*stompClient{}, custClients...), memberClients...)
	hists := make([]*hdrhistogram.Histogram, len(readersOf))
	inWindow := make([]int64, len(readersOf))
	var (
		errs      errorLog
		delivered atomic.Int64
		win       window
		stopping  atomic.Bool
		readers   sync.WaitGroup
	)
	win.from.Store(math.MaxInt64)
	win.to.Store(math.MaxInt64)
	for r, c := range readersOf {
		hists[r] = newHistogram()
		readers.Add(1)
		go func() {
			defer readers.Done()
			err := c.readChat(func(stamp, now int64) {
				delivered.Add(1)
				if now >= win.from.Load() {
					_ = hists[r].RecordValue(max((now-stamp)/int64(time.Microsecond), 0))
					if now <= win.to.Load() {
						inWindow[r]++
					}
				}
			})
			if err != nil && !stopping.Load() {
				errs.add(err)
			}
		}()
	}

	// Customers take turns; each sender goroutine owns a fixed set of
	// customers, so a connection has one writer.
	senders := min(*customers, 4)
	start := time.Now()
	win.from.Store(start.Add(*warmup).UnixNano())
	sendCtx, sendCancel := context.WithDeadline(ctx, start.Add(*duration))
	defer sendCancel()
	var (
		sent sync.WaitGroup
		n    atomic.Int64
	)
	log.Info("sending", "rate", *rate, "duration", *duration)
	for s := 0; s < senders; s++ {
		sent.Add(1)
		go func() {
			defer sent.Done()
			p := newPacer(start, *rate/float64(senders), s, senders)
			var owned []int
			for i := s; i < *customers; i += senders {
				owned = append(owned, i)
			}
			var body []byte
			for k := 0; ; k++ {
				stamp, ok := p.wait(sendCtx)
				if !ok {
					return
				}
				if n.Add(1) > *maxMessages {
					n.Add(-1)
					return
				}
				i := owned[k%len(owned)]
				body = appendChatMessage(body[:0], stamp.UnixNano())
				if err := custClients[i].write("SEND", body, "destination", "pub/socket/message", "roomId", rooms[i], "content-type", "application/json"); err != nil {
					n.Add(-1)
					errs.add(fmt.Errorf("customer %d: %w", i, err))
					return
				}
			}
		}()
	}
	var cpuFrom cpuSample
	select {
	case <-time.After(time.Until(start.Add(*warmup))):
		cpuFrom = sampleCPU(*pid)
	case <-sendCtx.Done():
	}
	sent.Wait()
	sendEnd := time.Now()
	cpuTo := sampleCPU(*pid)
	win.to.Store(sendEnd.UnixNano())
	expected := 2 * n.Load()
	drainUntil := time.Now().Add(*drain)
	for delivered.Load() < expected && time.Now().Before(drainUntil) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond) // polling a counter; nothing to await
	}
	stopping.Store(true)
	closeAll(readersOf)
	readers.Wait()

	hist := newHistogram()
	var counted int64
	for r := range hists {
		hist.Merge(hists[r])
		counted += inWindow[r]
	}
	measured := sendEnd.Sub(start.Add(*warmup)).Seconds()
	res := loadResult{
		Mode: "chat", Target: *base, Subs: *customers + len(logins), Pubs: *customers, Dests: *customers, Rate: *rate,
		Published: n.Load(), PublishedPerSec: float64(n.Load()) / sendEnd.Sub(start).Seconds(),
		Delivered: delivered.Load(), DeliveredPerSec: float64(counted) / measured,
		Expected: expected, Lost: expected - delivered.Load(),
		Errors: errs.n.Load(), FirstError: errs.firstText(),
		LatencyP50us: hist.ValueAtQuantile(50), LatencyP90us: hist.ValueAtQuantile(90),
		LatencyP99us: hist.ValueAtQuantile(99), LatencyP999us: hist.ValueAtQuantile(99.9),
		LatencyMaxus: hist.Max(), LatencySamples: hist.TotalCount(),
		MeasuredSeconds: measured, FanOutPerMessage: 2,
	}
	if !cpuFrom.at.IsZero() {
		res.ServerCPUPct, res.GeneratorCPUPct = cpuTo.since(cpuFrom)
		res.perCPU()
	}
	res.print(*jsonOut)
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// memberToken logs a counselor in through POST /api/auth/login.
func memberToken(ctx context.Context, base, login, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"loginName": login, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/auth/login", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("chat: login %s: %w", login, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("chat: login %s: %w", login, err)
	}
	defer resp.Body.Close()
	var out struct {
		Token   string `json:"token"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Token == "" {
		return "", fmt.Errorf("chat: login %s: HTTP %d %s", login, resp.StatusCode, out.Message)
	}
	return out.Token, nil
}

// chatEvent is the part of an event envelope the benchmark reads.
type chatEvent struct {
	EventName string          `json:"eventName"`
	RoomID    string          `json:"roomId"`
	Data      json.RawMessage `json:"data"`
}

// awaitEvent reads frames until eventName arrives on subscription sub.
func (c *stompClient) awaitEvent(sub, eventName string) (chatEvent, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = c.ws.SetReadDeadline(time.Time{}) }()
	for {
		f, err := c.in.next()
		if err != nil {
			return chatEvent{}, fmt.Errorf("await %s: %w", eventName, err)
		}
		switch string(f.command) {
		case "ERROR":
			return chatEvent{}, fmt.Errorf("await %s: ERROR %s", eventName, f.header("message"))
		case "MESSAGE":
			if f.header("subscription") != sub {
				continue
			}
			var ev chatEvent
			if json.Unmarshal(f.body, &ev) == nil && ev.EventName == eventName {
				return ev, nil
			}
		}
	}
}

// readChat reports every MESSAGE event carrying a benchmark stamp until the
// connection ends; an ERROR event or frame ends it with an error.
func (c *stompClient) readChat(record func(stamp, now int64)) error {
	for {
		f, err := c.in.next()
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		switch string(f.command) {
		case "ERROR":
			return fmt.Errorf("ERROR frame: %s", f.header("message"))
		case "MESSAGE":
		default:
			continue
		}
		if stamp, ok := messageStamp(f.body); ok {
			record(stamp, now)
			continue
		}
		var ev struct {
			EventName string `json:"eventName"`
			Data      struct {
				Message struct {
					Message string `json:"message"`
				} `json:"message"`
				Reason string `json:"reason"`
			} `json:"data"`
		}
		if json.Unmarshal(f.body, &ev) != nil {
			continue
		}
		switch ev.EventName {
		case "MESSAGE":
			if stamp, ok := parseStamp([]byte(ev.Data.Message.Message)); ok {
				record(stamp, now)
			}
		case "ERROR":
			return fmt.Errorf("ERROR event: %s", ev.Data.Reason)
		}
	}
}

// messageStamp finds the stamp of a MESSAGE event without decoding the
// envelope: decoding every delivery took a quarter of the generator's CPU,
// which it shares with the database. It relies on the server's field order
// (eventName first, the message object's text the first string-valued
// "message"); anything else is not ok and gets decoded in full.
func messageStamp(body []byte) (int64, bool) {
	const event, text = `{"eventName":"MESSAGE",`, `"message":"`
	if !bytes.HasPrefix(body, []byte(event)) {
		return 0, false
	}
	i := bytes.Index(body, []byte(text))
	if i < 0 {
		return 0, false
	}
	return parseStamp(body[i+len(text):])
}

func appendChatMessage(b []byte, nanos int64) []byte {
	b = append(b, `{"eventName":"MESSAGE","data":{"messageType":0,"messageDetail":"","message":"`...)
	b = appendStamp(b, nanos, 0, 0)
	b = append(b, `bench"}}`...)
	return b
}
