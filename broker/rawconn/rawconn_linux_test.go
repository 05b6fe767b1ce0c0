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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err = Dial(ctx, ln.Addr().String(), checked)
	must(t, err)
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
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
