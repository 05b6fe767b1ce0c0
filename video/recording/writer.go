package recording

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"
)

// A participant's camera and microphone go to one WebM file: the packets
// the SFU forwards are copied into a bounded queue (the forwarding path
// never waits for the disk), put back together into frames by pion's
// samplebuilder on the writer's own goroutine and written as SimpleBlocks
// by ebml-go, with a Cues index and the Duration so players can seek.

// Status is how a file's recording ended.
type Status string

const (
	StatusRecording Status = "recording" // still being written
	StatusDone      Status = "done"      // the participant left or the call ended
	StatusLimit     Status = "limit"     // the size or duration ceiling was reached
	StatusFailed    Status = "failed"    // a write failed (disk full, I/O error)
	StatusEmpty     Status = "empty"     // no video keyframe or audio ever came
)

// Limits bound one file.
type Limits struct {
	MaxBytes    int64
	MaxDuration time.Duration
}

// Result is what a finished file holds.
type Result struct {
	Status   Status
	Bytes    int64
	Duration time.Duration
	Err      error // why it failed
	Dropped  int64 // packets the full queue dropped
}

const (
	trackAudio = 1
	trackVideo = 2
	// queueSize bounds the packets waiting for the writer: several seconds
	// of video and audio; a disk that falls that far behind loses packets,
	// never the call.
	queueSize = 2048
	// audioOnlyAfter: a publication with audio and no video keyframe for
	// this long is recorded as sound alone.
	audioOnlyAfter = 3 * time.Second
	// cuesReserve is the room kept at the file's head for the seek index
	// (ebml-go thins it out if a long call needs more).
	cuesReserve = 16 << 10
	// sizeMargin keeps a file under MaxBytes with the cluster and index
	// bytes written around the frames.
	sizeMargin = 64 << 10
	// maxLate is how many packets the samplebuilders wait for a late one.
	maxLate = 256
)

type packet struct {
	video bool
	p     *rtp.Packet
}

// fileWriter records one participant. Its sinks are fed by the SFU; run
// writes until stop.
type fileWriter struct {
	path   string
	limits Limits
	now    func() time.Time
	vp8    bool // the video is VP8 (other codecs: sound alone)
	// create makes the file (tests put it on a full disk).
	create func(path string) (*os.File, error)

	q       chan packet
	stopped chan struct{}
	done    chan struct{}
	stopOne sync.Once
	dropped atomic.Int64

	audioSink, videoSink sink

	// owned by run
	audioSB, videoSB *samplebuilder.SampleBuilder
	file             *countingFile
	audioW, videoW   webm.BlockWriteCloser
	opened           time.Time // when the file began (its time 0)
	firstAudioAt     time.Time
	audioClock       trackClock
	videoClock       trackClock
	lastTS           time.Duration
	res              Result
}

// sink is one track's TrackSink: it copies each packet into the queue.
type sink struct {
	w     *fileWriter
	video bool
}

func (s *sink) WriteRTP(p *rtp.Packet) {
	c := &rtp.Packet{Header: p.Header.Clone(), Payload: append([]byte(nil), p.Payload...)}
	select {
	case s.w.q <- packet{video: s.video, p: c}:
	default:
		s.w.dropped.Add(1)
	}
}

// newFileWriter makes the writer of one file; setVideoCodec must follow
// before run.
func newFileWriter(path string, limits Limits, now func() time.Time) *fileWriter {
	w := &fileWriter{path: path, limits: limits, now: now,
		create: func(path string) (*os.File, error) {
			return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		},
		q: make(chan packet, queueSize), stopped: make(chan struct{}), done: make(chan struct{}),
		res: Result{Status: StatusEmpty}}
	w.audioSink = sink{w: w}
	w.videoSink = sink{w: w, video: true}
	w.audioSB = samplebuilder.New(maxLate, &codecs.OpusPacket{}, 48000)
	w.videoSB = samplebuilder.New(maxLate, &codecs.VP8Packet{}, 90000)
	return w
}

// setVideoCodec says what the video track carries: VP8 is written, other
// codecs are left out (the file holds the sound).
func (w *fileWriter) setVideoCodec(c webrtc.RTPCodecCapability) {
	w.vp8 = strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8)
}

// stop ends the recording; wait for run to finish with result.
func (w *fileWriter) stop() { w.stopOne.Do(func() { close(w.stopped) }) }

// result waits for run and returns how the file ended.
func (w *fileWriter) result() Result {
	<-w.done
	return w.res
}

// run writes until stop (or a limit or failure), then finishes the file.
func (w *fileWriter) run() {
	defer close(w.done)
	defer w.finish()
	for {
		select {
		case <-w.stopped:
			return
		case pk := <-w.q:
			if !w.handle(pk) {
				return
			}
		}
	}
}

// handle takes one packet; false when the recording must end.
func (w *fileWriter) handle(pk packet) bool {
	if pk.video {
		if !w.vp8 {
			return true
		}
		w.videoSB.Push(pk.p)
		for s := w.videoSB.Pop(); s != nil; s = w.videoSB.Pop() {
			if !w.writeVideo(s) {
				return false
			}
		}
		return true
	}
	w.audioSB.Push(pk.p)
	for s := w.audioSB.Pop(); s != nil; s = w.audioSB.Pop() {
		if !w.writeAudio(s) {
			return false
		}
	}
	return true
}

func (w *fileWriter) writeVideo(s *media.Sample) bool {
	if len(s.Data) < 10 {
		return true
	}
	// VP8: bit 0 of the first byte clear is a keyframe, whose header
	// carries the picture size (RFC 6386 9.1).
	key := s.Data[0]&0x01 == 0
	if w.file == nil {
		if !key {
			return true
		}
		width := binary.LittleEndian.Uint16(s.Data[6:8]) & 0x3fff
		height := binary.LittleEndian.Uint16(s.Data[8:10]) & 0x3fff
		if !w.open(&webm.Video{PixelWidth: uint64(width), PixelHeight: uint64(height)}) {
			return false
		}
	}
	if w.videoW == nil {
		return true // audio alone: the video came too late
	}
	return w.write(w.videoW, &w.videoClock, key, s, 90000)
}

func (w *fileWriter) writeAudio(s *media.Sample) bool {
	if w.file == nil {
		now := w.now()
		if w.firstAudioAt.IsZero() {
			w.firstAudioAt = now
		}
		// Wait for the video's keyframe to declare both tracks, unless it
		// is not coming.
		if !w.vp8 || now.Sub(w.firstAudioAt) >= audioOnlyAfter {
			if !w.open(nil) {
				return false
			}
		} else {
			return true
		}
	}
	return w.write(w.audioW, &w.audioClock, true, s, 48000)
}

// trackClock puts one track's RTP timestamps on the file's clock: its
// first frame sits at the time it arrived since the file began, the later
// ones follow their RTP timestamps (the SFU keeps them continuous, gaps
// included), so sound and picture stay together.
type trackClock struct {
	started bool
	base    time.Duration
	lastRTP uint32
	ticks   int64 // RTP ticks since the first frame, unwrapped
}

func (c *trackClock) at(rtpTS uint32, rate int64, arrived time.Duration) time.Duration {
	if !c.started {
		c.started, c.base, c.lastRTP = true, arrived, rtpTS
	}
	c.ticks += int64(int32(rtpTS - c.lastRTP))
	c.lastRTP = rtpTS
	return c.base + time.Duration(c.ticks*int64(time.Second)/rate)
}

func (w *fileWriter) write(bw webm.BlockWriteCloser, c *trackClock, key bool, s *media.Sample, rate int64) bool {
	if bw == nil {
		return true
	}
	ts := c.at(s.PacketTimestamp, rate, w.now().Sub(w.opened))
	if ts < 0 {
		return true
	}
	if w.limits.MaxDuration > 0 && ts > w.limits.MaxDuration {
		w.res.Status = StatusLimit
		return false
	}
	if w.limits.MaxBytes > 0 && w.file.size()+int64(len(s.Data))+sizeMargin > w.limits.MaxBytes {
		w.res.Status = StatusLimit
		return false
	}
	if _, err := bw.Write(key, ts.Milliseconds(), s.Data); err != nil {
		w.fail(err)
		return false
	}
	if err := w.file.failure(); err != nil {
		w.fail(err)
		return false
	}
	w.lastTS = max(w.lastTS, ts)
	w.res.Status = StatusRecording
	return true
}

func (w *fileWriter) fail(err error) {
	w.res.Status, w.res.Err = StatusFailed, err
}

// open creates the file with an audio track and, when video describes
// it, a video track.
func (w *fileWriter) open(video *webm.Video) bool {
	f, err := w.create(w.path)
	if err != nil {
		w.fail(fmt.Errorf("create %s: %w", w.path, err))
		return false
	}
	w.file = &countingFile{f: f}
	w.opened = w.now()
	tracks := []webm.TrackEntry{{
		Name: "Audio", TrackNumber: trackAudio, TrackUID: trackAudio, CodecID: "A_OPUS", TrackType: 2,
		CodecPrivate: opusHead(), SeekPreRoll: 80_000_000,
		Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2},
	}}
	if video != nil {
		tracks = append(tracks, webm.TrackEntry{
			Name: "Video", TrackNumber: trackVideo, TrackUID: trackVideo, CodecID: "V_VP8", TrackType: 1, Video: video,
		})
	}
	info := *webm.DefaultSegmentInfo
	info.MuxingApp, info.WritingApp = "cstalk", "cstalk"
	info.DateUTC = w.opened.UTC()
	ws, err := webm.NewSimpleBlockWriter(w.file, tracks,
		mkvcore.WithSegmentInfo(&info), mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesReserve),
		mkvcore.WithOnFatalHandler(w.file.setErr),
		// A cluster starts at each keyframe (at most every 5 s), where a
		// seek can begin decoding.
		mkvcore.WithMinMaxClusterDuration(trackVideo, 0, 5000))
	if err != nil {
		_ = f.Close()
		w.fail(fmt.Errorf("webm header of %s: %w", w.path, err))
		return false
	}
	w.audioW = ws[0]
	if video != nil {
		w.videoW = ws[1]
	}
	return true
}

// finish closes the writer: ebml-go writes the index and the duration,
// then closes the file.
func (w *fileWriter) finish() {
	w.res.Dropped = w.dropped.Load()
	if w.file == nil {
		return
	}
	for _, bw := range []webm.BlockWriteCloser{w.audioW, w.videoW} {
		if bw != nil {
			_ = bw.Close()
		}
	}
	if err := w.file.failure(); err != nil && w.res.Status != StatusFailed {
		w.fail(err)
	}
	if w.res.Status == StatusRecording {
		w.res.Status = StatusDone
	}
	w.res.Bytes = w.file.size()
	w.res.Duration = w.lastTS
}

// countingFile is the file ebml-go writes to: it counts the bytes and
// keeps the first error (disk full). It never hands an error back, because
// ebml-go's writer goroutine stops at one and its next Write would then
// wait forever: after a failure it discards what comes, the recorder sees
// failure() and ends the file.
type countingFile struct {
	f   *os.File
	n   atomic.Int64
	mu  sync.Mutex
	err error
}

func (c *countingFile) Write(b []byte) (int, error) {
	if c.failure() != nil {
		return len(b), nil
	}
	n, err := c.f.Write(b)
	c.n.Add(int64(n))
	if err != nil {
		c.setErr(fmt.Errorf("write: %w", err))
	}
	return len(b), nil
}

func (c *countingFile) WriteAt(b []byte, off int64) (int, error) {
	if c.failure() != nil {
		return len(b), nil
	}
	if _, err := c.f.WriteAt(b, off); err != nil {
		c.setErr(fmt.Errorf("write index: %w", err))
	}
	return len(b), nil
}

// Close syncs the file: a recording that says done is on the disk.
func (c *countingFile) Close() error {
	err := c.f.Sync()
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.setErr(fmt.Errorf("close: %w", err))
	}
	return nil
}

func (c *countingFile) size() int64 { return c.n.Load() }

func (c *countingFile) setErr(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *countingFile) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// opusHead is the Opus identification header WebM carries as the
// track's CodecPrivate (RFC 7845 5.1): two channels, 48 kHz, no
// pre-skip or gain.
func opusHead() []byte {
	h := []byte("OpusHead")
	h = append(h, 1, 2)
	h = binary.LittleEndian.AppendUint16(h, 0)
	h = binary.LittleEndian.AppendUint32(h, 48000)
	h = binary.LittleEndian.AppendUint16(h, 0)
	return append(h, 0)
}
