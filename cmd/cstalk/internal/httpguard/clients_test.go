package httpguard

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8, 192.168.1.1,::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer, xff, want string
	}{
		{"10.1.2.3:5000", "203.0.113.9", "203.0.113.9:0"},
		// A client's own X-Forwarded-For entry before the proxies is not believed.
		{"10.1.2.3:5000", "1.1.1.1, 203.0.113.9, 10.9.9.9", "203.0.113.9:0"},
		{"192.168.1.1:5000", "203.0.113.9", "203.0.113.9:0"},
		{"[::1]:5000", "2001:db8::7", "[2001:db8::7]:0"},
		// Not a trusted proxy: its header is ignored.
		{"198.51.100.4:5000", "203.0.113.9", "198.51.100.4:5000"},
		// Nothing usable: the peer stays.
		{"10.1.2.3:5000", "", "10.1.2.3:5000"},
		{"10.1.2.3:5000", "garbage", "10.1.2.3:5000"},
		{"10.1.2.3:5000", "10.4.4.4", "10.1.2.3:5000"},
	} {
		var got string
		h := proxies.ClientAddr(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		h.ServeHTTP(nil, r)
		if got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "host.example", "1.2.3"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted", bad)
		}
	}
}

// TestLimitListener: one address holds at most max connections; the next
// is told 503 and closed; a closed one frees its place; trusted proxies
// are not counted.
func TestLimitListener(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		var proxies Proxies
		if trusted {
			proxies, _ = ParseProxies("127.0.0.1")
		}
		var refused atomic.Int32
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln = LimitListener(ln, 3, proxies, func() { refused.Add(1) })
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
		go srv.Serve(ln)
		addr := ln.Addr().String()
		dial := func() net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		get := func(c net.Conn) int {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("trusted %v: %v", trusted, err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		held := []net.Conn{dial(), dial(), dial()}
		for _, c := range held {
			if code := get(c); code != 200 {
				t.Fatalf("trusted %v: connection within the limit got %d", trusted, code)
			}
		}
		extra := dial()
		want := 503
		if trusted {
			want = 200
		}
		if code := get(extra); code != want {
			t.Fatalf("trusted %v: fourth connection got %d, want %d", trusted, code, want)
		}
		extra.Close()
		if !trusted {
			body := make([]byte, 1)
			held[0].Close()
			// The place frees once the server has seen the close.
			deadline := time.Now().Add(10 * time.Second)
			for {
				c := dial()
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err == nil && resp.StatusCode == 200 {
					c.Close()
					break
				}
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					if !strings.Contains(string(b), "too many connections") {
						t.Fatalf("refusal body %q", b)
					}
				}
				c.Read(body)
				c.Close()
				if time.Now().After(deadline) {
					t.Fatal("a closed connection's place was never freed")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if refused.Load() == 0 {
				t.Error("refusals not counted")
			}
		}
		for _, c := range held {
			c.Close()
		}
		srv.Close()
	}
}
