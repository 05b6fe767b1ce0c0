package broker

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestPublishCoalesced: of a burst of states published under one key, from
// two nodes at once, a subscriber on either node gets the first at once and
// then at most one per window, ending with the last one; another key is
// coalesced apart, and a plain Publish is never held back.
func TestPublishCoalesced(t *testing.T) {
	network := NewMemoryNetwork()
	cfg := DefaultConfig()
	cfg.CoalesceWindow = 300 * time.Millisecond
	nodes := []*testServer{startServer(t, cfg, network.Node()), startServer(t, cfg, network.Node())}
	var subs []*rawClient
	for _, n := range nodes {
		c := newRawClient(t, n.wsURL("/ws/websocket"))
		c.connect("heart-beat:0,0")
		c.write("SUBSCRIBE\nid:0\ndestination:/sub/lobby\nreceipt:r\n\n\x00")
		c.expect("RECEIPT")
		subs = append(subs, c)
	}
	for _, n := range nodes {
		waitFor(t, "both nodes subscribed on the bus", func() bool { return n.Server.HasSubscribers("sub/lobby") })
	}
	ctx := context.Background()
	const burst = 200
	start := time.Now()
	for i := range burst {
		for _, key := range []string{"a", "b"} {
			if err := nodes[i%2].PublishCoalesced(ctx, "/sub/lobby", key, fmt.Appendf(nil, "%s%d", key, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A plain message from node 1 comes after its burst on every node (one
	// topic keeps its order on the bus), and is never held back; once both
	// have it, node 0's next states are the last everywhere.
	if err := nodes[1].Publish(ctx, "/sub/lobby", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	got := make([]map[string][]string, len(subs))
	for i, c := range subs {
		got[i] = map[string][]string{}
		for {
			body := string(c.next().Body)
			if body == "plain" {
				break
			}
			got[i][body[:1]] = append(got[i][body[:1]], body)
		}
	}
	for _, key := range []string{"a", "b"} {
		if err := nodes[0].PublishCoalesced(ctx, "/sub/lobby", key, []byte(key+"-last")); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range subs {
		for last(got[i]["a"]) != "a-last" || last(got[i]["b"]) != "b-last" {
			body := string(c.next().Body)
			got[i][body[:1]] = append(got[i][body[:1]], body)
		}
		elapsed := time.Since(start)
		// The first at once, then at most one per window.
		limit := 2 + int(elapsed/cfg.CoalesceWindow)
		for key, bodies := range got[i] {
			if len(bodies) > limit || len(bodies) > burst/4 {
				t.Errorf("node %d, key %s: %d deliveries in %s (window %s): %v", i, key, len(bodies), elapsed, cfg.CoalesceWindow, bodies)
			}
		}
	}
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}
