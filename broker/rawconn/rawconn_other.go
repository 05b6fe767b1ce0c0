//go:build !linux

package rawconn

import "net"

// wrap leaves c as it is: raw socket I/O is Linux-only (rawconn_linux.go).
func wrap(c *net.TCPConn, _ bool) (net.Conn, error) { return c, nil }
