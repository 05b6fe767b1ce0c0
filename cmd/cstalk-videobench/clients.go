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
		if err := b.publish(ctx, c); err != nil {
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
		frame := make([]byte, b.opts.frameBytes)
		voice := make([]byte, 80)
		vtick := time.NewTicker(time.Second / time.Duration(b.opts.fps))
		atick := time.NewTicker(20 * time.Millisecond)
		defer vtick.Stop()
		defer atick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-vtick.C:
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
