package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// chatConfig is the chat workload: rooms (one customer connection each),
// counselor connections that enter them, and customers sending MESSAGE
// events at a total rate, each delivered to the room's customer and
// counselor.
type chatConfig struct {
	customers   int
	memberConns int // 0: one per room
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	drain       drainWait
	settle      time.Duration
	maxMessages int64
	parallel    int
	pid, dbPID  int
	// Two nodes: the counselors' node and the bus's server (redis-server).
	memberPID, busPID int
	jsonOut           bool
	idleOnly          bool
}

// runChat drives the full chat server as its users do: customers connect
// with their company headers, get LOGINED with their room and enter it;
// counselors log in over the REST API, connect with the bearer token and
// enter those rooms (taking them). Customers then SEND MESSAGE events to
// pub/socket/message; every message is stored and delivered on
// sub/socket/room/{id} to the customer and the counselor, where the latency
// from the send is measured. Each customer sends rate/customers events per
// second, above a server's default allowance of 10 per connection: run the
// server with --chat-event-rate 0 (compare.sh does).
//
// With --rabbit the same connections, subscriptions and rate run against
// RabbitMQ Web-STOMP as plain pub/sub (chat_peer.go), which stores nothing.
func runChat(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("chat", flag.ExitOnError)
	var c chatConfig
	base := fs.String("http", "http://127.0.0.1:8080", "the cstalk server (loopback); STOMP at <http>/ws/websocket")
	company := fs.Int("company", 1, "company the customers and counselors belong to")
	memberLogins := fs.String("members", "agent1,agent2", "counselor logins, comma-separated, used by the counselor connections in turn (cstalk serve --demo creates agent1 and agent2)")
	password := fs.String("password", "demo1234", "the counselors' password")
	fs.IntVar(&c.customers, "customers", 200, "customer connections, one room each")
	fs.IntVar(&c.memberConns, "member-conns", 0, "counselor connections; the rooms are dealt out among them in turn (0: one per room)")
	firstNumber := fs.Int64("member-number", 0, "gasappMemberNumber of the first customer (0: derived from the clock, so every run gets fresh rooms)")
	fs.Float64Var(&c.rate, "rate", 2000, "MESSAGE events per second over all customers (stored messages: the store bounds this)")
	fs.DurationVar(&c.duration, "duration", 15*time.Second, "how long customers send")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "initial part of --duration left out of the figures")
	c.drain.flags(fs)
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "wait after the last connection before reading the server's memory")
	fs.Int64Var(&c.maxMessages, "max-messages", 1_000_000, "stop sending after this many messages")
	fs.IntVar(&c.parallel, "connect-parallel", 8, "connections opened at a time")
	fs.IntVar(&c.pid, "pid", 0, "server process id (RabbitMQ: beam.smp): report its CPU over the measured window and its memory per connection")
	fs.IntVar(&c.dbPID, "db-pid", 0, "database server process id (mysqld): its CPU over the same window counts with the server's")
	fs.IntVar(&c.memberPID, "member-pid", 0, "with --member-http: that node's process id; its CPU over the same window counts with the server's")
	fs.IntVar(&c.busPID, "bus-pid", 0, "with --member-http: the bus's server process id (redis-server); its CPU over the same window counts with the server's")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as one JSON object")
	fs.BoolVar(&c.idleOnly, "idle", false, "only connect and report the memory per connection; send nothing")
	memberBase := fs.String("member-http", "", "counselors use this node instead of --http (another node of a cluster: every message crosses the bus)")
	rabbit := fs.String("rabbit", "", "RabbitMQ Web-STOMP endpoint (ws://127.0.0.1:15674/ws): the same workload as plain pub/sub instead of cstalk")
	peerBody := fs.Int("rabbit-body", len(peerEvent(nil, 0, 1)), "bytes of each message sent through RabbitMQ (default: the size of the event cstalk delivers)")
	_ = fs.Parse(args)

	if c.rate <= 0 || c.customers < 1 || c.warmup >= c.duration || c.memberConns < 0 {
		return errors.New("chat: need --rate > 0, --customers >= 1, --member-conns >= 0 and --warmup < --duration")
	}
	if c.memberConns == 0 {
		c.memberConns = c.customers
	}
	// A counselor's connection holds its private channel and its rooms, and
	// the broker bounds subscriptions per connection (64 by default).
	if c.customers > c.memberConns*60 {
		return fmt.Errorf("chat: %d customers need at least %d counselor connections (60 rooms each)", c.customers, (c.customers+59)/60)
	}
	var (
		w   *chatWorkload
		err error
	)
	before, err := rssIfKnown(c.pid)
	if err != nil {
		return err
	}
	if *rabbit != "" {
		w, err = connectPeerChat(ctx, c, *rabbit, *peerBody, log)
	} else {
		w, err = connectCstalkChat(ctx, c, cstalkChat{
			base: *base, memberBase: *memberBase, company: *company, logins: strings.Split(*memberLogins, ","),
			password: *password, firstNumber: *firstNumber,
		}, log)
	}
	if err != nil {
		return err
	}
	defer w.close()
	res := loadResult{Mode: "chat", Target: w.target, Subs: len(w.customers) + len(w.members), Pubs: len(w.customers),
		Dests: len(w.customers), Rate: c.rate, FanOutPerMessage: 2}
	if c.pid > 0 {
		// Let the server finish its own work for the new connections (GC,
		// Erlang process heaps) before reading; a measurement pause.
		select {
		case <-time.After(c.settle):
		case <-ctx.Done():
			return ctx.Err()
		}
		after, err := vmRSSKiB(c.pid)
		if err != nil {
			return err
		}
		res.RSSKiBPerConn = float64(after-before) / float64(res.Subs)
	}
	if !c.idleOnly {
		if err := measureChat(ctx, c, w, &res, log); err != nil {
			return err
		}
	}
	res.print(c.jsonOut)
	return nil
}

func rssIfKnown(pid int) (int64, error) {
	if pid <= 0 {
		return 0, nil
	}
	return vmRSSKiB(pid)
}

// cstalkChat says where and as whom the chat workload connects to cstalk.
type cstalkChat struct {
	base, memberBase string
	company          int
	logins           []string
	password         string
	firstNumber      int64
}

// connectCstalkChat opens the customers' and counselors' connections: each
// customer subscribes its private channel, learns its room from LOGINED and
// enters it; counselor connection j logs in as logins[j % len] and enters
// rooms j, j+n, ... (n counselor connections), taking them.
func connectCstalkChat(ctx context.Context, c chatConfig, cc cstalkChat, log *slog.Logger) (*chatWorkload, error) {
	u, err := url.Parse(cc.base)
	if err != nil || u.Scheme != "http" || !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("chat: --http %s: want http:// on a loopback address", cc.base)
	}
	if cc.memberBase == "" {
		cc.memberBase = cc.base
	}
	mu, err := url.Parse(cc.memberBase)
	if err != nil || mu.Scheme != "http" || !isLoopback(mu.Hostname()) {
		return nil, fmt.Errorf("chat: --member-http %s: want http:// on a loopback address", cc.memberBase)
	}
	if cc.firstNumber == 0 {
		cc.firstNumber = time.Now().Unix() * 1000
	}
	w := &chatWorkload{target: cc.base, metrics: cc.base + "/metrics"}
	companyID := strconv.Itoa(cc.company)

	log.Info("connecting customers", "n", c.customers)
	rooms := make([]string, c.customers)
	custTarget := &target{url: "ws://" + u.Host + "/ws/websocket", host: "/"}
	customerHeaders := func(i int) map[string]string {
		return map[string]string{
			"companyId":          companyID,
			"gasappMemberNumber": strconv.FormatInt(cc.firstNumber+int64(i), 10),
			"name":               "bench " + strconv.Itoa(i),
		}
	}
	w.customers, err = connectManyWith(ctx, custTarget, c.customers, c.parallel, customerHeaders, func(i int, sc *stompClient) error {
		// LOGINED may come before the receipt, so await it instead.
		if err := sc.write("SUBSCRIBE", nil, "id", "private", "destination", "user/session/message"); err != nil {
			return err
		}
		room, err := sc.awaitEvent("private", "LOGINED")
		if err != nil {
			return err
		}
		if room.RoomID == "" {
			return errors.New("LOGINED without roomId")
		}
		rooms[i] = room.RoomID
		return sc.subscribe("room", "sub/socket/room/"+room.RoomID)
	})
	if err != nil {
		return nil, fmt.Errorf("chat: customers: %w", err)
	}
	w.sendHeaders = make([][]string, c.customers)
	for i, room := range rooms {
		w.sendHeaders[i] = []string{"destination", "pub/socket/message", "roomId", room, "content-type", "application/json"}
	}
	w.body = func(b []byte, _ int, stamp int64) []byte { return appendChatMessage(b, stamp) }

	log.Info("connecting counselors", "connections", c.memberConns, "logins", len(cc.logins))
	tokens := make(map[string]string, len(cc.logins))
	for _, login := range cc.logins {
		if tokens[login], err = memberToken(ctx, cc.memberBase, login, cc.password); err != nil {
			w.close()
			return nil, err
		}
	}
	memberTarget := &target{url: "ws://" + mu.Host + "/ws/websocket", host: "/"}
	w.members, err = connectManyWith(ctx, memberTarget, c.memberConns, c.parallel, func(j int) map[string]string {
		return map[string]string{"Authorization": "Bearer " + tokens[cc.logins[j%len(cc.logins)]]}
	}, func(j int, sc *stompClient) error {
		if err := sc.subscribe("private", "user/session/message"); err != nil {
			return err
		}
		for i := j; i < c.customers; i += c.memberConns {
			if err := sc.subscribe("room-"+rooms[i], "sub/socket/room/"+rooms[i]); err != nil {
				return fmt.Errorf("room %s: %w", rooms[i], err)
			}
		}
		return nil
	})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("chat: counselors: %w", err)
	}
	return w, nil
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
