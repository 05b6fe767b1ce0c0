package broker

import (
	"bytes"
	"context"
	rtmetrics "runtime/metrics"
	"strings"
	"testing"

	"github.com/go-stomp/stomp/v3"
)

func goroutinesCreated() uint64 {
	s := []rtmetrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// A delivery to a raw WebSocket that is waiting for nothing is written by
// the publisher at once: publishing one message at a time to an idle
// subscriber starts no writer goroutine per delivery. Bodies of every
// WebSocket length class arrive intact and in order (one that is not UTF-8
// with U+FFFD in place of its invalid bytes, as always).
func TestDeliveryWrittenAtOnce(t *testing.T) {
	s := startServer(t, DefaultConfig(), nil)
	c := stompClient(t, s, stomp.ConnOpt.Login("reader", ""))
	sub, err := c.Subscribe("/sub/now", stomp.AckAuto)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the subscription", func() bool { return s.Stats().Subscriptions == 1 })
	bodies := [][]byte{
		[]byte("짧은 메시지"),
		bytes.Repeat([]byte("a"), 125-len("content-type:text/plain\ncontent-length:125\n\n")),
		[]byte(strings.Repeat("b", 126)),
		[]byte(strings.Repeat("c", 70000)),
		{0xff, 0xfe, 'x'},
	}
	const rounds = 40
	before := goroutinesCreated()
	for range rounds {
		for _, b := range bodies {
			if err := s.Publish(context.Background(), "sub/now", b); err != nil {
				t.Fatal(err)
			}
			// One at a time: each delivery finds the connection idle.
			want := bytes.ToValidUTF8(b, []byte("\uFFFD"))
			if m := recvMessage(t, sub); !bytes.Equal(m.Body, want) {
				t.Fatalf("got %d bytes %.40q, want %d bytes %.40q", len(m.Body), m.Body, len(want), want)
			}
		}
	}
	// The client's own reader goroutines and the odd large frame that the
	// socket takes only in part may start some; not one per delivery.
	if created := goroutinesCreated() - before; created > rounds*uint64(len(bodies))/4 {
		t.Fatalf("%d goroutines started for %d deliveries", created, rounds*len(bodies))
	}
}
