package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cstalk/cstalk/broker/redisbus/redistest"
)

// TestClusterLoginThrottle: with --redis two nodes count one login's
// password checks together: 60 wrong passwords for agent2 sent at once,
// half to each node, get exactly 10 checks (401) and 50 refusals (429);
// the guide login the same, apart from the counseling one.
func TestClusterLoginThrottle(t *testing.T) {
	rds := redistest.Start(t)
	dsn, _ := freshMariaDB(t)
	cfg := clusterConfig(t, dsn, rds.URL())
	// Ten bcrypts at once under the race detector on a loaded machine.
	cfg.HTTPWriteTimeout = 5 * time.Minute
	nodes := []*clusterNode{startClusterNode(t, "a", cfg), startClusterNode(t, "b", cfg)}
	for _, n := range nodes {
		waitReady(t, n.base, 200)
	}
	// One connection per request: no keep-alive for the server to close
	// under a POST the client would then not retry.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	// burst sends n wrong passwords at once and counts the checked (401),
	// the throttled (429) and those refused because Redis did not answer
	// in time on this loaded machine (503: no check runs without the count,
	// and a count that timed out may still have been spent).
	burst := func(path, login string, n int) {
		var c401, c429, c503 atomic.Int64
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := fmt.Sprintf(`{"loginName":%q,"password":"wrong"}`, login)
				resp, err := client.Post(nodes[i%2].base+path, "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusUnauthorized:
					c401.Add(1)
				case http.StatusTooManyRequests:
					c429.Add(1)
				case http.StatusServiceUnavailable:
					c503.Add(1)
				default:
					t.Errorf("%s: status %d", path, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		checked, throttled, unavailable := c401.Load(), c429.Load(), c503.Load()
		if checked > 10 || checked+unavailable < 10 || checked+throttled+unavailable != int64(n) {
			t.Fatalf("%s over two nodes, %d wrong passwords at once: %d checked, %d throttled, %d unavailable; want 10 checked",
				path, n, checked, throttled, unavailable)
		}
	}
	burst("/api/auth/login", "agent2", 60)
	burst("/guide/login", "guide-user2", 30)
}
