package video

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// Simulcast. A publisher may send its camera as several encodings of
// one track (Chromium's sendEncodings with rids, e.g. q, h and f: a
// quarter, half and full resolution). Each is a layer here. Every
// subscriber gets one layer on a track of its own, chosen by the room's
// layout (the widest layer not wider than the layout's maxWidth), its
// bandwidth (the least of what it asked for, the b=AS/TIAS of its offer,
// and the REMB or TWCC-based estimate the server has of its link) and
// its explicit choice (selectLayer). A switch asks the target layer for a
// keyframe and happens when it arrives; until then the subscriber keeps
// getting the layer it had, so its picture never freezes. The rewriter
// makes the layers one continuous stream. A publisher without simulcast
// is one layer: every subscriber gets it, as before.

// Timing of layer choices.
const (
	// chooseEvery is how often a subscriber's layer is chosen anew.
	chooseEvery = 250 * time.Millisecond
	// layerIdle: a layer with no packet for this long is not offered.
	layerIdle = time.Second
	// rateWindow is the window of a layer's bitrate.
	rateWindow = 500 * time.Millisecond
	// estimateTTL is how long a REMB or TWCC estimate counts.
	estimateTTL = 5 * time.Second
)

// layer is one encoding the current source sends.
type layer struct {
	rid  string
	ssrc uint32
	pli  func() // asks the publisher for a keyframe of this layer

	width, height atomic.Int32 // from its keyframes (VP8), 0 unknown
	bps           atomic.Int64 // bitrate over the last rateWindow
	lastAt        atomic.Int64 // unix nanos of its last packet
	lastPLI       atomic.Int64

	// only the layer's reader touches these
	windowStart time.Time
	windowBytes int
}

// account adds a packet of size bytes to the layer's bitrate.
func (l *layer) account(size int, now time.Time) {
	l.lastAt.Store(now.UnixNano())
	if l.windowStart.IsZero() {
		l.windowStart = now
	}
	l.windowBytes += size
	if el := now.Sub(l.windowStart); el >= rateWindow {
		rate := int64(float64(l.windowBytes*8) / el.Seconds())
		if old := l.bps.Load(); old != 0 {
			rate = (old + rate) / 2
		}
		l.bps.Store(rate)
		l.windowStart, l.windowBytes = now, 0
	}
}

func (l *layer) active(now time.Time) bool {
	return now.UnixNano()-l.lastAt.Load() < int64(layerIdle)
}

// requestKeyframe asks for a keyframe of this layer, at most once per
// interval.
func (l *layer) requestKeyframe(now time.Time, interval time.Duration) {
	last := l.lastPLI.Load()
	if now.UnixNano()-last < int64(interval) || !l.lastPLI.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if l.pli != nil {
		l.pli()
	}
}

// addLayer records a track source publishes (rid "" without simulcast).
// A new source replaces the layers of the previous one. first reports
// whether it is the source's first layer.
func (f *forwardTrack) addLayer(source any, rid string, ssrc uint32, pli func()) (l *layer, first bool) {
	l = &layer{rid: rid, ssrc: ssrc, pli: pli}
	f.dmu.Lock()
	defer f.dmu.Unlock()
	if f.layerSrc != source {
		f.layers, f.layerSrc = nil, source
	}
	f.layers = append(f.layers, l)
	return l, len(f.layers) == 1
}

// dropLayers forgets source's layers.
func (f *forwardTrack) dropLayers(source any) {
	f.dmu.Lock()
	if f.layerSrc == source {
		f.layers, f.layerSrc = nil, nil
	}
	f.dmu.Unlock()
}

// pliLayers asks for a keyframe of every layer (a new subscriber, or
// one that lost its picture); pli sends one request per SSRC.
func (f *forwardTrack) pliLayers(pli func(ssrcs []uint32)) {
	f.dmu.RLock()
	ssrcs := make([]uint32, 0, len(f.layers))
	for _, l := range f.layers {
		ssrcs = append(ssrcs, l.ssrc)
	}
	f.dmu.RUnlock()
	if len(ssrcs) > 0 {
		pli(ssrcs)
	}
}

// writeLayer forwards one video packet of layer l to every subscriber
// that gets l (or switches to it now). p is not modified.
func (f *forwardTrack) writeLayer(l *layer, p *rtp.Packet, size int) {
	now := f.now()
	l.account(size, now)
	key, w, h := keyframe(f.codec.MimeType, p.Payload)
	if key && w > 0 {
		l.width.Store(int32(w))
		l.height.Store(int32(h))
	}
	f.inPackets.Inc()
	f.inBytes.Add(float64(size))
	f.dmu.RLock()
	n := 0
	for d := range f.downs {
		if d.write(l, p, key, f.layers, now) {
			n++
		}
	}
	f.dmu.RUnlock()
	if n > 0 {
		f.outPackets.Add(float64(n))
		f.outBytes.Add(float64(n * size))
	}
}

// downTrack is one subscriber's video of one publication: a static
// track of its own (one binding) and its own numbering, fed from the
// layer chosen for it.
type downTrack struct {
	fwd   *forwardTrack
	local *webrtc.TrackLocalStaticRTP
	// sink, when set, gets the packets instead of local: a recording
	// follows the publication like a subscriber (Server.Tap).
	sink TrackSink

	mu       sync.Mutex
	rw       rewriter
	cur      *layer // the layer forwarded now
	target   *layer // the layer wanted; cur until its keyframe comes
	chosenAt time.Time
	askedAt  time.Time

	// what bounds the choice; guarded by mu
	rid        string // asked for ("": automatic)
	maxBitrate int64  // asked for, bits/s (0: no bound)
	sdpCap     int64  // b=AS or b=TIAS of the subscriber's offer
	estimate   int64  // REMB or TWCC-based, bits/s
	estimateAt time.Time
}

func (f *forwardTrack) newDown() (*downTrack, error) {
	local, err := webrtc.NewTrackLocalStaticRTP(f.codec, f.kind.String(), f.streamID)
	if err != nil {
		return nil, errorf("video track for %s: %w", f.streamID, err)
	}
	return &downTrack{fwd: f, local: local}, nil
}

// Bind and Unbind make the track one of the publication's subscribers
// while its connection sends it.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	p, err := d.local.Bind(ctx)
	if err == nil {
		d.fwd.dmu.Lock()
		d.fwd.downs[d] = struct{}{}
		d.fwd.dmu.Unlock()
	}
	return p, err
}

func (d *downTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	d.fwd.dmu.Lock()
	delete(d.fwd.downs, d)
	d.fwd.dmu.Unlock()
	return d.local.Unbind(ctx)
}

func (d *downTrack) ID() string                { return d.local.ID() }
func (d *downTrack) RID() string               { return d.local.RID() }
func (d *downTrack) StreamID() string          { return d.local.StreamID() }
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.local.Kind() }

var _ webrtc.TrackLocal = (*downTrack)(nil)

// write forwards p of layer l if this subscriber gets l; true when sent.
func (d *downTrack) write(l *layer, p *rtp.Packet, key bool, layers []*layer, now time.Time) bool {
	f := d.fwd
	d.mu.Lock()
	if d.target == nil || now.Sub(d.chosenAt) >= chooseEvery || !slices.Contains(layers, d.target) {
		d.target, d.chosenAt = d.chooseLocked(layers, now), now
	}
	if d.cur != l {
		if d.target != l {
			d.mu.Unlock()
			return false
		}
		// One layer (no simulcast, or a republish) is followed at once:
		// the new source starts with a keyframe and the subscriber asks
		// for one anyway. Another layer is taken at its keyframe.
		if !key && l.rid != "" {
			ask := now.Sub(d.askedAt) >= f.keyframeInterval
			if ask {
				d.askedAt = now
			}
			d.mu.Unlock()
			if ask {
				l.requestKeyframe(now, f.keyframeInterval)
			}
			return false
		}
		d.cur = l
	}
	h := p.Header
	if !d.rw.rewrite(&h, len(p.Payload), f.clockRate, now) {
		d.mu.Unlock()
		return false
	}
	if d.sink != nil {
		// Not a subscriber: not counted as forwarded.
		d.sink.WriteRTP(&rtp.Packet{Header: h, Payload: p.Payload})
		d.mu.Unlock()
		return false
	}
	sent := d.local.WriteRTP(&rtp.Packet{Header: h, Payload: p.Payload}) == nil
	d.mu.Unlock()
	return sent
}

// chooseLocked picks the layer for this subscriber: the one it asked
// for, else the best that fits the layout's width and its bandwidth
// (the lowest when none fits).
func (d *downTrack) chooseLocked(layers []*layer, now time.Time) *layer {
	if len(layers) <= 1 {
		if len(layers) == 0 {
			return nil
		}
		return layers[0]
	}
	active := make([]*layer, 0, len(layers))
	for _, l := range layers {
		if l.active(now) {
			active = append(active, l)
		}
	}
	if len(active) == 0 {
		return d.target
	}
	sortLayers(active)
	if d.rid != "" {
		for _, l := range active {
			if l.rid == d.rid {
				return l
			}
		}
	}
	budget := d.budgetLocked(now)
	maxW := d.fwd.maxWidth.Load()
	pick := active[0]
	for _, l := range active[1:] {
		w := l.width.Load()
		if maxW > 0 && w > 0 && w > maxW {
			continue
		}
		rate := l.bps.Load()
		if l == d.cur {
			rate = rate * 4 / 5 // stay a little longer than one would go up
		}
		if budget > 0 && rate > budget {
			continue
		}
		pick = l
	}
	return pick
}

// sortLayers orders layers from the smallest: by width when every width
// is known, else by bitrate.
func sortLayers(ls []*layer) {
	byWidth := true
	for _, l := range ls {
		if l.width.Load() == 0 {
			byWidth = false
		}
	}
	slices.SortStableFunc(ls, func(a, b *layer) int {
		if byWidth {
			return int(a.width.Load() - b.width.Load())
		}
		return int(min(max(a.bps.Load()-b.bps.Load(), -1), 1))
	})
}

// budgetLocked is the subscriber's bandwidth for this video, 0 when
// nothing bounds it.
func (d *downTrack) budgetLocked(now time.Time) int64 {
	var b int64
	for _, v := range []int64{d.maxBitrate, d.sdpCap} {
		if v > 0 && (b == 0 || v < b) {
			b = v
		}
	}
	if d.estimate > 0 && now.Sub(d.estimateAt) < estimateTTL && (b == 0 || d.estimate < b) {
		b = d.estimate
	}
	return b
}

// selectLayer is the subscriber's choice: a rid ("" for automatic) and a
// bound on its bitrate (0: none).
func (d *downTrack) selectLayer(rid string, maxBitrate int64) {
	d.mu.Lock()
	d.rid, d.maxBitrate = rid, maxBitrate
	d.chosenAt = time.Time{}
	d.mu.Unlock()
}

// setCap bounds the subscriber's bitrate by its offer's b= line.
func (d *downTrack) setCap(bps int64) {
	d.mu.Lock()
	d.sdpCap = bps
	d.mu.Unlock()
}

// setEstimate records the server's estimate of the subscriber's link.
func (d *downTrack) setEstimate(bps int64, now time.Time) {
	d.mu.Lock()
	d.estimate, d.estimateAt = bps, now
	d.mu.Unlock()
}

// requestKeyframe: the subscriber lost its picture; the layer it gets is
// asked for a keyframe (the whole source without simulcast, whose
// requests are merged).
func (d *downTrack) requestKeyframe() {
	f := d.fwd
	f.dmu.RLock()
	simulcast := len(f.layers) > 1
	f.dmu.RUnlock()
	d.mu.Lock()
	cur := d.cur
	d.mu.Unlock()
	if !simulcast || cur == nil {
		f.requestKeyframe()
		return
	}
	cur.requestKeyframe(f.now(), f.keyframeInterval)
}

// keyframe reports whether payload starts a keyframe of codec (mime
// type), with the picture's size when the codec tells it (VP8).
func keyframe(mime string, b []byte) (key bool, width, height int) {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return vp8Keyframe(b)
	case strings.ToLower(webrtc.MimeTypeVP9):
		// I P L F B E V Z: not inter-predicted, start of a frame.
		return len(b) > 0 && b[0]&0x40 == 0 && b[0]&0x08 != 0, 0, 0
	case strings.ToLower(webrtc.MimeTypeH264):
		return h264Keyframe(b), 0, 0
	}
	return false, 0, 0
}

// vp8Keyframe reads the VP8 payload descriptor (RFC 7741) and the frame
// tag of a partition's first packet.
func vp8Keyframe(b []byte) (bool, int, int) {
	if len(b) < 1 || b[0]&0x10 == 0 || b[0]&0x07 != 0 {
		return false, 0, 0 // not the start of partition 0
	}
	i := 1
	if b[0]&0x80 != 0 {
		if len(b) < 2 {
			return false, 0, 0
		}
		ext := b[1]
		i = 2
		if ext&0x80 != 0 { // PictureID, 7 or 15 bits
			if len(b) <= i {
				return false, 0, 0
			}
			if b[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // TID/KEYIDX
			i++
		}
	}
	if len(b) <= i || b[i]&0x01 != 0 {
		return false, 0, 0 // inter frame
	}
	if len(b) >= i+10 && b[i+3] == 0x9d && b[i+4] == 0x01 && b[i+5] == 0x2a {
		w := int(binary.LittleEndian.Uint16(b[i+6:]) & 0x3fff)
		h := int(binary.LittleEndian.Uint16(b[i+8:]) & 0x3fff)
		return true, w, h
	}
	return true, 0, 0
}

// h264Keyframe finds an IDR or SPS NAL unit (single, STAP-A or the
// first fragment of FU-A).
func h264Keyframe(b []byte) bool {
	if len(b) < 1 {
		return false
	}
	switch t := b[0] & 0x1f; {
	case t == 5 || t == 7:
		return true
	case t == 24: // STAP-A
		for i := 1; i+2 < len(b); {
			n := int(binary.BigEndian.Uint16(b[i:]))
			if i+2 < len(b) {
				if nt := b[i+2] & 0x1f; nt == 5 || nt == 7 {
					return true
				}
			}
			i += 2 + n
		}
	case t == 28: // FU-A
		return len(b) > 1 && b[1]&0x80 != 0 && b[1]&0x1f == 5
	}
	return false
}

// offerVideoCap is the bandwidth a subscriber's offer gives its video
// (b=TIAS in bits/s, or b=AS in kbit/s), 0 when it gives none.
func offerVideoCap(offer string) int64 {
	var desc sdp.SessionDescription
	if desc.UnmarshalString(offer) != nil {
		return 0
	}
	for _, m := range desc.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		var as, tias int64
		for _, b := range m.Bandwidth {
			switch b.Type {
			case "AS":
				as = int64(b.Bandwidth) * 1000
			case "TIAS":
				tias = int64(b.Bandwidth)
			}
		}
		if tias > 0 {
			return tias
		}
		return as
	}
	return 0
}
