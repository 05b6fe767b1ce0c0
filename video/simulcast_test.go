package video

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// simLayers are the test publisher's encodings, as Chromium names them:
// a quarter, half and full picture, in packets of growing size (one per
// frame, 30 frames/s).
var simLayers = []struct {
	rid        string
	w, h, size int
}{{"q", 320, 180, 150}, {"h", 640, 360, 500}, {"f", 1280, 720, 1000}}

// vp8Payload is one VP8 frame in one packet: the payload descriptor (start
// of partition 0), a keyframe's tag, start code and size or an inter
// frame's tag, padded to size with the layer's index as the last byte.
func vp8Payload(key bool, layer, w, h, size int) []byte {
	b := make([]byte, size)
	b[0] = 0x10
	if key {
		b[1] = 0x00 // P = 0: a keyframe
		b[4], b[5], b[6] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(b[7:], uint16(w))
		binary.LittleEndian.PutUint16(b[9:], uint16(h))
	} else {
		b[1] = 0x01
	}
	b[size-1] = byte(layer)
	return b
}

// publishSimulcast publishes the three layers of simLayers and Opus, as
// Chromium does (rid and mid header extensions on every packet); a
// layer sends a keyframe first and whenever the server asks for one.
func (c *client) publishSimulcast() *clientPeer {
	c.t.Helper()
	p := c.newPeer(c.user)
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, l := range simLayers {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", c.user, webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			c.t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	tr, err := p.pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		c.t.Fatal(err)
	}
	sender := tr.Sender()
	for _, t := range tracks[1:] {
		if err := sender.AddEncoding(t); err != nil {
			c.t.Fatal(err)
		}
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", c.user)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := p.pc.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		c.t.Fatal(err)
	}
	c.offer(p, c.user)
	var midID, ridID uint8
	for _, e := range sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	if midID == 0 || ridID == 0 {
		c.t.Fatal("the server did not take the mid and rid header extensions")
	}
	mid := tr.Mid()
	// The RTCP readers poll so that they are gone before the connection
	// closes: pion's simulcast reads race with its Stop.
	checkFor(c.t, 20*time.Second, func() error {
		if st := p.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
			return fmt.Errorf("simulcast publication %s", st)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	p.stop = func() { cancel(); readers.Wait() }
	wantKey := make([]chan struct{}, len(simLayers))
	for i, l := range simLayers {
		wantKey[i] = make(chan struct{}, 1)
		readers.Add(1)
		go func(rid string, ch chan struct{}) {
			defer readers.Done()
			for ctx.Err() == nil {
				_ = sender.SetReadDeadlineSimulcast(time.Now().Add(100*time.Millisecond), rid)
				pkts, _, err := sender.ReadSimulcastRTCP(rid)
				if err != nil {
					continue
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.plis.Add(1)
						select {
						case ch <- struct{}{}:
						default:
						}
					}
				}
			}
		}(l.rid, wantKey[i])
	}
	go sendSamples(ctx, nil, audio)
	go func() {
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		var seq [3]uint16
		var ts [3]uint32
		for i := range ts {
			ts[i] = uint32(i) * 7_000_000 // each layer its own clock base
			seq[i] = uint16(i) * 20_000
		}
		first := true
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for i, l := range simLayers {
				key := first
				select {
				case <-wantKey[i]:
					key = true
				default:
				}
				h := rtp.Header{Version: 2, Marker: true, SequenceNumber: seq[i], Timestamp: ts[i]}
				_ = h.SetExtension(midID, []byte(mid))
				_ = h.SetExtension(ridID, []byte(l.rid))
				_ = tracks[i].WriteRTP(&rtp.Packet{Header: h, Payload: vp8Payload(key, i, l.w, l.h, l.size)})
				seq[i]++
				ts[i] += 3000
			}
			first = false
		}
	}()
	return p
}

// videoLog is what a subscriber received on its video track.
type videoLog struct {
	mu    sync.Mutex
	ssrcs map[uint32]bool
	pkts  []recvd
}

type recvd struct {
	seq   uint16
	ts    uint32
	layer int
	key   bool
}

// subscribeLogged subscribes to target and logs every video packet.
func (c *client) subscribeLogged(target string) (*clientPeer, *videoLog) {
	c.t.Helper()
	p := c.newPeer(target)
	log := &videoLog{ssrcs: map[uint32]bool{}}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := p.pc.AddTransceiverFromKind(kind, recvonly()); err != nil {
			c.t.Fatal(err)
		}
	}
	p.pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			if track.Kind() != webrtc.RTPCodecTypeVideo {
				p.audioPkts.Add(1)
				continue
			}
			p.videoPkts.Add(1)
			if len(pkt.Payload) < 2 {
				continue
			}
			key, _, _ := vp8Keyframe(pkt.Payload)
			log.mu.Lock()
			log.ssrcs[pkt.SSRC] = true
			log.pkts = append(log.pkts, recvd{seq: pkt.SequenceNumber, ts: pkt.Timestamp, layer: int(pkt.Payload[len(pkt.Payload)-1]), key: key})
			log.mu.Unlock()
		}
	})
	c.offer(p, target)
	return p, log
}

// layer is the layer of the last packet received (-1 before any).
func (l *videoLog) layer() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pkts) == 0 {
		return -1
	}
	return l.pkts[len(l.pkts)-1].layer
}

// awaitLayer waits until the subscriber has received 20 packets of layer
// i in a row.
func (l *videoLog) awaitLayer(t *testing.T, what string, i int) {
	t.Helper()
	checkFor(t, 20*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		n := 0
		for j := len(l.pkts) - 1; j >= 0 && l.pkts[j].layer == i; j-- {
			n++
		}
		if n < 20 {
			return fmt.Errorf("%s: want layer %s, receiving %d packets of it (last layer %d)", what, simLayers[i].rid, n, l.layerLocked())
		}
		return nil
	})
}

func (l *videoLog) layerLocked() int {
	if len(l.pkts) == 0 {
		return -1
	}
	return l.pkts[len(l.pkts)-1].layer
}

// checkContinuous checks that the subscriber saw one stream: one SSRC,
// every sequence number from the first to the last, timestamps moving
// forward, and each layer starting with its keyframe.
func (l *videoLog) checkContinuous(t *testing.T) (switches int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ssrcs) != 1 {
		t.Errorf("the subscriber saw %d SSRCs", len(l.ssrcs))
	}
	seen := map[uint16]bool{}
	for i, p := range l.pkts {
		seen[p.seq] = true
		if i == 0 {
			if !p.key {
				t.Errorf("the first packet is not a keyframe")
			}
			continue
		}
		prev := l.pkts[i-1]
		if p.layer != prev.layer {
			switches++
			if !p.key {
				t.Errorf("packet %d: switch from layer %d to %d on an inter frame", i, prev.layer, p.layer)
			}
		}
		if p.seq == prev.seq+1 && int32(p.ts-prev.ts) <= 0 {
			t.Errorf("packet %d: timestamp %d after %d", i, p.ts, prev.ts)
		}
	}
	first, last := l.pkts[0].seq, l.pkts[len(l.pkts)-1].seq
	for s := first; s != last; s++ {
		if !seen[s] {
			t.Errorf("sequence number %d missing (%d..%d)", s, first, last)
			break
		}
	}
	return switches
}

// TestSimulcastLayers: a simulcast publication reaches a subscriber as
// one continuous stream whose layer follows the room's layout, the
// subscriber's choice (selectLayer), its bound on the bitrate and its
// REMB estimate, each switch made on a keyframe of the new layer.
func TestSimulcastLayers(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-sim", true, true)
	b.join("r-sim", true, true)
	a.publishSimulcast()
	sub, log := b.subscribeLogged("1")
	awaitMedia(t, "2<-1", sub, 10)

	// Two in the room: the layout allows 960 wide, so h (640).
	log.awaitLayer(t, "layout of 2", 1)
	// Five: 480 wide, so q.
	var extra []*client
	for _, u := range []string{"3", "4", "5"} {
		c := dial(t, ts, u, "/signal")
		c.join("r-sim", true, true)
		extra = append(extra, c)
	}
	log.awaitLayer(t, "layout of 5", 0)
	for _, c := range extra {
		c.send(map[string]any{"id": "leaveRoom"})
	}
	log.awaitLayer(t, "layout of 2 again", 1)

	b.send(map[string]any{"id": "selectLayer", "userId": "1", "rid": "f"})
	log.awaitLayer(t, "asked for f", 2)
	b.send(map[string]any{"id": "selectLayer", "userId": "1", "rid": "auto", "maxBitrate": 100_000})
	log.awaitLayer(t, "bound to 100 kbit/s", 0)
	b.send(map[string]any{"id": "selectLayer", "userId": "1", "rid": ""})
	log.awaitLayer(t, "automatic", 1)

	// A REMB of 60 kbit/s from the subscriber: q.
	var ssrc uint32
	for _, tr := range sub.pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo && tr.Receiver() != nil && tr.Receiver().Track() != nil {
			ssrc = uint32(tr.Receiver().Track().SSRC())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			_ = sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 60_000, SSRCs: []uint32{ssrc}}})
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	log.awaitLayer(t, "REMB of 60 kbit/s", 0)
	cancel()

	if n := log.checkContinuous(t); n < 6 {
		t.Errorf("%d layer switches, want at least 6", n)
	}
	b.send(map[string]any{"id": "selectLayer", "userId": "9", "rid": "q"})
	b.awaitError(CodeUnknownParticipant)
	a.checkRules()
	b.checkRules()
}
