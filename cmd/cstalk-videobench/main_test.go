package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBenchAgainstSFU runs the bench's clients against the SFU in this
// process, plain and simulcast, recorded and not, and checks the
// bookkeeping: media reaches the subscribers and a timed join, the
// forwarded counters and this process's CPU time are read. It asserts
// nothing about speed.
func TestBenchAgainstSFU(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	served := make(chan error, 1)
	go func() { served <- serveSFU(context.Background(), ln, stop, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		close(stop)
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	cl := sfuCluster(node{base: "http://" + ln.Addr().String(), pid: os.Getpid()})
	ctx := context.Background()

	for _, tc := range []struct {
		room      string
		simulcast bool
		record    bool
	}{{"c-plain", false, false}, {"c-simulcast", true, false}, {"c-recorded", false, true}} {
		if err := cl.setRecording(ctx, tc.record); err != nil {
			t.Fatal(err)
		}
		o := options{publishers: 2, subscribers: 2, fps: 30, frameBytes: 3000, audio: true, simulcast: tc.simulcast}
		b, err := newBench(cl, tc.room, o)
		if err != nil {
			t.Fatal(err)
		}
		before, err := cl.sample(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.setup(ctx); err != nil {
			b.close()
			t.Fatalf("%s: %v", tc.room, err)
		}
		pkt, key, err := b.timeJoin(ctx, cl.nodes[0], "late", b.pubs[0])
		if err != nil || pkt <= 0 || key < pkt {
			t.Errorf("%s: timed join: first packet %v, first keyframe %v, %v", tc.room, pkt, key, err)
		}
		deadline := time.Now().Add(signalWait)
		for b.received() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		after, err := cl.sample(ctx, b.received())
		b.close()
		if err != nil {
			t.Fatal(err)
		}
		if after.received == 0 || after.forwarded <= before.forwarded || after.fwdBytes <= before.fwdBytes || after.cpu < before.cpu {
			t.Errorf("%s: before %+v, after %+v", tc.room, before, after)
		}
	}
	status, err := cstalkCall(ctx, http.MethodPost, cl.nodes[0].base+"/record?on=maybe", "", nil, nil)
	if err != nil || status != http.StatusBadRequest {
		t.Errorf("POST /record?on=maybe: %d, %v", status, err)
	}
}

func TestVP8Keyframes(t *testing.T) {
	frame := make([]byte, 2000)
	if p := vp8Payload(frame[:1200], true, true, 640); !isVP8Keyframe(p) || p[7] != 0x80 || p[8] != 0x02 || p[9] != 0x68 || p[10] != 0x01 {
		t.Errorf("keyframe start % x", p[:11])
	}
	if p := vp8Payload(frame[:1200], true, false, 640); isVP8Keyframe(p) {
		t.Error("an inter frame taken for a keyframe")
	}
	if p := vp8Payload(frame[1200:], false, true, 640); isVP8Keyframe(p) {
		t.Error("a keyframe's second packet taken for its start")
	}
	// As Chromium sends them: X set, a 15-bit picture id, TL0PICIDX and
	// a TID/KEYIDX byte before the frame tag.
	for _, tc := range []struct {
		payload []byte
		key     bool
	}{
		{[]byte{0x90, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x50, 0x00}, true},
		{[]byte{0x90, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x51, 0x00}, false},
		{[]byte{0x90, 0x80, 0x05, 0x00}, true},
		{[]byte{0x90, 0x80}, false},
		{[]byte{0x11, 0x00}, false}, // partition 1
		{nil, false},
	} {
		if got := isVP8Keyframe(tc.payload); got != tc.key {
			t.Errorf("isVP8Keyframe(% x) = %v", tc.payload, got)
		}
	}
}

func TestParseForwarded(t *testing.T) {
	metrics := `# HELP cstalk_video_forwarded_packets_total Packets forwarded.
# TYPE cstalk_video_forwarded_packets_total counter
cstalk_video_forwarded_packets_total{kind="audio"} 150
cstalk_video_forwarded_packets_total{kind="video"} 2.5e+03
cstalk_video_forwarded_bytes_total{kind="video"} 1000
cstalk_video_forwarded_packets_total_other 7
process_cpu_seconds_total 3
`
	packets, bytes, err := parseForwarded(strings.NewReader(metrics))
	if err != nil || packets != 2650 || bytes != 1000 {
		t.Errorf("parseForwarded = %v, %v, %v", packets, bytes, err)
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 100 1000 10 18446744073709551615"
	if cpu, err := parseStatCPU(stat); err != nil || cpu != 3.8 {
		t.Errorf("parseStatCPU = %v, %v; want 3.8 s", cpu, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Error("a short line was read")
	}
	if cpu, err := processCPU(os.Getpid()); err != nil || cpu < 0 {
		t.Errorf("processCPU(self) = %v, %v", cpu, err)
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 10; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*100*time.Millisecond)
	}
	if got, want := percentiles(ds), "min 100  p50 600  p90 900  max 1000 ms"; got != want {
		t.Errorf("percentiles = %q, want %q", got, want)
	}
	if ds[0] != time.Second {
		t.Error("percentiles sorted its argument")
	}
	if got := percentiles(nil); got != "none" {
		t.Errorf("percentiles(nil) = %q", got)
	}
}

func TestParseNodes(t *testing.T) {
	nodes, err := parseNodes("http://127.0.0.1:1/, http://127.0.0.1:2", "10,20")
	if err != nil || len(nodes) != 2 || nodes[0] != (node{"http://127.0.0.1:1", 10}) || nodes[1].signalURL() != "ws://127.0.0.1:2/signal" {
		t.Errorf("parseNodes = %v, %v", nodes, err)
	}
	for _, bad := range [][2]string{{"http://a:1", ""}, {"http://a:1,http://b:2", "1"}, {"a:1", "1"}, {"http://a:1", "x"}} {
		if _, err := parseNodes(bad[0], bad[1]); err == nil {
			t.Errorf("parseNodes(%q, %q) took it", bad[0], bad[1])
		}
	}
}

func TestRecordingCost(t *testing.T) {
	if got := recordingCost(result{cores: 0.15, forwarded: 3000}, result{cores: 0.17, forwarded: 3000}, 4); got < 4.99 || got > 5.01 {
		t.Errorf("0.02 cores over 4 participants = %v ms per participant-second, want 5", got)
	}
	// The recorded room forwarded a fifth less: without recording it
	// would have taken 0.12 cores.
	if got := recordingCost(result{cores: 0.15, forwarded: 3000}, result{cores: 0.17, forwarded: 2400}, 5); got < 9.99 || got > 10.01 {
		t.Errorf("0.05 cores over 5 participants = %v ms per participant-second, want 10", got)
	}
}
