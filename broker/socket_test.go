package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

// socketRead and socketWrite answer as read(2) and write(2) on the
// non-blocking sockets the runtime gives: EAGAIN from an empty socket and
// from a full one, the bytes otherwise, and a read of 0 once the peer has
// closed.
func TestSocketReadWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// do runs f on the socket's descriptor once, without waiting.
	do := func(f func(fd int)) {
		t.Helper()
		if err := raw.Control(func(fd uintptr) { f(int(fd)) }); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)

	do(func(fd int) {
		if n, err := socketRead(fd, buf); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("read of an empty socket: %d, %v; want EAGAIN", n, err)
		}
	})

	do(func(fd int) {
		if n, err := socketWrite(fd, []byte("hello")); n != 5 || err != nil {
			t.Fatalf("write: %d, %v", n, err)
		}
	})
	got := make([]byte, 5)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "hello" {
		t.Fatalf("peer read %q, %v", got, err)
	}

	if _, err := peer.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	var read []byte
	if err := raw.Read(func(fd uintptr) bool {
		n, err := socketRead(int(fd), buf)
		if errors.Is(err, syscall.EAGAIN) {
			return false // the poller says when the bytes are there
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		read = append(read, buf[:n]...)
		return len(read) == len("world")
	}); err != nil {
		t.Fatal(err)
	}
	if string(read) != "world" {
		t.Fatalf("read %q", read)
	}

	// Filling the socket ends in EAGAIN, not in a write that waits.
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	do(func(fd int) {
		for {
			_, err := socketWrite(fd, chunk)
			if errors.Is(err, syscall.EAGAIN) {
				return
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
		}
	})

	// The peer, its own buffer full, stops sending.
	if err := peer.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Read(func(fd uintptr) bool {
		n, err := socketRead(int(fd), buf)
		if errors.Is(err, syscall.EAGAIN) {
			return false
		}
		if n != 0 || err != nil {
			t.Fatalf("read after the peer closed: %d, %v; want 0", n, err)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
}
