package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

func limitedConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxFrameSize = 4096
	cfg.MaxHeaders = 8
	cfg.MaxHeaderLine = 512
	cfg.MaxSubscriptions = 3
	cfg.ConnectTimeout = 300 * time.Millisecond
	cfg.MaxTransactions = 2
	cfg.MaxTransactionFrames = 2
	cfg.MaxTransactionBytes = 3000
	return cfg
}

// bystander is a well-behaved client that must keep receiving while others
// misbehave next to it.
type bystander struct {
	s    *testServer
	conn *stomp.Conn
	sub  *stomp.Subscription
	n    int
}

func newBystander(t *testing.T, s *testServer) *bystander {
	conn := stompClient(t, s, stomp.ConnOpt.Login("bystander", ""))
	sub, err := conn.Subscribe("/sub/bystander", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	b := &bystander{s: s, conn: conn, sub: sub}
	waitFor(t, "bystander subscription", func() bool { return s.Server.HasSubscribers("sub/bystander") })
	return b
}

func (b *bystander) check(t *testing.T) {
	t.Helper()
	b.n++
	want := fmt.Sprintf("still here %d", b.n)
	if err := b.s.Publish(context.Background(), "sub/bystander", []byte(want)); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(t, b.sub); string(m.Body) != want {
		t.Fatalf("bystander got %q, want %q", m.Body, want)
	}
}

func TestBadInputGetsErrorAndHarmsNobody(t *testing.T) {
	s := startServer(t, limitedConfig(), nil)
	by := newBystander(t, s)
	connect := "CONNECT\naccept-version:1.2\n\n\x00"
	long := strings.Repeat("x", 600)
	cases := []struct {
		name    string
		connect bool
		input   []string
		message string
	}{
		{"bad command", true, []string{"FROB\n\n\x00"}, "invalid command"},
		{"garbage without newline", true, []string{strings.Repeat("z", 40)}, "invalid command"},
		{"server command from a client", true, []string{"MESSAGE\ndestination:/sub/x\n\n\x00"}, "invalid command"},
		{"send without destination", true, []string{"SEND\n\nbody\x00"}, "missing destination"},
		{"subscribe without destination", true, []string{"SUBSCRIBE\nid:1\n\n\x00"}, "missing destination"},
		{"subscribe without id", true, []string{"SUBSCRIBE\ndestination:/sub/x\n\n\x00"}, "missing id"},
		{"bad content-length", true, []string{"SEND\ndestination:/sub/x\ncontent-length:abc\n\nhi\x00"}, "invalid content-length"},
		{"negative content-length", true, []string{"SEND\ndestination:/sub/x\ncontent-length:-1\n\nhi\x00"}, "invalid content-length"},
		{"body longer than content-length", true, []string{"SEND\ndestination:/sub/x\ncontent-length:1\n\nhi\x00"}, "invalid frame format"},
		{"content-length over the limit", true, []string{"SEND\ndestination:/sub/x\ncontent-length:99999999\n\n"}, "frame too large"},
		{"oversized body", true, []string{"SEND\ndestination:/sub/x\n\n" + strings.Repeat("b", 5000) + "\x00"}, "frame too large"},
		{"oversized body in pieces", true, []string{"SEND\ndestination:/sub/x\n\n", strings.Repeat("b", 3000), strings.Repeat("b", 3000)}, "frame too large"},
		{"too many headers", true, []string{"SEND\ndestination:/sub/x\n" + strings.Repeat("h:v\n", 9) + "\n\x00"}, "too many headers"},
		{"header line too long", true, []string{"SEND\ndestination:/sub/x\nh:" + long + "\n\n\x00"}, "header line too long"},
		{"unterminated header line too long", true, []string{"SEND\ndestination:/sub/x\nh:" + long}, "header line too long"},
		{"header without colon", true, []string{"SEND\ndestination:/sub/x\nnocolon\n\n\x00"}, "invalid frame format"},
		{"NUL in headers", true, []string{"SEND\ndestination:/sub/x\x00\n\n\x00"}, "invalid frame format"},
		{"too many subscriptions", true, []string{
			"SUBSCRIBE\nid:1\ndestination:/sub/a\n\n\x00SUBSCRIBE\nid:2\ndestination:/sub/b\n\n\x00",
			"SUBSCRIBE\nid:3\ndestination:/sub/c\n\n\x00SUBSCRIBE\nid:4\ndestination:/sub/d\n\n\x00"}, "too many subscriptions"},
		{"duplicate subscription id", true, []string{"SUBSCRIBE\nid:1\ndestination:/sub/a\n\n\x00SUBSCRIBE\nid:1\ndestination:/sub/b\n\n\x00"}, "duplicate subscription id"},
		{"invalid ack mode", true, []string{"SUBSCRIBE\nid:1\ndestination:/sub/a\nack:sometimes\n\n\x00"}, "invalid ack mode"},
		{"subscribe outside the broker prefixes", true, []string{"SUBSCRIBE\nid:1\ndestination:/queue/a\n\n\x00"}, "unknown destination"},
		{"subscribe to an app destination", true, []string{"SUBSCRIBE\nid:1\ndestination:/pub/a\n\n\x00"}, "unknown destination"},
		{"send to the private destination", true, []string{"SEND\ndestination:/user/session/message\n\nx\x00"}, "unknown destination"},
		{"refused subscription", true, []string{"SUBSCRIBE\nid:1\ndestination:/sub/forbidden\n\n\x00"}, "forbidden destination"},
		{"refused send", true, []string{"SEND\ndestination:/sub/readonly\n\nx\x00"}, "read-only destination"},
		{"application panic", true, []string{"SEND\ndestination:/pub/panic\n\nx\x00"}, "internal error"},
		{"handler error", true, []string{"SEND\ndestination:/pub/fail\n\nx\x00"}, "handler refused"},
		{"second CONNECT", true, []string{connect}, "already connected"},
		{"bad heart-beat", false, []string{"CONNECT\naccept-version:1.2\nheart-beat:soon\n\n\x00"}, "invalid heart-beat"},
		{"refused authentication", false, []string{"CONNECT\naccept-version:1.2\nlogin:bad\n\n\x00"}, "unauthorized"},
		{"SEND before CONNECT", false, []string{"SEND\ndestination:/sub/x\n\nx\x00"}, "not connected"},
		{"SUBSCRIBE before CONNECT", false, []string{"SUBSCRIBE\nid:1\ndestination:/sub/x\n\n\x00"}, "not connected"},
		{"no CONNECT in time", false, nil, "connect timeout"},
		{"too many transactions", true, []string{"BEGIN\ntransaction:a\n\n\x00BEGIN\ntransaction:b\n\n\x00BEGIN\ntransaction:c\n\n\x00"}, "too many transactions"},
		{"transaction too large", true, []string{"BEGIN\ntransaction:a\n\n\x00" + strings.Repeat("SEND\ndestination:/sub/x\ntransaction:a\n\nx\x00", 3)}, "transaction too large"},
		{"transaction bytes", true, []string{"BEGIN\ntransaction:a\n\n\x00BEGIN\ntransaction:b\n\n\x00", "SEND\ndestination:/sub/x\ntransaction:a\n\n" + strings.Repeat("y", 2000) + "\x00", "SEND\ndestination:/sub/x\ntransaction:b\n\n" + strings.Repeat("y", 2000) + "\x00"}, "transaction too large"},
		{"duplicate transaction", true, []string{"BEGIN\ntransaction:a\n\n\x00BEGIN\ntransaction:a\n\n\x00"}, "duplicate transaction"},
		{"unknown transaction", true, []string{"SEND\ndestination:/sub/x\ntransaction:t9\n\nx\x00"}, "unknown transaction"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newRawClient(t, s.wsURL("/ws/websocket"))
			if tc.connect {
				c.write(connect)
				c.expect("CONNECTED")
			}
			for _, in := range tc.input {
				c.write(in)
			}
			f := c.expect("ERROR")
			if got := f.Header.Get("message"); got != tc.message {
				t.Fatalf("message %q, want %q (body %q)", got, tc.message, f.Body)
			}
			if len(strings.TrimSpace(string(f.Body))) == 0 {
				t.Fatal("ERROR without a readable body")
			}
			c.expectClosed()
			by.check(t)
		})
	}
	waitFor(t, "only the bystander left", func() bool { return s.Stats().Connections == 1 })
	if n := testutilGauge(t, s, "cstalk_broker_errors_total", "limit"); n < 7 {
		t.Fatalf("%v limit errors counted", n)
	}
}

func TestErrorBodyLanguage(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	ko := newRawClient(t, s.wsURL("/ws/websocket"))
	ko.connect("")
	ko.write("SEND\n\nx\x00")
	f := ko.expect("ERROR")
	if f.Header.Get("message") != "missing destination" || !strings.HasPrefix(string(f.Body), "destination 헤더가 필요합니다.") {
		t.Fatalf("Korean ERROR: %s %q", headerString(f.Header), f.Body)
	}
	en := newRawClient(t, s.wsURL("/ws/websocket"))
	en.connect("accept-language:en-US")
	en.write("SEND\n\nx\x00")
	f = en.expect("ERROR")
	if f.Header.Get("message") != "missing destination" || string(f.Body) != "SEND needs a destination header\n" {
		t.Fatalf("English ERROR: %s %q", headerString(f.Header), f.Body)
	}
}

func TestSplitAndCoalescedFrames(t *testing.T) {
	s := startServer(t, limitedConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	// CONNECT split at every awkward place, then several frames in one
	// message, with heart-beat EOLs between them.
	c.write("CONN")
	c.write("ECT\naccept-version:1.2\n")
	c.write("\n")
	c.write("\x00\r\n")
	c.expect("CONNECTED")
	c.write("SUBSCRIBE\nid:1\ndestination:/sub/split\n\n\x00\n\nSEND\ndestination:/sub/split\ncontent-length:5\n\nab\x00cd\x00\nSEND\ndestination:/sub/split\n")
	c.write("\nsecond\x00")
	if m := c.expect("MESSAGE"); string(m.Body) != "ab\x00cd" {
		t.Fatalf("body %q", m.Body)
	}
	if m := c.expect("MESSAGE"); string(m.Body) != "second" {
		t.Fatalf("body %q", m.Body)
	}
	// A frame of exactly the limit passes; the limit counts the whole frame.
	head := "SEND\ndestination:/sub/split\ncontent-length:"
	body := strings.Repeat("q", 4096-len(head)-len("4048\n\n")-1)
	frame := fmt.Sprintf("%s%d\n\n%s\x00", head, len(body), body)
	if len(frame) != 4096 {
		t.Fatalf("test frame is %d bytes", len(frame))
	}
	c.write(frame[:1000])
	c.write(frame[1000:])
	if m := c.expect("MESSAGE"); len(m.Body) != len(body) {
		t.Fatalf("body of %d bytes", len(m.Body))
	}
}

func TestRefusalAlreadyHandled(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("")
	c.write("SUBSCRIBE\nid:p\ndestination:/user/session/message\n\n\x00")
	c.write("SUBSCRIBE\nid:h\ndestination:/sub/handled\nreceipt:r1\n\n\x00")
	if m := c.expect("MESSAGE"); string(m.Body) != `{"eventName":"ERROR"}` || m.Header.Get("subscription") != "p" {
		t.Fatalf("MESSAGE %s %q", headerString(m.Header), m.Body)
	}
	c.expect("RECEIPT")
	c.write("SEND\ndestination:/pub/handled\nreceipt:r2\n\nx\x00")
	c.expect("RECEIPT")
	if s.Server.HasSubscribers("sub/handled") {
		t.Fatal("refused subscription is active")
	}
	if s.Stats().Connections != 1 {
		t.Fatal("connection closed")
	}
}
