package video

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// TestTwoParticipants: each of two participants publishes and receives the
// other's audio and video through the SFU.
func TestTwoParticipants(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")

	ex := a.join("r-5", true, true)
	if members := ex["members"].([]any); len(members) != 0 {
		t.Fatalf("first joiner got members %v", members)
	}
	ex = b.join("r-5", true, false)
	members := ex["members"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["userId"] != "1" || members[0].(map[string]any)["audio"] != true {
		t.Fatalf("second joiner got members %v", members)
	}
	arrived := a.await("newParticipantArrived")
	if m := arrived["member"].(map[string]any); m["userId"] != "2" || m["video"] != true || m["audio"] != false {
		t.Fatalf("newParticipantArrived %v", arrived)
	}

	a.publish()
	b.publish()
	aFromB := a.subscribe("2")
	bFromA := b.subscribe("1")
	awaitMedia(t, "1<-2", aFromB, 20)
	awaitMedia(t, "2<-1", bFromA, 20)

	if got := ts.metricSum(t, "cstalk_video_forwarded_packets_total"); got < 80 {
		t.Errorf("forwarded packets metric %v, want >= 80", got)
	}
	if got := ts.metricSum(t, "cstalk_video_published_tracks"); got != 4 {
		t.Errorf("published tracks %v, want 4", got)
	}
	if got := ts.Participants(company1("r-5")); len(got) != 2 || got[0].UserID != "1" || got[1].UserID != "2" {
		t.Errorf("Participants = %v", got)
	}
	checkFor(t, 2*time.Second, func() error {
		if !ts.events.has(EventRoomOpened, "r-5", "") || !ts.events.has(EventJoined, "r-5", "1") || !ts.events.has(EventJoined, "r-5", "2") {
			return errors.New("join events missing")
		}
		return nil
	})
	a.checkRules()
	b.checkRules()
}

// TestFourParticipants: every one of four participants receives the three
// others.
func TestFourParticipants(t *testing.T) {
	ts := startServer(t, nil)
	users := []string{"1", "2", "3", "4"}
	clients := map[string]*client{}
	for _, u := range users {
		c := dial(t, ts, u, "/signal")
		ex := c.join("c-10", true, true)
		if n := len(ex["members"].([]any)); n != len(clients) {
			t.Fatalf("%s sees %d members, want %d", u, n, len(clients))
		}
		clients[u] = c
		c.publish()
	}
	subs := map[string]*clientPeer{}
	for _, u := range users {
		for _, o := range users {
			if o != u {
				subs[u+"<-"+o] = clients[u].subscribe(o)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(subs))
	for name, p := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if p.audioPkts.Load() >= 10 && p.videoPkts.Load() >= 10 {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			errs <- fmt.Errorf("%s: audio %d video %d packets", name, p.audioPkts.Load(), p.videoPkts.Load())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range clients {
		c.checkRules()
	}
	if got := ts.metricSum(t, "cstalk_video_peer_connections"); got != 16 {
		t.Errorf("peer connections %v, want 16", got)
	}
}

// TestKeyframeRequests: a new subscriber makes the SFU ask the publisher
// for a keyframe, and a subscriber's PLI reaches the publisher.
func TestKeyframeRequests(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-1", true, true)
	b.join("r-1", true, true)
	pub := a.publish()
	sub := b.subscribe("1")
	awaitMedia(t, "2<-1", sub, 5)
	checkFor(t, 5*time.Second, func() error {
		if pub.plis.Load() == 0 {
			return errors.New("no keyframe request after the subscription")
		}
		return nil
	})
	before := pub.plis.Load()
	var ssrc uint32
	for _, tr := range sub.pc.GetTransceivers() {
		if tr.Receiver() != nil && tr.Receiver().Track() != nil && tr.Kind().String() == "video" {
			ssrc = uint32(tr.Receiver().Track().SSRC())
		}
	}
	if ssrc == 0 {
		t.Fatal("subscriber has no video track")
	}
	checkFor(t, 5*time.Second, func() error {
		if err := sub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			return err
		}
		if pub.plis.Load() <= before {
			return errors.New("subscriber's PLI has not reached the publisher")
		}
		return nil
	})
}

// mediaKinds lists the m-line kinds of an SDP in order.
func mediaKinds(t *testing.T, s string) []string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range d.MediaDescriptions {
		out = append(out, m.MediaName.Media)
	}
	return out
}

// TestAnswersKeepEveryMLine: an offer with more lines than the SFU uses
// (a second video, as a screen share would add) is answered line for line,
// and the media that is used still flows.
func TestAnswersKeepEveryMLine(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-8", true, true)
	b.join("r-8", true, true)

	pub := a.newPeer("1")
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeVideo} {
		if _, err := pub.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
			t.Fatal(err)
		}
	}
	a.offer(pub, "1")
	offer := pub.pc.LocalDescription().SDP
	if got, want := mediaKinds(t, pub.answer), mediaKinds(t, offer); !slices.Equal(got, want) {
		t.Errorf("publish answer lines %v, offer %v", got, want)
	}

	sub := b.newPeer("1")
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := sub.pc.AddTransceiverFromKind(kind, recvonly()); err != nil {
			t.Fatal(err)
		}
	}
	b.offer(sub, "1")
	if got, want := mediaKinds(t, sub.answer), mediaKinds(t, sub.pc.LocalDescription().SDP); !slices.Equal(got, want) {
		t.Errorf("subscribe answer lines %v, offer %v", got, want)
	}
	if !strings.Contains(sub.answer, "a=sendonly") {
		t.Errorf("subscription answer sends nothing:\n%s", sub.answer)
	}
}

// TestDeadPublisherFreesItsPlace: a publication whose connection dies is
// dropped, and its place among the room's publishers goes to the next.
func TestDeadPublisherFreesItsPlace(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.MaxPublishers = 1
		c.ICEDisconnectedTimeout = 500 * time.Millisecond
		c.ICEFailedTimeout = time.Second
	})
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-6", true, true)
	b.join("r-6", true, true)
	pub := a.publish()
	sub := b.subscribe("1")
	awaitMedia(t, "2<-1", sub, 5)
	b.send(map[string]any{"id": "receiveVideoFrom", "userId": "2", "sdpOffer": validOffer(t)})
	b.awaitError(CodeTooManyPublishers)

	pub.stop()
	_ = pub.pc.Close()
	checkFor(t, 10*time.Second, func() error {
		if got := ts.metricSum(t, "cstalk_video_published_tracks"); got != 0 {
			return fmt.Errorf("%v tracks still published", got)
		}
		return nil
	})
	b.publish()
	aFromB := a.subscribe("2")
	awaitMedia(t, "1<-2", aFromB, 5)
}

// TestUDPMux: with a mux port every peer connection shares that one port.
func TestUDPMux(t *testing.T) {
	ln, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	ts := startServer(t, func(c *Config) { c.UDPMuxPort = port })
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-30", true, true)
	b.join("r-30", true, true)
	a.publish()
	awaitMedia(t, "2<-1", b.subscribe("1"), 10)
	for _, c := range []*client{a, b} {
		c.mu.Lock()
		cands := slices.Clone(c.serverCands)
		c.mu.Unlock()
		if len(cands) == 0 {
			t.Fatalf("%s got no candidates", c.user)
		}
		for _, cand := range cands {
			if !strings.Contains(cand, " "+strconv.Itoa(port)+" typ host") {
				t.Errorf("%s: candidate off the mux port %d: %s", c.user, port, cand)
			}
		}
	}
}

// TestUDPPortRange: host candidates stay inside the configured range.
func TestUDPPortRange(t *testing.T) {
	const lo, hi = 41000, 41200
	ts := startServer(t, func(c *Config) { c.UDPPortMin, c.UDPPortMax = lo, hi })
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("r-31", true, true)
	b.join("r-31", true, true)
	a.publish()
	awaitMedia(t, "2<-1", b.subscribe("1"), 10)
	for _, c := range []*client{a, b} {
		c.mu.Lock()
		cands := slices.Clone(c.serverCands)
		c.mu.Unlock()
		for _, cand := range cands {
			f := strings.Fields(cand)
			port, err := strconv.Atoi(f[5])
			if err != nil || port < lo || port > hi {
				t.Errorf("%s: candidate outside %d-%d: %s", c.user, lo, hi, cand)
			}
		}
	}
}
