package store

import (
	"context"
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
const messageContextQuery = `SELECT r.*,
	lm.id AS last_id, lm.admin_type AS last_admin_type, lm.is_customer AS last_is_customer,
	m.id AS assignee_id,
	rp.speaker_id AS read_speaker_id, rp.last_read_id AS read_last_id
FROM rooms r
LEFT JOIN messages lm ON lm.id = r.last_message_id
LEFT JOIN members m ON m.id = r.member_id
LEFT JOIN read_positions rp ON rp.room_id = r.id
WHERE r.id = ?`

type messageContextRow struct {
	Room           roomRow `gorm:"embedded"`
	LastID         *int64
	LastAdminType  *int
	LastIsCustomer *bool
	AssigneeID     *int64
	ReadSpeakerID  *int64
	ReadLastID     *int64
}

// MessageContext returns what chat needs to store and render a MESSAGE to
// roomID in one query; an unknown room wraps chat.ErrNotFound.
func (s *Store) MessageContext(ctx context.Context, roomID int64) (*chat.MessageContext, error) {
	what := fmt.Sprintf("message context of room %d", roomID)
	var rows []messageContextRow
	if err := s.db.WithContext(ctx).Raw(messageContextQuery, roomID).Scan(&rows).Error; err != nil {
		return nil, s.fail(what, err)
	}
	if len(rows) == 0 {
		return nil, s.fail(what, gorm.ErrRecordNotFound)
	}
	first := &rows[0]
	mc := &chat.MessageContext{
		Room:          first.Room.toChat(),
		LastFound:     first.LastID != nil,
		AssigneeFound: first.AssigneeID != nil,
		Positions:     make(map[int64]int64, len(rows)),
	}
	if first.LastAdminType != nil {
		mc.LastAdminType = *first.LastAdminType
	}
	if first.LastIsCustomer != nil {
		mc.LastIsCustomer = *first.LastIsCustomer
	}
	for _, r := range rows {
		if r.ReadSpeakerID != nil && r.ReadLastID != nil {
			mc.Positions[*r.ReadSpeakerID] = *r.ReadLastID
		}
	}
	return mc, nil
}
