package video

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/video/videotest"
)

// testAuth accepts "tok-{userId}" for any room but r-forbidden, and
// refuses every other token. It vouches for the communityId the client
// sent, company 1 when none or seed 002's "0" (as chat answers with the
// chat room's company).
type testAuth struct{}

func (testAuth) AuthorizeJoin(_ context.Context, token, userID, communityID, roomID string) (Identity, error) {
	if token != "tok-"+userID {
		return Identity{}, ErrUnauthorized
	}
	if roomID == "r-forbidden" {
		return Identity{}, ErrForbidden
	}
	if communityID == "" || communityID == "0" {
		communityID = "1"
	}
	return Identity{UserID: userID, Name: "user " + userID, CommunityID: communityID, Customer: strings.HasPrefix(userID, "cust")}, nil
}

// company1 is the key of seed-002 room id in company 1, where the test
// clients join unless told otherwise.
func company1(id string) RoomKey { return RoomKey{Company: "1", Kind: RoomKind(id[:1]), Name: id[2:]} }

// eventLog collects the server's room events.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

func (l *eventLog) has(kind EventKind, room, user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.evs {
		if e.Kind == kind && e.Room.ID() == room && e.User.UserID == user {
			return true
		}
	}
	return false
}

type testServer struct {
	*Server
	http   *httptest.Server
	reg    *prometheus.Registry
	events *eventLog
}

func (ts *testServer) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(ts.http.URL, "http") + path
}

func testLogger(testing.TB) *slog.Logger {
	if os.Getenv("VIDEO_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func loopbackConfig() Config {
	cfg := DefaultConfig()
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.KeyframeInterval = 50 * time.Millisecond
	cfg.ReconnectGrace = 3 * time.Second
	return cfg
}

func startServer(t *testing.T, mutate func(*Config)) *testServer {
	t.Helper()
	cfg := loopbackConfig()
	evs := &eventLog{}
	cfg.OnEvent = evs.add
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, testAuth{}, reg, testLogger(t))
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		_ = s.Close()
		hs.Close()
	})
	return &testServer{Server: s, http: hs, reg: reg, events: evs}
}

// checkFor polls fn until it returns nil or the timeout passes.
func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	videotest.CheckFor(t, timeout, fn)
}

// metricSum adds up every series of the metric called name.
func (ts *testServer) metricSum(t *testing.T, name string) float64 {
	t.Helper()
	families, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// clientAPI is a browser stand-in: pion with its default codecs and
// interceptors, loopback only.
func clientAPI(t testing.TB) *webrtc.API { t.Helper(); return videotest.ClientAPI(t, false) }

// msg is a decoded server message.
type msg map[string]any

func (m msg) str(k string) string { s, _ := m[k].(string); return s }

// client is a signaling client with pion peer connections, checking the
// rules seed-002 clients rely on as messages arrive.
type client struct {
	t       *testing.T
	ts      *testServer
	ws      *websocket.Conn
	user    string
	kurento bool // speaks Kurento's names only
	api     *webrtc.API

	wmu sync.Mutex

	mu          sync.Mutex
	inbox       []msg
	known       map[string]bool
	violations  []string
	serverCands []string // every candidate the server trickled
	peers       map[string]*clientPeer
	closed      bool
	readDone    chan struct{}
}

type clientPeer struct {
	pc       *webrtc.PeerConnection
	answered chan struct{}
	mu       sync.Mutex
	hasAns   bool
	answer   string
	pending  []webrtc.ICECandidateInit

	audioPkts, videoPkts atomic.Int64 // received (subscriptions)
	plis                 atomic.Int64 // keyframe requests seen (publications)
	stop                 context.CancelFunc
}

func dial(t *testing.T, ts *testServer, user, path string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(ts.wsURL(path), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c := &client{t: t, ts: ts, ws: ws, user: user, api: clientAPI(t), known: map[string]bool{},
		peers: map[string]*clientPeer{}, readDone: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *client) close() {
	c.mu.Lock()
	c.closed = true
	peers := c.peers
	c.peers = map[string]*clientPeer{}
	c.mu.Unlock()
	for _, p := range peers {
		p.stop()
		_ = p.pc.Close()
	}
	_ = c.ws.Close()
	<-c.readDone
}

// drop closes the socket abruptly, leaving the peer connections running.
func (c *client) drop() {
	_ = c.ws.Close()
	<-c.readDone
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *client) sendRaw(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *client) idKey() string {
	if c.kurento {
		return "name"
	}
	return "userId"
}

func (c *client) read() {
	defer close(c.readDone)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			c.violate("undecodable message: " + string(b))
			continue
		}
		c.handle(m)
	}
}

func (c *client) violate(s string) {
	c.mu.Lock()
	c.violations = append(c.violations, s)
	c.mu.Unlock()
}

func (c *client) handle(m msg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := c.idKey()
	switch m.str("id") {
	case "existingParticipants":
		c.known = map[string]bool{}
		if c.kurento {
			for _, n := range m["data"].([]any) {
				c.known[n.(string)] = true
			}
		} else {
			for _, mem := range m["members"].([]any) {
				id := mem.(map[string]any)["userId"].(string)
				if id == c.user {
					c.violations = append(c.violations, "existingParticipants lists the joiner")
				}
				c.known[id] = true
			}
		}
	case "newParticipantArrived":
		if c.kurento {
			c.known[m.str("name")] = true
		} else {
			c.known[m["member"].(map[string]any)["userId"].(string)] = true
		}
	case "participantLeft":
		id := m.str(key)
		if !c.known[id] {
			c.violations = append(c.violations, "participantLeft for unknown "+id)
		}
		delete(c.known, id)
	case "iceCandidate":
		id := m.str(key)
		if id != c.user && !c.known[id] {
			c.violations = append(c.violations, "iceCandidate for unknown "+id)
		}
		p := c.peers[peerKey(id, Usage(m.str("usage")))]
		if p == nil {
			return
		}
		cand := m["candidate"].(map[string]any)
		init := webrtc.ICECandidateInit{Candidate: cand["candidate"].(string)}
		c.serverCands = append(c.serverCands, init.Candidate)
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
		_ = p.pc.AddICECandidate(init)
		return
	case "receiveVideoAnswer":
		id := m.str(key)
		p := c.peers[peerKey(id, Usage(m.str("usage")))]
		if p == nil {
			c.violations = append(c.violations, "answer for no offer "+id)
			return
		}
		go c.applyAnswer(p, m.str("sdpAnswer"))
		return
	case "iceRestartOffer":
		id := m.str(key)
		p := c.peers[peerKey(id, Usage(m.str("usage")))]
		if p == nil {
			c.violations = append(c.violations, "restart offer for no connection "+id)
			return
		}
		// The new generation's candidates wait for the offer.
		p.mu.Lock()
		p.hasAns = false
		p.mu.Unlock()
		c.inbox = append(c.inbox, m)
		go c.answerRestart(p, id, m.str("usage"), m.str("sdpOffer"))
		return
	}
	c.inbox = append(c.inbox, m)
}

func (c *client) applyAnswer(p *clientPeer, sdp string) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		c.violate("set answer: " + err.Error())
		return
	}
	p.mu.Lock()
	p.hasAns = true
	p.answer = sdp
	answered := p.answered
	p.mu.Unlock()
	p.applyPending()
	close(answered)
}

// applyPending adds the server's candidates that came before the
// description they belong to.
func (p *clientPeer) applyPending() {
	p.mu.Lock()
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, cand := range pending {
		_ = p.pc.AddICECandidate(cand)
	}
}

// answerRestart answers the server's ICE restart offer, as a client that
// knows the extension does.
func (c *client) answerRestart(p *clientPeer, target, usage, offer string) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		c.violate("set restart offer: " + err.Error())
		return
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		c.violate("restart answer: " + err.Error())
		return
	}
	p.mu.Lock()
	p.hasAns = true
	p.mu.Unlock()
	p.applyPending()
	c.send(map[string]any{"id": "iceRestartAnswer", "userId": target, "usage": usage, "sdpAnswer": answer.SDP})
}

// restartICE offers an ICE restart on p (a network change) and waits for
// the answer.
func (c *client) restartICE(p *clientPeer, target string, usage Usage) {
	c.t.Helper()
	p.mu.Lock()
	p.hasAns = false
	p.answered = make(chan struct{})
	answered := p.answered
	p.mu.Unlock()
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	c.send(map[string]any{"id": "receiveVideoFrom", "userId": target, "usage": usage.wire(), "sdpOffer": offer.SDP})
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no answer to the restart for %s", c.user, target)
	}
}

// await returns the first unread message with id (and, if given, field
// key=value), waiting up to 10 s.
func (c *client) await(id string, kv ...string) msg {
	c.t.Helper()
	return c.awaitWithin(10*time.Second, id, kv...)
}

// awaitWithin is await with its own deadline, for what waits on a
// browser starting.
func (c *client) awaitWithin(d time.Duration, id string, kv ...string) msg {
	c.t.Helper()
	var found msg
	checkFor(c.t, d, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, m := range c.inbox {
			if m.str("id") != id {
				continue
			}
			match := true
			for j := 0; j+1 < len(kv); j += 2 {
				if v, _ := m[kv[j]].(string); v != kv[j+1] {
					match = false
				}
			}
			if match {
				found = m
				c.inbox = append(c.inbox[:i], c.inbox[i+1:]...)
				return nil
			}
		}
		return errors.New(c.user + " waits for " + id + " " + strings.Join(kv, "="))
	})
	return found
}

// awaitError waits for an error message with code.
func (c *client) awaitError(code string) msg { c.t.Helper(); return c.await("error", "code", code) }

// none reports whether no message with id is in the inbox.
func (c *client) none(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.inbox {
		if m.str("id") == id {
			return false
		}
	}
	return true
}

func (c *client) checkRules() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		c.t.Errorf("%s saw protocol violations: %v", c.user, c.violations)
	}
}

func (c *client) join(room string, video, audio bool) msg {
	c.t.Helper()
	if c.kurento {
		c.send(map[string]any{"id": "joinRoom", "name": c.user, "room": room})
		return c.await("existingParticipants")
	}
	return c.joinIn("1", room, video, audio)
}

// joinIn joins room as a member of company (testAuth vouches for it).
func (c *client) joinIn(company, room string, video, audio bool) msg {
	c.t.Helper()
	c.send(map[string]any{"id": "joinRoom", "token": "tok-" + c.user, "userId": c.user, "communityId": company,
		"roomId": room, "video": video, "audio": audio})
	return c.await("existingParticipants")
}

func (c *client) newPeer(target string) *clientPeer {
	c.t.Helper()
	return c.newPeerFor(target, UsageCam)
}

// newPeerFor makes the client's peer connection for target's media of
// usage.
func (c *client) newPeerFor(target string, usage Usage) *clientPeer {
	c.t.Helper()
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		c.t.Fatal(err)
	}
	p := &clientPeer{pc: pc, answered: make(chan struct{}), stop: func() {}}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		cj := map[string]any{"candidate": init.Candidate, "sdpMid": init.SDPMid, "sdpMLineIndex": init.SDPMLineIndex}
		if c.kurento {
			c.send(map[string]any{"id": "onIceCandidate", "name": target, "candidate": cj})
		} else {
			c.send(map[string]any{"id": "onIceCandidate", "userId": target, "usage": usage.wire(), "candidate": cj})
		}
	})
	c.mu.Lock()
	if old := c.peers[peerKey(target, usage)]; old != nil {
		old.stop()
		_ = old.pc.Close()
	}
	c.peers[peerKey(target, usage)] = p
	c.mu.Unlock()
	return p
}

func (c *client) offer(p *clientPeer, target string) { c.t.Helper(); c.offerFor(p, target, UsageCam) }

func (c *client) offerFor(p *clientPeer, target string, usage Usage) {
	c.t.Helper()
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	if c.kurento {
		c.send(map[string]any{"id": "receiveVideoFrom", "sender": target, "sdpOffer": offer.SDP})
	} else {
		c.send(map[string]any{"id": "receiveVideoFrom", "userId": target, "usage": usage.wire(), "sdpOffer": offer.SDP})
	}
	p.mu.Lock()
	answered := p.answered
	p.mu.Unlock()
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s: no answer for %s", c.user, target)
	}
}

// publish sends synthetic VP8 (30 fps) and Opus (50 packets/s) until the
// client closes.
func (c *client) publish() *clientPeer {
	c.t.Helper()
	p := c.newPeer(c.user)
	video, audio := videotest.AddSampleTracks(c.t, p.pc, c.user, func(pkt rtcp.Packet) {
		switch pkt.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			p.plis.Add(1)
		}
	})
	c.offer(p, c.user)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go sendSamples(ctx, video, audio)
	return p
}

// sendSamples sends synthetic VP8 (30 fps) on video and Opus (50 packets/s)
// on audio (each if not nil) until ctx ends.
func sendSamples(ctx context.Context, video, audio *webrtc.TrackLocalStaticSample) {
	videotest.SendSamples(ctx, video, audio)
}

// subscribe receives target's audio and video and counts packets.
func (c *client) subscribe(target string) *clientPeer {
	c.t.Helper()
	p := c.newPeer(target)
	videotest.ReceiveAll(c.t, p.pc, &p.audioPkts, &p.videoPkts)
	c.offer(p, target)
	return p
}

// awaitMedia waits until p has received at least n more audio and video
// packets than it had.
func awaitMedia(t *testing.T, who string, p *clientPeer, n int64) {
	t.Helper()
	a0, v0 := p.audioPkts.Load(), p.videoPkts.Load()
	checkFor(t, 15*time.Second, func() error {
		if p.audioPkts.Load()-a0 < n || p.videoPkts.Load()-v0 < n {
			return fmt.Errorf("%s: media not flowing: %d audio, %d video packets (state %s)", who,
				p.audioPkts.Load(), p.videoPkts.Load(), p.pc.ConnectionState())
		}
		return nil
	})
}

const videoKind = webrtc.RTPCodecTypeVideo

func webrtcConfig() webrtc.Configuration { return webrtc.Configuration{} }

func recvonly() webrtc.RTPTransceiverInit {
	return webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
}

// browserClientAPI is clientAPI on every interface, to meet browsers.
func browserClientAPI(t *testing.T) *webrtc.API { t.Helper(); return videotest.ClientAPI(t, true) }

func newTestRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
