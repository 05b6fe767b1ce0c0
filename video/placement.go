package video

import (
	"context"
	"time"
)

// Placement puts each room of /signal on one node of a cluster (Redis in
// cstalk: video/videoredis). Without one every node is a cluster of its
// own. A node hosts the rooms it claimed while it renews them; a room whose
// node stops renewing is taken over by the next node a participant joins
// on.
type Placement interface {
	// Claim returns the relay address of the node hosting room key,
	// recording this node when no live node holds it; self reports
	// whether that is this node.
	Claim(ctx context.Context, key RoomKey) (addr string, self bool, err error)
	// Renew extends this node's hold on keys, recording again those that
	// expired; lost are the keys another node holds now.
	Renew(ctx context.Context, keys []RoomKey) (lost []RoomKey, err error)
	// Release gives key up if this node holds it.
	Release(ctx context.Context, key RoomKey) error
	// Lease is how long a hold lasts unrenewed; Renew is called three
	// times per lease.
	Lease() time.Duration
	// AnnounceClose asks every node to close room key where it lives;
	// Closes delivers such requests (this node's own too) until the
	// placement is closed.
	AnnounceClose(ctx context.Context, key RoomKey) error
	Closes() <-chan RoomKey
}

// placementTimeout bounds one call to the placement: a Redis round trip.
const placementTimeout = 2 * time.Second

// Claim returns the relay address of the node hosting room key, recording
// this node when none does (self). A front end of the front-end API that
// places its rooms calls it before Join (with JoinRequest.Placed) and, when
// the room is elsewhere, relays its client there (DialRelay, HandleRelay).
func (s *Server) Claim(key RoomKey) (addr string, self bool) { return s.claim(key) }

// claim asks the placement where room key lives. Without a placement, or
// when it cannot answer (Redis down), the room lives here: a call on one
// node beats no call.
func (s *Server) claim(key RoomKey) (addr string, self bool) {
	pl := s.cfg.Placement
	if pl == nil {
		return "", true
	}
	ctx, cancel := context.WithTimeout(s.ctx, placementTimeout)
	defer cancel()
	addr, self, err := pl.Claim(ctx, key)
	if err != nil {
		s.log.Warn("room placement unavailable; hosting the room here", "room", key.String(), "err", err)
		return "", true
	}
	return addr, self
}

// release gives up the placement of a room that closed here.
func (s *Server) release(r *room) {
	pl := s.cfg.Placement
	if pl == nil || !r.placed {
		return
	}
	// The server's context may be cancelled already at shutdown; the
	// release is what lets the room move at once, so it gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), placementTimeout)
	defer cancel()
	if err := pl.Release(ctx, r.key); err != nil {
		s.log.Warn("release room placement", "room", r.key.String(), "err", err)
	}
}

// runPlacement renews the placement of this node's rooms and closes the
// rooms other nodes ask to close, until the server closes.
func (s *Server) runPlacement(pl Placement) {
	tick := time.NewTicker(max(pl.Lease()/3, 10*time.Millisecond))
	defer tick.Stop()
	closes := pl.Closes()
	for {
		select {
		case <-s.ctx.Done():
			return
		case key, ok := <-closes:
			if !ok {
				closes = nil // closed first at shutdown; keep renewing
				continue
			}
			if n := s.closeLocal(key, CodeRoomClosed); n > 0 {
				s.log.Info("room closed on another node's request", "room", key.String(), "participants", n)
			}
		case <-tick.C:
			s.renewPlacement(pl)
		}
	}
}

func (s *Server) renewPlacement(pl Placement) {
	s.mu.Lock()
	keys := make([]RoomKey, 0, len(s.rooms))
	for k, r := range s.rooms {
		if r.placed {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, placementTimeout)
	lost, err := pl.Renew(ctx, keys)
	cancel()
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("renew room placement", "rooms", len(keys), "err", err)
		}
		return
	}
	// Another node took a room over (this one stalled past its lease):
	// its participants rejoin there.
	for _, k := range lost {
		s.log.Warn("room taken over by another node; closing it here", "room", k.String())
		s.closeLocal(k, CodeShutdown)
	}
}
