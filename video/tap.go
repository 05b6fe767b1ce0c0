package video

import (
	"slices"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// TrackSink receives a participant's packets exactly as its subscribers
// get them: one unbroken stream whose sequence numbers and timestamps go
// on across republishes. WriteRTP runs on the forwarding path with the
// track's lock held: it must copy what it keeps, never block and never
// call back into the server. The packet is valid only during the call.
type TrackSink interface {
	WriteRTP(p *rtp.Packet)
}

// TapInfo names the codecs of the tapped tracks.
type TapInfo struct {
	Audio, Video webrtc.RTPCodecCapability
}

// Tap feeds participant userID's camera and microphone in room key to the
// sinks (either may be nil) until untap is called or the participant
// leaves, and asks the publisher for a keyframe so the video can start at
// once. Only the room's own node can tap it: CodeUnknownParticipant when
// the participant is not in the room here.
func (s *Server) Tap(key RoomKey, userID string, audio, video TrackSink) (untap func(), info TapInfo, err error) {
	s.mu.Lock()
	r := s.rooms[key]
	s.mu.Unlock()
	if r == nil {
		return nil, TapInfo{}, clientError(CodeUnknownParticipant)
	}
	r.mu.Lock()
	p := r.participants[userID]
	if p == nil || p.left {
		r.mu.Unlock()
		return nil, TapInfo{}, clientError(CodeUnknownParticipant)
	}
	fa, fv := p.audio, p.video
	r.mu.Unlock()
	var down *downTrack
	if video != nil {
		// The video follows the publication as a subscriber's does: one
		// continuous stream of the layer the room's layout allows.
		d, err := fv.newDown()
		if err != nil {
			return nil, TapInfo{}, err
		}
		d.sink, down = video, d
		fv.dmu.Lock()
		fv.downs[down] = struct{}{}
		fv.dmu.Unlock()
	}
	fa.addSink(audio)
	if video != nil {
		fv.requestKeyframe()
	}
	var once sync.Once
	untap = func() {
		once.Do(func() {
			fa.removeSink(audio)
			if down != nil {
				fv.dmu.Lock()
				delete(fv.downs, down)
				fv.dmu.Unlock()
				// A packet being written when it was removed is the last.
				down.mu.Lock()
				down.sink = nil
				down.mu.Unlock()
			}
		})
	}
	return untap, TapInfo{Audio: fa.codec, Video: fv.codec}, nil
}

// addSink and removeSink change the audio sinks under the rewrite lock,
// so a sink sees no packet after removeSink returns.
func (f *forwardTrack) addSink(sink TrackSink) {
	if sink == nil {
		return
	}
	f.mu.Lock()
	f.sinks = append(slices.Clip(f.sinks), sink)
	f.mu.Unlock()
}

func (f *forwardTrack) removeSink(sink TrackSink) {
	if sink == nil {
		return
	}
	f.mu.Lock()
	f.sinks = slices.DeleteFunc(slices.Clone(f.sinks), func(s TrackSink) bool { return s == sink })
	f.mu.Unlock()
}
