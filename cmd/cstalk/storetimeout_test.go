package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestServeStoreTimeout: when the database stops answering without closing
// its connections (a real MariaDB behind a proxy that goes silent), REST
// logins and lists, guide logins and STOMP frames are answered within
// --store-timeout, with 503 in the API's error shape (Korean by default,
// English on request) and ERROR on STOMP, instead of hanging.
func TestServeStoreTimeout(t *testing.T) {
	dsn, _ := freshMariaDB(t)
	dbURL, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", dsn, err)
	}
	proxy := startProxy(t, dbURL.Host)
	cfg := testConfig(t)
	cfg.DB = strings.Replace(dsn, dbURL.Host, proxy.addr(), 1)
	cfg.StoreTimeout = 2 * time.Second
	node := startNode(t, cfg)
	// Runs before the node's own cleanup: its drain need not wait out a
	// silent database.
	t.Cleanup(func() { proxy.setCut(true) })
	base := "http://" + node.ln.Addr().String()
	token := login(t, base, "agent1")

	stream := openXHRStreaming(t, base+"/ws/000/silent1")
	stream.send(t, "CONNECT\naccept-version:1.2\nheart-beat:0,0\ncompanyId:1\ngasappMemberNumber:7301\n\n\x00")
	stream.await(t, "CONNECTED")
	stream.send(t, "SUBSCRIBE\nid:0\ndestination:/user/session/message\nreceipt:sub\n\n\x00")
	stream.await(t, "RECEIPT")

	proxy.setSilent(true)
	// The deadline, and room for a loaded machine; the database holds a
	// request for minutes without one.
	limit := cfg.StoreTimeout + 8*time.Second
	call := func(what, method, path, body, lang, auth string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		start := time.Now()
		resp, err := (&http.Client{Timeout: 2 * limit}).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		want := "서버가 잠시 응답할 수 없습니다"
		if lang == "en" {
			want = "The server cannot answer right now"
		}
		if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(raw, &e) != nil || e.Code != 503 ||
			!strings.Contains(e.Message, want) {
			t.Fatalf("%s: %d %s, want 503 with %q", what, resp.StatusCode, raw, want)
		}
		if took > limit {
			t.Fatalf("%s: answered after %s, more than %s", what, took, limit)
		}
		t.Logf("%s: 503 after %s", what, took.Round(time.Millisecond))
	}
	call("login", "POST", "/api/auth/login", `{"loginName":"agent2","password":"demo1234"}`, "", "")
	call("login (en)", "POST", "/api/auth/login", `{"loginName":"agent2","password":"demo1234"}`, "en", "")
	call("console login", "POST", "/auth/login", `{"loginName":"agent2","password":"demo1234"}`, "", "")
	call("room list", "GET", "/api/rooms", "", "", token)
	call("guide login", "POST", "/guide/login", `{"loginName":"guide-user1","password":"demo1234"}`, "", "")

	// STOMP: a MESSAGE that cannot be stored is refused with an ERROR event.
	start := time.Now()
	stream.send(t, "SEND\ndestination:/pub/socket/message\ncontent-type:application/json\nreceipt:lost\n\n"+
		`{"eventName":"MESSAGE","data":{"messageType":0,"message":"lost","messageDetail":"","clientMessageId":"c-lost"}}`+"\x00")
	ev := stream.await(t, "MESSAGE")
	if !strings.Contains(ev, `"eventName":"ERROR"`) || !strings.Contains(ev, "서버가 잠시 응답할 수 없습니다") {
		t.Fatalf("MESSAGE during the outage: %q", ev)
	}
	if took := time.Since(start); took > limit {
		t.Fatalf("STOMP MESSAGE: ERROR after %s, more than %s", took, limit)
	}
	// A new connection is refused with an ERROR frame.
	start = time.Now()
	late := openXHRStreaming(t, base+"/ws/000/silent2")
	late.send(t, "CONNECT\naccept-version:1.2\nheart-beat:0,0\ncompanyId:1\ngasappMemberNumber:7302\n\n\x00")
	late.await(t, "ERROR")
	if took := time.Since(start); took > limit {
		t.Fatalf("STOMP CONNECT: ERROR after %s, more than %s", took, limit)
	}
}
