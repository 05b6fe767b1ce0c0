package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/chat"
)

// TestLoadAgainstBroker runs a short load against an in-process broker and
// checks the bookkeeping (nothing lost, no errors, latencies recorded); it
// asserts nothing about speed.
func TestLoadAgainstBroker(t *testing.T) {
	bus := broker.NewMemoryBus()
	srv, err := broker.New(broker.DefaultConfig(), openApp{}, bus, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx, "test over")
		ts.Close()
		_ = bus.Close()
	})
	tg := &target{url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/websocket", style: "stomp", host: "/"}
	if err := tg.resolve(); err != nil {
		t.Fatal(err)
	}
	for _, rate := range []float64{0, 2000} {
		res, err := load(context.Background(), tg, loadConfig{
			subs: 6, pubs: 2, dests: 3, rate: rate, duration: 600 * time.Millisecond, warmup: 100 * time.Millisecond,
			drain: drainWait{idle: 5 * time.Second, max: time.Minute}, maxMessages: 1_000_000, size: 64, inflight: 100, parallel: 4,
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("rate %v: %v", rate, err)
		}
		if res.Published == 0 || res.Lost != 0 || res.Errors != 0 || res.LatencySamples == 0 {
			t.Errorf("rate %v: %+v", rate, res)
		}
		if res.Expected != 2*res.Published {
			t.Errorf("rate %v: expected %d deliveries for %d messages at fan-out 2", rate, res.Expected, res.Published)
		}
	}
}

func TestVmRSS(t *testing.T) {
	kib, err := vmRSSKiB(os.Getpid())
	if err != nil || kib <= 0 {
		t.Fatalf("vmRSSKiB = %d, %v", kib, err)
	}
}

// The generator reads a delivery's stamp straight from the server's
// encoding of the event; other events, and anything it does not recognize,
// are left to a full decode.
func TestMessageStamp(t *testing.T) {
	roomID := "7"
	encode := func(event string, message any) []byte {
		t.Helper()
		b, err := json.Marshal(&chat.Envelope{EventName: event, CompanyID: "1", RoomID: &roomID,
			Data: map[string]any{"message": message}, Target: "BROADCAST", SessionID: "s"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	stamped := string(appendChatMessage(nil, 1795415719123456789))
	var sent struct {
		Data struct {
			Message string `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(stamped), &sent); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		stamp int64
		ok    bool
	}{
		{"message", encode("MESSAGE", map[string]any{"id": 2, "roomName": "bench 7", "message": sent.Data.Message, "messageDetail": ""}), 1795415719123456789, true},
		{"text without a stamp", encode("MESSAGE", map[string]any{"id": 2, "message": "안녕하세요"}), 0, false},
		{"error event", encode("ERROR", "bad"), 0, false},
		{"other layout", []byte(`{"data":{"message":{"message":"1|0|"}},"eventName":"MESSAGE"}`), 0, false},
	} {
		stamp, ok := messageStamp(tc.body)
		if stamp != tc.stamp || ok != tc.ok {
			t.Errorf("%s: messageStamp(%s) = %d, %v; want %d, %v", tc.name, tc.body, stamp, ok, tc.stamp, tc.ok)
		}
	}
}

// The RabbitMQ side of the chat workload carries its stamp where cstalk's
// MESSAGE event carries the text, is valid JSON at any padding, and is as
// long as the event cstalk delivers for the same message.
func TestPeerEvent(t *testing.T) {
	const stamp = 1795415719123456789
	b := peerEvent(nil, stamp, 42)
	if got, ok := messageStamp(b); !ok || got != stamp {
		t.Fatalf("messageStamp(%s) = %d, %v", b, got, ok)
	}
	var ev chat.Envelope
	if err := json.Unmarshal(append(b, "   "...), &ev); err != nil || ev.EventName != "MESSAGE" {
		t.Fatalf("peer event %s: %v", b, err)
	}
}
