package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cstalk/cstalk/video/recording"
)

// The persistence of package video/recording.

var _ recording.Store = (*Store)(nil)

type recordingRow struct {
	ID             int64 `gorm:"primaryKey"`
	CompanyID      int64
	VideoRoomID    string
	ChatRoomID     *int64
	GuideSessionID *int64
	StartedAt      time.Time
	EndedAt        *time.Time
}

func (recordingRow) TableName() string { return "recordings" }

type recordingFileRow struct {
	ID          int64 `gorm:"primaryKey"`
	RecordingID int64
	UserID      string
	Name        string
	Customer    bool
	Path        string
	StartedAt   time.Time
	EndedAt     *time.Time
	Bytes       int64
	DurationMs  int64
	Status      string
}

func (recordingFileRow) TableName() string { return "recording_files" }

// recFail is fail for package recording's sentinel.
func (s *Store) recFail(what string, err error) error {
	return s.failAs(what, err, recording.ErrNotFound, recording.ErrNotFound)
}

func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// CreateRecording stores r and sets its ID.
func (s *Store) CreateRecording(ctx context.Context, r *recording.Recording) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("create recording of %s", r.VideoRoomID)
	var lc limitChecker
	lc.bytes("video room id", r.VideoRoomID, 160)
	lc.date("started at", r.StartedAt)
	if lc.err != nil {
		return invalid(what, lc.err)
	}
	row := recordingRow{CompanyID: r.CompanyID, VideoRoomID: cleanText(r.VideoRoomID), ChatRoomID: r.ChatRoomID,
		GuideSessionID: r.GuideSessionID, StartedAt: dbTime(r.StartedAt)}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return s.recFail(what, err)
	}
	r.ID = row.ID
	return nil
}

// CreateRecordingFile stores f and sets its ID.
func (s *Store) CreateRecordingFile(ctx context.Context, f *recording.File) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("create recording file of recording %d", f.RecordingID)
	var lc limitChecker
	lc.bytes("user id", f.UserID, 128)
	lc.chars("name", f.Name, 255)
	lc.date("started at", f.StartedAt)
	if lc.err != nil {
		return invalid(what, lc.err)
	}
	row := recordingFileRow{RecordingID: f.RecordingID, UserID: cleanText(f.UserID), Name: cleanText(f.Name),
		Customer: f.Customer, Path: f.Path, StartedAt: dbTime(f.StartedAt), Status: string(f.Status)}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return s.recFail(what, err)
	}
	f.ID = row.ID
	return nil
}

// FinishRecordingFile writes where the file is and how it ended.
func (s *Store) FinishRecordingFile(ctx context.Context, f *recording.File) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("finish recording file %d", f.ID)
	res := s.db.WithContext(ctx).Model(&recordingFileRow{}).Where("id = ?", f.ID).Updates(map[string]any{
		"path": f.Path, "ended_at": dbTimePtr(f.EndedAt), "bytes": f.Bytes,
		"duration_ms": f.Duration.Milliseconds(), "status": string(f.Status),
	})
	if res.Error != nil {
		return s.recFail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, recording.ErrNotFound)
	}
	return nil
}

// FinishRecording writes when the call ended.
func (s *Store) FinishRecording(ctx context.Context, id int64, ended time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("finish recording %d", id)
	res := s.db.WithContext(ctx).Model(&recordingRow{}).Where("id = ?", id).Update("ended_at", dbTime(ended))
	if res.Error != nil {
		return s.recFail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, recording.ErrNotFound)
	}
	return nil
}

// Recordings lists companyID's recordings, newest first, below before.
func (s *Store) Recordings(ctx context.Context, companyID, before int64, limit int) ([]recording.Recording, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("recordings of company %d", companyID)
	q := s.db.WithContext(ctx).Where("company_id = ?", companyID).Order("id DESC").Limit(limit)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var rows []recordingRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, s.recFail(what, err)
	}
	return s.withFiles(ctx, what, rows)
}

// Recording is companyID's recording id.
func (s *Store) Recording(ctx context.Context, companyID, id int64) (*recording.Recording, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("recording %d of company %d", id, companyID)
	var row recordingRow
	if err := s.db.WithContext(ctx).Where("id = ? AND company_id = ?", id, companyID).Take(&row).Error; err != nil {
		return nil, s.recFail(what, err)
	}
	recs, err := s.withFiles(ctx, what, []recordingRow{row})
	if err != nil {
		return nil, err
	}
	if len(recs) != 1 {
		return nil, errors.New("store: " + what + ": lost")
	}
	return &recs[0], nil
}

func (s *Store) withFiles(ctx context.Context, what string, rows []recordingRow) ([]recording.Recording, error) {
	out := make([]recording.Recording, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]int64, len(rows))
	at := map[int64]int{}
	for i, r := range rows {
		ids[i] = r.ID
		at[r.ID] = i
		out[i] = recording.Recording{ID: r.ID, CompanyID: r.CompanyID, VideoRoomID: r.VideoRoomID, ChatRoomID: r.ChatRoomID,
			GuideSessionID: r.GuideSessionID, StartedAt: r.StartedAt.UTC(), EndedAt: utcPtr(r.EndedAt)}
	}
	var files []recordingFileRow
	if err := s.db.WithContext(ctx).Where("recording_id IN ?", ids).Order("id").Find(&files).Error; err != nil {
		return nil, s.recFail(what+": files", err)
	}
	for _, f := range files {
		i := at[f.RecordingID]
		out[i].Files = append(out[i].Files, recording.File{ID: f.ID, RecordingID: f.RecordingID, UserID: f.UserID, Name: f.Name,
			Customer: f.Customer, Path: f.Path, StartedAt: f.StartedAt.UTC(), EndedAt: utcPtr(f.EndedAt), Bytes: f.Bytes,
			Duration: time.Duration(f.DurationMs) * time.Millisecond, Status: recording.Status(f.Status)})
	}
	return out, nil
}
