package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

const (
	defaultRoomLimit = 100
	maxRoomLimit     = 1000
)

// laterDate sets update_date to t unless it is already later, so activity
// stamped by a slower caller never moves a room back in the list.
func laterDate(t time.Time) any {
	return gorm.Expr("CASE WHEN update_date < ? THEN ? ELSE update_date END", t, t)
}

// OpenRoom returns customer c's room that is not ENDED, creating a WAITING
// room named after the customer when there is none. The unique key on
// open_customer_id lets exactly one concurrent insert win; the others read
// the winner's room.
func (s *Store) OpenRoom(ctx context.Context, c *chat.Customer, now time.Time) (*chat.Room, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("open room for customer %d", c.ID)
	name := cleanText(c.Name)
	var l limitChecker
	l.chars("customer name", name, maxNameChars)
	if c.ID <= 0 {
		l.err = errors.New("customer has no ID")
	}
	if l.err != nil {
		return nil, false, invalid(what, l.err)
	}
	db := s.db.WithContext(ctx)
	for attempt := 0; ; attempt++ {
		var r roomRow
		err := db.Where("open_customer_id = ?", c.ID).Take(&r).Error
		if err == nil {
			room := r.toChat()
			return &room, false, nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, false, s.fail(what, err)
		}
		t := dbTime(now)
		customerID := c.ID
		r = roomRow{
			CompanyID:      c.CompanyID,
			CustomerID:     c.ID,
			Status:         string(chat.StatusWaiting),
			Name:           name,
			CreateDate:     t,
			UpdateDate:     t,
			OpenCustomerID: &customerID,
		}
		err = db.Create(&r).Error
		if err == nil {
			room := r.toChat()
			return &room, true, nil
		}
		// A duplicate means a concurrent call opened the room first. Twice
		// in a row would mean that room ended in between: give up then.
		if !s.isDuplicate(err) || attempt >= 2 {
			return nil, false, s.fail(what, err)
		}
	}
}

// Room returns room id.
func (s *Store) Room(ctx context.Context, id int64) (*chat.Room, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	r, err := s.room(s.db.WithContext(ctx), id)
	if err != nil {
		return nil, err
	}
	room := r.toChat()
	return &room, nil
}

func (s *Store) room(db *gorm.DB, id int64) (*roomRow, error) {
	var r roomRow
	if err := db.Take(&r, id).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("room %d", id), err)
	}
	return &r, nil
}

// Rooms lists a company's rooms with status ("" for all), newest activity
// first. limit <= 0 means 100; at most 1000 are returned.
func (s *Store) Rooms(ctx context.Context, companyID int64, status chat.RoomStatus, limit int) ([]chat.Room, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Where("company_id = ?", companyID)
	if status != "" {
		q = q.Where("status = ?", string(status))
	}
	return s.roomList(q.Order("update_date DESC, id DESC"), limit, fmt.Sprintf("rooms of company %d", companyID))
}

// CustomerRooms lists customer customerID's rooms with an ID below
// beforeID (all when beforeID <= 0), newest first. limit <= 0 means 100; at
// most 1000 are returned.
func (s *Store) CustomerRooms(ctx context.Context, customerID, beforeID int64, limit int) ([]chat.Room, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Where("customer_id = ?", customerID)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	return s.roomList(q.Order("id DESC"), limit, fmt.Sprintf("rooms of customer %d before %d", customerID, beforeID))
}

// roomList runs a room query within the list bounds (limit <= 0 means 100,
// at most 1000).
func (s *Store) roomList(q *gorm.DB, limit int, what string) ([]chat.Room, error) {
	if limit <= 0 {
		limit = defaultRoomLimit
	}
	var rows []roomRow
	if err := q.Limit(min(limit, maxRoomLimit)).Find(&rows).Error; err != nil {
		return nil, s.fail(what, err)
	}
	rooms := make([]chat.Room, len(rows))
	for i := range rows {
		rooms[i] = rows[i].toChat()
	}
	return rooms, nil
}

// AssignRoom moves a WAITING room to IN_PROGRESS with memberID as assignee
// in one conditional UPDATE, so of two members racing for a room exactly one
// wins. A member of another company does not see the room (ErrNotFound).
func (s *Store) AssignRoom(ctx context.Context, roomID, memberID int64, now time.Time) (*chat.Room, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("assign room %d to member %d", roomID, memberID)
	db := s.db.WithContext(ctx)
	t := dbTime(now)
	res := db.Model(&roomRow{}).
		Where("id = ? AND status = ?", roomID, string(chat.StatusWaiting)).
		Where("company_id = (SELECT company_id FROM members WHERE id = ?)", memberID).
		Updates(map[string]any{
			"status":      string(chat.StatusInProgress),
			"member_id":   memberID,
			"assign_date": gorm.Expr("COALESCE(assign_date, ?)", t),
			"update_date": laterDate(t),
		})
	if res.Error != nil {
		return nil, false, s.fail(what, res.Error)
	}
	s.forgetRoom(ctx, roomID)
	r, err := s.room(db, roomID)
	if err != nil {
		return nil, false, err
	}
	room := r.toChat()
	if res.RowsAffected > 0 {
		// The member was just given a room: its wait for one starts again.
		if err := db.Model(&memberRow{}).Where("id = ?", memberID).Update("idle_since", t).Error; err != nil {
			return nil, false, s.fail(what, err)
		}
		return &room, true, nil
	}
	// Nothing changed: explain why.
	if r.Status == string(chat.StatusInProgress) && r.MemberID != nil && *r.MemberID == memberID {
		return &room, false, nil
	}
	var m memberRow
	if err := db.Take(&m, memberID).Error; err != nil {
		return nil, false, s.fail(what+": member", err)
	}
	switch {
	case m.CompanyID != r.CompanyID:
		return nil, false, fmt.Errorf("store: %s: room is not in the member's company: %w", what, chat.ErrNotFound)
	case r.Status == string(chat.StatusEnded):
		return &room, false, fmt.Errorf("store: %s: room has ended: %w", what, chat.ErrConflict)
	case r.Status == string(chat.StatusInProgress):
		return &room, false, fmt.Errorf("store: %s: room is assigned to another member: %w", what, chat.ErrConflict)
	default:
		return &room, false, fmt.Errorf("store: %s: room is %s: %w", what, r.Status, chat.ErrConflict)
	}
}

// EndRoom sets ENDED (freeing the customer to open a new room); changed is
// false if the room already was ENDED.
func (s *Store) EndRoom(ctx context.Context, roomID int64, now time.Time) (*chat.Room, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("end room %d", roomID)
	db := s.db.WithContext(ctx)
	t := dbTime(now)
	res := db.Model(&roomRow{}).
		Where("id = ? AND status <> ?", roomID, string(chat.StatusEnded)).
		Updates(map[string]any{
			"status":           string(chat.StatusEnded),
			"end_date":         t,
			"open_customer_id": nil,
			"update_date":      laterDate(t),
		})
	if res.Error != nil {
		return nil, false, s.fail(what, res.Error)
	}
	s.forgetRoom(ctx, roomID)
	r, err := s.room(db, roomID)
	if err != nil {
		return nil, false, err
	}
	room := r.toChat()
	return &room, res.RowsAffected > 0, nil
}

// SetReview stores the customer's 1-5 score for a room.
func (s *Store) SetReview(ctx context.Context, roomID int64, score int, now time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("review room %d", roomID)
	if score < 1 || score > 5 {
		return invalid(what, fmt.Errorf("score %d is not between 1 and 5", score))
	}
	res := s.db.WithContext(ctx).Model(&roomRow{}).Where("id = ?", roomID).
		Updates(map[string]any{"review_score": score, "review_date": dbTime(now)})
	if res.Error != nil {
		return s.fail(what, res.Error)
	}
	s.forgetRoom(ctx, roomID)
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, chat.ErrNotFound)
	}
	return nil
}
