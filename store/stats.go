package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cstalk/cstalk/chat"
)

// What the team figures are computed from. Each reads one company's rooms
// through an index that starts with company_id, and a room's messages
// through (room_id, id): nothing here scans the messages of other rooms or
// adds an index to the message table, whose writes are the hot path.

// maxStatsDays bounds MessageCounts' day buckets (one CASE branch each).
const maxStatsDays = 400

// HandledRooms lists the rooms of a company that ended in [from, to) with
// an assignee.
func (s *Store) HandledRooms(ctx context.Context, companyID int64, from, to time.Time) ([]chat.HandledRoom, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []struct {
		ID         int64
		MemberID   int64
		CreateDate time.Time
		AssignDate *time.Time
		EndDate    time.Time
	}
	err := s.db.WithContext(ctx).Model(&roomRow{}).
		Select("id, member_id, create_date, assign_date, end_date").
		Where("company_id = ? AND end_date >= ? AND end_date < ? AND member_id IS NOT NULL", companyID, dbTime(from), dbTime(to)).
		Order("id").Scan(&rows).Error
	if err != nil {
		return nil, s.fail(fmt.Sprintf("handled rooms of company %d", companyID), err)
	}
	out := make([]chat.HandledRoom, len(rows))
	for i, r := range rows {
		out[i] = chat.HandledRoom{RoomID: r.ID, MemberID: r.MemberID, CreateDate: r.CreateDate.UTC(),
			AssignDate: utcPtr(r.AssignDate), EndDate: r.EndDate.UTC()}
	}
	return out, nil
}

// firstResponseQuery finds, for each room active in the period (touched
// since its start, created before its end), the customer's first
// conversation message and the first member conversation message after
// it, keeping the rooms answered in the period. Deleted messages count:
// they were sent.
const firstResponseQuery = `SELECT y.room_id, mc.create_date AS customer_at, mr.create_date AS response_at, sp.member_id
FROM (
	SELECT x.room_id, x.fc,
		(SELECT MIN(a.id) FROM messages a WHERE a.room_id = x.room_id AND a.id > x.fc
			AND a.is_employee = ? AND a.is_system = ? AND a.admin_type = 0) AS fr
	FROM (
		SELECT r.id AS room_id,
			(SELECT MIN(c.id) FROM messages c WHERE c.room_id = r.id AND c.is_customer = ? AND c.admin_type = 0) AS fc
		FROM rooms r
		WHERE r.company_id = ? AND r.update_date >= ? AND r.create_date < ?
	) x
	WHERE x.fc IS NOT NULL
) y
JOIN messages mc ON mc.id = y.fc
JOIN messages mr ON mr.id = y.fr
JOIN speakers sp ON sp.id = mr.speaker_id
WHERE mr.create_date >= ? AND mr.create_date < ? AND sp.member_id IS NOT NULL
ORDER BY y.room_id`

// FirstResponses lists the rooms of a company first answered in [from, to).
func (s *Store) FirstResponses(ctx context.Context, companyID int64, from, to time.Time) ([]chat.FirstResponse, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []struct {
		RoomID     int64
		CustomerAt time.Time
		ResponseAt time.Time
		MemberID   int64
	}
	f, t := dbTime(from), dbTime(to)
	err := s.db.WithContext(ctx).Raw(firstResponseQuery, true, false, true, companyID, f, t, f, t).Scan(&rows).Error
	if err != nil {
		return nil, s.fail(fmt.Sprintf("first responses of company %d", companyID), err)
	}
	out := make([]chat.FirstResponse, len(rows))
	for i, r := range rows {
		out[i] = chat.FirstResponse{RoomID: r.RoomID, MemberID: r.MemberID, CustomerAt: r.CustomerAt.UTC(), ResponseAt: r.ResponseAt.UTC()}
	}
	return out, nil
}

// Reviews lists the REVIEW scores of a company's rooms given in [from, to).
func (s *Store) Reviews(ctx context.Context, companyID int64, from, to time.Time) ([]chat.Review, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []struct {
		ID          int64
		MemberID    *int64
		ReviewScore int
		ReviewDate  time.Time
	}
	err := s.db.WithContext(ctx).Model(&roomRow{}).
		Select("id, member_id, review_score, review_date").
		Where("company_id = ? AND review_date >= ? AND review_date < ? AND review_score IS NOT NULL", companyID, dbTime(from), dbTime(to)).
		Order("id").Scan(&rows).Error
	if err != nil {
		return nil, s.fail(fmt.Sprintf("reviews of company %d", companyID), err)
	}
	out := make([]chat.Review, len(rows))
	for i, r := range rows {
		out[i] = chat.Review{RoomID: r.ID, Score: r.ReviewScore, Date: r.ReviewDate.UTC()}
		if r.MemberID != nil {
			out[i].MemberID = *r.MemberID
		}
	}
	return out, nil
}

// MessageCounts counts a company's conversation messages (no notes, no
// system lines) per day [bounds[i], bounds[i+1]) and writer. The days are
// told apart in SQL (a CASE over the bounds), so the answer is a few rows
// per day whatever the traffic, and exact in any time zone. The messages
// are reached through the rooms active in the period.
func (s *Store) MessageCounts(ctx context.Context, companyID int64, bounds []time.Time) ([]chat.MessageCount, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("message counts of company %d", companyID)
	if len(bounds) < 2 || len(bounds) > maxStatsDays+1 {
		return nil, invalid(what, errors.New("need 1 to 400 days"))
	}
	var day strings.Builder
	args := make([]any, 0, len(bounds)+8)
	if len(bounds) == 2 {
		day.WriteString("0")
	} else {
		day.WriteString("CASE")
		for i, b := range bounds[1 : len(bounds)-1] {
			fmt.Fprintf(&day, " WHEN m.create_date < ? THEN %d", i)
			args = append(args, dbTime(b))
		}
		fmt.Fprintf(&day, " ELSE %d END", len(bounds)-2)
	}
	from, to := dbTime(bounds[0]), dbTime(bounds[len(bounds)-1])
	args = append(args, companyID, from, to, from, to, false)
	query := `SELECT ` + day.String() + ` AS day_index, COALESCE(sp.member_id, 0) AS member_id, COUNT(*) AS n
	FROM rooms r
	JOIN messages m ON m.room_id = r.id
	JOIN speakers sp ON sp.id = m.speaker_id
	WHERE r.company_id = ? AND r.update_date >= ? AND r.create_date < ?
		AND m.create_date >= ? AND m.create_date < ? AND m.admin_type = 0 AND m.is_system = ?
	GROUP BY day_index, COALESCE(sp.member_id, 0)`
	var rows []struct {
		DayIndex int
		MemberID int64
		N        int
	}
	if err := s.db.WithContext(ctx).Raw(query, args...).Scan(&rows).Error; err != nil {
		return nil, s.fail(what, err)
	}
	out := make([]chat.MessageCount, len(rows))
	for i, r := range rows {
		out[i] = chat.MessageCount{Day: r.DayIndex, MemberID: r.MemberID, Count: r.N}
	}
	return out, nil
}
