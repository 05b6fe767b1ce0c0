package recording_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
	pionmedia "github.com/pion/webrtc/v3/pkg/media"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cstalk/cstalk/store"
	"github.com/cstalk/cstalk/video"
	"github.com/cstalk/cstalk/video/recording"
	"github.com/cstalk/cstalk/video/videotest"
)

// allowAll lets anyone into company 1's rooms (the recorder does not care
// who decided).
type allowAll struct{}

func (allowAll) AuthorizeJoin(_ context.Context, token, userID, _, _ string) (video.Identity, error) {
	return video.Identity{UserID: userID, Name: "name-" + userID, CommunityID: "1", Customer: token == "customer"}, nil
}

// quiet is a front end that ignores what the room tells it.
type quiet struct{}

func (quiet) Welcome(video.Welcome)            {}
func (quiet) Arrived(video.Arrival)            {}
func (quiet) Left(string, video.Layout)        {}
func (quiet) VideoState(string, bool)          {}
func (quiet) AudioState(string, bool)          {}
func (quiet) Renamed(string, string)           {}
func (quiet) AppSignal(string, string, []byte) {}
func (quiet) Published(video.Feed)             {}
func (quiet) Unpublished(video.Feed)           {}
func (quiet) ScreenEnded(string)               {}
func (quiet) Closed(string)                    {}

type harness struct {
	t     *testing.T
	srv   *video.Server
	rec   *recording.Recorder
	store *store.Store
	dir   string
	mu    sync.Mutex
	evs   []video.Event
}

func newHarness(t *testing.T, limits recording.Limits) *harness {
	t.Helper()
	ctx := context.Background()
	h := &harness{t: t, dir: filepath.Join(t.TempDir(), "recordings")}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "db.sqlite"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h.store = st
	cfg := video.DefaultConfig()
	cfg.IncludeLoopback = true
	cfg.Interfaces = []string{"lo"}
	cfg.KeyframeInterval = 50 * time.Millisecond
	var rec *recording.Recorder
	cfg.OnEvent = func(ev video.Event) {
		rec.HandleEvent(ev)
		h.mu.Lock()
		h.evs = append(h.evs, ev)
		h.mu.Unlock()
	}
	srv, err := video.New(cfg, allowAll{}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err = recording.New(recording.Config{Dir: h.dir, Limits: limits,
		Records: func(_ context.Context, room video.RoomKey) (bool, error) { return room.Kind == video.RoomChat, nil },
	}, st, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.srv, h.rec = srv, rec
	t.Cleanup(func() {
		_ = srv.Close()
		rec.Close()
	})
	return h
}

func (h *harness) sawEvent(kind video.EventKind, user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.evs {
		if ev.Kind == kind && ev.User.UserID == user {
			return true
		}
	}
	return false
}

var room7 = video.RoomKey{Company: "1", Kind: video.RoomChat, Name: "7"}

// publisher is a pion client publishing through the front-end API.
type publisher struct {
	part   *video.Participant
	pc     *webrtc.PeerConnection
	video  *webrtc.TrackLocalStaticSample
	audio  *webrtc.TrackLocalStaticSample
	joined time.Time
	// pli: a keyframe was asked for (the next frame is one, as a
	// browser does).
	pli atomic.Bool
}

func (h *harness) join(user string) *publisher {
	t := h.t
	t.Helper()
	part, err := h.srv.Join(video.JoinRequest{Room: room7, Ident: video.Identity{UserID: user, Name: "name-" + user, CommunityID: "1"},
		Video: true, Audio: true, FrontEnd: "test", Signaler: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := videotest.ClientAPI(t, false).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	p := &publisher{part: part, pc: pc, joined: time.Now()}
	if p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", user); err != nil {
		t.Fatal(err)
	}
	if p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", user); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.audio, p.video} {
		sender, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		go func() { // RTCP must be read for the interceptors to work
			for {
				pkts, _, err := sender.Sender().ReadRTCP()
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						p.pli.Store(true)
					}
				}
			}
		}()
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	answer, err := part.Publish(ctx, video.UsageCam, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		once.Do(func() { close(connected) })
	}
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not connected", user)
	}
	return p
}

// vp8Frame is a frame the recorder takes for VP8: a keyframe header with
// the picture size, or an interframe; the pixels are not decoded.
func vp8Frame(key bool, n int) []byte {
	f := make([]byte, n)
	if key {
		f[0] = 0x10 // keyframe, version 0, show_frame
		f[3], f[4], f[5] = 0x9d, 0x01, 0x2a
		binary.LittleEndian.PutUint16(f[6:], 320)
		binary.LittleEndian.PutUint16(f[8:], 240)
	} else {
		f[0] = 0x11
	}
	return f
}

// The publisher's sample durations, which also advance its RTP clocks.
const (
	frameDuration = time.Second / 30
	voiceDuration = 20 * time.Millisecond
)

// sent is what a publisher sent: frames and audio packets.
type sent struct {
	frames, voices int
}

// mediaTime is how far the longer of the two tracks' RTP clocks ran. The
// recorder places blocks by them, and a busy machine's skipped ticks leave
// them behind the wall clock.
func (s sent) mediaTime() time.Duration {
	return max(time.Duration(s.frames)*frameDuration, time.Duration(s.voices)*voiceDuration)
}

// send plays d of 30 fps video (a keyframe a second) and 50 packets/s of
// Opus in real time, as a camera does. A busy machine skips ticks, so
// what went out is counted, not assumed.
func (p *publisher) send(d time.Duration, frameBytes int) sent {
	vt := time.NewTicker(frameDuration)
	at := time.NewTicker(voiceDuration)
	defer vt.Stop()
	defer at.Stop()
	end := time.After(d)
	voice := make([]byte, 60)
	var s sent
	for {
		select {
		case <-end:
			return s
		case <-vt.C:
			key := s.frames%30 == 0 || p.pli.Swap(false)
			if p.video.WriteSample(pionmedia.Sample{Data: vp8Frame(key, frameBytes), Duration: frameDuration}) == nil {
				s.frames++
			}
		case <-at.C:
			if p.audio.WriteSample(pionmedia.Sample{Data: voice, Duration: voiceDuration}) == nil {
				s.voices++
			}
		}
	}
}

// parsed is what a WebM file says about itself.
type parsed struct {
	codecs     []string
	width      uint64
	duration   time.Duration
	cues       int
	audio      int
	video      int
	videoKeys  int
	lastVideoT time.Duration
}

func parseWebM(t *testing.T, path string) parsed {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment struct {
			Info    webm.Info   `ebml:"Info"`
			Tracks  webm.Tracks `ebml:"Tracks"`
			Cues    webm.Cues   `ebml:"Cues"`
			Cluster []webm.Cluster
		} `ebml:"Segment,size=unknown"`
	}
	if err := ebml.Unmarshal(bytes.NewReader(b), &doc); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%s is not WebM: %v", path, err)
	}
	var out parsed
	if doc.Header.DocType != "webm" {
		t.Fatalf("doc type %q", doc.Header.DocType)
	}
	out.duration = time.Duration(doc.Segment.Info.Duration * float64(time.Millisecond))
	out.cues = len(doc.Segment.Cues.CuePoint)
	videoTrack := uint64(0)
	for _, te := range doc.Segment.Tracks.TrackEntry {
		out.codecs = append(out.codecs, te.CodecID)
		if te.Video != nil {
			out.width = te.Video.PixelWidth
			videoTrack = te.TrackNumber
		}
	}
	for _, c := range doc.Segment.Cluster {
		for _, blk := range c.SimpleBlock {
			if blk.TrackNumber == videoTrack {
				out.video++
				if blk.Keyframe {
					out.videoKeys++
				}
				out.lastVideoT = time.Duration(int64(c.Timecode)+int64(blk.Timecode)) * time.Millisecond
			} else {
				out.audio++
			}
		}
	}
	return out
}

func near(got, want, tolerance time.Duration) bool {
	return got >= want-tolerance && got <= want+tolerance
}

// TestRecordsEachParticipant: two pion clients publish VP8 and Opus into a
// recorded room; each gets a WebM file (0600, in 0700 directories) with
// both tracks, a seek index and a duration that matches its time in the
// call, linked to the chat room with its start, end and participants.
func TestRecordsEachParticipant(t *testing.T) {
	h := newHarness(t, recording.DefaultLimits)
	a := h.join("11")
	b := h.join("12")
	const talk = 3 * time.Second
	var wg sync.WaitGroup
	sends := map[string]*sent{}
	for user, p := range map[string]*publisher{"11": a, "12": b} {
		wg.Add(1)
		s := &sent{}
		sends[user] = s
		go func() {
			defer wg.Done()
			*s = p.send(talk, 1000)
		}()
	}
	wg.Wait()
	a.part.Leave("leave")
	b.part.Leave("leave")
	videotest.CheckFor(t, 20*time.Second, func() error {
		if !h.sawEvent(video.EventRoomClosed, "") {
			return errors.New("room not closed yet")
		}
		return nil
	})
	// Events are handled in order; the room's end is written once the
	// recorder has seen it, so wait for the row.
	var recs []recording.Recording
	videotest.CheckFor(t, 20*time.Second, func() error {
		var err error
		if recs, err = h.store.Recordings(context.Background(), 1, 0, 10); err != nil {
			return err
		}
		if len(recs) != 1 || recs[0].EndedAt == nil {
			return fmt.Errorf("recordings %+v", recs)
		}
		return nil
	})
	rec := recs[0]
	if rec.VideoRoomID != "r-7" || rec.ChatRoomID == nil || *rec.ChatRoomID != 7 || rec.CompanyID != 1 {
		t.Fatalf("recording %+v not linked to chat room 7 of company 1", rec)
	}
	if len(rec.Files) != 2 {
		t.Fatalf("files %+v, want one per participant", rec.Files)
	}
	for _, f := range rec.Files {
		if f.Status != recording.StatusDone || f.EndedAt == nil || f.Name != "name-"+f.UserID {
			t.Fatalf("file %+v", f)
		}
		path := filepath.Join(h.dir, f.Path)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || st.Size() != f.Bytes {
			t.Fatalf("%s: mode %v size %d, row says %d bytes", path, st.Mode().Perm(), st.Size(), f.Bytes)
		}
		for dir := filepath.Dir(path); dir != filepath.Dir(h.dir); dir = filepath.Dir(dir) {
			if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("directory %s: %v %v, want 0700", dir, st.Mode().Perm(), err)
			}
		}
		w := parseWebM(t, path)
		t.Logf("%s: %d bytes, duration %s, %d video (%d key) and %d audio blocks, %d cues", f.UserID, f.Bytes, w.duration, w.video, w.videoKeys, w.audio, w.cues)
		if strings.Join(w.codecs, ",") != "A_OPUS,V_VP8" || w.width != 320 {
			t.Fatalf("tracks %v width %d", w.codecs, w.width)
		}
		// The file runs from the first frame (a keyframe) to the last, on
		// the senders' RTP clocks.
		sn := sends[f.UserID]
		span := sn.mediaTime()
		if !near(w.duration, span, 500*time.Millisecond) || !near(f.Duration, span, 500*time.Millisecond) {
			t.Fatalf("duration %s in the file, %s in the store, media sent for %s", w.duration, f.Duration, span)
		}
		// Packets may be lost on a busy machine's loopback, not many.
		if w.video < sn.frames*9/10 || w.audio < sn.voices*8/10 || w.videoKeys < 3 || w.cues < 1 {
			t.Fatalf("blocks: %+v of %d frames and %d audio packets sent", w, sn.frames, sn.voices)
		}
	}
}

// TestCeilingStopsRecordingNotCall: a participant's file stops at its
// size ceiling (status limit, still a valid WebM) while the call goes on.
func TestCeilingStopsRecordingNotCall(t *testing.T) {
	h := newHarness(t, recording.Limits{MaxBytes: 200 << 10, MaxDuration: time.Hour})
	a := h.join("21")
	// 30 frames/s of 4000 bytes: 120 KB/s, past the ceiling in under 2 s.
	a.send(3*time.Second, 4000)
	var recs []recording.Recording
	videotest.CheckFor(t, 20*time.Second, func() error {
		var err error
		if recs, err = h.store.Recordings(context.Background(), 1, 0, 10); err != nil {
			return err
		}
		if len(recs) != 1 || len(recs[0].Files) != 1 || recs[0].Files[0].Status != recording.StatusLimit {
			return fmt.Errorf("recordings %+v", recs)
		}
		return nil
	})
	f := recs[0].Files[0]
	if f.Bytes > 200<<10 || f.Bytes < 100<<10 {
		t.Fatalf("file of %d bytes for a ceiling of %d", f.Bytes, 200<<10)
	}
	w := parseWebM(t, filepath.Join(h.dir, f.Path))
	if w.video < 10 || w.duration <= 0 || w.duration >= 3*time.Second {
		t.Fatalf("file after the ceiling: %+v", w)
	}
	// The call is untouched: the participant is still in the room and
	// still publishing.
	if got := h.srv.Participants(room7); len(got) != 1 {
		t.Fatalf("participants after the ceiling: %v", got)
	}
	if s := a.pc.ConnectionState(); s != webrtc.PeerConnectionStateConnected {
		t.Fatalf("publisher's connection %s", s)
	}
}

// TestAdminAPI: only the recording company's administrators list and
// fetch it; Range requests are answered so a <video> can seek.
func TestAdminAPI(t *testing.T) {
	h := newHarness(t, recording.DefaultLimits)
	a := h.join("31")
	a.send(2*time.Second, 1000)
	a.part.Leave("leave")
	var rec recording.Recording
	videotest.CheckFor(t, 20*time.Second, func() error {
		recs, err := h.store.Recordings(context.Background(), 1, 0, 10)
		if err != nil {
			return err
		}
		if len(recs) != 1 || recs[0].EndedAt == nil {
			return fmt.Errorf("recordings %+v", recs)
		}
		rec = recs[0]
		return nil
	})
	// Bearer tokens name who asks: admin1 of company 1, admin2 of company
	// 2, agent of company 1 (not an administrator).
	admins := recording.AdminsFunc(func(r *http.Request) (int64, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer admin1":
			return 1, nil
		case "Bearer admin2":
			return 2, nil
		case "Bearer agent":
			return 0, recording.ErrForbidden
		}
		return 0, recording.ErrUnauthorized
	})
	hs := httptest.NewServer(h.rec.Handler(admins))
	defer hs.Close()
	get := func(path, who string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		if who != "" {
			req.Header.Set("Authorization", "Bearer "+who)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	file := fmt.Sprintf("/api/admin/recordings/%d/files/%d", rec.ID, rec.Files[0].ID)
	one := fmt.Sprintf("/api/admin/recordings/%d", rec.ID)
	for _, c := range []struct {
		path, who string
		want      int
	}{
		{"/api/admin/recordings", "", 401},
		{"/api/admin/recordings", "agent", 403},
		{file, "agent", 403},
		{file, "", 401},
		{one, "admin2", 404},
		{file, "admin2", 404},
		{one, "admin1", 200},
		{fmt.Sprintf("/api/admin/recordings/%d/files/%d", rec.ID, rec.Files[0].ID+100), "admin1", 404},
	} {
		if res := get(c.path, c.who); res.StatusCode != c.want {
			t.Errorf("GET %s as %q: %d, want %d", c.path, c.who, res.StatusCode, c.want)
		}
	}
	body, _ := io.ReadAll(get("/api/admin/recordings", "admin2").Body)
	if !strings.Contains(string(body), `"recordings":[]`) {
		t.Errorf("company 2 lists %s", body)
	}
	body, _ = io.ReadAll(get("/api/admin/recordings", "admin1").Body)
	if !strings.Contains(string(body), fmt.Sprintf(`"url":"%s"`, file)) || !strings.Contains(string(body), `"roomId":7`) {
		t.Errorf("company 1 lists %s", body)
	}
	whole := get(file, "admin1")
	all, _ := io.ReadAll(whole.Body)
	if whole.StatusCode != 200 || whole.Header.Get("Content-Type") != "video/webm" || int64(len(all)) != rec.Files[0].Bytes ||
		whole.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("file: %d %q %d bytes of %d, Accept-Ranges %q", whole.StatusCode, whole.Header.Get("Content-Type"), len(all),
			rec.Files[0].Bytes, whole.Header.Get("Accept-Ranges"))
	}
	part := get(file, "admin1", "Range", "bytes=100-199")
	got, _ := io.ReadAll(part.Body)
	if part.StatusCode != http.StatusPartialContent || !bytes.Equal(got, all[100:200]) ||
		part.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(all)) {
		t.Fatalf("range: %d %q %d bytes", part.StatusCode, part.Header.Get("Content-Range"), len(got))
	}
}
