package rawconn

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"
)

func wrap(tcp *net.TCPConn, checked bool) (net.Conn, error) {
	raw, err := tcp.SyscallConn()
	if err != nil {
		_ = tcp.Close()
		return nil, fmt.Errorf("raw connection to %s: %w", tcp.RemoteAddr(), err)
	}
	c := &conn{Conn: tcp, raw: raw}
	c.checkNext.Store(checked)
	c.checked = checked
	return c, nil
}

// conn is a TCP connection whose Read and Write wait in the network poller
// and call read(2) and write(2) directly. Only net.Conn's methods are
// promoted from the *net.TCPConn, so it does not offer syscall.Conn.
type conn struct {
	net.Conn // a *net.TCPConn
	raw      syscall.RawConn
	checked  bool
	// checkNext: the next Write starts a request (the connection is new,
	// or the last Read returned the previous answer's bytes).
	checkNext atomic.Bool
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			n, errno = socketIO(syscall.SYS_READ, fd, p, 0)
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
	if c.checked {
		c.checkNext.Store(true)
	}
	return n, nil
}

// Write writes all of p. On a checked connection the first Write of a
// request fails with ErrStale, nothing written, if the peer has closed the
// connection or sent anything unasked; a later Write of the same request
// is not checked, since part of the request is out.
func (c *conn) Write(p []byte) (int, error) {
	check := c.checked && c.checkNext.Swap(false)
	var (
		written int
		errno   syscall.Errno
		stale   error
	)
	err := c.raw.Write(func(fd uintptr) bool {
		// Called again only after EAGAIN; check again while nothing is out.
		if check && written == 0 {
			if stale = peekStale(fd); stale != nil {
				return true
			}
		}
		for written < len(p) {
			n, e := socketIO(syscall.SYS_WRITE, fd, p[written:], 0)
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
		return 0, c.opError("write", fmt.Errorf("%w: %w", ErrStale, stale))
	case errno != 0:
		return written, c.opError("write", errno)
	}
	return written, nil
}

// peekStale looks, without consuming or waiting, for what the peer sent
// since the last answer: the end of the stream, bytes, or an error.
func peekStale(fd uintptr) error {
	var peek [1]byte
	switch n, e := socketIO(syscall.SYS_RECVFROM, fd, peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT); {
	case e == syscall.EAGAIN:
		return nil
	case e != 0:
		return e
	case n == 0:
		return io.EOF
	default:
		return fmt.Errorf("%d unexpected bytes from the server", n)
	}
}

func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// SocketRead and SocketWrite are read(2) and write(2) on a non-blocking
// socket, which return at once (EAGAIN when the socket has no bytes or no
// room), so they skip the runtime's bookkeeping for a call that may block:
// entering and leaving it, and the monitor thread taking the processor
// away from a call that lasts past its 20 µs tick (a write on loopback runs
// the receiving side of TCP too) to wake another thread for it. The
// broker reads and writes its clients' sockets with them: a stored chat
// message costs a read and a write per recipient. On error n is -1.
func SocketRead(fd int, p []byte) (n int, err error) {
	return socketResult(socketIO(syscall.SYS_READ, uintptr(fd), p, 0))
}

func SocketWrite(fd int, p []byte) (n int, err error) {
	return socketResult(socketIO(syscall.SYS_WRITE, uintptr(fd), p, 0))
}

func socketResult(n int, errno syscall.Errno) (int, error) {
	if errno != 0 {
		return -1, errno
	}
	return n, nil
}

// socketIO is read(2), write(2) or recvfrom(2) (with flags) on a
// non-blocking socket, which returns at once.
func socketIO(trap uintptr, fd uintptr, p []byte, flags int) (int, syscall.Errno) {
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
