package main

import (
	"context"
	"encoding/json"
	"errors"
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

// signalWait bounds each signaling step (join, answer); a loaded machine
// with a bcrypt-checking server and a relay in between takes a while.
const signalWait = 30 * time.Second

// bench holds one room's signaling clients and their peer connections.
type bench struct {
	cl   *cluster
	room string
	opts options
	api  *webrtc.API

	mu      sync.Mutex
	clients []*client
	pubs    []string     // the publishers' user ids
	count   atomic.Int64 // packets received by the room's subscribers
	cancel  context.CancelFunc
}

type client struct {
	user string
	ws   *websocket.Conn
	wmu  sync.Mutex

	mu       sync.Mutex
	peers    map[string]*webrtc.PeerConnection
	pending  map[string][]webrtc.ICECandidateInit
	answers  map[string]chan string
	joined   chan error
	joinSeen bool
	stops    []func() // run before the peer connections close
}

func newBench(cl *cluster, room string, o options) (*bench, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// The server's connectivity checks reach this (controlling) agent before
	// its trickled candidates do, so the server is first a peer-reflexive
	// candidate; pion then matches the responses to that one rather than to
	// the host candidate arriving later, and by default waits a second
	// before it nominates a peer-reflexive pair: that second was the slow
	// half of the joins, spent here, not in the server. A browser nominates
	// such a pair without waiting, so the bench does too.
	se.SetPrflxAcceptanceMinWait(0)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	return &bench{cl: cl, room: room, opts: o, api: api}, nil
}

func (b *bench) received() int64 { return b.count.Load() }

func (b *bench) close() {
	if b.cancel != nil {
		b.cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.clients {
		c.close()
	}
	b.clients = nil
}

// close leaves the room first, so the server frees the place at once
// rather than holding it for a reconnect.
func (c *client) close() {
	c.send(map[string]any{"id": "leaveRoom"})
	c.mu.Lock()
	stops := c.stops
	c.stops = nil
	c.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
	c.mu.Lock()
	for _, pc := range c.peers {
		_ = pc.Close()
	}
	c.mu.Unlock()
	_ = c.ws.Close()
}

// setup joins the publishers through the first node, which so becomes the
// room's node, and the subscribers through every node in turn; each
// subscriber receives every publisher.
func (b *bench) setup(ctx context.Context) error {
	ctx, b.cancel = context.WithCancel(ctx)
	for i := range b.opts.publishers {
		c, err := b.join(ctx, b.cl.nodes[0], fmt.Sprintf("pub%d", i))
		if err != nil {
			return err
		}
		if err := b.publish(ctx, c); err != nil {
			return err
		}
		b.pubs = append(b.pubs, c.user)
	}
	for i := range b.opts.subscribers {
		c, err := b.join(ctx, b.cl.nodes[i%len(b.cl.nodes)], fmt.Sprintf("sub%d", i))
		if err != nil {
			return err
		}
		for _, p := range b.pubs {
			if err := b.subscribe(c, p, func(bool, []byte) { b.count.Add(1) }); err != nil {
				return err
			}
		}
	}
	return nil
}

// join signals to node as the participant called name and awaits
// existingParticipants.
func (b *bench) join(ctx context.Context, via node, name string) (*client, error) {
	who, err := b.cl.admit(ctx, name)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: signalWait}
	ws, _, err := d.DialContext(ctx, via.signalURL(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", name, via.base, err)
	}
	c := &client{user: who.userID, ws: ws, peers: map[string]*webrtc.PeerConnection{},
		pending: map[string][]webrtc.ICECandidateInit{}, answers: map[string]chan string{}, joined: make(chan error, 1)}
	b.mu.Lock()
	b.clients = append(b.clients, c)
	b.mu.Unlock()
	go c.read()
	c.send(map[string]any{"id": "joinRoom", "token": who.token, "userId": who.userID, "communityId": b.cl.company,
		"roomId": b.room, "video": true, "audio": b.opts.audio})
	select {
	case err := <-c.joined:
		if err != nil {
			return nil, fmt.Errorf("%s joining %s through %s: %w", name, b.room, via.base, err)
		}
		return c, nil
	case <-time.After(signalWait):
		return nil, fmt.Errorf("%s joining %s through %s: no existingParticipants in %v", name, b.room, via.base, signalWait)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *client) send(v any) {
	raw, _ := json.Marshal(v)
	c.wmu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(signalWait))
	_ = c.ws.WriteMessage(websocket.TextMessage, raw)
	c.wmu.Unlock()
}

// joinDone reports the answer to joinRoom once.
func (c *client) joinDone(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.joinSeen {
		c.joinSeen = true
		c.joined <- err
	}
}

func (c *client) read() {
	defer c.joinDone(errors.New("signaling closed"))
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
			c.joinDone(nil)
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
			c.joinDone(fmt.Errorf("server error %s", m.Code))
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
	case <-time.After(signalWait):
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

// layer is one encoding a publisher sends: its rid (empty without
// simulcast), width, and the share of -frame-bytes each frame has.
type layer struct {
	rid     string
	width   int
	divisor int
}

// simLayers are the simulcast encodings, as Chromium sends three.
var simLayers = []layer{{"q", 320, 16}, {"h", 640, 4}, {"f", 1280, 1}}

// plainLayer is a publication without simulcast.
var plainLayer = []layer{{"", 640, 1}}

// publish sends video as a browser does: VP8 frames cut in 1200-byte
// packets, a keyframe (with its width) first, once a second and whenever
// the server asks for one; with -simulcast three encodings of one track
// with the mid and rid header extensions. Opus at 50 packets/s with
// -audio.
func (b *bench) publish(ctx context.Context, c *client) error {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	layers := plainLayer
	if b.opts.simulcast {
		layers = simLayers
	}
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, l := range layers {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if l.rid != "" {
			opts = append(opts, webrtc.WithRTPStreamID(l.rid))
		}
		t, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", c.user, opts...)
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
		go drainRTCP(func() ([]rtcp.Packet, error) { p, _, err := atr.Sender().ReadRTCP(); return p, err }, nil)
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
	if b.opts.simulcast && (midID == 0 || ridID == 0) {
		return fmt.Errorf("%s: the server took no mid and rid header extensions", c.user)
	}
	mid := tr.Mid()
	wantKey := make([]atomic.Bool, len(layers))
	for i := range layers {
		wantKey[i].Store(true)
	}
	if l := layers[0]; l.rid == "" {
		go drainRTCP(func() ([]rtcp.Packet, error) { p, _, err := sender.ReadRTCP(); return p, err }, &wantKey[0])
	} else if err := c.readSimulcastRTCP(ctx, pc, sender, layers, wantKey); err != nil {
		return err
	}
	go func() {
		const mtu = 1200
		frame := make([]byte, max(b.opts.frameBytes, 16))
		voice := make([]byte, 80)
		frameTicks := uint32(90000 / b.opts.fps)
		seq := make([]uint16, len(layers))
		ts := make([]uint32, len(layers))
		vtick := time.NewTicker(time.Second / time.Duration(b.opts.fps))
		atick := time.NewTicker(20 * time.Millisecond)
		defer vtick.Stop()
		defer atick.Stop()
		for frames := 0; ; {
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
			periodicKey := frames%b.opts.fps == 0
			frames++
			for i, l := range layers {
				data := frame[:max(len(frame)/l.divisor, 16)]
				key := wantKey[i].Swap(false) || periodicKey
				for off := 0; off < len(data); off += mtu {
					h := rtp.Header{Version: 2, SequenceNumber: seq[i], Timestamp: ts[i], Marker: off+mtu >= len(data)}
					if l.rid != "" {
						_ = h.SetExtension(midID, []byte(mid))
						_ = h.SetExtension(ridID, []byte(l.rid))
					}
					payload := vp8Payload(data[off:min(off+mtu, len(data))], off == 0, key, l.width)
					_ = tracks[i].WriteRTP(&rtp.Packet{Header: h, Payload: payload})
					seq[i]++
				}
				ts[i] += frameTicks
			}
		}
	}()
	return nil
}

// vp8Payload is one RTP payload of a synthetic VP8 frame: the payload
// descriptor, and in the frame's first packet the VP8 header, for a
// keyframe with the start code and width a recorder and the SFU read.
func vp8Payload(chunk []byte, first, key bool, width int) []byte {
	payload := make([]byte, 1+len(chunk))
	copy(payload[1:], chunk)
	if !first {
		return payload
	}
	payload[0] = 0x10 // start of partition 0
	payload[1] = 0x01 // an inter frame
	if key && len(payload) >= 11 {
		payload[1] = 0x00
		payload[4], payload[5], payload[6] = 0x9d, 0x01, 0x2a
		payload[7], payload[8] = byte(width), byte(width>>8)
		payload[9], payload[10] = byte(width*9/16), byte(width*9/16>>8)
	}
	return payload
}

// isVP8Keyframe tells whether an RTP payload starts a VP8 keyframe: the
// descriptor's S bit with partition 0, and the frame tag's P bit clear.
func isVP8Keyframe(payload []byte) bool {
	if len(payload) < 2 || payload[0]&0x10 == 0 || payload[0]&0x07 != 0 {
		return false
	}
	i := 1
	if payload[0]&0x80 != 0 { // X: extension bits follow
		if len(payload) < 2 {
			return false
		}
		ext := payload[1]
		i++
		if ext&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(payload) <= i {
				return false
			}
			if payload[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: one byte
			i++
		}
	}
	return len(payload) > i && payload[i]&0x01 == 0
}

// drainRTCP reads a sender's RTCP, which the interceptors need read, until
// it ends; a picture loss indication sets wantKey.
func drainRTCP(read func() ([]rtcp.Packet, error), wantKey *atomic.Bool) {
	for {
		pkts, err := read()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if wantKey != nil {
					wantKey.Store(true)
				}
			}
		}
	}
}

// readSimulcastRTCP reads the RTCP of every layer once pc is connected,
// polling so that the readers have ended before c closes pc: pion's
// simulcast reads race with its Stop.
func (c *client) readSimulcastRTCP(ctx context.Context, pc *webrtc.PeerConnection, sender *webrtc.RTPSender, layers []layer, wantKey []atomic.Bool) error {
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		once.Do(func() { close(connected) })
	}
	select {
	case <-connected:
	case <-time.After(signalWait):
		return fmt.Errorf("%s: the simulcast publication did not connect in %v", c.user, signalWait)
	case <-ctx.Done():
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	var readers sync.WaitGroup
	for i, l := range layers {
		readers.Add(1)
		go func() {
			defer readers.Done()
			drainRTCP(func() ([]rtcp.Packet, error) {
				for ctx.Err() == nil {
					_ = sender.SetReadDeadlineSimulcast(time.Now().Add(100*time.Millisecond), l.rid)
					if p, _, err := sender.ReadSimulcastRTCP(l.rid); err == nil {
						return p, nil
					}
				}
				return nil, ctx.Err()
			}, &wantKey[i])
		}()
	}
	c.mu.Lock()
	c.stops = append(c.stops, func() { cancel(); readers.Wait() })
	c.mu.Unlock()
	return nil
}

// subscribe receives target's publication on c; onPacket gets every RTP
// packet as read.
func (b *bench) subscribe(c *client, target string, onPacket func(video bool, raw []byte)) error {
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
		video := track.Kind() == webrtc.RTPCodecTypeVideo
		buf := make([]byte, 1500)
		for {
			n, _, err := track.Read(buf)
			if err != nil {
				return
			}
			onPacket(video, buf[:n])
		}
	})
	return c.negotiate(pc, target)
}
