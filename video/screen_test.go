package video

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
)

// publishScreen publishes a screen share (one VP8 video, 30 fps) and
// waits for its answer.
func (c *client) publishScreen() *clientPeer {
	c.t.Helper()
	p := c.newPeerFor(c.user, UsageScreen)
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", c.user+"-screen")
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := p.pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		c.t.Fatal(err)
	}
	c.offerFor(p, c.user, UsageScreen)
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go sendSamples(ctx, video, nil)
	return p
}

// subscribeScreen receives target's screen share and counts its packets.
func (c *client) subscribeScreen(target string) *clientPeer {
	c.t.Helper()
	p := c.newPeerFor(target, UsageScreen)
	if _, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recvonly()); err != nil {
		c.t.Fatal(err)
	}
	p.pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := track.ReadRTP(); err != nil {
				return
			}
			p.videoPkts.Add(1)
		}
	})
	c.offerFor(p, target, UsageScreen)
	return p
}

// TestSignalScreenShare: a /signal participant shares its screen as a
// second publication (usage "screen"); the others hear screenShareStarted,
// subscribe and receive it; a second sharer is refused while the first
// shares; stopScreenShare ends it for everyone and frees the room's share.
func TestSignalScreenShare(t *testing.T) {
	ts := startServer(t, nil)
	a := dial(t, ts, "1", "/signal")
	b := dial(t, ts, "2", "/signal")
	a.join("c-screen", true, true)
	b.join("c-screen", true, true)
	a.publish()
	b.publish()

	a.publishScreen()
	b.await("screenShareStarted", "userId", "1")
	screen := b.subscribeScreen("1")
	checkFor(t, 15*time.Second, func() error {
		if screen.videoPkts.Load() < 10 {
			return fmt.Errorf("screen packets: %d", screen.videoPkts.Load())
		}
		return nil
	})
	// The camera keeps flowing beside the screen.
	awaitMedia(t, "2<-1 camera", b.subscribe("1"), 5)

	// A late joiner hears of the share with the room.
	c := dial(t, ts, "3", "/signal")
	ex := c.join("c-screen", true, true)
	if l := ex["layout"].(map[string]any); l["screen"] == nil || l["sharerCamera"] == nil {
		t.Errorf("layout while sharing: %v", l)
	}
	c.await("screenShareStarted", "userId", "1")

	// One sharer per room.
	off := b.newPeerFor("2", UsageScreen)
	if _, err := off.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := off.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	b.send(map[string]any{"id": "receiveVideoFrom", "userId": "2", "usage": "screen", "sdpOffer": offer.SDP})
	b.awaitError(CodeScreenShareTaken)
	// A screen subscription to someone who shares none.
	b.send(map[string]any{"id": "receiveVideoFrom", "userId": "3", "usage": "screen", "sdpOffer": offer.SDP})
	b.awaitError(CodeNoScreenShare)

	before := ts.metricSum(t, "cstalk_video_peer_connections")
	a.send(map[string]any{"id": "stopScreenShare"})
	b.await("screenShareStopped", "userId", "1")
	c.await("screenShareStopped", "userId", "1")
	// A's screen publication and B's subscription to it are closed.
	checkFor(t, 10*time.Second, func() error {
		if got := ts.metricSum(t, "cstalk_video_peer_connections"); got != before-2 {
			return fmt.Errorf("peer connections %v, want %v", got, before-2)
		}
		return nil
	})
	// The share is free again; a failed screen offer does not keep it.
	noFingerprint := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" +
		"c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"
	c.send(map[string]any{"id": "receiveVideoFrom", "userId": "3", "usage": "screen", "sdpOffer": noFingerprint})
	c.awaitError(CodeBadSDP)
	b.publishScreen()
	a.await("screenShareStarted", "userId", "2")
	// Its holder leaving ends it.
	b.send(map[string]any{"id": "leaveRoom"})
	a.await("screenShareStopped", "userId", "2")
	for _, cl := range []*client{a, b, c} {
		cl.checkRules()
	}
}
