package video

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"
)

// memCluster is a placement shared by the servers of one test, as Redis is
// by the nodes of a cluster.
type memCluster struct {
	mu     sync.Mutex
	rooms  map[RoomKey]string // relay address of the room's node
	closes []chan RoomKey
}

type memPlacement struct {
	c      *memCluster
	addr   string // set once the server listens
	closes chan RoomKey
}

func (c *memCluster) node() *memPlacement {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &memPlacement{c: c, closes: make(chan RoomKey, 16)}
	c.closes = append(c.closes, p.closes)
	return p
}

func (p *memPlacement) Claim(_ context.Context, key RoomKey) (string, bool, error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.c.rooms[key] == "" {
		p.c.rooms[key] = p.addr
	}
	return p.c.rooms[key], p.c.rooms[key] == p.addr, nil
}

func (p *memPlacement) Renew(ctx context.Context, keys []RoomKey) (lost []RoomKey, _ error) {
	for _, k := range keys {
		if _, self, _ := p.Claim(ctx, k); !self {
			lost = append(lost, k)
		}
	}
	return lost, nil
}

func (p *memPlacement) Release(_ context.Context, key RoomKey) error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if p.c.rooms[key] == p.addr {
		delete(p.c.rooms, key)
	}
	return nil
}

func (p *memPlacement) Lease() time.Duration { return time.Hour }

func (p *memPlacement) AnnounceClose(_ context.Context, key RoomKey) error {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	for _, ch := range p.c.closes {
		ch <- key
	}
	return nil
}

func (p *memPlacement) Closes() <-chan RoomKey { return p.closes }

// clusterServers starts n servers placing rooms on one memCluster.
func clusterServers(t *testing.T, n int) []*testServer {
	t.Helper()
	c := &memCluster{rooms: map[RoomKey]string{}}
	var out []*testServer
	for range n {
		pl := c.node()
		ts := startServer(t, func(cfg *Config) {
			cfg.Placement = pl
			cfg.RelaySecret = []byte("relay-secret-of-the-tests")
		})
		u, err := url.Parse(ts.http.URL)
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		pl.addr = u.Host
		c.mu.Unlock()
		out = append(out, ts)
	}
	return out
}

// TestRelay: a room lives on the node of its first join; a participant
// whose signaling reaches the other node is relayed there: it is listed
// and announced, trickles candidates both ways and receives media; after
// leaveRoom its socket may join again; a CloseRoom on the other node ends
// the room for both.
func TestRelay(t *testing.T) {
	nodes := clusterServers(t, 2)
	a, b := nodes[0], nodes[1]
	g1 := dial(t, a, "u1", "/signal")
	g1.join("c-relay", true, true)
	g1.publish()
	g2 := dial(t, b, "u2", "/signal")
	if m := g2.join("c-relay", true, true); len(m["members"].([]any)) != 1 {
		t.Fatalf("relayed join shown %v", m["members"])
	}
	g1.await("newParticipantArrived", "name", "u2")
	awaitMedia(t, "u2 (relayed) <- u1", g2.subscribe("u1"), 20)
	if n := a.metricSum(t, "cstalk_video_rooms"); n != 1 {
		t.Fatalf("node a has %v rooms", n)
	}
	if n := b.metricSum(t, "cstalk_video_rooms"); n != 0 {
		t.Fatalf("node b opened %v rooms of its own", n)
	}
	if n := b.metricSum(t, "cstalk_video_relayed_connections"); n != 1 {
		t.Fatalf("node b relays %v connections", n)
	}
	g2.send(map[string]any{"id": "leaveRoom"})
	g1.await("participantLeft", "name", "u2")
	g2.join("c-relay", true, true)
	g1.await("newParticipantArrived", "name", "u2")

	b.CloseRoom(company1("c-relay"))
	g1.awaitError(CodeRoomClosed)
	g2.awaitError(CodeRoomClosed)
	g1.checkRules()
	g2.checkRules()
}

// TestRelayRefused: /video/relay takes only requests a node of the cluster
// signed, for the room it names, within the allowed clock skew.
func TestRelayRefused(t *testing.T) {
	a := clusterServers(t, 1)[0]
	key := company1("c-signed")
	status := func(auth string, q url.Values) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, a.http.URL+RelayPath+"?"+q.Encode(), nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if auth != "" {
			req.Header.Set(relayAuthHeader, auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	q := url.Values{"company": {key.Company}, "kind": {string(key.Kind)}, "name": {key.Name}}
	now := time.Now().Unix()
	sign := func(secret string, ts int64, k RoomKey) string {
		return strconv.FormatInt(ts, 10) + "." + relayMAC([]byte(secret), ts, k.String())
	}
	const secret = "relay-secret-of-the-tests"
	for name, auth := range map[string]string{
		"unsigned":          "",
		"another secret":    sign("another-secret-entirely", now, key),
		"another room":      sign(secret, now, company1("c-other")),
		"stale":             sign(secret, now-int64(2*relayClockSkew/time.Second), key),
		"malformed":         "yesterday.abc",
		"signature garbled": strconv.FormatInt(now, 10) + ".00",
	} {
		if got := status(auth, q); got != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, got)
		}
	}
	if got := status(sign(secret, now, key), q); got != http.StatusSwitchingProtocols {
		t.Errorf("signed: %d, want 101", got)
	}
}
