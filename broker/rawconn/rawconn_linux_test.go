package rawconn

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pair dials a loopback listener with Dial and returns both ends.
func pair(t *testing.T, checked bool) (client net.Conn, server net.Conn) {
	t.Helper()
	return loopback(t, func(addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return Dial(ctx, addr, checked)
	})
}

// loopback listens on a loopback port and connects to it with dial; it
// returns the dialed end and the accepted one, both closed when the test
// ends.
func loopback(t *testing.T, dial func(addr string) (net.Conn, error)) (dialed net.Conn, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	acceptedc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acceptedc)
			return
		}
		acceptedc <- c
	}()
	dialed, err = dial(ln.Addr().String())
	must(t, err)
	accepted, ok := <-acceptedc
	if !ok {
		_ = dialed.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = dialed.Close(); _ = accepted.Close() })
	return dialed, accepted
}

// SocketRead and SocketWrite answer as read(2) and write(2) on the
// non-blocking sockets the runtime gives: EAGAIN from an empty socket and
// from a full one, the bytes otherwise, and a read of 0 once the peer has
// closed.
func TestSocketReadWrite(t *testing.T) {
	peer, c := loopback(t, func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) })
	raw, err := c.(*net.TCPConn).SyscallConn()
	must(t, err)
	// do runs f on the socket's descriptor once, without waiting.
	do := func(f func(fd int)) {
		t.Helper()
		if err := raw.Control(func(fd uintptr) { f(int(fd)) }); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)

	do(func(fd int) {
		if n, err := SocketRead(fd, buf); !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("read of an empty socket: %d, %v; want EAGAIN", n, err)
		}
	})

	do(func(fd int) {
		if n, err := SocketWrite(fd, []byte("hello")); n != 5 || err != nil {
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
		n, err := SocketRead(int(fd), buf)
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
			_, err := SocketWrite(fd, chunk)
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
		n, err := SocketRead(int(fd), buf)
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

func TestConn(t *testing.T) {
	t.Run("a write bigger than the socket buffers arrives whole", func(t *testing.T) {
		client, server := pair(t, true)
		sent := make([]byte, 16<<20)
		_, _ = rand.Read(sent)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(server)
			got <- b
		}()
		n, err := client.Write(sent)
		if err != nil || n != len(sent) {
			t.Fatalf("wrote %d of %d bytes: %v", n, len(sent), err)
		}
		must(t, client.Close())
		if b := <-got; !bytes.Equal(b, sent) {
			t.Fatalf("received %d bytes, not the %d sent", len(b), len(sent))
		}
	})

	t.Run("reads what came, then EOF", func(t *testing.T) {
		client, server := pair(t, true)
		go func() {
			_, _ = server.Write([]byte("안녕"))
			_ = server.Close()
		}()
		b, err := io.ReadAll(client) // reads until io.EOF
		if err != nil || string(b) != "안녕" {
			t.Fatalf("read %q, %v", b, err)
		}
	})

	t.Run("a read waits no longer than its deadline", func(t *testing.T) {
		client, _ := pair(t, true)
		must(t, client.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
		_, err := client.Read(make([]byte, 10))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past its deadline returned %v, want a timeout", err)
		}
	})

	t.Run("a request after the peer spoke unasked or closed sends nothing", func(t *testing.T) {
		for _, peer := range []string{"spoke", "closed"} {
			client, server := pair(t, true)
			if peer == "spoke" {
				_, err := server.Write([]byte("x"))
				must(t, err)
			} else {
				must(t, server.(*net.TCPConn).CloseWrite())
			}
			// On loopback the byte or the FIN is queued at the client once
			// the server's call returns; wait until the client can see it.
			awaitReadable(t, client)
			n, err := client.Write([]byte("SELECT 1"))
			if !errors.Is(err, ErrStale) || n != 0 {
				t.Fatalf("peer %s: write returned %d, %v; want ErrStale and nothing written", peer, n, err)
			}
			must(t, client.Close())
			must(t, server.SetReadDeadline(time.Now().Add(5*time.Second)))
			// Closing with the unread "x" resets the connection.
			if b, err := io.ReadAll(server); len(b) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
				t.Fatalf("peer %s: the server received %q (%v), want nothing", peer, b, err)
			}
		}
	})

	t.Run("only a request's first write is checked", func(t *testing.T) {
		client, server := pair(t, true)
		_, err := client.Write([]byte("MULTI\r\n")) // a request begins
		must(t, err)
		_, err = server.Write([]byte("+OK\r\n"))
		must(t, err)
		awaitReadable(t, client)
		// The answer to its first part is waiting; the rest of the request
		// goes all the same.
		if _, err := client.Write([]byte("EXEC\r\n")); err != nil {
			t.Fatalf("the request's second write: %v", err)
		}
		b := make([]byte, 5)
		_, err = io.ReadFull(client, b)
		must(t, err)
		_, err = server.Write([]byte("x"))
		must(t, err)
		awaitReadable(t, client)
		// The answer is read: the next write begins a request, and the
		// unasked byte makes it stale.
		if _, err := client.Write([]byte("PING\r\n")); !errors.Is(err, ErrStale) {
			t.Fatalf("the next request after an unasked byte: %v, want ErrStale", err)
		}
	})

	t.Run("an unchecked connection writes whatever came", func(t *testing.T) {
		client, server := pair(t, false)
		_, err := server.Write([]byte("message"))
		must(t, err)
		awaitReadable(t, client)
		if n, err := client.Write([]byte("PING\r\n")); err != nil || n != 6 {
			t.Fatalf("write returned %d, %v", n, err)
		}
	})

	t.Run("clients' liveness checks are left to Write", func(t *testing.T) {
		client, _ := pair(t, true)
		if _, ok := client.(syscall.Conn); ok {
			t.Fatal("the connection offers syscall.Conn, so a client would check it through the runtime's syscall path")
		}
	})
}

// awaitReadable waits, in the network poller, until c has something to
// read (bytes or the end of the stream), without consuming it.
func awaitReadable(t *testing.T, c net.Conn) {
	t.Helper()
	must(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	must(t, c.(*conn).raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, errno := socketIO(syscall.SYS_RECVFROM, fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return errno != syscall.EAGAIN
	}))
}
