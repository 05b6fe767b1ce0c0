package web_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
	"github.com/cstalk/cstalk/store/storetest"
)

// TestVideoCallMovesBetweenNodes runs two `cstalk serve --demo` nodes on
// MariaDB and Redis, each behind a load balancer of its own that sends to
// the other node when its own is down (failoverProxy): the counselor's
// console on node a, the customer's page on node b. A call runs (the room
// on a, the customer relayed from b); then e2e/video-cluster.spec.cjs has
// a drained with SIGTERM, and later b killed with SIGKILL while the room is
// there, and both pages must rejoin by themselves on the node left and
// decode each other's video again. The spec prints the time from the
// signal to both pictures moving.
func TestVideoCallMovesBetweenNodes(t *testing.T) {
	ctx, bin := newBrowserBinary(t, 5*time.Minute, t.TempDir())
	db, _ := storetest.MariaDB(t, "web_video_cluster")
	rds := redistest.Start(t)
	// A short lease, so a killed node's room moves soon.
	args := []string{"--db", db, "--redis", rds.URL(), "--video-room-lease", "2s"}
	type node struct {
		srv       *server
		dir, addr string
	}
	nodes := map[string]*node{}
	for _, name := range []string{"a", "b"} {
		n := &node{dir: t.TempDir()}
		n.srv, n.addr = startServer(ctx, t, bin, n.dir, "127.0.0.1:0", args...)
		nodes[name] = n
	}
	consoleFront := failoverProxy(t, nodes["a"].addr, nodes["b"].addr)
	customerFront := failoverProxy(t, nodes["b"].addr, nodes["a"].addr)

	runControlledSpec(ctx, t, "video-cluster.spec.cjs", 4*time.Minute, func(command string) string {
		verb, name, _ := strings.Cut(command, " ")
		n := nodes[name]
		switch {
		case n == nil:
		case verb == "term":
			n.srv.stop()
			return "done"
		case verb == "kill":
			n.srv.kill()
			return "done"
		case verb == "start":
			n.srv, _ = startServer(ctx, t, bin, n.dir, n.addr, args...)
			return "done"
		}
		t.Errorf("video-cluster.spec.cjs asked for %q", command)
		return "unknown"
	}, "CSTALK_CONSOLE_URL="+consoleFront, "CSTALK_CUSTOMER_URL="+customerFront, "CSTALK_ARTIFACTS="+artifactsDir(t))
}

// failoverProxy is a load balancer in front of nodes: each request (and
// WebSocket) goes to the first node that takes the connection, so a page
// behind it reaches the next node when the first is down.
func failoverProxy(t *testing.T, nodes ...string) string {
	t.Helper()
	var dialer net.Dialer
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "cstalk"
			r.Out.Host = r.In.Host // the pages' origin, which the WebSockets check
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var err error
				for _, addr := range nodes {
					var conn net.Conn
					if conn, err = dialer.DialContext(ctx, network, addr); err == nil {
						return conn, nil
					}
				}
				return nil, err
			},
			// A connection kept to a node that died must not be reused.
			DisableKeepAlives: true,
		},
		FlushInterval: -1,
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	return front.URL
}
