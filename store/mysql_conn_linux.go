package store

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"unsafe"

	mysqldriver "github.com/go-sql-driver/mysql"
)

// The writer's and context readers' connections to MySQL read and write
// their non-blocking sockets with raw system calls, as the broker does its
// clients'. A call through the runtime's syscall path wakes the runtime's
// monitor thread whenever it sleeps, which on a node idle between batches
// is at every batch; woken that way, the monitor polls every 20 µs for
// the next millisecond or more. At 2,000 messages/s on MariaDB it took a
// fifth of the node's CPU, more than the driver's own I/O.

// rawTCPNet is the network name under which the driver dials rawTCPConns.
const rawTCPNet = "cstalk-rawtcp"

// dialRawTCP dials the server's TCP address as a rawTCPConn. The driver
// bounds ctx with the DSN's dial timeout; the function holds nothing, so
// registering it again, for every store, is harmless.
func dialRawTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer // keep-alive on by default
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tcp := c.(*net.TCPConn)
	raw, err := tcp.SyscallConn()
	if err != nil {
		_ = tcp.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return &rawTCPConn{Conn: tcp, raw: raw}, nil
}

// useRawTCP makes cfg dial its TCP address with dialRawTCP.
func useRawTCP(cfg *mysqldriver.Config) {
	if cfg.Net != "tcp" {
		return
	}
	mysqldriver.RegisterDialContext(rawTCPNet, dialRawTCP)
	cfg.Net = rawTCPNet
}

// rawTCPConn is a TCP connection whose Read and Write wait in the network
// poller and call read(2) and write(2) directly. It does not offer
// syscall.Conn (only net.Conn's methods are promoted), so the driver's
// liveness check, a read through the runtime's syscall path, does not run:
// Write makes the same check first.
type rawTCPConn struct {
	net.Conn // a *net.TCPConn
	raw      syscall.RawConn
}

func (c *rawTCPConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			n, errno = rawSocketIO(syscall.SYS_READ, fd, p, 0)
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p. Before it writes, the server must not have
// closed the connection or sent anything unasked, which in this
// request-and-response protocol means a connection gone bad (the server's
// idle timeout, a restart): Write then fails with nothing written, which
// the driver reports as a bad connection that database/sql replaces.
func (c *rawTCPConn) Write(p []byte) (int, error) {
	var (
		written int
		errno   syscall.Errno
		stale   error
	)
	err := c.raw.Write(func(fd uintptr) bool {
		// Called again only after EAGAIN; check again while nothing is out.
		if written == 0 {
			var peek [1]byte
			switch n, e := rawSocketIO(syscall.SYS_RECVFROM, fd, peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT); {
			case e == syscall.EAGAIN:
			case e != 0:
				stale = e
				return true
			case n == 0:
				stale = io.EOF
				return true
			default:
				stale = fmt.Errorf("%d unexpected bytes from the server", n)
				return true
			}
		}
		for written < len(p) {
			n, e := rawSocketIO(syscall.SYS_WRITE, fd, p[written:], 0)
			switch e {
			case 0:
				written += n
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return written, c.opError("write", err)
	case stale != nil:
		return 0, c.opError("write", fmt.Errorf("connection no longer usable: %w", stale))
	case errno != 0:
		return written, c.opError("write", errno)
	}
	return written, nil
}

func (c *rawTCPConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// rawSocketIO is read(2), write(2) or recvfrom(2) (with flags) on a
// non-blocking socket, which returns at once.
func rawSocketIO(trap uintptr, fd uintptr, p []byte, flags int) (int, syscall.Errno) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall6(trap, fd, uintptr(ptr), uintptr(len(p)), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}
