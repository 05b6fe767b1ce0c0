package video

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	"github.com/prometheus/client_golang/prometheus"
)

func testForwardTrack(t *testing.T, cfg Config) *forwardTrack {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f, err := newForwardTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, webrtc.RTPCodecTypeVideo, "u", m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestForwardTrackContinuesAcrossSources: a new source (a republish)
// continues the sequence numbers and moves timestamps on by the wall time.
func TestForwardTrackContinuesAcrossSources(t *testing.T) {
	now := time.Unix(1000, 0)
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return now }
	f := testForwardTrack(t, cfg)

	for i := range 3 {
		p := &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: 65534 + uint16(i), Timestamp: 5000 + uint32(i)*3000}}
		f.write(p, 100)
	}
	if f.rw.lastSeq != 0 || f.rw.lastTS != 11000 { // 65534, 65535, 0
		t.Fatalf("first source: seq %d ts %d", f.rw.lastSeq, f.rw.lastTS)
	}
	now = now.Add(time.Second)
	p := &rtp.Packet{Header: rtp.Header{SSRC: 2, SequenceNumber: 100, Timestamp: 7}}
	f.write(p, 100)
	if p.SequenceNumber != 1 {
		t.Errorf("new source starts at seq %d, want 1", p.SequenceNumber)
	}
	if want := uint32(11000 + 90000 + 1); p.Timestamp != want {
		t.Errorf("new source starts at ts %d, want %d", p.Timestamp, want)
	}
	p = &rtp.Packet{Header: rtp.Header{SSRC: 2, SequenceNumber: 101, Timestamp: 3007}}
	f.write(p, 100)
	if p.SequenceNumber != 2 || p.Timestamp != 11000+90000+1+3000 {
		t.Errorf("second packet seq %d ts %d", p.SequenceNumber, p.Timestamp)
	}
	// A late packet of the new source keeps its place but moves nothing.
	p = &rtp.Packet{Header: rtp.Header{SSRC: 2, SequenceNumber: 99, Timestamp: 7}}
	f.write(p, 100)
	if p.SequenceNumber != 0 || f.rw.lastSeq != 2 {
		t.Errorf("late packet seq %d, last %d", p.SequenceNumber, f.rw.lastSeq)
	}
}

// TestKeyframeRequestsMerged: a burst of requests costs one PLI now and one
// at the end of the interval; none is sent without a source, and the one
// wanted then goes out when a source appears.
func TestKeyframeRequestsMerged(t *testing.T) {
	cfg := DefaultConfig()
	cfg.KeyframeInterval = 100 * time.Millisecond
	f := testForwardTrack(t, cfg)
	var sent atomic.Int32
	f.requestKeyframe() // no source yet
	f.setSource(1, func() { sent.Add(1) })
	if sent.Load() != 1 {
		t.Fatalf("wanted keyframe not sent when the source appeared: %d", sent.Load())
	}
	for range 20 {
		f.requestKeyframe()
	}
	checkFor(t, 2*time.Second, func() error {
		if sent.Load() != 2 {
			return errors.New("merged request not sent")
		}
		return nil
	})
	f.requestKeyframe()
	f.stop()
	f.requestKeyframe()
	if n := sent.Load(); n != 2 {
		t.Errorf("requests after stop sent: %d", n)
	}
	f.clearSource(1)
}

func TestLayoutFor(t *testing.T) {
	for _, c := range []struct{ n, w, fps int }{{1, 960, 15}, {2, 960, 15}, {3, 640, 12}, {9, 320, 12}, {12, 320, 10}, {36, 120, 8}} {
		if l := layoutFor(c.n, false); l.MaxWidth != c.w || l.MaxFPS != c.fps {
			t.Errorf("layoutFor(%d) = %+v", c.n, l)
		}
	}
	if l := layoutFor(3, true); l.Screen == nil || l.Screen.MaxWidth != 640 || l.Screen.MaxFPS != 15 ||
		l.SharerCamera == nil || l.SharerCamera.MaxWidth != 120 || l.SharerCamera.MaxFPS != 8 || l.MaxWidth != 640 {
		t.Errorf("layout while sharing: %+v", l)
	}
}

// TestForwardTrackPadding: padding is stripped, padding-only probes are
// dropped without a hole in the numbering.
func TestForwardTrackPadding(t *testing.T) {
	f := testForwardTrack(t, DefaultConfig())
	p := &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: 10, Timestamp: 1}, Payload: []byte{1, 2}}
	f.write(p, 100)
	probe := &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: 11, Timestamp: 1, Padding: true}, PaddingSize: 200}
	f.write(probe, 212)
	p = &rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: 12, Timestamp: 3000, Padding: true}, Payload: []byte{3}, PaddingSize: 4}
	f.write(p, 100)
	if p.SequenceNumber != 11 || p.Padding || p.PaddingSize != 0 {
		t.Fatalf("after a probe: seq %d padding %v/%d", p.SequenceNumber, p.Padding, p.PaddingSize)
	}
	buf, err := p.Marshal()
	if err != nil || len(buf) != 12+1 {
		t.Fatalf("marshal: %d bytes, %v", len(buf), err)
	}
}
