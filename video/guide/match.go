package guide

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Request is a guide request pushed to a mate.
type Request struct {
	Session   Session
	Mate      Account
	ExpiresAt time.Time
}

// Pending is a request waiting for the mate's answer, as the mate sees it.
type Pending struct {
	Session   Session
	User      Account
	ExpiresAt time.Time
}

// OpenRequests lists the requests waiting for mate's answer: what a mate's
// app shows after its event stream reconnected and missed guideRequest.
func (s *Service) OpenRequests(ctx context.Context, mate *Account) ([]Pending, error) {
	if mate.Role != RoleMate {
		return nil, errMatesOnly
	}
	now := s.cfg.Now()
	sessions, err := s.store.GuideRequestsFor(ctx, mate.ID, now.Add(-s.cfg.RequestTimeout))
	if err != nil {
		return nil, fmt.Errorf("guide: open requests: %w", err)
	}
	out := make([]Pending, 0, len(sessions))
	for _, gs := range sessions {
		user, err := s.store.GuideAccount(ctx, gs.UserID)
		if err != nil {
			return nil, fmt.Errorf("guide: open requests: %w", err)
		}
		gs.RoomID = RoomID(gs.ID)
		out = append(out, Pending{Session: gs, User: *user, ExpiresAt: gs.CreatedAt.Add(s.cfg.RequestTimeout)})
	}
	return out, nil
}

// Match is quick connect: friendID > 0 asks that friend, otherwise the
// best-ranked available mate.
func (s *Service) Match(ctx context.Context, user *Account, friendID int64) (*Request, error) {
	if friendID > 0 {
		return s.request(ctx, user, MatchFriend, func(ctx context.Context) (*Account, error) {
			return s.pickFriend(ctx, user, friendID)
		})
	}
	return s.request(ctx, user, MatchBest, func(ctx context.Context) (*Account, error) {
		return s.pickRanked(ctx, user, false)
	})
}

// Shake asks a random available mate.
func (s *Service) Shake(ctx context.Context, user *Account) (*Request, error) {
	return s.request(ctx, user, MatchShake, func(ctx context.Context) (*Account, error) {
		return s.pickRanked(ctx, user, true)
	})
}

// pickRanked reserves the best (or a random) available mate not held here.
func (s *Service) pickRanked(ctx context.Context, user *Account, random bool) (*Account, error) {
	mates, err := s.store.RankedMates(ctx, true, s.cfg.MatchCandidates)
	if err != nil {
		return nil, fmt.Errorf("guide: match: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var free []int
	for i, m := range mates {
		if _, held := s.holds[m.ID]; !held && m.ID != user.ID {
			free = append(free, i)
		}
	}
	if len(free) == 0 {
		return nil, errNoMate
	}
	pick := free[0]
	if random {
		pick = free[s.cfg.RandIntN(len(free))]
	}
	s.holds[mates[pick].ID] = 0
	return &mates[pick], nil
}

// pickFriend reserves the named friend if it can take a guide now.
func (s *Service) pickFriend(ctx context.Context, user *Account, friendID int64) (*Account, error) {
	friends, err := s.store.Friends(ctx, user.ID)
	if err != nil {
		return nil, fmt.Errorf("guide: match friend: %w", err)
	}
	for i := range friends {
		f := &friends[i]
		if f.ID != friendID {
			continue
		}
		switch f.Availability {
		case Offline:
			return nil, errMateOffline
		case Busy:
			return nil, errMateBusy
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, held := s.holds[f.ID]; held {
			return nil, errMateBusy
		}
		s.holds[f.ID] = 0
		return f, nil
	}
	return nil, errNotFriend
}

func (s *Service) request(ctx context.Context, user *Account, kind MatchKind, pick func(context.Context) (*Account, error)) (*Request, error) {
	if user.Role != RoleUser {
		return nil, errUsersOnly
	}
	fresh, err := s.store.GuideAccount(ctx, user.ID)
	if err != nil {
		return nil, fmt.Errorf("guide: match: %w", err)
	}
	if fresh.Tickets <= 0 {
		return nil, errNoTicket
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	if _, open := s.users[user.ID]; open {
		s.mu.Unlock()
		return nil, errInGuide
	}
	s.users[user.ID] = 0
	s.mu.Unlock()

	mate, gs, err := s.createRequest(ctx, user, kind, pick)
	if err != nil {
		s.mu.Lock()
		delete(s.users, user.ID)
		s.mu.Unlock()
		return nil, err
	}
	now := gs.CreatedAt
	gs.RoomID = RoomID(gs.ID)
	expires := now.Add(s.cfg.RequestTimeout)
	s.mu.Lock()
	s.holds[mate.ID], s.users[user.ID] = gs.ID, gs.ID
	p := &pendingSession{gs: gs}
	p.timer = s.after(s.cfg.RequestTimeout, func(ctx context.Context) { s.requestTimedOut(ctx, gs.ID, p) })
	s.pending[gs.ID] = p
	s.mu.Unlock()

	s.log.Info("guide requested", "gsSeq", gs.ID, "user", user.ID, "mate", mate.ID, "kind", kind)
	s.notify(ctx, mate.ID, Event{Type: EventRequest, GsSeq: gs.ID, User: partyOf(fresh), ExpiresAt: &expires})
	return &Request{Session: gs, Mate: *mate, ExpiresAt: expires}, nil
}

// heldElsewhereRetries is how many more mates a ranked ask tries when the
// one it picked turns out to be asked through another node meanwhile.
const heldElsewhereRetries = 2

// createRequest picks a mate and stores the request, unless the mate is
// held by a request made through another node (the store checks what this
// node's holds cannot see): then a ranked ask picks again, passing it over,
// and a friend's is refused as busy.
func (s *Service) createRequest(ctx context.Context, user *Account, kind MatchKind, pick func(context.Context) (*Account, error)) (*Account, Session, error) {
	var passed []int64
	defer func() {
		s.mu.Lock()
		for _, id := range passed {
			if s.holds[id] == 0 {
				delete(s.holds, id)
			}
		}
		s.mu.Unlock()
	}()
	for {
		mate, err := pick(ctx)
		if err != nil {
			return nil, Session{}, err
		}
		now := s.cfg.Now()
		gs := Session{UserID: user.ID, MateID: mate.ID, Kind: kind, Status: StatusRequested, CreatedAt: now}
		err = s.store.RequestGuideSession(ctx, &gs, now.Add(-s.cfg.RequestTimeout), now.Add(-s.cfg.BeginTimeout))
		if err == nil {
			return mate, gs, nil
		}
		if errors.Is(err, ErrConflict) && kind != MatchFriend && len(passed) < heldElsewhereRetries {
			// Its hold here stays until the ask is over, so the next pick
			// passes it over.
			passed = append(passed, mate.ID)
			continue
		}
		s.mu.Lock()
		delete(s.holds, mate.ID)
		s.mu.Unlock()
		if errors.Is(err, ErrConflict) {
			return nil, Session{}, errMateBusy
		}
		return nil, Session{}, fmt.Errorf("guide: match: %w", err)
	}
}

// release forgets the holds of a session that is over.
func (s *Service) releaseLocked(gs *Session) {
	if s.holds[gs.MateID] == gs.ID {
		delete(s.holds, gs.MateID)
	}
	if s.users[gs.UserID] == gs.ID {
		delete(s.users, gs.UserID)
	}
	if p := s.pending[gs.ID]; p != nil {
		p.timer.Stop()
		delete(s.pending, gs.ID)
	}
}

// forgetWaiting drops this node's holds of a session that stopped waiting
// elsewhere (answered, begun or withdrawn through another node), unless the
// guide runs on this node's clock, which keeps them until it ends.
func (s *Service) forgetWaiting(gs *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[gs.ID] == nil {
		s.releaseLocked(gs)
	}
}

func (s *Service) release(gs *Session) {
	s.mu.Lock()
	s.releaseLocked(gs)
	s.mu.Unlock()
}

// session loads gsSeq for one of its parties; others learn nothing.
func (s *Service) session(ctx context.Context, a *Account, gsSeq int64) (*Session, error) {
	gs, err := s.store.GuideSession(ctx, gsSeq)
	if errors.Is(err, ErrNotFound) {
		return nil, errSessionUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("guide: session %d: %w", gsSeq, err)
	}
	if gs.UserID != a.ID && gs.MateID != a.ID {
		return nil, errSessionUnknown
	}
	gs.RoomID = RoomID(gs.ID)
	return gs, nil
}

func (s *Service) requestTimedOut(ctx context.Context, gsSeq int64, p *pendingSession) {
	ok, err := s.store.TransitionSession(ctx, gsSeq, []SessionStatus{StatusRequested}, StatusTimeout, s.cfg.Now())
	if err != nil {
		s.log.Error("guide request timeout", "gsSeq", gsSeq, "err", err)
		return
	}
	if !ok {
		s.forgetWaiting(&p.gs) // answered meanwhile, maybe on another node
		return
	}
	s.release(&p.gs)
	s.log.Info("guide request timed out", "gsSeq", gsSeq)
	s.notify(ctx, p.gs.UserID, Event{Type: EventTimeout, GsSeq: gsSeq, Reason: string(StatusTimeout)})
	s.notify(ctx, p.gs.MateID, Event{Type: EventCancelled, GsSeq: gsSeq, Reason: string(StatusTimeout)})
}

// Approval is the mate's answer to /guide/create.
type Approval struct {
	Session Session
	User    Account
	Token   string // the mate's video token
}

// Approve is /guide/create: the mate accepts; the room is g-{gs_seq} and
// both sides get a video token (the user's by push).
func (s *Service) Approve(ctx context.Context, mate *Account, gsSeq int64) (*Approval, error) {
	if mate.Role != RoleMate {
		return nil, errMatesOnly
	}
	gs, err := s.session(ctx, mate, gsSeq)
	if err != nil {
		return nil, err
	}
	ok, err := s.store.TransitionSession(ctx, gsSeq, []SessionStatus{StatusRequested}, StatusApproved, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("guide: approve: %w", err)
	}
	if !ok {
		return nil, errRequestClosed
	}
	gs.Status = StatusApproved
	if err := s.store.SetAvailability(ctx, mate.ID, Busy); err != nil {
		s.log.Error("guide approve: mate busy", "mate", mate.ID, "err", err)
	}
	user, err := s.store.GuideAccount(ctx, gs.UserID)
	if err != nil {
		return nil, fmt.Errorf("guide: approve: %w", err)
	}
	mateToken, err := s.issueVideoToken(mate.ID, gs.RoomID)
	if err != nil {
		return nil, err
	}
	userToken, err := s.issueVideoToken(user.ID, gs.RoomID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	p := s.pending[gsSeq]
	if p == nil { // created on another node or before a restart
		p = &pendingSession{}
		s.pending[gsSeq] = p
		s.holds[gs.MateID], s.users[gs.UserID] = gs.ID, gs.ID
	} else {
		p.timer.Stop()
	}
	p.gs = *gs
	p.gen++
	gen := p.gen
	p.timer = s.after(s.cfg.BeginTimeout, func(ctx context.Context) { s.neverBegun(ctx, gsSeq, gen) })
	s.mu.Unlock()

	s.log.Info("guide approved", "gsSeq", gsSeq, "room", gs.RoomID)
	s.notify(ctx, user.ID, Event{Type: EventApproved, GsSeq: gsSeq, RoomID: gs.RoomID, Token: userToken, Mate: partyOf(mate)})
	return &Approval{Session: *gs, User: *user, Token: mateToken}, nil
}

// Reject is the mate's refusal.
func (s *Service) Reject(ctx context.Context, mate *Account, gsSeq int64) error {
	if mate.Role != RoleMate {
		return errMatesOnly
	}
	gs, err := s.session(ctx, mate, gsSeq)
	if err != nil {
		return err
	}
	ok, err := s.store.TransitionSession(ctx, gsSeq, []SessionStatus{StatusRequested}, StatusRejected, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("guide: reject: %w", err)
	}
	if !ok {
		return errRequestClosed
	}
	s.release(gs)
	s.log.Info("guide rejected", "gsSeq", gsSeq)
	s.notify(ctx, gs.UserID, Event{Type: EventRejected, GsSeq: gsSeq, Reason: string(StatusRejected)})
	return nil
}

// Cancel withdraws a session that has not begun (either side).
func (s *Service) Cancel(ctx context.Context, a *Account, gsSeq int64) error {
	gs, err := s.session(ctx, a, gsSeq)
	if err != nil {
		return err
	}
	return s.withdraw(ctx, gs, endCancelled, a.ID)
}

func (s *Service) withdraw(ctx context.Context, gs *Session, reason EndReason, by int64) error {
	ok, err := s.store.TransitionSession(ctx, gs.ID, []SessionStatus{StatusRequested, StatusApproved}, StatusCancelled, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("guide: cancel: %w", err)
	}
	if !ok {
		return errRequestClosed
	}
	s.release(gs)
	if gs.Status == StatusApproved {
		s.freeMate(ctx, gs.MateID)
		s.closeRoom(gs.ID)
	}
	s.log.Info("guide cancelled", "gsSeq", gs.ID, "reason", reason)
	for _, id := range []int64{gs.UserID, gs.MateID} {
		if id != by {
			s.notify(ctx, id, Event{Type: EventCancelled, GsSeq: gs.ID, Reason: string(reason)})
		}
	}
	return nil
}

// freeMate turns a busy mate available again.
func (s *Service) freeMate(ctx context.Context, mateID int64) {
	m, err := s.store.GuideAccount(ctx, mateID)
	if err == nil && m.Availability == Busy {
		err = s.store.SetAvailability(ctx, mateID, Available)
	}
	if err != nil {
		s.log.Error("guide: free mate", "mate", mateID, "err", err)
	}
}

func (s *Service) neverBegun(ctx context.Context, gsSeq int64, gen int) {
	s.mu.Lock()
	p := s.pending[gsSeq]
	if p == nil || p.gen != gen {
		s.mu.Unlock()
		return
	}
	gs := p.gs
	s.mu.Unlock()
	err := s.withdraw(ctx, &gs, endNotBegun, 0)
	switch {
	case errors.Is(err, errRequestClosed):
		s.forgetWaiting(&gs) // begun or withdrawn meanwhile, maybe on another node
	case err != nil:
		s.log.Error("guide never begun", "gsSeq", gsSeq, "err", err)
	}
}
