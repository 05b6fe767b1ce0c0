package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"gorm.io/gorm/clause"

	kt "github.com/cstalk/cstalk/video/knowledgetalk"
)

// The persistence of package video/knowledgetalk.

var _ kt.Store = (*Store)(nil)

type ktLicenceRow struct {
	CPCode      string `gorm:"column:cp_code;primaryKey"`
	CompanyID   int64
	AuthKeyHash string
	CreatedAt   time.Time `gorm:"autoCreateTime:false"`
}

func (ktLicenceRow) TableName() string { return "kt_licences" }

type ktRoomRow struct {
	ID        string `gorm:"primaryKey"`
	CompanyID int64
	Capacity  int
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	ActiveAt  time.Time
}

func (ktRoomRow) TableName() string { return "kt_rooms" }

const maxCPCodeBytes = 128

var (
	ktRoomIDPattern = regexp.MustCompile(`^[0-9]{8}$`)
	sha256HexRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ktFail is fail for package knowledgetalk's sentinels.
func (s *Store) ktFail(what string, err error) error {
	return s.failAs(what, err, kt.ErrNotFound, kt.ErrConflict, kt.ErrNotFound, kt.ErrConflict)
}

// SaveKTLicence inserts or replaces the licence of l.CPCode.
func (s *Store) SaveKTLicence(ctx context.Context, l *kt.Licence) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("save licence %q", l.CPCode)
	var lc limitChecker
	lc.bytes("cpCode", l.CPCode, maxCPCodeBytes)
	lc.date("created at", l.CreatedAt)
	switch {
	case lc.err != nil:
	case l.CPCode == "" || cleanText(l.CPCode) != l.CPCode:
		lc.err = errors.New("cpCode must be non-empty UTF-8")
	case !sha256HexRE.MatchString(l.AuthKeyHash):
		lc.err = errors.New("auth key hash is not hex SHA-256")
	case l.CompanyID <= 0:
		lc.err = errors.New("company id must be positive")
	}
	if lc.err != nil {
		return invalid(what, lc.err)
	}
	r := ktLicenceRow{CPCode: l.CPCode, CompanyID: l.CompanyID, AuthKeyHash: l.AuthKeyHash, CreatedAt: dbTime(l.CreatedAt)}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "cp_code"}},
		DoUpdates: clause.AssignmentColumns([]string{"company_id", "auth_key_hash", "created_at"}),
	}).Create(&r).Error
	if err != nil {
		return s.ktFail(what, err)
	}
	return nil
}

// KTLicence returns the licence of cpCode, compared byte for byte.
func (s *Store) KTLicence(ctx context.Context, cpCode string) (*kt.Licence, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("licence %q", cpCode)
	if len(cpCode) > maxCPCodeBytes {
		return nil, fmt.Errorf("store: %s: %w", what, kt.ErrNotFound)
	}
	var r ktLicenceRow
	if err := s.db.WithContext(ctx).Where("cp_code = ?", cleanText(cpCode)).Take(&r).Error; err != nil {
		return nil, s.ktFail(what, err)
	}
	l := r.toKT()
	return &l, nil
}

func (r ktLicenceRow) toKT() kt.Licence {
	return kt.Licence{CPCode: r.CPCode, CompanyID: r.CompanyID, AuthKeyHash: r.AuthKeyHash, CreatedAt: r.CreatedAt.UTC()}
}

// KTLicences lists the licences of companyID (every company's for 0).
func (s *Store) KTLicences(ctx context.Context, companyID int64) ([]kt.Licence, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Order("company_id, cp_code")
	if companyID != 0 {
		q = q.Where("company_id = ?", companyID)
	}
	var rows []ktLicenceRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, s.ktFail(fmt.Sprintf("licences of company %d", companyID), err)
	}
	out := make([]kt.Licence, len(rows))
	for i, r := range rows {
		out[i] = r.toKT()
	}
	return out, nil
}

// DeleteKTLicence removes the licence of cpCode.
func (s *Store) DeleteKTLicence(ctx context.Context, cpCode string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("delete licence %q", cpCode)
	res := s.db.WithContext(ctx).Where("cp_code = ?", cleanText(cpCode)).Delete(&ktLicenceRow{})
	if res.Error != nil {
		return s.ktFail(what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: %s: %w", what, kt.ErrNotFound)
	}
	return nil
}

// CreateKTRoom inserts room r; an id in use (by any company) is ErrConflict.
func (s *Store) CreateKTRoom(ctx context.Context, r *kt.Room) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("create room %q", r.ID)
	var lc limitChecker
	lc.date("created at", r.CreatedAt)
	lc.date("active at", r.ActiveAt)
	if lc.err == nil && !ktRoomIDPattern.MatchString(r.ID) {
		lc.err = errors.New("room id is not 8 digits")
	}
	if lc.err == nil && (r.CompanyID <= 0 || r.Capacity <= 0) {
		lc.err = errors.New("company id and capacity must be positive")
	}
	if lc.err != nil {
		return invalid(what, lc.err)
	}
	row := ktRoomRow{ID: r.ID, CompanyID: r.CompanyID, Capacity: r.Capacity, CreatedAt: dbTime(r.CreatedAt), ActiveAt: dbTime(r.ActiveAt)}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return s.ktFail(what, err)
	}
	return nil
}

// KTRoom returns room id if it belongs to companyID.
func (s *Store) KTRoom(ctx context.Context, companyID int64, id string) (*kt.Room, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("room %q of company %d", id, companyID)
	if !ktRoomIDPattern.MatchString(id) {
		return nil, fmt.Errorf("store: %s: %w", what, kt.ErrNotFound)
	}
	var r ktRoomRow
	if err := s.db.WithContext(ctx).Where("id = ? AND company_id = ?", id, companyID).Take(&r).Error; err != nil {
		return nil, s.ktFail(what, err)
	}
	return &kt.Room{ID: r.ID, CompanyID: r.CompanyID, Capacity: r.Capacity, CreatedAt: r.CreatedAt.UTC(), ActiveAt: r.ActiveAt.UTC()}, nil
}

// TouchKTRooms marks rooms ids active at at.
func (s *Store) TouchKTRooms(ctx context.Context, ids []string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if len(ids) == 0 {
		return nil
	}
	err := s.db.WithContext(ctx).Model(&ktRoomRow{}).Where("id IN ?", ids).Update("active_at", dbTime(at)).Error
	if err != nil {
		return s.ktFail(fmt.Sprintf("touch %d rooms", len(ids)), err)
	}
	return nil
}

// DeleteKTRoom removes room id.
func (s *Store) DeleteKTRoom(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.db.WithContext(ctx).Where("id = ?", id).Delete(&ktRoomRow{}).Error; err != nil {
		return s.ktFail(fmt.Sprintf("delete room %q", id), err)
	}
	return nil
}

// DeleteIdleKTRooms removes the rooms last active before before.
func (s *Store) DeleteIdleKTRooms(ctx context.Context, before time.Time) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Where("active_at < ?", dbTime(before)).Delete(&ktRoomRow{})
	if res.Error != nil {
		return 0, s.ktFail("delete idle rooms", res.Error)
	}
	return res.RowsAffected, nil
}
