package video

import (
	"context"
	"math/rand"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// fakeTransport is a transport that discards what is sent.
type fakeTransport struct{}

func (fakeTransport) Name() string          { return "fake" }
func (fakeTransport) Recv() ([]byte, error) { select {} }
func (fakeTransport) Send([]byte) error     { return nil }
func (fakeTransport) Ping() error           { return nil }
func (fakeTransport) Close()                {}
func (fakeTransport) Abort()                {}

// TestMutatedOffers feeds pion hundreds of corrupted offers, both as a
// publication and as a subscription: each gets an answer or an error,
// none hangs or panics, and no peer connection is left behind.
func TestMutatedOffers(t *testing.T) {
	ts := startServer(t, nil)
	r := httptest.NewRequest("GET", "/signal", nil)
	sess := ts.newSession(fakeTransport{}, r)
	p, e := ts.join(sess, Identity{UserID: "1"}, "tok-1", company1("r-1"), true, true)
	if e != nil {
		t.Fatal(e)
	}
	if _, e := ts.join(ts.newSession(fakeTransport{}, r), Identity{UserID: "2"}, "tok-2", company1("r-1"), true, true); e != nil {
		t.Fatal(e)
	}
	base := validOffer(t)
	rng := rand.New(rand.NewSource(2))
	answered := 0
	for i := range 300 {
		b := []byte(base)
		for range 1 + rng.Intn(5) {
			pos := rng.Intn(len(b))
			switch rng.Intn(3) {
			case 0:
				b[pos] = byte(rng.Intn(256))
			case 1:
				b = append(b[:pos], b[pos+1:]...)
			default:
				b = append(b[:pos], append([]byte{b[rng.Intn(len(b))]}, b[pos:]...)...)
			}
		}
		offer := string(b)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, target := range []string{"1", "2"} {
				if _, pe, e := p.receiveVideoFrom(context.Background(), target, UsageCam, offer, true); e == nil {
					pe.afterAnswer()
					answered++
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("offer %d hangs: %q\n%s", i, offer, buf[:runtime.Stack(buf, true)])
		}
	}
	t.Logf("%d of 600 corrupted offers answered", answered)
	if got := ts.metricSum(t, "cstalk_video_peer_connections"); got > 2 {
		t.Errorf("%v peer connections open, want at most one per target", got)
	}
}
