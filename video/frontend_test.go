package video

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
)

// recorder is a Signaler that writes down what it is told.
type recorder struct {
	mu     sync.Mutex
	events []string
	feeds  []Feed
	closed string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) Welcome(w Welcome) {
	r.add("welcome %s others=%d peak=%d layout=%d", w.Self.UserID, len(w.Others), w.PeakBefore, w.Layout.Participants)
}
func (r *recorder) Arrived(a Arrival) {
	r.add("arrived %s members=%d peak=%d", a.Member.UserID, len(a.Members), a.PeakBefore)
}
func (r *recorder) Left(userID string, l Layout)        { r.add("left %s layout=%d", userID, l.Participants) }
func (r *recorder) VideoState(userID string, on bool)   { r.add("video %s %v", userID, on) }
func (r *recorder) AudioState(userID string, on bool)   { r.add("audio %s %v", userID, on) }
func (r *recorder) Renamed(userID, name string)         { r.add("name %s %s", userID, name) }
func (r *recorder) AppSignal(from, id string, d []byte) { r.add("signal %s %s %s", from, id, d) }
func (r *recorder) Published(f Feed) {
	r.mu.Lock()
	r.feeds = append(r.feeds, f)
	r.mu.Unlock()
	r.add("published %s %s", f.UserID, f.Usage)
}
func (r *recorder) Unpublished(f Feed)        { r.add("unpublished %s %s", f.UserID, f.Usage) }
func (r *recorder) ScreenEnded(userID string) { r.add("screenEnded %s", userID) }
func (r *recorder) Closed(code string)        { r.add("closed %s", code) }

// await waits for an event starting with prefix and returns the events up
// to it.
func (r *recorder) await(t *testing.T, prefix string) {
	t.Helper()
	checkFor(t, 10*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i, e := range r.events {
			if strings.HasPrefix(e, prefix) {
				r.events = r.events[i+1:]
				return nil
			}
		}
		return fmt.Errorf("no %q in %q", prefix, r.events)
	})
}

func (r *recorder) feed(userID string, usage Usage) Feed {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.feeds {
		if f.UserID == userID && f.Usage == usage {
			return f
		}
	}
	return Feed{}
}

// completeOffer is what a non-trickle client sends: its offer once ICE
// gathering is complete.
func completeLocal(t *testing.T, pc *webrtc.PeerConnection, desc webrtc.SessionDescription) string {
	t.Helper()
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

// TestFrontEndAPI drives rooms the way the KnowledgeTalk front end does:
// Join with a Signaler, non-trickle publications whose answers hold the
// server's candidates, feeds announced after the answer, server-offered
// subscriptions answered by the client, and the screen share.
func TestFrontEndAPI(t *testing.T) {
	ts := startServer(t, nil)
	api := clientAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	join := func(id string, capacity int) (*Participant, *recorder, error) {
		rec := &recorder{}
		p, err := ts.Join(JoinRequest{Room: RoomKey{Company: "1", Kind: RoomKnowledgeTalk, Name: "12345678"}, Ident: Identity{UserID: id, Name: "익명", CommunityID: "1"},
			Video: true, Audio: true, FrontEnd: "knowledgetalk", Capacity: capacity, Signaler: rec})
		return p, rec, err
	}
	a, ra, err := join("u1", 3)
	if err != nil {
		t.Fatal(err)
	}
	ra.await(t, "welcome u1 others=0 peak=0 layout=1")
	b, rb, err := join("u2", 0)
	if err != nil {
		t.Fatal(err)
	}
	rb.await(t, "welcome u2 others=1 peak=1 layout=2")
	ra.await(t, "arrived u2 members=2 peak=1")
	// The front end assigns ids: a taken one is refused, never resumed.
	if _, _, err := join("u2", 0); !isCode(err, CodeAlreadyJoined) {
		t.Fatalf("second u2: %v", err)
	}
	c, rc, err := join("u3", 0)
	if err != nil {
		t.Fatal(err)
	}
	rc.await(t, "welcome u3 others=2 peak=2 layout=3")
	// The room took the capacity of the join that opened it.
	if _, _, err := join("u4", 0); !isCode(err, CodeRoomFull) {
		t.Fatalf("fourth join into a room of 3: %v", err)
	}
	if got := ts.metricSum(t, "cstalk_video_participants"); got != 3 {
		t.Errorf("participants %v", got)
	}

	// A publishes its camera without trickle.
	pubA, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pubA.Close()
	camA := publishTracks(t, pubA)
	offer, err := pubA.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := a.Publish(ctx, UsageCam, completeLocal(t, pubA, offer))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "a=candidate:") {
		t.Fatalf("answer without candidates:\n%s", answer)
	}
	if err := pubA.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	go camA(ctx)
	// Nobody hears of the feed before it is announced.
	a.Announce(UsageCam)
	a.Announce(UsageCam) // once
	ra.await(t, "published u1 cam")
	rb.await(t, "published u1 cam")
	rc.await(t, "published u1 cam")
	feed := rb.feed("u1", UsageCam)

	// B subscribes to it: the server offers, with its candidates.
	subB, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer subB.Close()
	got := &clientPeer{}
	subB.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		counter := &got.audioPkts
		if track.Kind() == webrtc.RTPCodecTypeVideo {
			counter = &got.videoPkts
		}
		for {
			if _, _, err := track.ReadRTP(); err != nil {
				return
			}
			counter.Add(1)
		}
	})
	sub, err := b.Subscribe(ctx, feed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sub.ID == 0 || sub.Feed != feed || !strings.Contains(sub.Offer, "a=candidate:") {
		t.Fatalf("subscription %+v", sub)
	}
	if err := subB.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sub.Offer}); err != nil {
		t.Fatal(err)
	}
	ans, err := subB.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AnswerSubscription(sub.ID+100, completeLocal(t, subB, ans)); !isCode(err, CodeUnknownSubscription) {
		t.Fatalf("answer to an unknown subscription: %v", err)
	}
	if err := b.AnswerSubscription(sub.ID, subB.LocalDescription().SDP); err != nil {
		t.Fatal(err)
	}
	got.pc = subB
	awaitMedia(t, "u2<-u1", got, 5)
	if _, err := b.Subscribe(ctx, 999); !isCode(err, CodeUnknownFeed) {
		t.Fatalf("unknown feed: %v", err)
	}

	// B publishes: it hears of itself, then of the feeds already there.
	pubB, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pubB.Close()
	publishTracks(t, pubB)
	offer, err = pubB.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, UsageCam, completeLocal(t, pubB, offer)); err != nil {
		t.Fatal(err)
	}
	b.Announce(UsageCam)
	rb.await(t, "published u2 cam")
	rb.await(t, "published u1 cam")
	ra.await(t, "published u2 cam")

	// State, names and relays reach everyone (front ends drop their own).
	b.SetVideo(false)
	b.SetName("홍길동")
	b.Relay("Chat", []byte(`{"message":"안녕"}`))
	ra.await(t, "video u2 false")
	ra.await(t, "name u2 홍길동")
	ra.await(t, `signal u2 Chat {"message":"안녕"}`)

	// The screen share: one holder, a publication of its own.
	if !c.ReserveScreen() || !c.ReserveScreen() || b.ReserveScreen() {
		t.Fatal("screen reservation: want u3 to hold it, u2 refused")
	}
	pubC, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pubC.Close()
	if _, err := pubC.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err = pubC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, UsageScreen, completeLocal(t, pubC, offer)); err != nil {
		t.Fatal(err)
	}
	c.Announce(UsageScreen)
	ra.await(t, "published u3 screen")
	c.StopScreen()
	ra.await(t, "unpublished u3 screen")
	// Leaving with the reservation ends the share for the others first.
	c.Leave("leave")
	ra.await(t, "screenEnded u3")
	ra.await(t, "left u3 layout=2")
	if !b.ReserveScreen() {
		t.Error("the share is not free after its holder left")
	}
	a.Leave("dropped")
	b.Leave("leave")
	checkFor(t, 5*time.Second, func() error {
		if n := ts.metricSum(t, "cstalk_video_rooms") + ts.metricSum(t, "cstalk_video_participants"); n != 0 {
			return fmt.Errorf("rooms and participants %v", n)
		}
		return nil
	})
}

func isCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// publishTracks adds a VP8 and an Opus track to pc; the returned function
// sends on them until ctx ends.
func publishTracks(t *testing.T, pc *webrtc.PeerConnection) func(context.Context) {
	t.Helper()
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "pub")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "pub")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	return func(ctx context.Context) { sendSamples(ctx, video, audio) }
}
