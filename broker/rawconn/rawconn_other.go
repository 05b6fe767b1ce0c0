//go:build !linux

package rawconn

import (
	"net"
	"syscall"
)

// wrap leaves c as it is: raw socket I/O is Linux-only (rawconn_linux.go).
func wrap(c *net.TCPConn, _ bool) (net.Conn, error) { return c, nil }

func SocketRead(fd int, p []byte) (int, error)  { return syscall.Read(fd, p) }
func SocketWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
