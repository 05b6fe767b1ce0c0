package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

const (
	defaultMessageLimit = 30
	maxMessageLimit     = 1000
	markReadAttempts    = 8
)

// Message returns message id.
func (s *Store) Message(ctx context.Context, id int64) (*chat.Message, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r messageRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("message %d", id), err)
	}
	return r.toChat(), nil
}

// Messages returns up to limit messages of a room older than beforeID
// (beforeID <= 0: the newest), ascending by ID. limit <= 0 means 30; at most
// 1000. Internal notes only when withInternal; deleted messages are included
// with Deleted set. An unknown room has no messages.
func (s *Store) Messages(ctx context.Context, roomID, beforeID int64, limit int, withInternal bool) ([]chat.Message, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.messagePage(ctx, roomID, beforeID, limit, withInternal, true)
}

// UndeletedMessages is Messages without the deleted messages: a page holds
// up to limit messages that are not deleted.
func (s *Store) UndeletedMessages(ctx context.Context, roomID, beforeID int64, limit int, withInternal bool) ([]chat.Message, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.messagePage(ctx, roomID, beforeID, limit, withInternal, false)
}

func (s *Store) messagePage(ctx context.Context, roomID, beforeID int64, limit int, withInternal, withDeleted bool) ([]chat.Message, error) {
	if limit <= 0 {
		limit = defaultMessageLimit
	}
	limit = min(limit, maxMessageLimit)
	q := s.db.WithContext(ctx).Where("room_id = ?", roomID)
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	if !withInternal {
		q = q.Where("admin_type = 0")
	}
	if !withDeleted {
		q = q.Where("deleted = ?", false)
	}
	var rows []messageRow
	// Newest first to pick the page from the (room_id, id) index, then
	// reversed into reading order.
	if err := q.Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("messages of room %d before %d", roomID, beforeID), err)
	}
	slices.Reverse(rows)
	messages := make([]chat.Message, len(rows))
	for i := range rows {
		messages[i] = *rows[i].toChat()
	}
	return messages, nil
}

// DeleteMessage soft-deletes message id; changed is false if it already was.
func (s *Store) DeleteMessage(ctx context.Context, id int64, now time.Time) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("delete message %d", id)
	db := s.db.WithContext(ctx)
	res := db.Model(&messageRow{}).Where("id = ? AND deleted = ?", id, false).
		Updates(map[string]any{"deleted": true, "update_date": dbTime(now)})
	if res.Error != nil {
		return false, s.fail(what, res.Error)
	}
	if res.RowsAffected > 0 {
		return true, nil
	}
	var n int64
	if err := db.Model(&messageRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return false, s.fail(what, err)
	}
	if n == 0 {
		return false, fmt.Errorf("store: %s: %w", what, chat.ErrNotFound)
	}
	return false, nil
}

// ReferencedFiles returns which of paths a stored message of roomID, deleted
// or not, carries as its image or thumbnail. It reads the room's messages
// by the (room_id, id) index, a few hundred paths at a time.
func (s *Store) ReferencedFiles(ctx context.Context, roomID int64, paths []string) (map[string]bool, error) {
	const chunk = 500
	referenced := make(map[string]bool)
	for len(paths) > 0 {
		part := paths[:min(chunk, len(paths))]
		paths = paths[len(part):]
		var rows []messageRow
		err := s.db.WithContext(ctx).Select("detail", "thumbnail").
			Where("room_id = ? AND (detail IN ? OR thumbnail IN ?)", roomID, part, part).Find(&rows).Error
		if err != nil {
			return nil, s.fail(fmt.Sprintf("files referenced in room %d", roomID), err)
		}
		for _, r := range rows {
			for _, p := range []string{r.Detail, r.Thumbnail} {
				if slices.Contains(part, p) {
					referenced[p] = true
				}
			}
		}
	}
	return referenced, nil
}

// MarkRead moves speakerID's read position in roomID forward to lastID,
// never backward, and never past the room's newest message (a client
// claiming to have read the future would otherwise hide what comes next).
// Concurrent calls end at the highest lastID: the forward UPDATE is
// conditional, and a first position is inserted under the primary key;
// whoever loses a race looks again.
func (s *Store) MarkRead(ctx context.Context, roomID, speakerID, lastID int64) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("mark room %d read by speaker %d up to %d", roomID, speakerID, lastID)
	db := s.db.WithContext(ctx)
	var room roomRow
	if err := db.Select("id", "last_message_id").Take(&room, roomID).Error; err != nil {
		return false, s.fail(what, err)
	}
	lastID = min(lastID, room.LastMessageID)
	if lastID <= 0 {
		return false, nil
	}
	for range markReadAttempts {
		res := db.Model(&readPositionRow{}).
			Where("room_id = ? AND speaker_id = ? AND last_read_id < ?", roomID, speakerID, lastID).
			Update("last_read_id", lastID)
		if res.Error != nil {
			return false, s.fail(what, res.Error)
		}
		if res.RowsAffected > 0 {
			s.cacheRead(ctx, roomID, speakerID, lastID)
			return true, nil
		}
		var current readPositionRow
		err := db.Where("room_id = ? AND speaker_id = ?", roomID, speakerID).Take(&current).Error
		switch {
		case err == nil && current.LastReadID >= lastID:
			return false, nil
		case err == nil:
			continue // a lower position appeared since the UPDATE: move it
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return false, s.fail(what, err)
		}
		err = db.Create(&readPositionRow{RoomID: roomID, SpeakerID: speakerID, LastReadID: lastID}).Error
		if err == nil {
			s.cacheRead(ctx, roomID, speakerID, lastID)
			return true, nil
		}
		if !s.isDuplicate(err) {
			return false, s.fail(what, err)
		}
	}
	return false, fmt.Errorf("store: %s: position kept changing under %d attempts", what, markReadAttempts)
}

// ReadPositions maps speaker ID to the last message ID it has read in roomID.
func (s *Store) ReadPositions(ctx context.Context, roomID int64) (map[int64]int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []readPositionRow
	if err := s.db.WithContext(ctx).Where("room_id = ?", roomID).Find(&rows).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("read positions of room %d", roomID), err)
	}
	positions := make(map[int64]int64, len(rows))
	for _, r := range rows {
		positions[r.SpeakerID] = r.LastReadID
	}
	return positions, nil
}

// UnreadCount counts roomID's conversation messages (not internal, not
// deleted) newer than speakerID's read position and written by others.
func (s *Store) UnreadCount(ctx context.Context, roomID, speakerID int64) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.db.WithContext(ctx).Model(&messageRow{}).
		Where("room_id = ? AND admin_type = 0 AND deleted = ? AND speaker_id <> ?", roomID, false, speakerID).
		Where("id > COALESCE((SELECT last_read_id FROM read_positions WHERE room_id = ? AND speaker_id = ?), 0)", roomID, speakerID).
		Count(&n).Error
	if err != nil {
		return 0, s.fail(fmt.Sprintf("unread count of room %d for speaker %d", roomID, speakerID), err)
	}
	return int(n), nil
}
