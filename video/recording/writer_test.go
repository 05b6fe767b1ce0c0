package recording

import (
	"encoding/binary"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
)

// TestDiskFullEndsRecording: a write that fails (ENOSPC from /dev/full)
// ends the file with status failed and the writer stops taking packets,
// instead of blocking the forwarding path or ebml-go's writer.
func TestDiskFullEndsRecording(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	w := newFileWriter("/dev/full", DefaultLimits, time.Now)
	w.create = func(string) (*os.File, error) { return os.OpenFile("/dev/full", os.O_WRONLY, 0) }
	w.setVideoCodec(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8})
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run()
	}()
	vp8 := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{}, rtp.NewRandomSequencer(), 90000)
	frame := make([]byte, 3000)
	frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
	binary.LittleEndian.PutUint16(frame[6:], 320)
	binary.LittleEndian.PutUint16(frame[8:], 240)
	// A keyframe and a few more: the file's header already fails.
	for i := range 10 {
		for _, p := range vp8.Packetize(frame, 3000) {
			w.videoSink.WriteRTP(p)
		}
		if i == 0 {
			frame[0] = 0x01 // interframes after the first
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not stop on a full disk")
	}
	res := w.result()
	if res.Status != StatusFailed || res.Err == nil || !strings.Contains(res.Err.Error(), syscall.ENOSPC.Error()) {
		t.Fatalf("result %+v, want failed with ENOSPC", res)
	}
	// The sink keeps accepting (and dropping) without blocking.
	for range queueSize + 10 {
		w.videoSink.WriteRTP(&rtp.Packet{Payload: frame[:10]})
	}
}

// BenchmarkRecordOneSecond: what recording costs per participant, one op
// being one second of a camera (30 VP8 frames of 2400 bytes, a keyframe
// a second) and a microphone (50 Opus packets) through the sinks, the
// samplebuilders and ebml-go into a file. ns/op / 1e9 is the share of a
// core one recorded participant takes.
func BenchmarkRecordOneSecond(b *testing.B) {
	start := time.Now()
	var media time.Duration
	now := func() time.Time { return start.Add(media) }
	w := newFileWriter(b.TempDir()+"/bench.webm", DefaultLimits, now)
	w.setVideoCodec(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8})
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run()
	}()
	vp8 := rtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{}, rtp.NewRandomSequencer(), 90000)
	opus := rtp.NewPacketizer(1200, 111, 2, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	frame := make([]byte, 2400)
	voice := make([]byte, 80)
	b.ResetTimer()
	for range b.N {
		for i := range 30 {
			frame[0] = 0x11
			if i == 0 {
				frame[0] = 0x10
				frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
				binary.LittleEndian.PutUint16(frame[6:], 640)
				binary.LittleEndian.PutUint16(frame[8:], 360)
			}
			for _, p := range vp8.Packetize(frame, 3000) {
				w.videoSink.WriteRTP(p)
			}
			if i%3 != 2 { // 50 audio packets for 30 frames
				for _, p := range opus.Packetize(voice, 960) {
					w.audioSink.WriteRTP(p)
				}
				for _, p := range opus.Packetize(voice, 960) {
					w.audioSink.WriteRTP(p)
				}
			}
			// Let the writer keep up, as a real-time source would.
			for len(w.q) > queueSize/2 {
				runtime.Gosched()
			}
		}
		media += time.Second
	}
	// stop ends the file at once: what is still queued is not written.
	for len(w.q) > 0 {
		runtime.Gosched()
	}
	w.stop()
	<-done
	b.StopTimer()
	res := w.result()
	if res.Status != StatusDone || res.Dropped > 0 {
		b.Fatalf("result %+v", res)
	}
	b.ReportMetric(float64(res.Bytes)/float64(b.N), "file-bytes/op")
}
