package knowledgetalk_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
	pionmedia "github.com/pion/webrtc/v3/pkg/media"

	"github.com/cstalk/cstalk/video/videotest"
)

// The Go side of a call: pion peers standing in for the browser, whose
// SDP travels through a real socket.io client. Like the deployed client
// they never trickle: every SDP is sent complete.

func clientAPI(t *testing.T) *webrtc.API { t.Helper(); return videotest.ClientAPI(t, false) }

// publisher is a peer that sends VP8 video (and Opus, for a camera).
type publisher struct {
	pc    *webrtc.PeerConnection
	offer string
	stop  context.CancelFunc
}

func newPublisher(t *testing.T, api *webrtc.API, withAudio bool) *publisher {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if err != nil {
		t.Fatal(err)
	}
	tracks := []*webrtc.TrackLocalStaticSample{video}
	if withAudio {
		audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "cam")
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, audio)
	}
	for _, tr := range tracks {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &publisher{pc: pc, offer: videotest.CompleteSDP(t, pc, offer), stop: cancel}
	t.Cleanup(func() { cancel(); _ = pc.Close() })
	go func() {
		frame, voice := make([]byte, 900), make([]byte, 60)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = video.WriteSample(pionmedia.Sample{Data: frame, Duration: 20 * time.Millisecond})
				if len(tracks) > 1 {
					_ = tracks[1].WriteSample(pionmedia.Sample{Data: voice, Duration: 20 * time.Millisecond})
				}
			}
		}
	}()
	return p
}

func (p *publisher) answered(t *testing.T, sdp string) {
	t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
}

// subscriber answers a server offer and counts the packets it receives.
type subscriber struct {
	pc     *webrtc.PeerConnection
	answer string
	video  atomic.Int64
}

func newSubscriber(t *testing.T, api *webrtc.API, offer string) *subscriber {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	s := &subscriber{pc: pc}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := track.ReadRTP(); err != nil {
				return
			}
			if track.Kind() == webrtc.RTPCodecTypeVideo {
				s.video.Add(1)
			}
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	s.answer = videotest.CompleteSDP(t, pc, answer)
	return s
}

func (s *subscriber) awaitVideo(t *testing.T, who string) {
	t.Helper()
	checkFor(t, 30*time.Second, func() error {
		if n := s.video.Load(); n < 10 {
			return fmt.Errorf("%s: %d video packets (%s)", who, n, s.pc.ConnectionState())
		}
		return nil
	})
}
