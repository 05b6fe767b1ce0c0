package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/cstalk/cstalk/video/guide"
)

// The persistence of package guide. State changes that must happen once
// (begin, extension, completion, evaluation) are conditional UPDATEs inside
// a transaction: the row's current status decides, so two nodes or two
// goroutines racing for the same change see exactly one winner.

var _ guide.Store = (*Store)(nil)

type guideAccountRow struct {
	ID           int64 `gorm:"primaryKey"`
	Role         string
	LoginName    string
	Name         string
	PasswordHash string
	Tickets      int
	Availability string
	RatingSum    int64
	RatingCount  int64
	RatingAvg    float64
	CreatedAt    time.Time `gorm:"autoCreateTime:false"`
}

func (guideAccountRow) TableName() string { return "guide_accounts" }

func (r guideAccountRow) toGuide() guide.Account {
	return guide.Account{
		ID: r.ID, Role: guide.Role(r.Role), LoginName: r.LoginName, Name: r.Name,
		PasswordHash: r.PasswordHash, Tickets: r.Tickets, Availability: guide.Availability(r.Availability),
		RatingSum: r.RatingSum, RatingCount: r.RatingCount, CreatedAt: r.CreatedAt.UTC(),
	}
}

type guideFriendRow struct {
	UserID    int64     `gorm:"primaryKey;autoIncrement:false"`
	MateID    int64     `gorm:"primaryKey;autoIncrement:false"`
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
}

func (guideFriendRow) TableName() string { return "guide_friends" }

type guideSessionRow struct {
	ID         int64 `gorm:"primaryKey"`
	UserID     int64
	MateID     int64
	Kind       string
	Status     string
	HistoryID  int64
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	AnsweredAt *time.Time
	EndedAt    *time.Time
}

func (guideSessionRow) TableName() string { return "guide_sessions" }

func (r guideSessionRow) toGuide() *guide.Session {
	return &guide.Session{
		ID: r.ID, UserID: r.UserID, MateID: r.MateID, Kind: guide.MatchKind(r.Kind),
		Status: guide.SessionStatus(r.Status), HistoryID: r.HistoryID, CreatedAt: r.CreatedAt.UTC(),
		AnsweredAt: utcPtr(r.AnsweredAt), EndedAt: utcPtr(r.EndedAt),
	}
}

type guideHistoryRow struct {
	ID          int64 `gorm:"primaryKey"`
	SessionID   int64
	UserID      int64
	MateID      int64
	BeganAt     time.Time
	EndsAt      time.Time
	TicketsUsed int
	CompletedAt *time.Time
	EndReason   string
	DurationMs  int64
	CheckedAt   *time.Time
}

func (guideHistoryRow) TableName() string { return "guide_histories" }

func (r guideHistoryRow) toGuide() *guide.History {
	return &guide.History{
		ID: r.ID, SessionID: r.SessionID, UserID: r.UserID, MateID: r.MateID,
		BeganAt: r.BeganAt.UTC(), EndsAt: r.EndsAt.UTC(), TicketsUsed: r.TicketsUsed,
		CompletedAt: utcPtr(r.CompletedAt), EndReason: guide.EndReason(r.EndReason),
		Duration: time.Duration(r.DurationMs) * time.Millisecond, CheckedAt: utcPtr(r.CheckedAt),
	}
}

type guideCRMRow struct {
	HistoryID   int64 `gorm:"primaryKey;autoIncrement:false"`
	SessionID   int64
	UserID      int64
	MateID      int64
	BeganAt     time.Time
	EndedAt     time.Time
	DurationMs  int64
	TicketsUsed int
	EndReason   string
	Note        string
	NoteBy      int64
	CreatedAt   time.Time `gorm:"autoCreateTime:false"`
}

func (guideCRMRow) TableName() string { return "guide_crm" }

func (r guideCRMRow) toGuide() *guide.CRM {
	return &guide.CRM{
		HistoryID: r.HistoryID, SessionID: r.SessionID, UserID: r.UserID, MateID: r.MateID,
		BeganAt: r.BeganAt.UTC(), EndedAt: r.EndedAt.UTC(), Duration: time.Duration(r.DurationMs) * time.Millisecond,
		TicketsUsed: r.TicketsUsed, EndReason: guide.EndReason(r.EndReason), Note: r.Note, NoteBy: r.NoteBy,
		CreatedAt: r.CreatedAt.UTC(),
	}
}

type guideEvaluationRow struct {
	HistoryID int64 `gorm:"primaryKey;autoIncrement:false"`
	UserID    int64
	MateID    int64
	Stars     int
	Comment   string
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
}

func (guideEvaluationRow) TableName() string { return "guide_evaluations" }

// guideFail is fail for package guide's sentinels.
func (s *Store) guideFail(what string, err error) error {
	return s.failAs(what, err, guide.ErrNotFound, guide.ErrConflict, guide.ErrNotFound, guide.ErrConflict, guide.ErrNoTicket)
}

// CreateGuideAccount inserts a guide user or mate.
func (s *Store) CreateGuideAccount(ctx context.Context, a *guide.Account) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("create guide account %q", a.LoginName)
	var l limitChecker
	l.bytes("login name", a.LoginName, maxLoginBytes)
	l.chars("name", a.Name, maxNameChars)
	l.date("created at", a.CreatedAt)
	if l.err == nil && a.Role != guide.RoleUser && a.Role != guide.RoleMate {
		l.err = fmt.Errorf("role %q", a.Role)
	}
	if l.err != nil {
		return invalid(what, l.err)
	}
	availability := a.Availability
	if availability == "" {
		availability = guide.Offline
	}
	r := guideAccountRow{
		Role: string(a.Role), LoginName: cleanText(a.LoginName), Name: cleanText(a.Name),
		PasswordHash: a.PasswordHash, Tickets: max(a.Tickets, 0), Availability: string(availability),
		RatingSum: a.RatingSum, RatingCount: a.RatingCount, CreatedAt: dbTime(a.CreatedAt),
	}
	if r.RatingCount > 0 {
		r.RatingAvg = float64(r.RatingSum) / float64(r.RatingCount)
	}
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return s.guideFail(what, err)
	}
	a.ID, a.Availability, a.Tickets = r.ID, availability, r.Tickets
	return nil
}

// GuideAccount returns guide account id.
func (s *Store) GuideAccount(ctx context.Context, id int64) (*guide.Account, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r guideAccountRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.guideFail(fmt.Sprintf("guide account %d", id), err)
	}
	a := r.toGuide()
	return &a, nil
}

// GuideAccountByLogin finds a guide account by login name, byte for byte.
func (s *Store) GuideAccountByLogin(ctx context.Context, loginName string) (*guide.Account, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r guideAccountRow
	if err := s.db.WithContext(ctx).Where("login_name = ?", cleanText(loginName)).Take(&r).Error; err != nil {
		return nil, s.guideFail(fmt.Sprintf("guide account by login %q", loginName), err)
	}
	a := r.toGuide()
	return &a, nil
}

// SetAvailability sets a mate's availability.
func (s *Store) SetAvailability(ctx context.Context, mateID int64, a guide.Availability) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("set availability of mate %d", mateID)
	res := s.db.WithContext(ctx).Model(&guideAccountRow{}).
		Where("id = ? AND role = ?", mateID, string(guide.RoleMate)).Update("availability", string(a))
	if res.Error != nil {
		return s.guideFail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, guide.ErrNotFound)
	}
	return nil
}

// AddTickets changes a user's ticket balance by n, never below zero.
func (s *Store) AddTickets(ctx context.Context, userID int64, n int) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("add %d tickets to user %d", n, userID)
	var balance int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&guideAccountRow{}).Where("id = ? AND role = ?", userID, string(guide.RoleUser)).
			Update("tickets", gorm.Expr("CASE WHEN tickets + ? < 0 THEN 0 ELSE tickets + ? END", n, n))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return guide.ErrNotFound
		}
		return tx.Model(&guideAccountRow{}).Where("id = ?", userID).Pluck("tickets", &balance).Error
	})
	if err != nil {
		return 0, s.guideFail(what, err)
	}
	return balance, nil
}

// AddFriend records mateID as userID's friend; adding twice is harmless.
func (s *Store) AddFriend(ctx context.Context, userID, mateID int64, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	r := guideFriendRow{UserID: userID, MateID: mateID, CreatedAt: dbTime(at)}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error
	if err != nil {
		return s.guideFail(fmt.Sprintf("add friend %d of user %d", mateID, userID), err)
	}
	return nil
}

// Friends lists userID's friend mates by name.
func (s *Store) Friends(ctx context.Context, userID int64) ([]guide.Account, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []guideAccountRow
	err := s.db.WithContext(ctx).Table("guide_accounts").
		Joins("JOIN guide_friends ON guide_friends.mate_id = guide_accounts.id").
		Where("guide_friends.user_id = ? AND guide_accounts.role = ?", userID, string(guide.RoleMate)).
		Order("guide_accounts.name, guide_accounts.id").Select("guide_accounts.*").Find(&rows).Error
	if err != nil {
		return nil, s.guideFail(fmt.Sprintf("friends of user %d", userID), err)
	}
	return accountsOf(rows), nil
}

// RankedMates lists mates best first.
func (s *Store) RankedMates(ctx context.Context, onlyAvailable bool, limit int) ([]guide.Account, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Where("role = ?", string(guide.RoleMate))
	if onlyAvailable {
		q = q.Where("availability = ?", string(guide.Available))
	}
	var rows []guideAccountRow
	if err := q.Order("rating_avg DESC, rating_count DESC, id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, s.guideFail("ranked mates", err)
	}
	return accountsOf(rows), nil
}

func accountsOf(rows []guideAccountRow) []guide.Account {
	out := make([]guide.Account, len(rows))
	for i, r := range rows {
		out[i] = r.toGuide()
	}
	return out
}

// CreateGuideSession inserts a guide session.
func (s *Store) CreateGuideSession(ctx context.Context, gs *guide.Session) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	r := guideSessionRow{
		UserID: gs.UserID, MateID: gs.MateID, Kind: string(gs.Kind), Status: string(gs.Status),
		CreatedAt: dbTime(gs.CreatedAt),
	}
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return s.guideFail(fmt.Sprintf("create guide session of user %d with mate %d", gs.UserID, gs.MateID), err)
	}
	gs.ID = r.ID
	return nil
}

// RequestGuideSession inserts gs unless its mate is held by another
// request made after requestedSince or approved after approvedSince
// (ErrConflict): the mate is held for every node sharing the database.
// The no-op update locks the mate's row (MySQL) or the database (SQLite)
// until the insert, so two nodes asking at once cannot both see it free.
func (s *Store) RequestGuideSession(ctx context.Context, gs *guide.Session, requestedSince, approvedSince time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("request guide of user %d with mate %d", gs.UserID, gs.MateID)
	r := guideSessionRow{
		UserID: gs.UserID, MateID: gs.MateID, Kind: string(gs.Kind), Status: string(gs.Status),
		CreatedAt: dbTime(gs.CreatedAt),
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// MySQL counts no row changed by it: its RowsAffected says nothing.
		err := tx.Model(&guideAccountRow{}).Where("id = ? AND role = ?", gs.MateID, string(guide.RoleMate)).
			Update("role", gorm.Expr("role")).Error
		if err != nil {
			return err
		}
		var held int64
		err = tx.Model(&guideSessionRow{}).Where("mate_id = ? AND ((status = ? AND created_at > ?) OR (status = ? AND answered_at > ?))",
			gs.MateID, string(guide.StatusRequested), dbTime(requestedSince), string(guide.StatusApproved), dbTime(approvedSince)).
			Count(&held).Error
		if err != nil {
			return err
		}
		if held > 0 {
			return fmt.Errorf("mate held by another request: %w", guide.ErrConflict)
		}
		return tx.Create(&r).Error
	})
	if err != nil {
		return s.guideFail(what, err)
	}
	gs.ID = r.ID
	return nil
}

// GuideSession returns guide session id.
func (s *Store) GuideSession(ctx context.Context, id int64) (*guide.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r guideSessionRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.guideFail(fmt.Sprintf("guide session %d", id), err)
	}
	return r.toGuide(), nil
}

// GuideRequestsFor lists the requests to mateID still waiting for an
// answer that were made after since, oldest first.
func (s *Store) GuideRequestsFor(ctx context.Context, mateID int64, since time.Time) ([]guide.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []guideSessionRow
	err := s.db.WithContext(ctx).Where("mate_id = ? AND status = ? AND created_at > ?", mateID, string(guide.StatusRequested), dbTime(since)).
		Order("id").Find(&rows).Error
	if err != nil {
		return nil, s.guideFail(fmt.Sprintf("guide requests for %d", mateID), err)
	}
	out := make([]guide.Session, len(rows))
	for i, r := range rows {
		out[i] = *r.toGuide()
	}
	return out, nil
}

// OpenGuideSessions lists the sessions requested or approved and not yet
// begun, oldest first.
func (s *Store) OpenGuideSessions(ctx context.Context) ([]guide.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []guideSessionRow
	err := s.db.WithContext(ctx).Where("status IN ?", []string{string(guide.StatusRequested), string(guide.StatusApproved)}).
		Order("id").Find(&rows).Error
	if err != nil {
		return nil, s.guideFail("open guide sessions", err)
	}
	out := make([]guide.Session, len(rows))
	for i, r := range rows {
		out[i] = *r.toGuide()
	}
	return out, nil
}

// TransitionSession moves a session between statuses if it is in one of from.
func (s *Store) TransitionSession(ctx context.Context, id int64, from []guide.SessionStatus, to guide.SessionStatus, at time.Time) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	names := make([]string, len(from))
	for i, f := range from {
		names[i] = string(f)
	}
	updates := map[string]any{"status": string(to)}
	switch to {
	case guide.StatusApproved, guide.StatusRejected, guide.StatusTimeout:
		updates["answered_at"] = dbTime(at)
	}
	switch to {
	case guide.StatusRejected, guide.StatusTimeout, guide.StatusCancelled, guide.StatusCompleted, guide.StatusDeleted:
		updates["ended_at"] = gorm.Expr("COALESCE(ended_at, ?)", dbTime(at))
	}
	res := s.db.WithContext(ctx).Model(&guideSessionRow{}).Where("id = ? AND status IN ?", id, names).Updates(updates)
	if res.Error != nil {
		return false, s.guideFail(fmt.Sprintf("guide session %d to %s", id, to), res.Error)
	}
	return res.RowsAffected > 0, nil
}

// BeginGuide starts the history of an approved session and spends a ticket.
func (s *Store) BeginGuide(ctx context.Context, sessionID int64, at, endsAt time.Time) (*guide.History, int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("begin guide session %d", sessionID)
	var h guideHistoryRow
	var left int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var gs guideSessionRow
		if err := tx.Take(&gs, sessionID).Error; err != nil {
			return err
		}
		res := tx.Model(&guideSessionRow{}).Where("id = ? AND status = ?", sessionID, string(guide.StatusApproved)).
			Update("status", string(guide.StatusActive))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("session is %s: %w", gs.Status, guide.ErrConflict)
		}
		if err := spendTicket(tx, gs.UserID); err != nil {
			return err
		}
		h = guideHistoryRow{
			SessionID: sessionID, UserID: gs.UserID, MateID: gs.MateID, BeganAt: dbTime(at),
			EndsAt: dbTime(endsAt), TicketsUsed: 1,
		}
		if err := tx.Create(&h).Error; err != nil {
			return err
		}
		if err := tx.Model(&guideSessionRow{}).Where("id = ?", sessionID).Update("history_id", h.ID).Error; err != nil {
			return err
		}
		return tx.Model(&guideAccountRow{}).Where("id = ?", gs.UserID).Pluck("tickets", &left).Error
	})
	if err != nil {
		return nil, 0, s.guideFail(what, err)
	}
	return h.toGuide(), left, nil
}

func spendTicket(tx *gorm.DB, userID int64) error {
	res := tx.Model(&guideAccountRow{}).Where("id = ? AND tickets > 0", userID).
		Update("tickets", gorm.Expr("tickets - 1"))
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return guide.ErrNoTicket
	}
	return nil
}

// ExtendGuide spends one more ticket on an open history.
func (s *Store) ExtendGuide(ctx context.Context, historyID int64, ticketsUsed int, endsAt time.Time) (*guide.History, int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("extend guide history %d", historyID)
	var h guideHistoryRow
	var left int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&h, historyID).Error; err != nil {
			return err
		}
		// tickets_used is the version: an extension computed from a history
		// another node has extended or completed since changes nothing.
		res := tx.Model(&guideHistoryRow{}).Where("id = ? AND completed_at IS NULL AND tickets_used = ?", historyID, ticketsUsed).
			Updates(map[string]any{"tickets_used": gorm.Expr("tickets_used + 1"), "ends_at": dbTime(endsAt)})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("history completed or extended meanwhile: %w", guide.ErrConflict)
		}
		if err := spendTicket(tx, h.UserID); err != nil {
			return err
		}
		if err := tx.Take(&h, historyID).Error; err != nil {
			return err
		}
		return tx.Model(&guideAccountRow{}).Where("id = ?", h.UserID).Pluck("tickets", &left).Error
	})
	if err != nil {
		return nil, 0, s.guideFail(what, err)
	}
	return h.toGuide(), left, nil
}

// CompleteGuide completes an open history once, with its CRM record.
// ticketsUsed > 0 completes it only while it has that many tickets.
func (s *Store) CompleteGuide(ctx context.Context, historyID int64, ticketsUsed int, at time.Time, reason guide.EndReason) (*guide.History, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("complete guide history %d", historyID)
	var h guideHistoryRow
	done := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&h, historyID).Error; err != nil {
			return err
		}
		end := dbTime(at)
		if end.Before(h.BeganAt) {
			end = h.BeganAt
		}
		duration := end.Sub(h.BeganAt).Milliseconds()
		q := tx.Model(&guideHistoryRow{}).Where("id = ? AND completed_at IS NULL", historyID)
		if ticketsUsed > 0 {
			// An expiry is of the tickets it counted: one more ticket
			// spent meanwhile (on another node) keeps the guide open.
			q = q.Where("tickets_used = ?", ticketsUsed)
		}
		res := q.Updates(map[string]any{"completed_at": end, "end_reason": string(reason), "duration_ms": duration})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil // completed before, or extended: h is as it was
		}
		done = true
		h.CompletedAt, h.EndReason, h.DurationMs = &end, string(reason), duration
		crm := guideCRMRow{
			HistoryID: h.ID, SessionID: h.SessionID, UserID: h.UserID, MateID: h.MateID,
			BeganAt: h.BeganAt, EndedAt: end, DurationMs: duration, TicketsUsed: h.TicketsUsed,
			EndReason: string(reason), CreatedAt: end,
		}
		if err := tx.Create(&crm).Error; err != nil {
			return err
		}
		err := tx.Model(&guideSessionRow{}).Where("id = ? AND status = ?", h.SessionID, string(guide.StatusActive)).
			Updates(map[string]any{"status": string(guide.StatusCompleted), "ended_at": end}).Error
		if err != nil {
			return err
		}
		return tx.Model(&guideAccountRow{}).Where("id = ? AND availability = ?", h.MateID, string(guide.Busy)).
			Update("availability", string(guide.Available)).Error
	})
	if err != nil {
		return nil, false, s.guideFail(what, err)
	}
	return h.toGuide(), done, nil
}

// GuideHistory returns guide history id.
func (s *Store) GuideHistory(ctx context.Context, id int64) (*guide.History, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r guideHistoryRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.guideFail(fmt.Sprintf("guide history %d", id), err)
	}
	return r.toGuide(), nil
}

// OpenHistories lists histories not completed yet.
func (s *Store) OpenHistories(ctx context.Context) ([]guide.History, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []guideHistoryRow
	if err := s.db.WithContext(ctx).Where("completed_at IS NULL").Order("id").Find(&rows).Error; err != nil {
		return nil, s.guideFail("open guide histories", err)
	}
	out := make([]guide.History, len(rows))
	for i, r := range rows {
		out[i] = *r.toGuide()
	}
	return out, nil
}

// TouchGuide records a session check at at on an open history.
func (s *Store) TouchGuide(ctx context.Context, historyID int64, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Model(&guideHistoryRow{}).Where("id = ? AND completed_at IS NULL", historyID).
		Update("checked_at", dbTime(at)).Error
	if err != nil {
		return s.guideFail(fmt.Sprintf("touch guide history %d", historyID), err)
	}
	return nil
}

// SetCRMNote attaches a note to a CRM record.
func (s *Store) SetCRMNote(ctx context.Context, historyID, by int64, note string, at time.Time) (*guide.CRM, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("note on guide CRM %d", historyID)
	var l limitChecker
	l.bytes("note", note, maxTextBytes)
	if l.err != nil {
		return nil, invalid(what, l.err)
	}
	var r guideCRMRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&guideCRMRow{}).Where("history_id = ?", historyID).
			Updates(map[string]any{"note": cleanText(note), "note_by": by})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return guide.ErrNotFound
		}
		return tx.Take(&r, historyID).Error
	})
	if err != nil {
		return nil, s.guideFail(what, err)
	}
	return r.toGuide(), nil
}

// GuideCRM returns the CRM record of a history.
func (s *Store) GuideCRM(ctx context.Context, historyID int64) (*guide.CRM, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r guideCRMRow
	if err := s.db.WithContext(ctx).Take(&r, historyID).Error; err != nil {
		return nil, s.guideFail(fmt.Sprintf("guide CRM %d", historyID), err)
	}
	return r.toGuide(), nil
}

// Evaluate stores a star rating once and updates the mate's average.
func (s *Store) Evaluate(ctx context.Context, e *guide.Evaluation) (*guide.Account, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("evaluate guide history %d", e.HistoryID)
	var l limitChecker
	l.bytes("comment", e.Comment, maxTextBytes)
	if l.err == nil && (e.Stars < 1 || e.Stars > 5) {
		l.err = fmt.Errorf("stars %d outside 1-5", e.Stars)
	}
	if l.err != nil {
		return nil, invalid(what, l.err)
	}
	var mate guideAccountRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r := guideEvaluationRow{
			HistoryID: e.HistoryID, UserID: e.UserID, MateID: e.MateID, Stars: e.Stars,
			Comment: cleanText(e.Comment), CreatedAt: dbTime(e.CreatedAt),
		}
		if err := tx.Create(&r).Error; err != nil {
			return err
		}
		err := tx.Model(&guideAccountRow{}).Where("id = ?", e.MateID).Updates(map[string]any{
			"rating_sum":   gorm.Expr("rating_sum + ?", e.Stars),
			"rating_count": gorm.Expr("rating_count + 1"),
		}).Error
		if err != nil {
			return err
		}
		// A second statement: MySQL and SQLite disagree on whether a SET
		// sees the columns assigned before it in the same statement.
		err = tx.Model(&guideAccountRow{}).Where("id = ?", e.MateID).
			Update("rating_avg", gorm.Expr("rating_sum * 1.0 / rating_count")).Error
		if err != nil {
			return err
		}
		return tx.Take(&mate, e.MateID).Error
	})
	if err != nil {
		return nil, s.guideFail(what, err)
	}
	a := mate.toGuide()
	return &a, nil
}
