package broker

import (
	"syscall"
	"unsafe"
)

// socketRead and socketWrite are read(2) and write(2) on a non-blocking
// socket, which return at once (EAGAIN when the socket has no bytes or no
// room), so they skip the runtime's bookkeeping for a call that may block:
// entering and leaving it, and the monitor thread taking the processor
// away from a call that lasts past its 20 µs tick (a write on loopback runs
// the receiving side of TCP too) to wake another thread for it. A stored
// chat message costs a read and a write per recipient.
func socketRead(fd int, p []byte) (int, error) {
	return socketIO(syscall.SYS_READ, fd, p)
}

func socketWrite(fd int, p []byte) (int, error) {
	return socketIO(syscall.SYS_WRITE, fd, p)
}

func socketIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
