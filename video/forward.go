package video

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// forwardTrack is one participant's outgoing audio or video as every
// subscriber sees it. It exists from join to leave, whether or not the
// participant publishes, so a subscription made before the publisher's
// offer (the seed's clients do that) needs no renegotiation: packets start
// flowing when the publisher does. When the source changes (a republish
// after a reconnect) sequence numbers and timestamps continue where they
// left off, so subscribers' jitter buffers see one unbroken stream.
//
// Audio goes out on one static track shared by every subscriber. Video
// goes to each subscriber on a track of its own (downTrack), so that each
// may get another simulcast layer as one continuous stream.
type forwardTrack struct {
	local     *webrtc.TrackLocalStaticRTP // audio's, shared
	codec     webrtc.RTPCodecCapability
	streamID  string
	kind      webrtc.RTPCodecType
	clockRate uint32
	bindings  atomic.Int32 // subscribers bound to local

	inPackets, inBytes   prometheus.Counter
	outPackets, outBytes prometheus.Counter
	keyframes            prometheus.Counter
	keyframeInterval     time.Duration
	now                  func() time.Time

	mu    sync.Mutex // guards rw and sinks (one writer at a time)
	rw    rewriter
	sinks []TrackSink // audio: taps on the stream as subscribers get it (recordings)

	// video: the subscribers' tracks and the layers of the current
	// source (one unless it sends simulcast).
	dmu      sync.RWMutex
	downs    map[*downTrack]struct{}
	layers   []*layer
	layerSrc any
	// maxWidth is the room's layout width (0: none), the widest layer a
	// subscriber gets while its bandwidth allows more.
	maxWidth atomic.Int32

	kmu        sync.Mutex // guards keyframe requests
	source     any        // the publishing peer, nil while none
	requestPLI func()     // asks the source for a keyframe
	lastPLI    time.Time
	pliTimer   *time.Timer
	pliStopped bool
	kfWanted   bool // a request came while there was no source
}

func newForwardTrack(codec webrtc.RTPCodecCapability, kind webrtc.RTPCodecType, streamID string, m *metrics, cfg Config) (*forwardTrack, error) {
	id := kind.String()
	local, err := webrtc.NewTrackLocalStaticRTP(codec, id, streamID)
	if err != nil {
		return nil, errorf("%s track for %s: %w", id, streamID, err)
	}
	return &forwardTrack{
		local: local, codec: codec, streamID: streamID, kind: kind, clockRate: codec.ClockRate, downs: map[*downTrack]struct{}{},
		inPackets: m.receivedPackets.WithLabelValues(id), inBytes: m.receivedBytes.WithLabelValues(id),
		outPackets: m.forwardedPackets.WithLabelValues(id), outBytes: m.forwardedBytes.WithLabelValues(id),
		keyframes: m.keyframeRequests, keyframeInterval: cfg.KeyframeInterval, now: clock(cfg),
	}, nil
}

// trackLocal is what a subscription adds: for audio the shared static
// track with a count of its bindings, so forwarded packets are counted per
// subscriber; for video a downTrack of the subscription's own (also
// returned, nil for audio).
func (f *forwardTrack) trackLocal() (webrtc.TrackLocal, *downTrack, error) {
	if f.kind != webrtc.RTPCodecTypeVideo {
		return (*countingTrack)(f), nil, nil
	}
	d, err := f.newDown()
	if err != nil {
		return nil, nil, err
	}
	return d, d, nil
}

type countingTrack forwardTrack

func (c *countingTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	p, err := c.local.Bind(ctx)
	if err == nil {
		c.bindings.Add(1)
	}
	return p, err
}

func (c *countingTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	err := c.local.Unbind(ctx)
	if err == nil {
		c.bindings.Add(-1)
	}
	return err
}

func (c *countingTrack) ID() string                { return c.local.ID() }
func (c *countingTrack) RID() string               { return c.local.RID() }
func (c *countingTrack) StreamID() string          { return c.local.StreamID() }
func (c *countingTrack) Kind() webrtc.RTPCodecType { return c.local.Kind() }

var _ webrtc.TrackLocal = (*countingTrack)(nil)

// write forwards one audio packet from the current source. p is modified.
func (f *forwardTrack) write(p *rtp.Packet, size int) {
	f.mu.Lock()
	if !f.rw.rewrite(&p.Header, len(p.Payload), f.clockRate, f.now()) {
		f.mu.Unlock()
		return
	}
	p.PaddingSize = 0
	// Under the lock so a source switch never interleaves two streams.
	err := f.local.WriteRTP(p)
	for _, sink := range f.sinks {
		sink.WriteRTP(p)
	}
	f.mu.Unlock()

	f.inPackets.Inc()
	f.inBytes.Add(float64(size))
	if n := f.bindings.Load(); n > 0 && err == nil {
		f.outPackets.Add(float64(n))
		f.outBytes.Add(float64(int(n) * size))
	}
}

// rewriter maps a source's sequence numbers and timestamps onto one
// outgoing stream. When the source changes (a republish, another
// simulcast layer) the numbers continue where they left off, the
// timestamp advanced by the wall time in between, so the receiver's
// jitter buffer sees one unbroken stream.
type rewriter struct {
	started   bool
	srcSSRC   uint32
	seqOffset uint16
	tsOffset  uint32
	lastSeq   uint16 // last sequence number sent
	lastTS    uint32
	lastAt    time.Time
}

// rewrite renumbers h (of a packet with payloadLen bytes of payload);
// false: drop the packet.
func (w *rewriter) rewrite(h *rtp.Header, payloadLen int, clockRate uint32, now time.Time) bool {
	if !w.started || h.SSRC != w.srcSSRC {
		if w.started {
			gap := uint32(now.Sub(w.lastAt).Seconds()*float64(clockRate)) + 1
			w.seqOffset = w.lastSeq + 1 - h.SequenceNumber
			w.tsOffset = w.lastTS + gap - h.Timestamp
		}
		w.started, w.srcSSRC = true, h.SSRC
	}
	// Header extension ids were negotiated with the publisher and mean
	// something else (or nothing) to each subscriber.
	h.Extension, h.Extensions = false, nil
	if h.Padding {
		// pion writes the header and payload only, so padding goes (and
		// with it the P bit, which would otherwise eat the payload's last
		// byte). A padding-only packet is a bandwidth probe for the
		// publisher's link, worth nothing downstream: dropped, and when it
		// is the next in order the numbering closes over it, so
		// subscribers see no loss.
		h.Padding = false
		if payloadLen == 0 {
			if h.SequenceNumber+w.seqOffset == w.lastSeq+1 {
				w.seqOffset--
			}
			return false
		}
	}
	h.SequenceNumber += w.seqOffset
	h.Timestamp += w.tsOffset
	if int16(h.SequenceNumber-w.lastSeq) > 0 || w.lastAt.IsZero() {
		w.lastSeq, w.lastTS, w.lastAt = h.SequenceNumber, h.Timestamp, now
	}
	return true
}

// setSource makes source (a publishing peer) the one asked for keyframes.
func (f *forwardTrack) setSource(source any, pli func()) {
	f.kmu.Lock()
	f.source, f.requestPLI = source, pli
	wanted := f.kfWanted
	f.kfWanted = false
	f.kmu.Unlock()
	if wanted {
		f.requestKeyframe()
	}
}

// clearSource forgets source (and its layers) unless another has
// replaced it already.
func (f *forwardTrack) clearSource(source any) {
	f.kmu.Lock()
	if f.source == source {
		f.source, f.requestPLI = nil, nil
	}
	f.kmu.Unlock()
	f.dropLayers(source)
}

// requestKeyframe asks the publisher for a keyframe, at most once per
// keyframeInterval: a request inside the interval is sent at its end, so a
// new subscriber always gets one soon and a storm of requests costs one.
func (f *forwardTrack) requestKeyframe() {
	f.kmu.Lock()
	if f.pliStopped || f.pliTimer != nil {
		f.kmu.Unlock()
		return
	}
	wait := f.keyframeInterval - f.now().Sub(f.lastPLI)
	if wait > 0 {
		f.pliTimer = time.AfterFunc(wait, func() {
			f.kmu.Lock()
			f.pliTimer = nil
			f.kmu.Unlock()
			f.requestKeyframe()
		})
		f.kmu.Unlock()
		return
	}
	pli := f.requestPLI
	if pli == nil {
		f.kfWanted = true
		f.kmu.Unlock()
		return
	}
	f.lastPLI = f.now()
	f.kmu.Unlock()
	f.keyframes.Inc()
	pli()
}

// stop cancels a pending keyframe request; the track is done.
func (f *forwardTrack) stop() {
	f.kmu.Lock()
	f.pliStopped = true
	f.source, f.requestPLI = nil, nil
	if f.pliTimer != nil {
		f.pliTimer.Stop()
		f.pliTimer = nil
	}
	f.kmu.Unlock()
}
