package httpguard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proxies are the addresses whose X-Forwarded-For is believed: the load
// balancers in front of the node.
type Proxies []netip.Prefix

// ParseProxies reads a comma-separated list of addresses and CIDR prefixes.
func ParseProxies(v string) (Proxies, error) {
	var out Proxies
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("%q: not an address or CIDR prefix", item)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q: not an address or CIDR prefix", item)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (ps Proxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr sets r.RemoteAddr to the client's address when the request
// came through a trusted proxy: the last X-Forwarded-For entry that is not
// itself a trusted proxy (entries before it could be forged by the client).
// Everything after it (login throttles, SockJS session binding, logs) sees
// the client, not the load balancer.
func (ps Proxies) ClientAddr(h http.Handler) http.Handler {
	if len(ps) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if peer, ok := addrOf(r.RemoteAddr); ok && ps.contains(peer) {
			if client, ok := ps.forwardedClient(r.Header.Values("X-Forwarded-For")); ok {
				r2 := *r
				r2.RemoteAddr = netip.AddrPortFrom(client, 0).String()
				r = &r2
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (ps Proxies) forwardedClient(headers []string) (netip.Addr, bool) {
	for i := len(headers) - 1; i >= 0; i-- {
		hops := strings.Split(headers[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return netip.Addr{}, false
			}
			if !ps.contains(a) {
				return a.Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

func addrOf(hostport string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// LimitListener accepts at most max open connections from one client
// address; beyond that a new connection is answered 503 and closed at once.
// Connections from trusted proxies are not counted: a load balancer carries
// many clients on its own few addresses, and limits them itself.
func LimitListener(ln net.Listener, max int, trusted Proxies, refused func()) net.Listener {
	if max <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: max, trusted: trusted, refused: refused, open: map[netip.Addr]int{}}
}

type limitListener struct {
	net.Listener
	max     int
	trusted Proxies
	refused func()

	mu   sync.Mutex
	open map[netip.Addr]int
}

// tooMany is written to a refused connection, so a client learns why.
var tooMany = func() []byte {
	body := "too many connections from this address\n"
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a, ok := addrOf(c.RemoteAddr().String())
		if !ok || l.trusted.contains(a) {
			return c, nil
		}
		l.mu.Lock()
		if l.open[a] >= l.max {
			l.mu.Unlock()
			if l.refused != nil {
				l.refused()
			}
			// A fresh socket's send buffer takes this without blocking;
			// the deadline is for the pathological rest.
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(tooMany)
			_ = c.Close()
			continue
		}
		l.open[a]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(a) }}, nil
	}
}

func (l *limitListener) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[a]--; l.open[a] <= 0 {
		delete(l.open, a)
	}
}

// countedConn gives its address's place back once, on the first Close
// (net/http and hijackers may both close it).
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite and ReadFrom keep what net/http finds on a *net.TCPConn: the
// half-close of a graceful end and sendfile for file downloads.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *countedConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }

// SyscallConn keeps the socket reachable for writes that must not block
// (the broker writes a delivery at once when the socket can take it).
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}
