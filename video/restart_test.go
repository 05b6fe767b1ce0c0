package video

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	piontransport "github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"

	"github.com/cstalk/cstalk/video/videotest"
)

// movingNet is a client's network that moves, as a phone's does from
// Wi-Fi to LTE: its one interface has one loopback address, and move
// gives it another and cuts every socket opened before (their packets go
// nowhere, both ways).
type movingNet struct {
	piontransport.Net
	mu    sync.Mutex
	ip    net.IP
	conns []*cutConn
}

func newMovingNet(t *testing.T, ip string) *movingNet {
	t.Helper()
	n, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	return &movingNet{Net: n, ip: net.ParseIP(ip)}
}

func (n *movingNet) move(ip string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ip = net.ParseIP(ip)
	for _, c := range n.conns {
		c.cut.Store(true)
	}
	n.conns = nil
}

func (n *movingNet) iface() *piontransport.Interface {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := piontransport.NewInterface(net.Interface{Index: 1, MTU: 65536, Name: "lo", Flags: net.FlagUp | net.FlagLoopback})
	i.AddAddress(&net.IPNet{IP: n.ip, Mask: net.CIDRMask(8, 32)})
	return i
}

func (n *movingNet) Interfaces() ([]*piontransport.Interface, error) {
	return []*piontransport.Interface{n.iface()}, nil
}

func (n *movingNet) InterfaceByName(string) (*piontransport.Interface, error) { return n.iface(), nil }
func (n *movingNet) InterfaceByIndex(int) (*piontransport.Interface, error)   { return n.iface(), nil }
func (n *movingNet) ListenUDP(network string, laddr *net.UDPAddr) (piontransport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	cc := &cutConn{UDPConn: c}
	n.mu.Lock()
	n.conns = append(n.conns, cc)
	n.mu.Unlock()
	return cc, nil
}

// cutConn is a socket of the old network once cut.
type cutConn struct {
	piontransport.UDPConn
	cut atomic.Bool
}

func (c *cutConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(p)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

func (c *cutConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(p), nil
	}
	return c.UDPConn.WriteTo(p, addr)
}

// movingClient is a client whose peer connections run on a movingNet.
func movingClient(t *testing.T, ts *testServer, user string) (*client, *movingNet) {
	t.Helper()
	n := newMovingNet(t, "127.0.0.1")
	c := dial(t, ts, user, "/signal")
	c.api = videotest.ClientAPIOn(t, false, n)
	return c, n
}

// localIP is the address of the candidate p's connection uses now.
func localIP(p *clientPeer) string {
	pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return ""
	}
	return pair.Local.Address
}

// serverPeer returns the server's peer connection of user for key.
func serverPeer(t *testing.T, ts *testServer, room, user, key string) *peer {
	t.Helper()
	ts.mu.Lock()
	r := ts.rooms[company1(room)]
	ts.mu.Unlock()
	if r == nil {
		t.Fatalf("no room %s", room)
	}
	r.mu.Lock()
	p := r.participants[user]
	r.mu.Unlock()
	if p == nil {
		t.Fatalf("%s not in %s", user, room)
	}
	return p.peer(key)
}

// awaitMovedMedia waits until p's connection runs from ip and media
// flows on it.
func awaitMovedMedia(t *testing.T, who string, p *clientPeer, ip string) {
	t.Helper()
	checkFor(t, 20*time.Second, func() error {
		if got := localIP(p); got != ip {
			return fmt.Errorf("%s: connection on %q, want %s (state %s)", who, got, ip, p.pc.ConnectionState())
		}
		return nil
	})
	awaitMedia(t, who, p, 20)
}

// call is two participants publishing and receiving each other: 1 on
// the machine's network, 2 on a movingNet.
type call struct {
	a, b             *client
	bNet             *movingNet
	bPub, bSub, aSub *clientPeer
}

func startCall(t *testing.T, ts *testServer, room string) call {
	t.Helper()
	c := call{a: dial(t, ts, "1", "/signal")}
	c.b, c.bNet = movingClient(t, ts, "2")
	c.a.join(room, true, true)
	c.b.join(room, true, true)
	c.a.publish()
	c.bPub = c.b.publish()
	c.bSub = c.b.subscribe("1")
	c.aSub = c.a.subscribe("2")
	awaitMedia(t, "2<-1", c.bSub, 10)
	awaitMedia(t, "1<-2", c.aSub, 10)
	return c
}

// TestICERestartByClient: a client whose network changes mid-call
// restarts ICE from its existing connections (a new offer with new
// credentials); the server answers on the same peer connections and the
// media flows both ways again, on the new address.
func TestICERestartByClient(t *testing.T) {
	ts := startServer(t, nil)
	c := startCall(t, ts, "r-ice1")
	a, b, bNet, bPub, bSub, aSub := c.a, c.b, c.bNet, c.bPub, c.bSub, c.aSub
	if ip := localIP(bSub); ip != "127.0.0.1" {
		t.Fatalf("before the move: connection on %q", ip)
	}
	pubBefore, subBefore := serverPeer(t, ts, "r-ice1", "2", "2"), serverPeer(t, ts, "r-ice1", "2", "1")
	pcs := ts.metricSum(t, "cstalk_video_peer_connections")

	bNet.move("127.0.0.2")
	b.restartICE(bSub, "1", UsageCam)
	b.restartICE(bPub, "2", UsageCam)
	awaitMovedMedia(t, "2<-1", bSub, "127.0.0.2")
	awaitMedia(t, "1<-2", aSub, 20)
	if ip := localIP(bPub); ip != "127.0.0.2" {
		t.Fatalf("publication on %q after the move", ip)
	}
	if serverPeer(t, ts, "r-ice1", "2", "2") != pubBefore || serverPeer(t, ts, "r-ice1", "2", "1") != subBefore {
		t.Fatal("the restart replaced the server's peer connections")
	}
	if got := ts.metricSum(t, "cstalk_video_peer_connections"); got != pcs {
		t.Fatalf("peer connections %v after the restart, %v before", got, pcs)
	}
	a.checkRules()
	b.checkRules()
}

// TestICERestartByServer: when a client's network goes away under a
// connection and its signaling socket stays, the server's side fails and
// the server restarts ICE itself (iceRestartOffer); the client answers
// from its new address and the media flows again on the same
// connections.
func TestICERestartByServer(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ICEDisconnectedTimeout = 500 * time.Millisecond
		c.ICEFailedTimeout = time.Second
	})
	c := startCall(t, ts, "r-ice2")
	a, b, bNet, bPub, bSub, aSub := c.a, c.b, c.bNet, c.bPub, c.bSub, c.aSub
	subBefore := serverPeer(t, ts, "r-ice2", "2", "1")

	bNet.move("127.0.0.2")
	b.await("iceRestartOffer", "userId", "1")
	b.await("iceRestartOffer", "userId", "2")
	awaitMovedMedia(t, "2<-1", bSub, "127.0.0.2")
	awaitMedia(t, "1<-2", aSub, 20)
	if ip := localIP(bPub); ip != "127.0.0.2" {
		t.Fatalf("publication on %q after the move", ip)
	}
	if serverPeer(t, ts, "r-ice2", "2", "1") != subBefore {
		t.Fatal("the restart replaced the server's peer connection")
	}
	a.checkRules()
	b.checkRules()
}

// TestICERestartUnanswered: a client that does not answer the server's
// restart (one that does not know the extension) loses the failed
// connection after the restart window, as before restarts existed.
func TestICERestartUnanswered(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ICEDisconnectedTimeout = 500 * time.Millisecond
		c.ICEFailedTimeout = time.Second
	})
	c := startCall(t, ts, "r-ice3")
	b, bNet, bSub := c.b, c.bNet, c.bSub
	// b stops answering anything on this connection.
	b.mu.Lock()
	delete(b.peers, "1")
	b.mu.Unlock()
	bNet.move("127.0.0.2")
	checkFor(t, 20*time.Second, func() error {
		if pe := serverPeer(t, ts, "r-ice3", "2", "1"); pe != nil {
			return fmt.Errorf("the failed subscription is still there (%s)", pe.pc.ConnectionState())
		}
		return nil
	})
	_ = bSub.pc.Close()
	if got := ts.Participants(company1("r-ice3")); len(got) != 2 {
		t.Fatalf("the room has %v after the connection was dropped", got)
	}
}
