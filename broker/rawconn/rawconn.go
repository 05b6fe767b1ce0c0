// Package rawconn reads and writes sockets with read(2) and write(2)
// directly: the broker's clients' sockets (SocketRead, SocketWrite), and
// the TCP connections it dials for the node's own busiest clients (its
// MySQL writer, its Redis bus), whose Read and Write wait in the network
// poller.
//
// A call through the runtime's syscall path wakes the runtime's monitor
// thread whenever it sleeps, which on a node idle between batches is at
// every batch; woken that way, the monitor polls every 20 µs for the next
// millisecond or more. At 2,000 messages/s it took a fifth of a node's CPU
// on MariaDB, and as much again on the Redis bus across two nodes.
package rawconn

import (
	"context"
	"errors"
	"net"
)

// ErrStale is the cause of a Write that sent nothing because the peer had
// closed the connection or sent something unasked before a request.
var ErrStale = errors.New("connection no longer usable")

// Dial dials addr over TCP; the connection's keep-alive is on.
//
// A checked connection is for a request-and-response protocol (MySQL,
// Redis commands), where whatever arrives before a request means the
// connection has gone bad (the server's idle timeout, a restart): the first
// Write of each request fails with ErrStale, nothing written, and the
// client replaces the connection. It takes the place of the liveness check
// clients make through the runtime's syscall path, so the connection does
// not offer syscall.Conn. A connection that receives unasked by design
// (Redis pub/sub) is dialed unchecked.
func Dial(ctx context.Context, addr string, checked bool) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return wrap(c.(*net.TCPConn), checked)
}
