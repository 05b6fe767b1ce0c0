package store

import (
	"context"
	"database/sql"
	"fmt"

	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

var _ chat.MessageContextStore = (*Store)(nil)

// messageContextQuery reads a room with its last message's kind, whether its
// assignee exists and its read positions: one row per read position (one row
// with NULL positions when there is none). A room has a handful of
// positions (its customer and the counselors who read it), so the repeated
// room columns cost less than further round trips.
const messageContextQuery = `SELECT r.id, r.company_id, r.customer_id, r.member_id, r.status, r.name,
	r.review_score, r.last_message_id, r.create_date, r.update_date, r.end_date,
	lm.id, lm.admin_type, lm.is_customer,
	m.id,
	rp.speaker_id, rp.last_read_id
FROM rooms r
LEFT JOIN messages lm ON lm.id = r.last_message_id
LEFT JOIN members m ON m.id = r.member_id
LEFT JOIN read_positions rp ON rp.room_id = r.id
WHERE r.id = ?`

// MessageContext returns what chat needs to store and render a MESSAGE to
// roomID in one query; an unknown room wraps chat.ErrNotFound. It scans
// the rows itself: it runs for every message, and GORM's reflective
// scanning cost a tenth of the server's CPU at a few thousand messages/s.
func (s *Store) MessageContext(ctx context.Context, roomID int64) (*chat.MessageContext, error) {
	what := fmt.Sprintf("message context of room %d", roomID)
	rows, err := s.db.WithContext(ctx).Raw(messageContextQuery, roomID).Rows()
	if err != nil {
		return nil, s.fail(what, err)
	}
	defer rows.Close()
	var mc *chat.MessageContext
	for rows.Next() {
		var (
			r                         roomRow
			lastID, assigneeID        sql.NullInt64
			lastAdminType             sql.NullInt64
			lastIsCustomer            sql.NullBool
			readSpeakerID, readLastID sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &r.CompanyID, &r.CustomerID, &r.MemberID, &r.Status, &r.Name,
			&r.ReviewScore, &r.LastMessageID, &r.CreateDate, &r.UpdateDate, &r.EndDate,
			&lastID, &lastAdminType, &lastIsCustomer, &assigneeID, &readSpeakerID, &readLastID); err != nil {
			return nil, s.fail(what, err)
		}
		if mc == nil {
			mc = &chat.MessageContext{
				Room:           r.toChat(),
				LastFound:      lastID.Valid,
				LastAdminType:  int(lastAdminType.Int64),
				LastIsCustomer: lastIsCustomer.Bool,
				AssigneeFound:  assigneeID.Valid,
				Positions:      make(map[int64]int64, 2),
			}
		}
		if readSpeakerID.Valid && readLastID.Valid {
			mc.Positions[readSpeakerID.Int64] = readLastID.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(what, err)
	}
	if mc == nil {
		return nil, s.fail(what, gorm.ErrRecordNotFound)
	}
	return mc, nil
}
