package guide

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cstalk/cstalk/video"
)

// State is a guide session as /guide/session/{gs_seq} shows it. GhSeq is
// the running history, 0 when no guide runs: the apps' validity check.
type State struct {
	Session     Session
	GhSeq       int64
	EndsAt      *time.Time
	Remaining   time.Duration
	TicketsUsed int
	// Ended is the guide's history once it is completed, so an app that
	// missed guideEnded still learns how it ended.
	Ended *History
}

// Begun is the answer to /guide/begin and /guide/extend.
type Begun struct {
	History     History
	TicketsLeft int
}

// Begin is /guide/begin: the user receives the mate's stream; the history
// starts and the first ticket is spent.
func (s *Service) Begin(ctx context.Context, user *Account, gsSeq int64) (*Begun, error) {
	if user.Role != RoleUser {
		return nil, errUsersOnly
	}
	gs, err := s.session(ctx, user, gsSeq)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	h, left, err := s.store.BeginGuide(ctx, gsSeq, now, now.Add(s.cfg.TicketDuration))
	switch {
	case errors.Is(err, ErrNoTicket):
		return nil, errNoTicket
	case errors.Is(err, ErrConflict):
		return nil, errNotApproved
	case err != nil:
		return nil, fmt.Errorf("guide: begin: %w", err)
	}
	gs.Status, gs.HistoryID = StatusActive, h.ID
	l := &liveGuide{gs: *gs, h: *h, seen: now, lastTicketsLeft: left}
	s.mu.Lock()
	if p := s.pending[gsSeq]; p != nil {
		p.timer.Stop()
		delete(s.pending, gsSeq)
	}
	s.holds[gs.MateID], s.users[gs.UserID] = gs.ID, gs.ID
	s.live[gsSeq] = l
	s.armLocked(l)
	s.armWatchdogLocked(l)
	s.mu.Unlock()

	s.log.Info("guide begun", "gsSeq", gsSeq, "ghSeq", h.ID, "endsAt", h.EndsAt)
	s.tellBoth(ctx, gs, left, Event{Type: EventBegun, GsSeq: gsSeq, GhSeq: h.ID})
	return &Begun{History: *h, TicketsLeft: left}, nil
}

// tellBoth sends ev with the clock of the guide; only the user learns its
// tickets left.
func (s *Service) tellBoth(ctx context.Context, gs *Session, ticketsLeft int, ev Event) {
	s.mu.Lock()
	if l := s.live[gs.ID]; l != nil {
		ends := l.h.EndsAt.UTC()
		remaining := int(max(l.h.EndsAt.Sub(s.cfg.Now()), 0).Round(time.Second) / time.Second)
		used := l.h.TicketsUsed
		ev.EndsAt, ev.RemainingSeconds, ev.TicketsUsed = &ends, &remaining, &used
	}
	s.mu.Unlock()
	s.notify(ctx, gs.MateID, ev)
	ev.TicketsLeft = &ticketsLeft
	s.notify(ctx, gs.UserID, ev)
}

// armLocked (re)sets the warning and expiry of l for its current end.
func (s *Service) armLocked(l *liveGuide) {
	stopAll(l.warn, l.expire)
	l.gen++
	gen, gsSeq := l.gen, l.gs.ID
	remaining := l.h.EndsAt.Sub(s.cfg.Now())
	l.warn = nil
	if remaining > s.cfg.WarnBefore {
		l.warn = s.after(remaining-s.cfg.WarnBefore, func(ctx context.Context) { s.warnNow(ctx, gsSeq, gen) })
	}
	l.expire = s.after(remaining, func(ctx context.Context) {
		s.complete(ctx, gsSeq, EndExpired, func(l *liveGuide) (time.Time, bool) { return l.h.EndsAt, l.gen == gen })
	})
}

// armWatchdogLocked ends the guide when neither app checks in for
// VanishAfter.
func (s *Service) armWatchdogLocked(l *liveGuide) {
	s.armWatchdogInLocked(l, s.cfg.VanishAfter)
}

func (s *Service) armWatchdogInLocked(l *liveGuide, d time.Duration) {
	if l.watchdog != nil {
		l.watchdog.Stop()
	}
	l.watchGen++
	gen, gsSeq := l.watchGen, l.gs.ID
	l.watchdog = s.after(d, func(ctx context.Context) { s.vanished(ctx, gsSeq, gen) })
}

// vanished completes a guide neither app has checked for VanishAfter,
// counting the checks other nodes answered (stored by TouchGuide).
func (s *Service) vanished(ctx context.Context, gsSeq int64, gen int) {
	s.mu.Lock()
	l := s.live[gsSeq]
	if l == nil || l.done || l.watchGen != gen {
		s.mu.Unlock()
		return
	}
	historyID := l.h.ID
	s.mu.Unlock()
	if h, err := s.store.GuideHistory(ctx, historyID); err == nil && h.CheckedAt != nil {
		s.mu.Lock()
		if l.watchGen == gen && !l.done && h.CheckedAt.After(l.seen) {
			l.seen = *h.CheckedAt
			if left := s.cfg.VanishAfter - s.cfg.Now().Sub(l.seen); left > 0 {
				s.armWatchdogInLocked(l, left)
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
	s.complete(ctx, gsSeq, EndVanished, func(l *liveGuide) (time.Time, bool) { return l.seen, l.watchGen == gen })
}

func (s *Service) warnNow(ctx context.Context, gsSeq int64, gen int) {
	s.mu.Lock()
	l := s.live[gsSeq]
	s.mu.Unlock()
	if l == nil {
		return
	}
	// Ordered with Extend and complete: a warning of a ticket an extension
	// has just superseded is dropped, never sent after guideExtended.
	l.op.Lock()
	defer l.op.Unlock()
	s.mu.Lock()
	if l.gen != gen || l.done {
		s.mu.Unlock()
		return
	}
	gs := l.gs
	s.mu.Unlock()
	left := 0
	if u, err := s.store.GuideAccount(ctx, gs.UserID); err == nil {
		left = u.Tickets
	}
	s.log.Info("guide warning", "gsSeq", gsSeq)
	s.tellBoth(ctx, &gs, left, Event{Type: EventWarning, GsSeq: gsSeq, GhSeq: gs.HistoryID})
}

// Check is /guide/session/{gs_seq}: the apps' 5-second check. A check at or
// after the end completes the guide if the timer has not yet.
func (s *Service) Check(ctx context.Context, a *Account, gsSeq int64) (*State, error) {
	gs, err := s.session(ctx, a, gsSeq)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	s.mu.Lock()
	l := s.live[gsSeq]
	if l != nil && !l.done {
		if !now.Before(l.h.EndsAt) {
			gen := l.gen
			s.mu.Unlock()
			s.complete(ctx, gsSeq, EndExpired, func(l *liveGuide) (time.Time, bool) { return l.h.EndsAt, l.gen == gen })
			return s.storedState(ctx, a, gsSeq)
		}
		l.seen = now
		s.armWatchdogLocked(l)
		st := &State{Session: l.gs, GhSeq: l.h.ID, TicketsUsed: l.h.TicketsUsed, Remaining: l.h.EndsAt.Sub(now)}
		ends := l.h.EndsAt
		st.EndsAt = &ends
		s.mu.Unlock()
		return st, nil
	}
	s.mu.Unlock()
	return s.checkElsewhere(ctx, gs, now)
}

// checkElsewhere answers the check of a guide whose clock runs on another
// node: the check is stored for that node's watchdog, and a guide past its
// end is completed here (once, by the store) in case that node is gone.
func (s *Service) checkElsewhere(ctx context.Context, gs *Session, now time.Time) (*State, error) {
	st, err := s.stateOf(ctx, gs)
	if err != nil || st.GhSeq == 0 {
		return st, err
	}
	if now.Before(*st.EndsAt) {
		if err := s.store.TouchGuide(ctx, st.GhSeq, now); err != nil {
			s.log.Warn("guide: record a session check", "gsSeq", gs.ID, "err", err)
		}
		return st, nil
	}
	h, done, err := s.store.CompleteGuide(ctx, st.GhSeq, st.TicketsUsed, *st.EndsAt, EndExpired)
	if err != nil {
		return nil, fmt.Errorf("guide: complete: %w", err)
	}
	if done {
		s.ended(ctx, gs, h)
	}
	fresh, err := s.store.GuideSession(ctx, gs.ID)
	if err != nil {
		return nil, fmt.Errorf("guide: session %d: %w", gs.ID, err)
	}
	fresh.RoomID = RoomID(fresh.ID)
	return s.stateOf(ctx, fresh)
}

func (s *Service) storedState(ctx context.Context, a *Account, gsSeq int64) (*State, error) {
	gs, err := s.session(ctx, a, gsSeq)
	if err != nil {
		return nil, err
	}
	return s.stateOf(ctx, gs)
}

// stateOf describes a session this node has no clock for.
func (s *Service) stateOf(ctx context.Context, gs *Session) (*State, error) {
	st := &State{Session: *gs}
	if gs.HistoryID == 0 {
		return st, nil
	}
	h, err := s.store.GuideHistory(ctx, gs.HistoryID)
	if err != nil {
		return nil, fmt.Errorf("guide: session state: %w", err)
	}
	st.TicketsUsed = h.TicketsUsed
	if h.CompletedAt != nil {
		st.Ended = h
	}
	if gs.Status == StatusActive && h.CompletedAt == nil {
		st.GhSeq = h.ID
		ends := h.EndsAt
		st.EndsAt = &ends
		st.Remaining = max(h.EndsAt.Sub(s.cfg.Now()), 0)
	}
	return st, nil
}

// Extend is /guide/extend: another ticket, another TicketDuration.
func (s *Service) Extend(ctx context.Context, user *Account, gsSeq int64) (*Begun, error) {
	if user.Role != RoleUser {
		return nil, errUsersOnly
	}
	gs, err := s.session(ctx, user, gsSeq)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	l := s.live[gsSeq]
	s.mu.Unlock()
	if l == nil {
		return s.extendElsewhere(ctx, gs)
	}
	l.op.Lock()
	defer l.op.Unlock()
	s.mu.Lock()
	if l.done || !s.cfg.Now().Before(l.h.EndsAt) {
		s.mu.Unlock()
		return nil, errNotActive
	}
	seen := l.h
	s.mu.Unlock()
	h, left, err := s.extendStored(ctx, seen)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	l.h = *h
	l.lastTicketsLeft = left
	s.armLocked(l)
	s.mu.Unlock()
	s.log.Info("guide extended", "gsSeq", gsSeq, "ghSeq", h.ID, "tickets", h.TicketsUsed, "endsAt", h.EndsAt)
	s.tellBoth(ctx, gs, left, Event{Type: EventExtended, GsSeq: gsSeq, GhSeq: h.ID})
	return &Begun{History: *h, TicketsLeft: left}, nil
}

// extendElsewhere extends a guide whose clock runs on another node: the
// store decides, and the relayed guideExtended re-arms that node's clock.
func (s *Service) extendElsewhere(ctx context.Context, gs *Session) (*Begun, error) {
	if gs.Status != StatusActive || gs.HistoryID == 0 {
		return nil, errNotActive
	}
	seen, err := s.store.GuideHistory(ctx, gs.HistoryID)
	if err != nil {
		return nil, fmt.Errorf("guide: extend: %w", err)
	}
	if seen.CompletedAt != nil || !s.cfg.Now().Before(seen.EndsAt) {
		return nil, errNotActive
	}
	h, left, err := s.extendStored(ctx, *seen)
	if err != nil {
		return nil, err
	}
	s.log.Info("guide extended", "gsSeq", gs.ID, "ghSeq", h.ID, "tickets", h.TicketsUsed, "endsAt", h.EndsAt, "clock", "another node")
	ends, used := h.EndsAt.UTC(), h.TicketsUsed
	remaining := int(max(h.EndsAt.Sub(s.cfg.Now()), 0).Round(time.Second) / time.Second)
	s.tellBoth(ctx, gs, left, Event{Type: EventExtended, GsSeq: gs.ID, GhSeq: h.ID,
		EndsAt: &ends, RemainingSeconds: &remaining, TicketsUsed: &used})
	return &Begun{History: *h, TicketsLeft: left}, nil
}

// extendStored spends one more ticket on the guide of history seen. When
// another node extended it meanwhile, it extends the guide as it now
// stands: the user asked for one more ticket either way.
func (s *Service) extendStored(ctx context.Context, seen History) (*History, int, error) {
	for attempt := 1; ; attempt++ {
		h, left, err := s.store.ExtendGuide(ctx, seen.ID, seen.TicketsUsed, seen.EndsAt.Add(s.cfg.TicketDuration))
		switch {
		case err == nil:
			return h, left, nil
		case errors.Is(err, ErrNoTicket):
			return nil, 0, errNoTicket
		case !errors.Is(err, ErrConflict):
			return nil, 0, fmt.Errorf("guide: extend: %w", err)
		case attempt == 3:
			return nil, 0, errNotActive
		}
		fresh, err := s.store.GuideHistory(ctx, seen.ID)
		if err != nil {
			return nil, 0, fmt.Errorf("guide: extend: %w", err)
		}
		if fresh.CompletedAt != nil || !s.cfg.Now().Before(fresh.EndsAt) {
			return nil, 0, errNotActive
		}
		seen = *fresh
	}
}

// Completion is the answer to /guide/complete.
type Completion struct {
	History History
	// Already is true when the guide had been completed before this call.
	Already bool
}

// Complete is /guide/complete by either side (the reason is who ended it).
func (s *Service) Complete(ctx context.Context, a *Account, gsSeq int64) (*Completion, error) {
	gs, err := s.session(ctx, a, gsSeq)
	if err != nil {
		return nil, err
	}
	reason := EndUser
	if a.ID == gs.MateID {
		reason = EndMate
	}
	return s.completeSession(ctx, gs, reason)
}

func (s *Service) completeSession(ctx context.Context, gs *Session, reason EndReason) (*Completion, error) {
	now := s.cfg.Now()
	c, err := s.complete(ctx, gs.ID, reason, func(*liveGuide) (time.Time, bool) { return now, true })
	if err != nil || c != nil {
		return c, err
	}
	// No clock here (another node's guide, or one the restart lost).
	if gs.HistoryID == 0 {
		return nil, errNotActive
	}
	h, done, err := s.store.CompleteGuide(ctx, gs.HistoryID, 0, now, reason)
	if err != nil {
		return nil, fmt.Errorf("guide: complete: %w", err)
	}
	if done {
		s.ended(ctx, gs, h)
	}
	return &Completion{History: *h, Already: !done}, nil
}

// complete ends the live guide gsSeq once. when decides, with the service
// lock held and the guide's operations ordered, whether the caller still
// stands (a timer re-armed since is stale) and the completion time. It
// returns nil, nil when this node has no clock for the guide or the caller
// was stale.
func (s *Service) complete(ctx context.Context, gsSeq int64, reason EndReason, when func(*liveGuide) (time.Time, bool)) (*Completion, error) {
	s.mu.Lock()
	l := s.live[gsSeq]
	s.mu.Unlock()
	if l == nil {
		return nil, nil
	}
	l.op.Lock()
	defer l.op.Unlock()
	s.mu.Lock()
	if l.done {
		h := l.h
		s.mu.Unlock()
		return &Completion{History: h, Already: true}, nil
	}
	at, current := when(l)
	if !current {
		s.mu.Unlock()
		return nil, nil
	}
	gs, historyID := l.gs, l.h.ID
	tickets := 0
	if reason == EndExpired {
		tickets = l.h.TicketsUsed
	}
	s.mu.Unlock()

	h, done, err := s.store.CompleteGuide(ctx, historyID, tickets, at, reason)
	if err != nil {
		s.log.Error("guide complete", "gsSeq", gsSeq, "reason", reason, "err", err)
		if reason == EndExpired || reason == EndVanished {
			// The clock must end it: try again shortly.
			s.mu.Lock()
			if !s.closed {
				l.gen++
				s.retryCompletionLocked(l, reason, at)
			}
			s.mu.Unlock()
		}
		return nil, fmt.Errorf("guide: complete: %w", err)
	}
	if !done && h.CompletedAt == nil {
		// Extended on another node meanwhile: the clock follows the store.
		if s.followStore(ctx, l) {
			return nil, nil
		}
		if fresh, err := s.store.GuideHistory(ctx, historyID); err == nil {
			h = fresh
		}
	}
	s.mu.Lock()
	l.done = true
	l.h = *h
	stopAll(l.warn, l.expire, l.watchdog)
	delete(s.live, gsSeq)
	s.releaseLocked(&gs)
	s.mu.Unlock()
	if done {
		s.ended(ctx, &gs, h)
	}
	return &Completion{History: *h, Already: !done}, nil
}

// retryCompletionLocked replaces l's expiry with another try, RetryAfter
// from now, at completing it for reason at at, valid while l.gen stays.
func (s *Service) retryCompletionLocked(l *liveGuide, reason EndReason, at time.Time) {
	gen, gsSeq := l.gen, l.gs.ID
	stopAll(l.expire)
	l.expire = s.after(s.cfg.RetryAfter, func(ctx context.Context) {
		s.complete(ctx, gsSeq, reason, func(l *liveGuide) (time.Time, bool) { return at, l.gen == gen })
	})
}

// followStore re-arms l's clock from the stored history when another node
// extended the guide; it reports whether the guide is still open.
func (s *Service) followStore(ctx context.Context, l *liveGuide) bool {
	s.mu.Lock()
	id := l.h.ID
	s.mu.Unlock()
	fresh, err := s.store.GuideHistory(ctx, id)
	if err != nil {
		s.log.Error("guide: read history", "ghSeq", id, "err", err)
		// Keep the clock: its next firing asks the store again.
		s.mu.Lock()
		if !l.done && !s.closed {
			s.retryCompletionLocked(l, EndExpired, l.h.EndsAt)
		}
		s.mu.Unlock()
		return true
	}
	if fresh.CompletedAt != nil {
		return false
	}
	s.mu.Lock()
	if !l.done && fresh.TicketsUsed > l.h.TicketsUsed {
		l.h = *fresh
		s.armLocked(l)
	}
	s.mu.Unlock()
	return true
}

// ended tells both sides and closes the room, once per guide.
func (s *Service) ended(ctx context.Context, gs *Session, h *History) {
	s.log.Info("guide completed", "gsSeq", gs.ID, "ghSeq", h.ID, "reason", h.EndReason,
		"duration", h.Duration, "tickets", h.TicketsUsed)
	s.closeRoom(gs.ID)
	used, secs := h.TicketsUsed, int(h.Duration/time.Second)
	ev := Event{Type: EventEnded, GsSeq: gs.ID, GhSeq: h.ID, Reason: string(h.EndReason), TicketsUsed: &used, DurationSeconds: &secs}
	s.notify(ctx, gs.MateID, ev)
	s.notify(ctx, gs.UserID, ev)
}

// Delete is /guide/session/delete: a running guide is completed first, a
// session not begun is withdrawn; the session then reads as deleted.
func (s *Service) Delete(ctx context.Context, a *Account, gsSeq int64) error {
	gs, err := s.session(ctx, a, gsSeq)
	if err != nil {
		return err
	}
	switch gs.Status {
	case StatusActive:
		if _, err := s.Complete(ctx, a, gsSeq); err != nil {
			return err
		}
	case StatusRequested, StatusApproved:
		if err := s.withdraw(ctx, gs, endCancelled, a.ID); err != nil && !errors.Is(err, errRequestClosed) {
			return err
		}
	}
	_, err = s.store.TransitionSession(ctx, gsSeq,
		[]SessionStatus{StatusCompleted, StatusCancelled, StatusRejected, StatusTimeout}, StatusDeleted, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("guide: delete session: %w", err)
	}
	return nil
}

// history loads ghSeq for one of its parties.
func (s *Service) history(ctx context.Context, a *Account, ghSeq int64) (*History, error) {
	h, err := s.store.GuideHistory(ctx, ghSeq)
	if errors.Is(err, ErrNotFound) {
		return nil, errHistoryUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("guide: history %d: %w", ghSeq, err)
	}
	if h.UserID != a.ID && h.MateID != a.ID {
		return nil, errHistoryUnknown
	}
	return h, nil
}

// maxNoteBytes bounds a CRM note (a TEXT column).
const maxNoteBytes = 60000

// SetCRMNote is /guide/crm: the CRM record was written at completion; a
// party attaches its note.
func (s *Service) SetCRMNote(ctx context.Context, a *Account, ghSeq int64, note string) (*CRM, error) {
	if len(note) > maxNoteBytes {
		return nil, errBadRequest
	}
	h, err := s.history(ctx, a, ghSeq)
	if err != nil {
		return nil, err
	}
	if h.CompletedAt == nil {
		return nil, errNotCompleted
	}
	crm, err := s.store.SetCRMNote(ctx, ghSeq, a.ID, note, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("guide: crm: %w", err)
	}
	return crm, nil
}

// CRMRecord returns the CRM record of ghSeq for one of its parties.
func (s *Service) CRMRecord(ctx context.Context, a *Account, ghSeq int64) (*CRM, error) {
	if _, err := s.history(ctx, a, ghSeq); err != nil {
		return nil, err
	}
	crm, err := s.store.GuideCRM(ctx, ghSeq)
	if errors.Is(err, ErrNotFound) {
		return nil, errNotCompleted
	}
	if err != nil {
		return nil, fmt.Errorf("guide: crm: %w", err)
	}
	return crm, nil
}

// Rated is the answer to /eval: the mate's new rating and rank.
type Rated struct {
	Mate Account
	Rank int
}

// maxCommentBytes bounds an evaluation comment.
const maxCommentBytes = 4000

// Evaluate is /eval: the user rates the mate of a completed guide, once.
func (s *Service) Evaluate(ctx context.Context, user *Account, ghSeq int64, stars int, comment string) (*Rated, error) {
	if user.Role != RoleUser {
		return nil, errUsersOnly
	}
	if stars < 1 || stars > 5 {
		return nil, errBadStars
	}
	if len(comment) > maxCommentBytes {
		return nil, errBadRequest
	}
	h, err := s.history(ctx, user, ghSeq)
	if err != nil {
		return nil, err
	}
	if h.CompletedAt == nil {
		return nil, errNotCompleted
	}
	mate, err := s.store.Evaluate(ctx, &Evaluation{HistoryID: ghSeq, UserID: user.ID, MateID: h.MateID, Stars: stars, Comment: comment, CreatedAt: s.cfg.Now()})
	if errors.Is(err, ErrConflict) {
		return nil, errEvaluated
	}
	if err != nil {
		return nil, fmt.Errorf("guide: evaluate: %w", err)
	}
	return &Rated{Mate: *mate, Rank: s.rankOf(ctx, mate.ID)}, nil
}

// ParticipantLeft is told by the wiring when someone leaves a video room
// (video.EventLeft). A party leaving a running guide ends it: "leave" as
// that side's ending, "dropped" (the connection was lost past the grace) as
// a lost connection. Rooms the guide closed itself report "closed".
func (s *Service) ParticipantLeft(ctx context.Context, room video.RoomKey, userID, reason string) {
	gsSeq, ok := ParseRoomID(room.ID())
	if !ok || room != RoomKey(gsSeq) || (reason != "leave" && reason != "dropped") {
		return
	}
	id, err := strconv.ParseInt(userID, 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	l := s.live[gsSeq]
	var gs Session
	if l != nil {
		gs = l.gs
	}
	s.mu.Unlock()
	if l == nil || (id != gs.UserID && id != gs.MateID) {
		return
	}
	end := EndLost
	if reason == "leave" {
		end = EndUser
		if id == gs.MateID {
			end = EndMate
		}
	}
	if _, err := s.completeSession(ctx, &gs, end); err != nil {
		s.log.Error("guide: participant left", "gsSeq", gsSeq, "err", err)
	}
}

// Recover re-arms the clocks of guides left open by a previous run of this
// node (call once at start, before serving): a guide whose time ran out
// meanwhile is completed at its end.
func (s *Service) Recover(ctx context.Context) error {
	open, err := s.store.OpenHistories(ctx)
	if err != nil {
		return fmt.Errorf("guide: recover: %w", err)
	}
	now := s.cfg.Now()
	for _, h := range open {
		gs, err := s.store.GuideSession(ctx, h.SessionID)
		if err != nil {
			return fmt.Errorf("guide: recover: %w", err)
		}
		gs.RoomID = RoomID(gs.ID)
		l := &liveGuide{gs: *gs, h: h, seen: now}
		s.mu.Lock()
		if _, mine := s.live[gs.ID]; mine {
			s.mu.Unlock()
			continue
		}
		s.live[gs.ID] = l
		s.holds[gs.MateID], s.users[gs.UserID] = gs.ID, gs.ID
		s.armLocked(l)
		s.armWatchdogLocked(l)
		s.mu.Unlock()
	}
	if len(open) > 0 {
		s.log.Info("guide clocks recovered", "guides", len(open))
	}
	return s.recoverWaiting(ctx)
}

// recoverWaiting re-arms the timeouts of the sessions not begun yet: a
// request the mate never answers times out, an approval never begun is
// withdrawn and frees the mate, whichever process made them.
func (s *Service) recoverWaiting(ctx context.Context) error {
	waiting, err := s.store.OpenGuideSessions(ctx)
	if err != nil {
		return fmt.Errorf("guide: recover: %w", err)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, gs := range waiting {
		if _, mine := s.pending[gs.ID]; mine {
			continue
		}
		gs.RoomID = RoomID(gs.ID)
		p := &pendingSession{gs: gs, gen: 1}
		gsSeq := gs.ID
		if gs.Status == StatusRequested {
			p.timer = s.after(gs.CreatedAt.Add(s.cfg.RequestTimeout).Sub(now), func(ctx context.Context) { s.requestTimedOut(ctx, gsSeq, p) })
		} else {
			answered := gs.CreatedAt
			if gs.AnsweredAt != nil {
				answered = *gs.AnsweredAt
			}
			p.timer = s.after(answered.Add(s.cfg.BeginTimeout).Sub(now), func(ctx context.Context) { s.neverBegun(ctx, gsSeq, 1) })
		}
		s.pending[gs.ID] = p
		s.holds[gs.MateID], s.users[gs.UserID] = gs.ID, gs.ID
	}
	if len(waiting) > 0 {
		s.log.Info("guide requests and approvals recovered", "sessions", len(waiting))
	}
	return nil
}
