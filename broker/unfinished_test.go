package broker

import (
	"strings"
	"testing"
	"time"
)

// TestUnfinishedFrameTimesOut: a frame must complete within FrameTimeout of
// its first byte, whatever the heart-beats: a client with none, and one
// that keeps the connection busy by trickling the frame, both get ERROR
// "frame timeout" and are closed; a frame sent in pieces in time is
// handled; the bystander never notices.
func TestUnfinishedFrameTimesOut(t *testing.T) {
	cfg := limitedConfig()
	cfg.FrameTimeout = 500 * time.Millisecond
	cfg.HeartbeatSend, cfg.HeartbeatRecv = 200*time.Millisecond, 200*time.Millisecond
	s := startServer(t, cfg, nil)
	by := newBystander(t, s)

	silent := newRawClient(t, s.wsURL("/ws/websocket"))
	silent.connect("heart-beat:0,0")
	silent.write("SEND\ndestination:/sub/x\n\nnever finished")
	if f := silent.expect("ERROR"); f.Header.Get("message") != "frame timeout" {
		t.Fatalf("silent client: ERROR %q", f.Header.Get("message"))
	}
	silent.expectClosed()

	trickler := newRawClient(t, s.wsURL("/ws/websocket"))
	trickler.connect("heart-beat:100,100")
	trickler.write("SEND\ndestination:/sub/x\n\n")
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				trickler.stream.Write([]byte("x"))
			}
		}
	}()
	f := trickler.expect("ERROR")
	close(stop)
	if f.Header.Get("message") != "frame timeout" {
		t.Fatalf("trickling client: ERROR %q", f.Header.Get("message"))
	}
	trickler.expectClosed()

	ok := newRawClient(t, s.wsURL("/ws/websocket"))
	ok.connect("heart-beat:0,0")
	ok.write("SEND\ndestination:/sub/x\nreceipt:r1\n\nin ")
	ok.write("two pieces\x00")
	ok.expect("RECEIPT")
	by.check(t)
	waitFor(t, "unfinished frames released", func() bool { return s.Server.pendingBytes.Load() == 0 })
}

// TestUnfinishedFramesCeiling: the unfinished frames of all connections
// hold at most MaxPendingBytes; the connection whose frame would go past
// it gets ERROR "server busy" and is closed, and the room it leaves (or a
// frame that completes) is usable again.
func TestUnfinishedFramesCeiling(t *testing.T) {
	cfg := limitedConfig()
	// Two unfinished frames of 3035 bytes, not three: each holds a buffer
	// of 3072 to 4096 bytes, depending on how the reads split it.
	cfg.MaxPendingBytes = 9000
	s := startServer(t, cfg, nil)
	by := newBystander(t, s)
	part := "SEND\ndestination:/sub/x\nreceipt:r\n\n" + strings.Repeat("b", 3000)

	a := newRawClient(t, s.wsURL("/ws/websocket"))
	a.connect("heart-beat:0,0")
	a.write(part)
	b := newRawClient(t, s.wsURL("/ws/websocket"))
	b.connect("heart-beat:0,0")
	b.write(part)
	waitFor(t, "two unfinished frames", func() bool { return s.Server.pendingBytes.Load() >= 6000 })
	if g := testutilGauge(t, s, "cstalk_broker_unfinished_frame_bytes", ""); g < 6000 || g > 8192 {
		t.Errorf("unfinished_frame_bytes %v", g)
	}

	c := newRawClient(t, s.wsURL("/ws/websocket"))
	c.connect("heart-beat:0,0")
	c.write(part)
	if f := c.expect("ERROR"); f.Header.Get("message") != "server busy" {
		t.Fatalf("third unfinished frame: ERROR %q", f.Header.Get("message"))
	}
	c.expectClosed()
	by.check(t)

	// a finishes its frame: its bytes are free for another.
	a.write("\x00")
	a.expect("RECEIPT")
	d := newRawClient(t, s.wsURL("/ws/websocket"))
	d.connect("heart-beat:0,0")
	d.write(part)
	d.write("\x00")
	d.expect("RECEIPT")
	b.write("\x00")
	b.expect("RECEIPT")
	waitFor(t, "unfinished frames released", func() bool {
		return s.Server.pendingBytes.Load() == 0 && testutilGauge(t, s, "cstalk_broker_unfinished_frame_bytes", "") == 0
	})
}
