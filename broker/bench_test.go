package broker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// BenchmarkFanOut publishes to one destination with 200 raw WebSocket
// subscribers and reports delivered messages per second (clients run in the
// same process, so this is a floor).
func BenchmarkFanOut(b *testing.B) {
	s := startServer(b, DefaultConfig(), nil)
	const subscribers = 200
	var delivered atomic.Int64
	var wg sync.WaitGroup
	for range subscribers {
		ws, _, err := websocket.DefaultDialer.Dial(s.wsURL("/ws/websocket"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		_ = ws.WriteMessage(websocket.TextMessage, []byte("CONNECT\naccept-version:1.2\n\n\x00SUBSCRIBE\nid:0\ndestination:/sub/bench\n\n\x00"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, p, err := ws.ReadMessage()
				if err != nil {
					return
				}
				delivered.Add(int64(bytes.Count(p, []byte("MESSAGE\n"))))
			}
		}()
	}
	waitFor(b, "subscribers", func() bool { return s.Stats().Subscriptions == subscribers })
	body := []byte(`{"eventName":"MESSAGE","companyId":"1","roomId":"147","data":{"message":{"id":1,"message":"` + strings.Repeat("안녕", 20) + `"}}}`)
	b.ResetTimer()
	for range b.N {
		if err := s.Publish(context.Background(), "sub/bench", body); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * subscribers
	waitFor(b, fmt.Sprintf("%d deliveries", want), func() bool {
		return delivered.Load() >= want || s.Stats().Connections < subscribers
	})
	b.StopTimer()
	b.ReportMetric(float64(delivered.Load())/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkReadFrame measures the limit scan and parse of a typical SEND.
func BenchmarkReadFrame(b *testing.B) {
	s := startServer(b, DefaultConfig(), nil)
	raw := []byte("SEND\ndestination:/pub/socket/message\nroomId:147\ncontent-type:application/json\ncontent-length:64\n\n" + strings.Repeat("x", 64) + "\x00")
	b.ReportAllocs()
	for range b.N {
		_, n, perr := s.limits.scan(raw, v12)
		if perr != nil || n != len(raw) {
			b.Fatal(perr, n)
		}
		if _, perr := s.parse(raw[:n], v12); perr != nil {
			b.Fatal(perr)
		}
	}
}

// discardTransport accepts every write; it isolates the broker's own cost.
type discardTransport struct{ closed chan struct{} }

func (d *discardTransport) Name() string             { return "discard" }
func (d *discardTransport) Receive(*Conn) error      { <-d.closed; return io.EOF }
func (d *discardTransport) Send(p []byte) error      { return nil }
func (d *discardTransport) Close()                   {}
func (d *discardTransport) Abort()                   {}
func (d *discardTransport) Context() context.Context { return nil }

// BenchmarkDeliver measures hub fan-out, queueing and MESSAGE encoding to
// 100 subscribers, without a network: allocations are per publish.
func BenchmarkDeliver(b *testing.B) {
	cfg := DefaultConfig()
	cfg.OutboundQueue = 1 << 22 // the loop publishes faster than any writer drains
	s := startServer(b, cfg, nil)
	const subscribers = 100
	for i := range subscribers {
		c := s.newConn(&discardTransport{closed: make(chan struct{})}, "test")
		c.mu.Lock()
		c.version, c.connected = v12, true
		c.mu.Unlock()
		sub := &subscription{conn: c, id: fmt.Sprint(i), dest: "sub/bench", topic: "sub/bench",
			prefix: encodeSubscriptionPrefix(v12, "/sub/bench", fmt.Sprint(i))}
		s.subscribe(sub)
	}
	body := []byte(`{"eventName":"MESSAGE","companyId":"1","roomId":"147","data":{}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		_ = s.publish(context.Background(), "sub/bench", s.cfg.ContentType, body, false)
	}
	waitFor(b, "queues drained", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.mu.Lock()
			busy := c.writing
			c.mu.Unlock()
			if busy {
				return false
			}
		}
		return true
	})
	b.StopTimer()
	if n := s.Stats().Connections; n != subscribers {
		b.Fatalf("%d of %d subscribers left", n, subscribers)
	}
	b.ReportMetric(float64(b.N*subscribers)/b.Elapsed().Seconds(), "deliveries/s")
}
