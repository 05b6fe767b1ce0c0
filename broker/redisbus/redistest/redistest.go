// Package redistest runs a redis-server process of a test's own on a spare
// loopback port, so fault tests can kill it and start it again (empty, as
// after a crash) without touching the machine's shared Redis.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeout bounds starting and stopping the server.
const Timeout = 15 * time.Second

// Server is one redis-server process, restartable on the same port.
type Server struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
	exit chan error
}

// Start runs redis-server on a free port and stops it when the test ends. A
// machine without redis-server fails the test: it is never skipped.
func Start(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, port: port}
	s.Restart()
	t.Cleanup(func() {
		if s.cmd != nil {
			s.Kill()
		}
	})
	return s
}

// URL is the server's address as cstalk's --redis takes it.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Addr is host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Restart starts the (stopped) server again on its port, empty, and returns
// once it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("redistest: redis-server is needed (apt-get install redis-server): %v", err)
	}
	s.cmd = exec.Command(path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan<- error) { exit <- cmd.Wait() }(s.cmd, s.exit)

	client := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer client.Close()
	deadline := time.Now().Add(Timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case err := <-s.exit:
			s.t.Fatalf("redistest: redis-server exited at start: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: redis-server does not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the PING to succeed
	}
}

// Kill stops the server the hard way, as a crash would.
func (s *Server) Kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatalf("redistest: kill redis-server: %v", err)
	}
	select {
	case <-s.exit:
	case <-time.After(Timeout):
		s.t.Fatalf("redistest: redis-server did not exit after kill")
	}
	s.cmd = nil
}
