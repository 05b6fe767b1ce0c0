package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeHTTPDeadlines: a request body that never finishes and an idle
// keep-alive connection are closed within their deadlines, while a SockJS
// xhr-streaming session and a /guide/events stream opened before them,
// past the same deadlines, still carry messages.
func TestServeHTTPDeadlines(t *testing.T) {
	cfg := testConfig(t)
	// The logins below check a bcrypt password under the write deadline,
	// which took more than 5 s on a loaded machine with -race; 20 s leaves
	// room for that, and the streams are still held past it below. The slow
	// body and the idle keep-alive are cut by the read and idle deadlines.
	cfg.HTTPReadTimeout, cfg.HTTPWriteTimeout, cfg.HTTPIdleTimeout = time.Second, 20*time.Second, 2*time.Second
	node := startNode(t, cfg)
	addr := node.ln.Addr().String()
	base := "http://" + addr

	stream := openXHRStreaming(t, base+"/ws/000/deadline1")
	stream.send(t, "CONNECT\naccept-version:1.2\nheart-beat:0,0\ncompanyId:1\ngasappMemberNumber:7101\n\n\x00")
	stream.await(t, "CONNECTED")
	mateToken, mateID := guideLogin(t, base, "guide-mate1")
	userToken, _ := guideLogin(t, base, "guide-user1")
	events := openEvents(t, base, mateToken)
	opened := time.Now()

	// A body announced as 4000 bytes of which one arrives.
	slow := dialTCP(t, addr)
	io.WriteString(slow, "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{")
	// A keep-alive connection that asks once and then says nothing.
	idle := dialTCP(t, addr)
	io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	idleStart := time.Now()
	if resp, err := http.ReadResponse(bufio.NewReader(idle), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	for name, c := range map[string]net.Conn{"slow body": slow, "idle keep-alive": idle} {
		// The documented deadline plus slack for a loaded machine.
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: still open after 20 s", name)
		}
	}
	if held := time.Since(idleStart); held < cfg.HTTPIdleTimeout*9/10 {
		t.Errorf("idle keep-alive closed after %s, before its %s", held, cfg.HTTPIdleTimeout)
	}
	// What is tested is that the streams outlive the REST deadlines.
	time.Sleep(time.Until(opened.Add(cfg.HTTPWriteTimeout + time.Second)))

	// Both streams outlived every REST deadline and still deliver.
	stream.send(t, "SUBSCRIBE\nid:0\ndestination:/user/session/message\nreceipt:r1\n\n\x00")
	stream.await(t, "RECEIPT")
	guideCall(t, base, "/guide/availability", mateToken, map[string]string{"availability": "available"}, nil)
	guideCall(t, base, "/guide/match", userToken, map[string]int64{"friendId": mateID}, nil)
	if typ, _ := events.next(); typ != "guideRequest" {
		t.Fatalf("guide event %q", typ)
	}
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// xhrStreaming is one SockJS session on the xhr_streaming transport, read
// frame by frame; frames are sent with xhr_send.
type xhrStreaming struct {
	url    string
	frames chan string
	// from is the client address a trusted proxy (the test, from
	// 127.0.0.1) names in X-Forwarded-For; "" for none.
	from string
}

func openXHRStreaming(t *testing.T, sessionURL string) *xhrStreaming {
	t.Helper()
	return openXHRStreamingFrom(t, sessionURL, "")
}

// openXHRStreamingFrom opens the session as client address from.
func openXHRStreamingFrom(t *testing.T, sessionURL, from string) *xhrStreaming {
	t.Helper()
	resp, err := postFrom(sessionURL+"/xhr_streaming", "", from)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("xhr_streaming: %v %v", resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	s := &xhrStreaming{url: sessionURL, frames: make(chan string, 64), from: from}
	go func() {
		defer close(s.frames)
		rd := bufio.NewReader(resp.Body)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			s.frames <- strings.TrimSuffix(line, "\n")
		}
	}()
	s.await(t, "") // the open frame
	return s
}

// await returns the first STOMP frame starting with command ("" waits for
// the SockJS open frame).
func (s *xhrStreaming) await(t *testing.T, command string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				t.Fatalf("the stream ended while waiting for %q", command)
			}
			if command == "" && f == "o" {
				return f
			}
			var msgs []string
			if strings.HasPrefix(f, "a") && json.Unmarshal([]byte(f[1:]), &msgs) == nil {
				// One SockJS message may carry several STOMP frames.
				for _, m := range msgs {
					for _, fr := range strings.Split(m, "\x00") {
						if command != "" && strings.HasPrefix(strings.TrimLeft(fr, "\n"), command+"\n") {
							return fr
						}
					}
				}
			}
		case <-timeout:
			t.Fatalf("no %q on the stream", command)
		}
	}
}

func (s *xhrStreaming) send(t *testing.T, frame string) {
	t.Helper()
	if code := s.sendFrom(t, frame, s.from); code/100 != 2 {
		t.Fatalf("xhr_send: %d", code)
	}
}

// sendFrom sends frame on the session's xhr_send as client address from
// and returns the status.
func (s *xhrStreaming) sendFrom(t *testing.T, frame, from string) int {
	t.Helper()
	body, _ := json.Marshal([]string{frame})
	resp, err := postFrom(s.url+"/xhr_send", string(body), from)
	if err != nil {
		t.Fatalf("xhr_send: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// postFrom posts body as client address from, named in X-Forwarded-For
// (the test connects from 127.0.0.1, a trusted proxy by default).
func postFrom(url, body, from string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain")
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	return http.DefaultClient.Do(req)
}

// TestServeSockJSSessionBoundToAddress: a SockJS session's id does not let
// another client address send on it or poll its deliveries; its own client
// goes on undisturbed. With --sockjs-bind-address=false both work.
func TestServeSockJSSessionBoundToAddress(t *testing.T) {
	for _, bind := range []bool{true, false} {
		cfg := testConfig(t)
		cfg.SockJSBindAddress = bind
		base := "http://" + startNode(t, cfg).ln.Addr().String()
		const owner, other = "203.0.113.10", "198.51.100.20"
		stream := openXHRStreamingFrom(t, base+"/ws/000/bound1", owner)
		stream.send(t, "CONNECT\naccept-version:1.2\nheart-beat:0,0\ncompanyId:1\ngasappMemberNumber:7201\n\n\x00")
		stream.await(t, "CONNECTED")

		code := stream.sendFrom(t, "SUBSCRIBE\nid:9\ndestination:/user/session/message\nreceipt:other\n\n\x00", other)
		resp, err := postFrom(base+"/ws/000/bound1/xhr", "", other)
		if err != nil {
			t.Fatal(err)
		}
		poll, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bind && (code != http.StatusForbidden || resp.StatusCode != http.StatusForbidden) {
			t.Fatalf("bound: another address's xhr_send got %d, its poll %d %q; want 403 for both", code, resp.StatusCode, poll)
		}
		if !bind && code/100 != 2 {
			t.Fatalf("unbound: another address's xhr_send got %d", code)
		}
		if !bind {
			// The frame of the other address took effect on the session.
			stream.await(t, "RECEIPT\nreceipt-id:other")
		}
		// The session's own client goes on.
		stream.send(t, "SUBSCRIBE\nid:0\ndestination:/user/session/message\nreceipt:own\n\n\x00")
		if got := stream.await(t, "RECEIPT"); bind && !strings.Contains(got, "receipt-id:own") {
			t.Fatalf("bound: first receipt %q, want the owner's", got)
		}

		// Video signaling's SockJS sessions are bound alike.
		signal := openXHRStreamingFrom(t, base+"/signal/000/bound2", owner)
		want := http.StatusForbidden
		if !bind {
			want = http.StatusNoContent
		}
		if code := signal.sendFrom(t, `{"id":"ping"}`, other); code != want {
			t.Fatalf("bind %v: another address's /signal xhr_send got %d, want %d", bind, code, want)
		}
		if code := signal.sendFrom(t, `{"id":"ping"}`, owner); code != http.StatusNoContent {
			t.Fatalf("the owner's /signal xhr_send got %d", code)
		}
	}
}
