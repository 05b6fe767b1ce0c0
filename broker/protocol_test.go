package broker

import (
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

func TestVersionNegotiation(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	cases := []struct {
		connect     string
		wantVersion string
	}{
		{"CONNECT\nhost:x\n\n\x00", "1.0"},
		{"CONNECT\naccept-version:1.0\n\n\x00", "1.0"},
		{"CONNECT\naccept-version:1.0,1.1\n\n\x00", "1.1"},
		{"CONNECT\naccept-version:1.1,1.2\nheart-beat:0,0\n\n\x00", "1.2"},
		{"STOMP\r\naccept-version:1.2\r\nhost:x\r\n\r\n\x00", "1.2"},
	}
	for _, tc := range cases {
		c := newRawClient(t, s.wsURL("/ws/websocket"))
		c.write(tc.connect)
		f := c.expect("CONNECTED")
		if got := f.Header.Get("version"); got != tc.wantVersion {
			t.Errorf("%q: version %s, want %s", tc.connect, got, tc.wantVersion)
		}
		if f.Header.Get("session") == "" || f.Header.Get("server") == "" || f.Header.Get("heart-beat") == "" {
			t.Errorf("%q: CONNECTED lacks headers: %s", tc.connect, headerString(f.Header))
		}
	}

	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.write("CONNECT\naccept-version:2.0\n\n\x00")
	if f := c.expect("ERROR"); f.Header.Get("message") != "unsupported protocol version" {
		t.Fatalf("message %q", f.Header.Get("message"))
	}
	c.expectClosed()

	for _, v := range []stomp.Version{stomp.V10, stomp.V11, stomp.V12} {
		conn := stompClient(t, s, stomp.ConnOpt.AcceptVersion(v))
		if conn.Version() != v {
			t.Fatalf("negotiated %s, want %s", conn.Version(), v)
		}
		dest := "/sub/version/" + string(v)
		sub, err := conn.Subscribe(dest, stomp.AckAuto)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Send(dest, "text/plain", []byte("v"+string(v)), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
		if m := recvMessage(t, sub); string(m.Body) != "v"+string(v) {
			t.Fatalf("body %q", m.Body)
		}
	}
}

func TestSTOMP10SubscriptionByDestination(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.write("CONNECT\nlogin:old\n\n\x00")
	c.expect("CONNECTED")
	c.write("SUBSCRIBE\ndestination:/sub/legacy\nreceipt:1\n\n\x00")
	c.expect("RECEIPT")
	c.write("SEND\ndestination:sub/legacy\n\nold style\x00")
	m := c.expect("MESSAGE")
	if m.Header.Get("subscription") != "/sub/legacy" || m.Header.Get("destination") != "/sub/legacy" || string(m.Body) != "old style" {
		t.Fatalf("MESSAGE %s %q", headerString(m.Header), m.Body)
	}
	c.write("UNSUBSCRIBE\ndestination:/sub/legacy\nreceipt:2\n\n\x00")
	if f := c.expect("RECEIPT"); f.Header.Get("receipt-id") != "2" {
		t.Fatalf("receipt %s", headerString(f.Header))
	}
	if s.Stats().Subscriptions != 0 {
		t.Fatalf("subscriptions %d", s.Stats().Subscriptions)
	}
}

func TestReceiptsAfterHandling(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.write("CONNECT\naccept-version:1.2\nreceipt:c\n\n\x00")
	c.expect("CONNECTED")
	if f := c.expect("RECEIPT"); f.Header.Get("receipt-id") != "c" {
		t.Fatalf("receipt %s", headerString(f.Header))
	}
	c.write("SUBSCRIBE\nid:0\ndestination:/sub/echo\nreceipt:s\n\n\x00")
	c.expect("RECEIPT")
	if !s.app.has("subscribed anonymous sub/echo") {
		t.Fatal("RECEIPT before Subscribed")
	}
	// The handler publishes before returning, so the MESSAGE precedes the RECEIPT.
	c.write("SEND\ndestination:/pub/echo\nreceipt:p\ncontent-length:4\n\nping\x00")
	if m := c.expect("MESSAGE"); string(m.Body) != "ping" {
		t.Fatalf("body %q", m.Body)
	}
	if f := c.expect("RECEIPT"); f.Header.Get("receipt-id") != "p" {
		t.Fatalf("receipt %s", headerString(f.Header))
	}
	c.write("UNSUBSCRIBE\nid:0\nreceipt:u\n\n\x00")
	c.expect("RECEIPT")
	if !s.app.has("unsubscribed anonymous sub/echo") {
		t.Fatal("RECEIPT before Unsubscribed")
	}
	c.write("DISCONNECT\nreceipt:bye\n\n\x00")
	if f := c.expect("RECEIPT"); f.Header.Get("receipt-id") != "bye" {
		t.Fatalf("receipt %s", headerString(f.Header))
	}
	c.expectClosed()
	waitFor(t, "Disconnected", func() bool { return s.app.has("disconnected anonymous") })
}

func TestHeaderEscaping(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)

	// 1.2: \c is a colon, \\ a backslash, \r a carriage return; the MESSAGE
	// header is escaped back the same way.
	c12 := newRawClient(t, s.wsURL("/ws/websocket"))
	c12.connect("")
	c12.write("SUBSCRIBE\nid:a\\cb\ndestination:/sub/x\\cy\\\\z\nreceipt:1\n\n\x00")
	c12.expect("RECEIPT")
	if !s.app.has(`subscribed anonymous sub/x:y\z`) {
		t.Fatalf("events %v", s.app.events)
	}
	c12.write("SEND\ndestination:sub/x\\cy\\\\z\n\nescaped\x00")
	m := c12.expect("MESSAGE")
	if m.Header.Get("destination") != `/sub/x:y\z` || m.Header.Get("subscription") != "a:b" {
		t.Fatalf("MESSAGE %s", headerString(m.Header))
	}

	// 1.0: no escapes at all; a backslash is a backslash.
	c10 := newRawClient(t, s.wsURL("/ws/websocket"))
	c10.write("CONNECT\nlogin:ten\n\n\x00")
	c10.expect("CONNECTED")
	c10.write("SUBSCRIBE\ndestination:/sub/p\\cq\nreceipt:1\n\n\x00")
	c10.expect("RECEIPT")
	if !s.app.has(`subscribed ten sub/p\cq`) {
		t.Fatalf("events %v", s.app.events)
	}

	// 1.1 has no \r escape; 1.2 refuses undefined escapes.
	c11 := newRawClient(t, s.wsURL("/ws/websocket"))
	c11.write("CONNECT\naccept-version:1.1\n\n\x00")
	c11.expect("CONNECTED")
	c11.write("SEND\ndestination:/sub/a\\rb\n\nx\x00")
	if f := c11.expect("ERROR"); f.Header.Get("message") != "invalid header escape" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
	c12.write("SEND\ndestination:/sub/a\\tb\n\nx\x00")
	if f := c12.expect("ERROR"); f.Header.Get("message") != "invalid header escape" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
}

func TestTransactions(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	sender := stompClient(t, s)
	receiver := stompClient(t, s)
	sub, err := receiver.Subscribe("/sub/tx", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscription", func() bool { return s.Stats().Subscriptions == 1 })

	tx, err := sender.BeginWithError()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send("/sub/tx", "text/plain", []byte("in tx 1")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Send("/sub/tx", "text/plain", []byte("in tx 2")); err != nil {
		t.Fatal(err)
	}
	// A message outside the transaction overtakes the buffered ones.
	if err := sender.Send("/sub/tx", "text/plain", []byte("outside"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(t, sub); string(m.Body) != "outside" {
		t.Fatalf("got %q before COMMIT", m.Body)
	}
	if err := tx.CommitWithReceipt(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in tx 1", "in tx 2"} {
		if m := recvMessage(t, sub); string(m.Body) != want {
			t.Fatalf("got %q, want %q", m.Body, want)
		}
	}

	tx, err = sender.BeginWithError()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send("/sub/tx", "text/plain", []byte("aborted")); err != nil {
		t.Fatal(err)
	}
	if err := tx.AbortWithReceipt(); err != nil {
		t.Fatal(err)
	}
	if err := sender.Send("/sub/tx", "text/plain", []byte("after abort"), stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(t, sub); string(m.Body) != "after abort" {
		t.Fatalf("got %q, the aborted message leaked", m.Body)
	}

	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("")
	c.write("BEGIN\ntransaction:t1\n\n\x00")
	c.write("SEND\ndestination:/sub/tx\ntransaction:t1\nreceipt:r\n\nraw tx\x00")
	c.expect("RECEIPT")
	c.write("COMMIT\ntransaction:nope\nreceipt:x\n\n\x00")
	f := c.expect("ERROR")
	if f.Header.Get("message") != "unknown transaction" || f.Header.Get("receipt-id") != "x" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
	c.expectClosed()
}

func TestAckNack(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	pub := stompClient(t, s)

	// go-stomp, STOMP 1.2, client-individual.
	conn := stompClient(t, s, stomp.ConnOpt.AcceptVersion(stomp.V12))
	sub, err := conn.Subscribe("/sub/ack", stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	// go-stomp 1.1: ACK by message-id and subscription.
	conn11 := stompClient(t, s, stomp.ConnOpt.AcceptVersion(stomp.V11))
	sub11, err := conn11.Subscribe("/sub/ack", stomp.AckClient)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "subscriptions", func() bool { return s.Stats().Subscriptions == 2 })
	for _, body := range []string{"one", "two"} {
		if err := pub.Send("/sub/ack", "text/plain", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	m1, m2 := recvMessage(t, sub), recvMessage(t, sub)
	if err := conn.Nack(m2); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ack(m1); err != nil {
		t.Fatal(err)
	}
	n1, n2 := recvMessage(t, sub11), recvMessage(t, sub11)
	_ = n1
	if err := conn11.Ack(n2); err != nil { // cumulative: acknowledges n1 too
		t.Fatal(err)
	}
	// Both connections are still usable: a receipt proves the ACKs passed.
	if err := conn.Send("/sub/other", "", nil, stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}
	if err := conn11.Send("/sub/other", "", nil, stomp.SendOpt.Receipt); err != nil {
		t.Fatal(err)
	}

	// Raw 1.2 client: client mode, ACK a later message, then an acknowledged one.
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("")
	c.write("SUBSCRIBE\nid:s\ndestination:/sub/ack\nack:client\nreceipt:r\n\n\x00")
	c.expect("RECEIPT")
	for _, body := range []string{"a", "b", "c"} {
		if err := pub.Send("/sub/ack", "text/plain", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var acks []string
	for range 3 {
		m := c.expect("MESSAGE")
		if m.Header.Get("ack") == "" {
			t.Fatalf("MESSAGE without ack header: %s", headerString(m.Header))
		}
		acks = append(acks, m.Header.Get("ack"))
	}
	c.write("ACK\nid:" + acks[1] + "\nreceipt:a1\n\n\x00")
	c.expect("RECEIPT")
	c.write("NACK\nid:" + acks[2] + "\nreceipt:a2\n\n\x00")
	c.expect("RECEIPT")
	c.write("ACK\nid:" + acks[0] + "\nreceipt:a3\n\n\x00")
	f := c.expect("ERROR")
	if f.Header.Get("message") != "unknown message" || f.Header.Get("receipt-id") != "a3" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
	c.expectClosed()

	// An auto subscription has nothing to acknowledge.
	c = newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("")
	c.write("SUBSCRIBE\nid:s\ndestination:/sub/ack\nreceipt:r\n\n\x00")
	c.expect("RECEIPT")
	if err := pub.Send("/sub/ack", "text/plain", []byte("auto")); err != nil {
		t.Fatal(err)
	}
	m := c.expect("MESSAGE")
	c.write("ACK\nid:" + m.Header.Get("message-id") + "\n\n\x00")
	if f := c.expect("ERROR"); f.Header.Get("message") != "unknown message" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
}

func TestHeartbeats(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HeartbeatSend = 50 * time.Millisecond
	cfg.HeartbeatRecv = 50 * time.Millisecond
	s := startServer(t, cfg, nil)

	// The server sends at max(its 50 ms, the client's 80 ms).
	c := newRawClient(t, s.wsURL("/ws/websocket"))
	f := c.connect("heart-beat:0,80")
	if f.Header.Get("heart-beat") != "50,50" {
		t.Fatalf("CONNECTED heart-beat %q", f.Header.Get("heart-beat"))
	}
	beats := 0
	deadline := time.After(5 * time.Second)
	for beats < 3 {
		select {
		case f := <-c.frames:
			if f.Command != "HEARTBEAT" {
				t.Fatalf("unexpected %s", f.Command)
			}
			beats++
		case <-deadline:
			t.Fatalf("%d heart-beats within 5s", beats)
		}
	}

	// A client that promised 60 ms and falls silent is cut.
	silent := newRawClient(t, s.wsURL("/ws/websocket"))
	silent.connect("heart-beat:60,0")
	if f := silent.expect("ERROR"); f.Header.Get("message") != "heart-beat timeout" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
	silent.expectClosed()

	// go-stomp keeps its promise and stays connected while the server
	// cuts silent clients around it.
	conn := stompClient(t, s, stomp.ConnOpt.HeartBeat(60*time.Millisecond, 60*time.Millisecond))
	sub, err := conn.Subscribe("/sub/hb", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		quiet := newRawClient(t, s.wsURL("/ws/websocket"))
		quiet.connect("heart-beat:60,0")
		quiet.expect("ERROR")
	}
	if err := conn.Send("/sub/hb", "text/plain", []byte("alive")); err != nil {
		t.Fatal(err)
	}
	if m := recvMessage(t, sub); string(m.Body) != "alive" {
		t.Fatalf("body %q", m.Body)
	}
	if n := testutilGauge(t, s, "cstalk_broker_errors_total", "limit"); n != 3 {
		t.Fatalf("%v limit errors, want the 3 silent clients", n)
	}
	if n := testutilGauge(t, s, "cstalk_broker_frames_out_total", "HEARTBEAT"); n < 3 {
		t.Fatalf("%v heart-beats counted", n)
	}
}
