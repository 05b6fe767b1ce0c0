//go:build linux

package broker

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// readPoller waits for the raw WebSocket connections' sockets to have
// bytes, so that an idle connection has no goroutine: a parked reader cost
// a 4 KiB stack (which the collector cannot shrink while it waits in the
// network poller, and which it counts when it sizes the heap) and its
// goroutine's own state, most of the memory an idle connection held. One
// goroutine waits on an epoll instance of the node's own, itself waited for
// in the runtime's network poller; a socket with bytes is read by one of
// the poller's readers until it has none left.
type readPoller struct {
	ep *os.File // the epoll instance, closed by stop
	rc syscall.RawConn

	// The readers: goroutines that read one socket after another, so that
	// a message does not pay for a new goroutine, its closure and the
	// growth of a fresh stack. An idle one waits on work; at most
	// maxIdleReaders wait, the others end (a burst of handlers that block
	// leaves no crowd behind). stopped ends the waiting ones.
	work     chan *wsTransport
	idle     atomic.Int32
	stopped  chan struct{}
	stopOnce sync.Once

	mu    sync.Mutex
	conns map[uint64]*wsTransport // by pollID, while registered
	next  uint64
	done  chan struct{} // closed when run has returned
}

func newReadPoller() (*readPoller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("broker: epoll_create1: %w", err)
	}
	// Non-blocking, os.NewFile hands it to the runtime's poller, which
	// reports it readable when any socket in it is.
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("broker: epoll non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(fd), "broker-epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, fmt.Errorf("broker: epoll: %w", err)
	}
	p := &readPoller{ep: ep, rc: rc, conns: make(map[uint64]*wsTransport), done: make(chan struct{}),
		work: make(chan *wsTransport), stopped: make(chan struct{})}
	go p.run()
	return p, nil
}

// add registers t's socket, edge-triggered: readable wakes t's reader once
// per arrival of bytes (or of the peer's close or an error). Bytes already
// waiting are reported at once.
func (p *readPoller) add(t *wsTransport) error {
	if t.raw == nil {
		return fmt.Errorf("broker: epoll: %s has no raw socket", t.nc.RemoteAddr())
	}
	p.mu.Lock()
	p.next++
	id := p.next
	t.pollID, t.poller = id, p
	p.conns[id] = t
	p.mu.Unlock()
	var cerr error
	err := t.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{
			// EPOLLET is negative in package syscall: its bit as a uint32.
			Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLET&0xFFFFFFFF,
			Fd:     int32(id), Pad: int32(id >> 32),
		}
		cerr = syscall.EpollCtl(int(p.ep.Fd()), syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.remove(t)
		return fmt.Errorf("broker: epoll_ctl add: %w", err)
	}
	return nil
}

// remove forgets t; closing its socket takes it out of the epoll set.
func (p *readPoller) remove(t *wsTransport) {
	p.mu.Lock()
	delete(p.conns, t.pollID)
	p.mu.Unlock()
}

// run hands each socket that has bytes to its reader until stop.
func (p *readPoller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	var n int
	var werr error
	// Made once: a closure made for each wait would be allocated, with
	// what it sets, for each wait.
	wait := func(fd uintptr) bool {
		for {
			n, werr = epollWaitNow(int(fd), events)
			if werr != syscall.EINTR {
				break
			}
		}
		// Nothing ready: wait in the runtime's poller.
		return n != 0 || werr != nil
	}
	for {
		err := p.rc.Read(wait)
		if err != nil || werr != nil {
			return // stopped (an epoll_wait on a valid instance does not fail)
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if t := p.conns[uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32]; t != nil {
				t.readable()
			}
		}
		p.mu.Unlock()
	}
}

// maxIdleReaders bounds the readers kept waiting for work.
const maxIdleReaders = 8

// read has t's socket read by a waiting reader, or by a new one.
func (p *readPoller) read(t *wsTransport) {
	select {
	case p.work <- t:
	default:
		go p.reader(t)
	}
}

// reader reads t, then the sockets it is handed, until too many readers
// wait or the poller stops.
func (p *readPoller) reader(t *wsTransport) {
	for {
		t.readReady()
		if p.idle.Add(1) > maxIdleReaders {
			p.idle.Add(-1)
			return
		}
		select {
		case t = <-p.work:
			p.idle.Add(-1)
		case <-p.stopped:
			p.idle.Add(-1)
			return
		}
	}
}

// epollWaitNow is epoll_wait(2) with a zero timeout, which returns at
// once, so it skips the runtime's bookkeeping for a call that may block
// (rawconn.SocketRead says what that costs).
func epollWaitNow(epfd int, events []syscall.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(epfd),
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// stop ends run and the waiting readers; a second call does nothing.
// Connections still registered can then only end: Abort wakes a reader
// for them itself.
func (p *readPoller) stop() {
	_ = p.ep.Close()
	<-p.done
	p.stopOnce.Do(func() { close(p.stopped) })
}
