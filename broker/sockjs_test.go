package broker

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
	if !strings.Contains(string(page), "sockjs-client@1.6.1") {
		t.Fatalf("iframe page does not load sockjs-client: %s", page)
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
}
