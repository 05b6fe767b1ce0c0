package broker

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"
)

func TestSockJSInfo(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	resp, err := http.Get(s.http.URL + "/ws/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct {
		Websocket bool `json:"websocket"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || !info.Websocket {
		t.Fatalf("info: %v %+v", err, info)
	}
	resp, err = http.Get(s.http.URL + "/ws/iframe.html")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The iframe loads sockjs-client from this host, never from a CDN.
	if !strings.Contains(string(page), `src="/assets/sockjs.min.js"`) {
		t.Fatalf("iframe page does not load sockjs-client from this host: %s", page)
	}
}

// TestSockJSXHRPolling speaks the xhr-polling transport by hand: what a
// browser without WebSocket falls back to.
func TestSockJSXHRPolling(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	base := s.http.URL + "/ws/001/" + newSessionID()
	poll := func() string {
		t.Helper()
		resp, err := http.Post(base+"/xhr", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	send := func(frames ...string) {
		t.Helper()
		body, _ := json.Marshal(frames)
		resp, err := http.Post(base+"/xhr_send", "text/plain", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("xhr_send: %s", resp.Status)
		}
	}
	messages := func(got string) string {
		t.Helper()
		if !strings.HasPrefix(got, "a") {
			t.Fatalf("poll returned %q", got)
		}
		var parts []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(got[1:])), &parts); err != nil {
			t.Fatal(err)
		}
		return strings.Join(parts, "")
	}
	if got := poll(); got != "o\n" {
		t.Fatalf("open frame %q", got)
	}
	send("CONNECT\naccept-version:1.2\nlogin:poller\n\n\x00", "SUBSCRIBE\nid:0\ndestination:/sub/poll\nreceipt:r\n\n\x00")
	got := ""
	for !strings.Contains(got, "RECEIPT") {
		got += messages(poll())
	}
	if !strings.HasPrefix(got, "CONNECTED\nversion:1.2\n") {
		t.Fatalf("got %q", got)
	}
	send("SEND\ndestination:/sub/poll\n\npolled\x00")
	if got := messages(poll()); !strings.HasPrefix(got, "MESSAGE\n") || !strings.HasSuffix(got, "\n\npolled\x00") {
		t.Fatalf("got %q", got)
	}
	if n := testutilGauge(t, s, "cstalk_broker_connections", "xhr-polling"); n != 1 {
		t.Fatalf("xhr-polling connections %v", n)
	}
	// The RECEIPT of DISCONNECT reaches the client before the session closes.
	send("DISCONNECT\nreceipt:bye\n\n\x00")
	if got := messages(poll()); got != "RECEIPT\nreceipt-id:bye\n\n\x00" {
		t.Fatalf("got %q", got)
	}
	if got := poll(); !strings.HasPrefix(got, "c[3000,") {
		t.Fatalf("after DISCONNECT: %q", got)
	}
	waitFor(t, "connection gone", func() bool { return s.Stats().Connections == 0 })
}

// TestSockJSPollingGetsFinalError: sockjs-go drops what it buffers for a
// closing session, so the ERROR of a refused CONNECT must be fetched by the
// client's next poll before the session closes.
func TestSockJSPollingGetsFinalError(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	for _, transport := range []string{"xhr", "jsonp"} {
		base := s.http.URL + "/ws/002/" + newSessionID()
		poll := func() string {
			t.Helper()
			var resp *http.Response
			var err error
			if transport == "xhr" {
				resp, err = http.Post(base+"/xhr", "text/plain", nil)
			} else {
				resp, err = http.Get(base + "/jsonp?c=cb")
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		if got := poll(); !strings.Contains(got, "o") {
			t.Fatalf("%s open: %q", transport, got)
		}
		connect := `["CONNECT\naccept-version:1.2\nlogin:bad\n\n\u0000"]`
		var resp *http.Response
		var err error
		if transport == "xhr" {
			resp, err = http.Post(base+"/xhr_send", "text/plain", strings.NewReader(connect))
		} else {
			resp, err = http.PostForm(base+"/jsonp_send", map[string][]string{"d": {connect}})
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := poll(); !strings.Contains(got, "ERROR") || !strings.Contains(got, "message:unauthorized") {
			t.Fatalf("%s: the ERROR frame was lost: %q", transport, got)
		}
		if got := poll(); !strings.Contains(got, "c[3000,") {
			t.Fatalf("%s: after ERROR: %q", transport, got)
		}
	}
}

func TestSockJSWebSocketLimits(t *testing.T) {
	s := startServer(t, limitedConfig(), nil)
	by := newBystander(t, s)
	stream := dialSockJS(t, s)
	c := &rawClient{t: t, stream: nil, frames: make(chan *frame.Frame, 16), done: make(chan struct{})}
	go c.readFrom(stream)
	write := func(msg string) {
		t.Helper()
		if err := stream.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	// A lone JSON string is a valid SockJS message too.
	write(`"CONNECT\naccept-version:1.2\n\n\u0000"`)
	c.expect("CONNECTED")
	write(`["SUBSCRIBE\nid:0\ndestination:/sub/utf\nreceipt:r\n\n\u0000"]`)
	c.expect("RECEIPT")
	// Invalid UTF-8 from a raw client reaches a SockJS client as U+FFFD.
	raw := newRawClient(t, s.wsURL("/ws/websocket"))
	raw.connect("")
	raw.write("SEND\ndestination:/sub/utf\n\nbad \xff byte, line\u2028sep\x00")
	if m := c.expect("MESSAGE"); string(m.Body) != "bad \ufffd byte, line\u2028sep" {
		t.Fatalf("body %q", m.Body)
	}
	// One SockJS message over the limit (1 MiB at least) is refused.
	write(`["` + strings.Repeat("x", 1<<20+10) + `"]`)
	if f := c.expect("ERROR"); f.Header.Get("message") != "frame too large" {
		t.Fatalf("ERROR %s", headerString(f.Header))
	}
	c.expectClosed()
	by.check(t)
}

func TestAppendJSONString(t *testing.T) {
	for _, in := range []string{"", "plain", "quote\" back\\slash", "ctl \x00\x01\x1f\n\r\t", "한글 메시지", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x82"} {
		var out string
		if err := json.Unmarshal(appendJSONString(nil, []byte(in)), &out); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		want := strings.ToValidUTF8(in, "\ufffd")
		if in == "\xe2\x82" {
			want = "\ufffd\ufffd"
		}
		if in == "bad \xff\xfe utf8" {
			want = "bad \ufffd\ufffd utf8"
		}
		if out != want {
			t.Fatalf("%q: round trip gave %q, want %q", in, out, want)
		}
	}
}

func TestSockJSWebSocketHeartbeat(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SockJSHeartbeat = 30 * time.Millisecond
	cfg.ConnectTimeout = 300 * time.Millisecond
	s := startServer(t, cfg, nil)
	ws, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/9/"+newSessionID()+"/websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var got []string
	for len(got) < 3 {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, string(msg))
	}
	if got[0] != "o" || got[1] != "h" || got[2] != "h" {
		t.Fatalf("frames %q, want o then heart-beats", got)
	}
	// No CONNECT in time: the STOMP ERROR arrives, then SockJS's close frame.
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(msg), "a[") {
			if !strings.Contains(string(msg), "connect timeout") {
				t.Fatalf("got %q", msg)
			}
			break
		}
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(msg) == "h" {
			continue
		}
		if !strings.HasPrefix(string(msg), "c[3000,") {
			t.Fatalf("got %q, want the close frame", msg)
		}
		break
	}
}

// TestSockJSStreamingTransports drives eventsource and htmlfile, the
// streaming transports of browsers without WebSocket or CORS XHR.
func TestSockJSStreamingTransports(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	for _, tc := range []struct {
		transport, query, name string
		decode                 func(line string) (string, bool) // a SockJS frame from a stream line
	}{
		{"eventsource", "", "eventsource", func(line string) (string, bool) {
			return strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data: ")
		}},
		{"htmlfile", "?c=cb", "htmlfile", func(line string) (string, bool) {
			inner, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "p(")
			if !ok {
				return "", false
			}
			var frame string
			if err := json.Unmarshal([]byte(strings.TrimSuffix(inner, ");")), &frame); err != nil {
				return "", false
			}
			return frame, true
		}},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			base := s.http.URL + "/ws/004/" + newSessionID()
			resp, err := http.Get(base + "/" + tc.transport + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			lines := bufio.NewReader(resp.Body)
			next := func() string {
				t.Helper()
				for {
					line, err := lines.ReadString('\n')
					if err != nil {
						t.Fatalf("stream ended: %v", err)
					}
					if f, ok := tc.decode(line); ok && f != "h" {
						return f
					}
				}
			}
			if f := next(); f != "o" {
				t.Fatalf("open frame %q", f)
			}
			body, _ := json.Marshal([]string{"CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:0\ndestination:/sub/stream\nreceipt:r\n\n\x00"})
			post, err := http.Post(base+"/xhr_send", "text/plain", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			post.Body.Close()
			got := ""
			for !strings.Contains(got, "RECEIPT") {
				f := next()
				var parts []string
				if err := json.Unmarshal([]byte(strings.TrimPrefix(f, "a")), &parts); err != nil {
					t.Fatalf("frame %q: %v", f, err)
				}
				got += strings.Join(parts, "")
			}
			if !strings.HasPrefix(got, "CONNECTED\n") {
				t.Fatalf("got %q", got)
			}
			if err := s.Publish(t.Context(), "/sub/stream", []byte(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
			if f := next(); !strings.Contains(f, `{\"n\":1}`) {
				t.Fatalf("MESSAGE frame %q", f)
			}
			if n := testutilGauge(t, s, "cstalk_broker_connections", tc.name); n != 1 {
				t.Fatalf("%s connections %v", tc.name, n)
			}
		})
	}
}
