package redislimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cstalk/cstalk/chat"
)

const sharedRedis = "redis://127.0.0.1:6379/0"

func open(t *testing.T, prefix string) *Limiter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := New(ctx, Options{URL: sharedRedis, Prefix: prefix})
	if err != nil {
		t.Fatalf("Redis is required: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cstalk-limit-test-" + hex.EncodeToString(b[:]) + ":"
}

// TestLimiterContract runs one body on every chat.Limiter: the memory one
// of a single node, and two Redis Limiters standing for two nodes, which
// must count as one.
func TestLimiterContract(t *testing.T) {
	mem := chat.NewMemoryLimiter(nil)
	prefix := uniquePrefix()
	a, b := open(t, prefix), open(t, prefix)
	for name, nodes := range map[string][2]chat.Limiter{"memory": {mem, mem}, "redis": {a, b}} {
		t.Run(name, func(t *testing.T) { testLimiter(t, nodes) })
	}
}

func testLimiter(t *testing.T, nodes [2]chat.Limiter) {
	ctx := context.Background()
	// Concurrent takes from both nodes never spend past the limit.
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			took, _, err := nodes[i%2].Take(ctx, "burst", 1, 10, time.Minute)
			if err != nil {
				t.Error(err)
			}
			if took {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 10 {
		t.Fatalf("%d of 200 concurrent takes spent, limit 10", ok.Load())
	}
	took, wait, err := nodes[0].Take(ctx, "burst", 1, 10, time.Minute)
	if err != nil || took || wait <= 0 || wait > time.Minute {
		t.Fatalf("take past the limit: %v %v %v", took, wait, err)
	}

	// Amounts: a take that would pass the limit spends nothing.
	for _, c := range []struct {
		n    int64
		want bool
	}{{600, true}, {500, false}, {400, true}, {1, false}} {
		if took, _, err := nodes[1].Take(ctx, "bytes", c.n, 1000, time.Minute); err != nil || took != c.want {
			t.Fatalf("take %d: %v %v, want %v", c.n, took, err, c.want)
		}
	}

	// Reset forgets; other keys are untouched.
	if err := nodes[1].Reset(ctx, "burst"); err != nil {
		t.Fatal(err)
	}
	if took, _, _ := nodes[0].Take(ctx, "burst", 1, 10, time.Minute); !took {
		t.Fatal("a reset key is still spent")
	}
	if took, _, _ := nodes[0].Take(ctx, "bytes", 1, 1000, time.Minute); took {
		t.Fatal("resetting one key reset another")
	}

	// The window ends by itself.
	if took, _, _ := nodes[0].Take(ctx, "short", 1, 1, 200*time.Millisecond); !took {
		t.Fatal("first take of a short window refused")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		took, _, err := nodes[1].Take(ctx, "short", 1, 1, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if took {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a window never ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
