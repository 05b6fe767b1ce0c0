package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
)

// bench holds the signaling clients and their peer connections.
type bench struct {
	addr string
	opts options
	api  *webrtc.API

	mu      sync.Mutex
	clients []*client
	count   atomic.Int64 // packets received by all subscribers
	cancel  context.CancelFunc
}

type client struct {
	user string
	ws   *websocket.Conn
	wmu  sync.Mutex

	mu      sync.Mutex
	peers   map[string]*webrtc.PeerConnection
	pending map[string][]webrtc.ICECandidateInit
	answers map[string]chan string
	joined  chan struct{}
}

func (b *bench) received() int64 { return b.count.Load() }

func (b *bench) close() {
	if b.cancel != nil {
		b.cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.clients {
		c.mu.Lock()
		for _, pc := range c.peers {
			_ = pc.Close()
		}
		c.mu.Unlock()
		_ = c.ws.Close()
	}
}

func (b *bench) setup(ctx context.Context) error {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	b.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	ctx, b.cancel = context.WithCancel(ctx)

	var pubs []string
	for i := range b.opts.publishers {
		c, err := b.join(fmt.Sprintf("pub%d", i))
		if err != nil {
			return err
		}
		publish := b.publish
		if b.opts.simulcast {
			publish = b.publishSimulcast
		}
		if err := publish(ctx, c); err != nil {
			return err
		}
		pubs = append(pubs, c.user)
	}
	for i := range b.opts.subscribers {
		c, err := b.join(fmt.Sprintf("sub%d", i))
		if err != nil {
			return err
		}
		for _, p := range pubs {
			if err := b.subscribe(c, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *bench) join(user string) (*client, error) {
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+b.addr+"/signal", nil)
	if err != nil {
		return nil, err
	}
	c := &client{user: user, ws: ws, peers: map[string]*webrtc.PeerConnection{},
		pending: map[string][]webrtc.ICECandidateInit{}, answers: map[string]chan string{}, joined: make(chan struct{})}
	b.mu.Lock()
	b.clients = append(b.clients, c)
	b.mu.Unlock()
	go c.read()
	c.send(map[string]any{"id": "joinRoom", "token": "bench", "userId": user, "communityId": "1", "roomId": "c-bench", "video": true, "audio": b.opts.audio})
	select {
	case <-c.joined:
		return c, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("%s: no existingParticipants", user)
	}
}

func (c *client) send(v any) {
	raw, _ := json.Marshal(v)
	c.wmu.Lock()
	_ = c.ws.WriteMessage(websocket.TextMessage, raw)
	c.wmu.Unlock()
}

func (c *client) read() {
	for {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m struct {
			ID        string                  `json:"id"`
			UserID    string                  `json:"userId"`
			SDPAnswer string                  `json:"sdpAnswer"`
			Candidate webrtc.ICECandidateInit `json:"candidate"`
			Code      string                  `json:"code"`
		}
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		switch m.ID {
		case "existingParticipants":
			close(c.joined)
		case "receiveVideoAnswer":
			c.mu.Lock()
			ch := c.answers[m.UserID]
			c.mu.Unlock()
			if ch != nil {
				ch <- m.SDPAnswer
			}
		case "iceCandidate":
			c.mu.Lock()
			pc := c.peers[m.UserID]
			if pc == nil || pc.RemoteDescription() == nil {
				c.pending[m.UserID] = append(c.pending[m.UserID], m.Candidate)
				c.mu.Unlock()
				continue
			}
			c.mu.Unlock()
			_ = pc.AddICECandidate(m.Candidate)
		case "error":
			fmt.Printf("%s: server error %s\n", c.user, m.Code)
		}
	}
}

// negotiate sends pc's offer for target and applies the answer.
func (c *client) negotiate(pc *webrtc.PeerConnection, target string) error {
	ch := make(chan string, 1)
	c.mu.Lock()
	c.peers[target] = pc
	c.answers[target] = ch
	c.mu.Unlock()
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand != nil {
			c.send(map[string]any{"id": "onIceCandidate", "userId": target, "candidate": cand.ToJSON()})
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	c.send(map[string]any{"id": "receiveVideoFrom", "userId": target, "sdpOffer": offer.SDP})
	select {
	case answer := <-ch:
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: no answer for %s", c.user, target)
	}
	c.mu.Lock()
	pending := c.pending[target]
	delete(c.pending, target)
	c.mu.Unlock()
	for _, cand := range pending {
		_ = pc.AddICECandidate(cand)
	}
	return nil
}

func (b *bench) publish(ctx context.Context, c *client) error {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	vt, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", c.user)
	if err != nil {
		return err
	}
	at, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", c.user)
	if err != nil {
		return err
	}
	tracks := []webrtc.TrackLocal{vt}
	if b.opts.audio {
		tracks = append(tracks, at)
	}
	for _, t := range tracks {
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		go func() { // RTCP must be read for the interceptors to work
			for {
				if _, _, err := tr.Sender().ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	if err := c.negotiate(pc, c.user); err != nil {
		return err
	}
	go func() {
		frame := make([]byte, max(b.opts.frameBytes, 10))
		voice := make([]byte, 80)
		n := 0
		vtick := time.NewTicker(time.Second / time.Duration(b.opts.fps))
		atick := time.NewTicker(20 * time.Millisecond)
		defer vtick.Stop()
		defer atick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-vtick.C:
				// A VP8 keyframe header once a second, interframes between,
				// as a recorder needs (the SFU reads the width from it too).
				frame[0] = 0x11
				if n%b.opts.fps == 0 {
					frame[0] = 0x10
					frame[3], frame[4], frame[5] = 0x9d, 0x01, 0x2a
					frame[6], frame[7], frame[8], frame[9] = 0x80, 0x02, 0x68, 0x01 // 640x360
				}
				n++
				_ = vt.WriteSample(media.Sample{Data: frame, Duration: time.Second / time.Duration(b.opts.fps)})
			case <-atick.C:
				if b.opts.audio {
					_ = at.WriteSample(media.Sample{Data: voice, Duration: 20 * time.Millisecond})
				}
			}
		}
	}()
	return nil
}

func (b *bench) subscribe(c *client, target string) error {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	kinds := []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}
	if b.opts.audio {
		kinds = append(kinds, webrtc.RTPCodecTypeAudio)
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := track.Read(buf); err != nil {
				return
			}
			b.count.Add(1)
		}
	})
	return c.negotiate(pc, target)
}

// simLayers are the simulcast encodings: rid, width and the share of
// -frame-bytes each frame has.
var simLayers = []struct {
	rid     string
	width   int
	divisor int
}{{"q", 320, 16}, {"h", 640, 4}, {"f", 1280, 1}}

// publishSimulcast publishes video as Chromium sends simulcast: three
// encodings of one track with the mid and rid header extensions, VP8
// frames cut in 1200-byte packets, a keyframe (with its width) first and
// whenever the server asks for one.
func (b *bench) publishSimulcast(ctx context.Context, c *client) error {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, l := range simLayers {
		t, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", c.user, webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			return err
		}
		tracks = append(tracks, t)
	}
	tr, err := pc.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return err
	}
	sender := tr.Sender()
	for _, t := range tracks[1:] {
		if err := sender.AddEncoding(t); err != nil {
			return err
		}
	}
	at, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", c.user)
	if err != nil {
		return err
	}
	if b.opts.audio {
		atr, err := pc.AddTransceiverFromTrack(at, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		go func() {
			for {
				if _, _, err := atr.Sender().ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	if err := c.negotiate(pc, c.user); err != nil {
		return err
	}
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
		return fmt.Errorf("%s: the server took no mid and rid header extensions", c.user)
	}
	mid := tr.Mid()
	wantKey := make([]atomic.Bool, len(simLayers))
	for i, l := range simLayers {
		wantKey[i].Store(true)
		go func() { // RTCP must be read; a PLI asks for a keyframe
			for {
				pkts, _, err := sender.ReadSimulcastRTCP(l.rid)
				if err != nil {
					return
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						wantKey[i].Store(true)
					}
				}
			}
		}()
	}
	go func() {
		const mtu = 1200
		frame := make([]byte, b.opts.frameBytes)
		voice := make([]byte, 80)
		frameTicks := uint32(90000 / b.opts.fps)
		var seq [3]uint16
		var ts [3]uint32
		vtick := time.NewTicker(time.Second / time.Duration(b.opts.fps))
		atick := time.NewTicker(20 * time.Millisecond)
		defer vtick.Stop()
		defer atick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-atick.C:
				if b.opts.audio {
					_ = at.WriteSample(media.Sample{Data: voice, Duration: 20 * time.Millisecond})
				}
				continue
			case <-vtick.C:
			}
			for i, l := range simLayers {
				data := frame[:max(b.opts.frameBytes/l.divisor, 16)]
				key := wantKey[i].Swap(false)
				for off := 0; off < len(data); off += mtu {
					chunk := data[off:min(off+mtu, len(data))]
					payload := make([]byte, 1+len(chunk))
					copy(payload[1:], chunk)
					if off == 0 {
						payload[0] = 0x10 // start of partition 0
						payload[1] = 0x01 // an inter frame
						if key && len(payload) >= 11 {
							payload[1] = 0x00
							payload[4], payload[5], payload[6] = 0x9d, 0x01, 0x2a
							payload[7], payload[8] = byte(l.width), byte(l.width>>8)
						}
					}
					h := rtp.Header{Version: 2, SequenceNumber: seq[i], Timestamp: ts[i], Marker: off+mtu >= len(data)}
					_ = h.SetExtension(midID, []byte(mid))
					_ = h.SetExtension(ridID, []byte(l.rid))
					_ = tracks[i].WriteRTP(&rtp.Packet{Header: h, Payload: payload})
					seq[i]++
				}
				ts[i] += frameTicks
			}
		}
	}()
	return nil
}
