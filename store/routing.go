package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

// Routing: members' statuses and capacities, auto-assignment, transfers.

// autoAssignAttempts bounds how often AutoAssignRoom picks again after its
// pick changed under it (the member went away or filled up meanwhile).
const autoAssignAttempts = 5

// SetMemberStatus stores a member's chosen status. Becoming AVAILABLE
// starts the member's wait for a room now (the tie-break of
// AutoAssignRoom); staying AVAILABLE keeps its place.
func (s *Store) SetMemberStatus(ctx context.Context, memberID int64, status chat.MemberStatus, now time.Time) (*chat.Member, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("set status of member %d", memberID)
	if _, ok := chat.ParseMemberStatus(string(status)); !ok {
		return nil, invalid(what, fmt.Errorf("status %q is not AVAILABLE, AWAY or OFFLINE", status))
	}
	db := s.db.WithContext(ctx)
	if status == chat.MemberAvailable {
		// Only a member that was not AVAILABLE starts a new wait.
		if err := db.Model(&memberRow{}).Where("id = ? AND status <> ?", memberID, string(chat.MemberAvailable)).
			Update("idle_since", dbTime(now)).Error; err != nil {
			return nil, s.fail(what, err)
		}
	}
	if err := db.Model(&memberRow{}).Where("id = ?", memberID).Update("status", string(status)).Error; err != nil {
		return nil, s.fail(what, err)
	}
	return s.Member(ctx, memberID)
}

// SetMemberCapacity stores how many open rooms auto-assignment may give a
// member (0 to chat.MaxCapacity).
func (s *Store) SetMemberCapacity(ctx context.Context, memberID int64, capacity int) (*chat.Member, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("set capacity of member %d", memberID)
	if capacity < 0 || capacity > chat.MaxCapacity {
		return nil, invalid(what, fmt.Errorf("capacity %d is not between 0 and %d", capacity, chat.MaxCapacity))
	}
	if err := s.db.WithContext(ctx).Model(&memberRow{}).Where("id = ?", memberID).Update("capacity", capacity).Error; err != nil {
		return nil, s.fail(what, err)
	}
	return s.Member(ctx, memberID)
}

// SetRecordCalls sets a company's choice to record its calls (nil: the
// server's default).
func (s *Store) SetRecordCalls(ctx context.Context, companyID int64, on *bool) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("set record calls of company %d", companyID)
	res := s.db.WithContext(ctx).Model(&companyRow{}).Where("id = ?", companyID).Update("record_calls", on)
	if res.Error != nil {
		return s.fail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := s.db.WithContext(ctx).Model(&companyRow{}).Where("id = ?", companyID).Count(&n).Error; err != nil {
			return s.fail(what, err)
		}
		if n == 0 {
			return fmt.Errorf("store: %s: %w", what, chat.ErrNotFound)
		}
	}
	return nil
}

// SetAutoAssign switches a company's auto-assignment.
func (s *Store) SetAutoAssign(ctx context.Context, companyID int64, on bool) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("set auto-assign of company %d", companyID)
	res := s.db.WithContext(ctx).Model(&companyRow{}).Where("id = ?", companyID).Update("auto_assign", on)
	if res.Error != nil {
		return s.fail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, chat.ErrNotFound)
	}
	return nil
}

// OpenRoomCounts maps each member of a company that has IN_PROGRESS rooms
// to their number.
func (s *Store) OpenRoomCounts(ctx context.Context, companyID int64) (map[int64]int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []struct {
		MemberID int64
		N        int
	}
	err := s.db.WithContext(ctx).Model(&roomRow{}).Select("member_id, COUNT(*) AS n").
		Where("company_id = ? AND status = ? AND member_id IS NOT NULL", companyID, string(chat.StatusInProgress)).
		Group("member_id").Scan(&rows).Error
	if err != nil {
		return nil, s.fail(fmt.Sprintf("open rooms of company %d", companyID), err)
	}
	counts := make(map[int64]int, len(rows))
	for _, r := range rows {
		counts[r.MemberID] = r.N
	}
	return counts, nil
}

// assignee is a member auto-assignment may pick, with its load.
type assignee struct {
	ID        int64
	Capacity  int
	OpenRooms int
}

// errPickChanged: the picked member is no longer AVAILABLE or has no room
// left; pick again.
var errPickChanged = errors.New("pick changed")

// errRoomDecided: the room was given to someone (or ended) meanwhile.
var errRoomDecided = errors.New("room decided")

// AutoAssignRoom gives room roomID, while it is WAITING and unassigned and
// its company has AutoAssign on, to the AVAILABLE member among speakerIDs
// with the fewest IN_PROGRESS rooms below its capacity, ties to who has
// waited longest (idle_since, then the lowest ID).
//
// The database decides. One transaction locks the picked member's row
// (every assignment that counts that member's rooms waits here), counts its
// open rooms afresh (READ COMMITTED on MySQL, so committed assignments of
// other nodes are seen), and moves the room with a conditional UPDATE that
// only a WAITING, unassigned room matches: of all nodes trying, one gives
// the room, and nobody gets more rooms than its capacity.
func (s *Store) AutoAssignRoom(ctx context.Context, roomID int64, speakerIDs []int64, now time.Time) (*chat.Room, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("auto-assign room %d", roomID)
	db := s.db.WithContext(ctx)
	r, err := s.room(db, roomID)
	if err != nil {
		return nil, err
	}
	if r.Status != string(chat.StatusWaiting) || r.MemberID != nil {
		return nil, fmt.Errorf("store: %s: room is %s: %w", what, r.Status, chat.ErrConflict)
	}
	if len(speakerIDs) == 0 {
		return nil, fmt.Errorf("store: %s: no console connected: %w", what, chat.ErrNoAssignee)
	}
	t := dbTime(now)
	for range autoAssignAttempts {
		candidates, err := s.assignees(db, r.CompanyID, speakerIDs)
		if err != nil {
			return nil, s.fail(what, err)
		}
		i := slices.IndexFunc(candidates, func(c assignee) bool { return c.OpenRooms < c.Capacity })
		if i < 0 {
			return nil, fmt.Errorf("store: %s: %w", what, chat.ErrNoAssignee)
		}
		err = db.Transaction(func(tx *gorm.DB) error {
			return s.giveRoom(tx, roomID, candidates[i].ID, t)
		}, s.routingTx())
		s.forgetRoom(ctx, roomID)
		switch {
		case err == nil:
			return s.Room(ctx, roomID)
		case errors.Is(err, errRoomDecided):
			return nil, fmt.Errorf("store: %s: %w", what, chat.ErrConflict)
		case errors.Is(err, errPickChanged), isDeadlock(err):
			continue
		default:
			return nil, s.fail(what, err)
		}
	}
	return nil, fmt.Errorf("store: %s: the pick kept changing: %w", what, chat.ErrNoAssignee)
}

// giveRoom is AutoAssignRoom's transaction for one picked member.
func (s *Store) giveRoom(tx *gorm.DB, roomID, memberID int64, t time.Time) error {
	// The lock: later deciders for this member wait until this commits.
	res := tx.Model(&memberRow{}).Where("id = ? AND status = ?", memberID, string(chat.MemberAvailable)).
		Update("idle_since", t)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return errPickChanged
	}
	var m memberRow
	if err := tx.Select("id", "capacity").Take(&m, memberID).Error; err != nil {
		return err
	}
	var open int64
	if err := tx.Model(&roomRow{}).Where("member_id = ? AND status = ?", memberID, string(chat.StatusInProgress)).
		Count(&open).Error; err != nil {
		return err
	}
	if open >= int64(m.Capacity) {
		return errPickChanged
	}
	res = tx.Model(&roomRow{}).
		Where("id = ? AND status = ? AND member_id IS NULL", roomID, string(chat.StatusWaiting)).
		Updates(map[string]any{
			"status":      string(chat.StatusInProgress),
			"member_id":   memberID,
			"assign_date": t,
			"update_date": laterDate(t),
		})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return errRoomDecided
	}
	return nil
}

// routingTx: READ COMMITTED on MySQL, so a count after taking a lock sees
// what other transactions committed; SQLite transactions are serialized
// (immediate) and take no options.
func (s *Store) routingTx() *sql.TxOptions {
	if s.dialect == dialectMySQL {
		return &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	return nil
}

// isDeadlock reports InnoDB's deadlock verdict, after which the
// transaction is rolled back and may simply run again.
func isDeadlock(err error) bool {
	var me *mysqldriver.MySQLError
	return errors.As(err, &me) && me.Number == 1213
}

// assignees lists the company's AVAILABLE members among speakerIDs, when
// the company has AutoAssign on, best first: fewest IN_PROGRESS rooms,
// then the longest wait (NULL, never given a room, sorts first on both
// backends), then the lowest ID.
func (s *Store) assignees(db *gorm.DB, companyID int64, speakerIDs []int64) ([]assignee, error) {
	var out []assignee
	err := db.Raw(`SELECT m.id, m.capacity,
		(SELECT COUNT(*) FROM rooms r WHERE r.member_id = m.id AND r.status = ?) AS open_rooms
	FROM members m
	JOIN companies c ON c.id = m.company_id
	JOIN speakers sp ON sp.member_id = m.id
	WHERE m.company_id = ? AND c.auto_assign = ? AND m.status = ? AND sp.id IN ?
	ORDER BY open_rooms, m.idle_since, m.id`,
		string(chat.StatusInProgress), companyID, true, string(chat.MemberAvailable), speakerIDs).Scan(&out).Error
	return out, err
}

// RoomsToRoute lists a company's WAITING, unassigned rooms in which the
// customer has written a conversation message, oldest first.
func (s *Store) RoomsToRoute(ctx context.Context, companyID int64, limit int) ([]chat.Room, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if limit <= 0 {
		limit = defaultRoomLimit
	}
	limit = min(limit, maxRoomLimit)
	var rows []roomRow
	err := s.db.WithContext(ctx).
		Where("company_id = ? AND status = ? AND member_id IS NULL", companyID, string(chat.StatusWaiting)).
		Where("EXISTS (SELECT 1 FROM messages m WHERE m.room_id = rooms.id AND m.is_customer = ? AND m.admin_type = 0)", true).
		Order("id").Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, s.fail(fmt.Sprintf("rooms to route of company %d", companyID), err)
	}
	rooms := make([]chat.Room, len(rows))
	for i := range rows {
		rooms[i] = rows[i].toChat()
	}
	return rooms, nil
}

// TransferRoom gives room roomID to member to when the room is not ENDED
// and its assignee is still from (nil: unassigned), in one conditional
// UPDATE, so a transfer never overrides a change it did not see. The
// member must be of the room's company.
func (s *Store) TransferRoom(ctx context.Context, roomID int64, from *int64, to int64, now time.Time) (*chat.Room, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("transfer room %d to member %d", roomID, to)
	db := s.db.WithContext(ctx)
	t := dbTime(now)
	q := db.Model(&roomRow{}).
		Where("id = ? AND status <> ?", roomID, string(chat.StatusEnded)).
		Where("company_id = (SELECT company_id FROM members WHERE id = ?)", to)
	if from == nil {
		q = q.Where("member_id IS NULL")
	} else {
		q = q.Where("member_id = ?", *from)
	}
	res := q.Updates(map[string]any{
		"status":      string(chat.StatusInProgress),
		"member_id":   to,
		"assign_date": gorm.Expr("COALESCE(assign_date, ?)", t),
		"update_date": laterDate(t),
	})
	if res.Error != nil {
		return nil, s.fail(what, res.Error)
	}
	s.forgetRoom(ctx, roomID)
	r, err := s.room(db, roomID)
	if err != nil {
		return nil, err
	}
	if res.RowsAffected == 0 {
		var m memberRow
		if err := db.Select("id", "company_id").Take(&m, to).Error; err != nil {
			return nil, s.fail(what+": member", err)
		}
		if m.CompanyID != r.CompanyID {
			return nil, fmt.Errorf("store: %s: member is of another company: %w", what, chat.ErrNotFound)
		}
		return nil, fmt.Errorf("store: %s: room is %s with another assignee: %w", what, r.Status, chat.ErrConflict)
	}
	// The new assignee was just given a room: its wait starts again.
	if err := db.Model(&memberRow{}).Where("id = ?", to).Update("idle_since", t).Error; err != nil {
		return nil, s.fail(what, err)
	}
	room := r.toChat()
	return &room, nil
}

// MessagesAfter returns up to limit messages of roomID with ID > afterID,
// ascending. limit <= 0 means 30; at most 1000.
func (s *Store) MessagesAfter(ctx context.Context, roomID, afterID int64, limit int, withInternal bool) ([]chat.Message, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if limit <= 0 {
		limit = defaultMessageLimit
	}
	limit = min(limit, maxMessageLimit)
	q := s.db.WithContext(ctx).Where("room_id = ? AND id > ?", roomID, afterID)
	if !withInternal {
		q = q.Where("admin_type = 0")
	}
	var rows []messageRow
	if err := q.Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("messages of room %d after %d", roomID, afterID), err)
	}
	messages := make([]chat.Message, len(rows))
	for i := range rows {
		messages[i] = *rows[i].toChat()
	}
	return messages, nil
}
