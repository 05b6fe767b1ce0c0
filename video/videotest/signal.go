package videotest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
	pionmedia "github.com/pion/webrtc/v3/pkg/media"
)

// Msg is one signaling message as received.
type Msg map[string]any

// Str is field k as a string ("" when absent).
func (m Msg) Str(k string) string { s, _ := m[k].(string); return s }

// Signal is a seed-002 /signal client with pion peer connections that
// trickle candidates both ways, for tests outside package video (nodes of
// a cluster). Messages are kept in an inbox that Await takes from.
type Signal struct {
	t    testing.TB
	ws   *websocket.Conn
	api  *webrtc.API
	user string
	wmu  sync.Mutex

	mu     sync.Mutex
	inbox  []Msg
	peers  map[string]*Peer // by target user id
	closed bool
	done   chan struct{}
}

// Peer is one peer connection of a Signal client.
type Peer struct {
	PC *webrtc.PeerConnection
	// Video and Audio count RTP packets received (subscriptions).
	Video, Audio atomic.Int64

	answered chan struct{}
	mu       sync.Mutex
	hasAns   bool
	pending  []webrtc.ICECandidateInit
	stop     context.CancelFunc
}

// DialSignal opens url (ws://host/signal) as user; everything closes when
// the test ends.
func DialSignal(t testing.TB, url, user string) *Signal {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &Signal{t: t, ws: ws, api: ClientAPI(t, true), user: user, peers: map[string]*Peer{}, done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.Close)
	return c
}

// Close ends the peer connections and the socket.
func (c *Signal) Close() {
	c.mu.Lock()
	c.closed = true
	peers := c.peers
	c.peers = map[string]*Peer{}
	c.mu.Unlock()
	for _, p := range peers {
		p.stop()
		_ = p.PC.Close()
	}
	_ = c.ws.Close()
	<-c.done
}

// Send writes one message.
func (c *Signal) Send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

// Done is closed when the server has closed the socket.
func (c *Signal) Done() <-chan struct{} { return c.done }

func (c *Signal) read() {
	defer close(c.done)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m Msg
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		c.handle(m)
	}
}

func (c *Signal) handle(m Msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Str("id") {
	case "iceCandidate":
		p := c.peers[m.Str("userId")]
		cand, _ := m["candidate"].(map[string]any)
		if p == nil || cand == nil {
			return
		}
		init := webrtc.ICECandidateInit{}
		init.Candidate, _ = cand["candidate"].(string)
		if mid, ok := cand["sdpMid"].(string); ok {
			init.SDPMid = &mid
		}
		if idx, ok := cand["sdpMLineIndex"].(float64); ok {
			i := uint16(idx)
			init.SDPMLineIndex = &i
		}
		p.mu.Lock()
		if !p.hasAns {
			p.pending = append(p.pending, init)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		_ = p.PC.AddICECandidate(init)
		return
	case "receiveVideoAnswer":
		if p := c.peers[m.Str("userId")]; p != nil {
			go p.applyAnswer(m.Str("sdpAnswer"))
			return
		}
	}
	c.inbox = append(c.inbox, m)
}

func (p *Peer) applyAnswer(sdp string) {
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return
	}
	p.mu.Lock()
	p.hasAns = true
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, cand := range pending {
		_ = p.PC.AddICECandidate(cand)
	}
	close(p.answered)
}

// Await takes the first message with id whose fields match kv (key,
// value, ...), waiting up to timeout.
func (c *Signal) Await(timeout time.Duration, id string, kv ...string) Msg {
	c.t.Helper()
	return c.take(timeout, id+" "+strings.Join(kv, "="), func(m Msg) bool {
		match := m.Str("id") == id
		for j := 0; match && j+1 < len(kv); j += 2 {
			match = m.Str(kv[j]) == kv[j+1]
		}
		return match
	})
}

// AwaitJoin takes the answer to a join: existingParticipants or an error.
func (c *Signal) AwaitJoin(timeout time.Duration) Msg {
	c.t.Helper()
	return c.take(timeout, "the answer to its join", func(m Msg) bool {
		return m.Str("id") == "existingParticipants" || m.Str("id") == "error"
	})
}

// take waits up to timeout for the first message match accepts and takes
// it from the inbox.
func (c *Signal) take(timeout time.Duration, what string, match func(Msg) bool) Msg {
	c.t.Helper()
	var found Msg
	CheckFor(c.t, timeout, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, m := range c.inbox {
			if match(m) {
				found = m
				c.inbox = append(c.inbox[:i], c.inbox[i+1:]...)
				return nil
			}
		}
		ids := make([]string, 0, len(c.inbox))
		for _, m := range c.inbox {
			ids = append(ids, m.Str("id")+":"+m.Str("code"))
		}
		return fmt.Errorf("%s waits for %s; has %v", c.user, what, ids)
	})
	return found
}

// Join sends joinRoom; the caller awaits the answer.
func (c *Signal) Join(token, company, room string) {
	c.Send(map[string]any{"id": "joinRoom", "token": token, "userId": c.user, "communityId": company,
		"roomId": room, "video": true, "audio": true})
}

func (c *Signal) newPeer(target string) *Peer {
	c.t.Helper()
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	p := &Peer{PC: pc, answered: make(chan struct{}), stop: func() {}}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		c.Send(map[string]any{"id": "onIceCandidate", "userId": target,
			"candidate": map[string]any{"candidate": init.Candidate, "sdpMid": init.SDPMid, "sdpMLineIndex": init.SDPMLineIndex}})
	})
	c.mu.Lock()
	if old := c.peers[target]; old != nil {
		old.stop()
		_ = old.PC.Close()
	}
	c.peers[target] = p
	c.mu.Unlock()
	return p
}

func (c *Signal) offer(p *Peer, target string) {
	c.t.Helper()
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.PC.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	c.Send(map[string]any{"id": "receiveVideoFrom", "userId": target, "sdpOffer": offer.SDP})
	select {
	case <-p.answered:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s: no answer for %s", c.user, target)
	}
}

// Publish sends synthetic VP8 (30 fps) and Opus (50 packets/s) until the
// client closes.
func (c *Signal) Publish() *Peer {
	c.t.Helper()
	p := c.newPeer(c.user)
	video, audio := AddSampleTracks(c.t, p.PC, c.user, nil)
	c.offer(p, c.user)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go SendSamples(ctx, video, audio)
	return p
}

// AddSampleTracks adds a VP8 and an Opus track (stream id) to pc, sending
// only, and hands every RTCP packet they receive to onRTCP (if not nil).
func AddSampleTracks(t testing.TB, pc *webrtc.PeerConnection, stream string, onRTCP func(rtcp.Packet)) (video, audio *webrtc.TrackLocalStaticSample) {
	t.Helper()
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", stream)
	if err != nil {
		t.Fatal(err)
	}
	audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		tc, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		go func(s *webrtc.RTPSender) {
			for {
				pkts, _, err := s.ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					if onRTCP != nil {
						onRTCP(pkt)
					}
				}
			}
		}(tc.Sender())
	}
	return video, audio
}

// SendSamples sends synthetic VP8 (30 fps) on video and Opus (50
// packets/s) on audio (each if not nil) until ctx ends.
func SendSamples(ctx context.Context, video, audio *webrtc.TrackLocalStaticSample) {
	frame := make([]byte, 900)
	voice := make([]byte, 60)
	vt := time.NewTicker(33 * time.Millisecond)
	at := time.NewTicker(20 * time.Millisecond)
	defer vt.Stop()
	defer at.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-vt.C:
			if video != nil {
				frame[0] = 0x10 // content is opaque to the SFU
				_ = video.WriteSample(pionmedia.Sample{Data: frame, Duration: 33 * time.Millisecond})
			}
		case <-at.C:
			if audio != nil {
				_ = audio.WriteSample(pionmedia.Sample{Data: voice, Duration: 20 * time.Millisecond})
			}
		}
	}
}

// Subscribe receives target's audio and video and counts the packets.
func (c *Signal) Subscribe(target string) *Peer {
	c.t.Helper()
	p := c.newPeer(target)
	ReceiveAll(c.t, p.PC, &p.Audio, &p.Video)
	c.offer(p, target)
	return p
}

// ReceiveAll makes pc receive one audio and one video track and count
// their RTP packets.
func ReceiveAll(t testing.TB, pc *webrtc.PeerConnection, audio, video *atomic.Int64) {
	t.Helper()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		counter := audio
		if track.Kind() == webrtc.RTPCodecTypeVideo {
			counter = video
		}
		for {
			if _, _, err := track.ReadRTP(); err != nil {
				return
			}
			counter.Add(1)
		}
	})
}

// AwaitMedia waits until p has received n more audio and video packets.
func (p *Peer) AwaitMedia(t testing.TB, who string, n int64, timeout time.Duration) {
	t.Helper()
	a0, v0 := p.Audio.Load(), p.Video.Load()
	CheckFor(t, timeout, func() error {
		if p.Audio.Load()-a0 < n || p.Video.Load()-v0 < n {
			return fmt.Errorf("%s: media not flowing: %d audio, %d video packets (state %s)", who,
				p.Audio.Load(), p.Video.Load(), p.PC.ConnectionState())
		}
		return nil
	})
}
