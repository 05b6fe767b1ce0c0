package redisbus_test

import (
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker"
	"github.com/cstalk/cstalk/broker/bustest"
	"github.com/cstalk/cstalk/broker/redisbus"
)

// blackholeProxy forwards TCP to Redis until told to swallow everything on
// the connections open at that moment, as a dead route does: nothing is
// closed, nothing arrives. Connections opened later work.
type blackholeProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	pairs    []*proxyPair
	wg       sync.WaitGroup
}

type proxyPair struct {
	client, server net.Conn
	dead           atomic.Bool
}

func startBlackholeProxy(t *testing.T, upstream string) *blackholeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackholeProxy{ln: ln, upstream: upstream}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, pair := range p.pairs {
			_ = pair.client.Close()
			_ = pair.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *blackholeProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.upstream)
		if err != nil {
			_ = client.Close()
			continue
		}
		pair := &proxyPair{client: client, server: server}
		p.mu.Lock()
		p.pairs = append(p.pairs, pair)
		p.mu.Unlock()
		p.wg.Go(func() { pair.pipe(server, client) })
		p.wg.Go(func() { pair.pipe(client, server) })
	}
}

func (pair *proxyPair) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pair.dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close()
			return
		}
	}
}

// blackhole makes every connection open now swallow its traffic.
func (p *blackholeProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		pair.dead.Store(true)
	}
}

func (p *blackholeProxy) url() string { return "redis://" + p.ln.Addr().String() + "/0" }

// TestHalfOpenConnection: a pub/sub connection that silently stops carrying
// anything is noticed by its missing health replies and replaced, and the
// subscriptions come back with the new one.
func TestHalfOpenConnection(t *testing.T) {
	u, err := url.Parse(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	upstream := u.Host
	proxy := startBlackholeProxy(t, upstream)
	prefix := uniquePrefix(t)
	direct := newBuses(t, redisURL(), 1, redisbus.Options{Prefix: prefix})[0]
	viaProxy := newBuses(t, proxy.url(), 1, redisbus.Options{Prefix: prefix, NodeID: "proxied", HealthInterval: 300 * time.Millisecond})[0]
	nodes := bustest.Start(t, []broker.Bus{direct, viaProxy})
	a, b := nodes[0], nodes[1]
	const topic = "sub/socket/room/halfopen"
	bustest.MustSubscribe(t, b, topic)
	bustest.MustPublish(t, a, topic, []byte("before"))
	b.WaitFor(t, topic, []byte("before"))

	proxy.blackhole()
	bustest.Eventually(t, bustest.Timeout, 20*time.Millisecond, "the silent connection to be replaced", func() bool {
		return viaProxy.Stats().Reconnects >= 1
	})
	bustest.MustPublish(t, a, topic, []byte("after"))
	b.WaitFor(t, topic, []byte("after"))
}
