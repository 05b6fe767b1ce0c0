package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/cstalk/cstalk/chat"
)

// Companies, members, customers and speakers: the directory of who may talk.

// Company returns company id.
func (s *Store) Company(ctx context.Context, id int64) (*chat.Company, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r companyRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("company %d", id), err)
	}
	return r.toChat(), nil
}

// SaveCompany inserts c (setting c.ID when it is 0) or replaces every field
// of the company with c.ID.
func (s *Store) SaveCompany(ctx context.Context, c *chat.Company) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("save company %d", c.ID)
	r, err := newCompanyRow(c)
	if err != nil {
		return invalid(what, err)
	}
	db := s.db.WithContext(ctx)
	if r.ID == 0 {
		err = db.Create(&r).Error
	} else {
		err = db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, UpdateAll: true}).Create(&r).Error
	}
	if err != nil {
		return s.fail(what, err)
	}
	c.ID = r.ID
	return nil
}

// Member returns member id.
func (s *Store) Member(ctx context.Context, id int64) (*chat.Member, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r memberRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("member %d", id), err)
	}
	m := r.toChat()
	return &m, nil
}

// MemberByLogin finds a member by its login name, compared byte for byte.
func (s *Store) MemberByLogin(ctx context.Context, loginName string) (*chat.Member, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r memberRow
	if err := s.db.WithContext(ctx).Where("login_name = ?", cleanText(loginName)).Take(&r).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("member by login %q", loginName), err)
	}
	m := r.toChat()
	return &m, nil
}

// Members lists a company's members by ID.
func (s *Store) Members(ctx context.Context, companyID int64) ([]chat.Member, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var rows []memberRow
	if err := s.db.WithContext(ctx).Where("company_id = ?", companyID).Order("id").Find(&rows).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("members of company %d", companyID), err)
	}
	members := make([]chat.Member, len(rows))
	for i := range rows {
		members[i] = rows[i].toChat()
	}
	return members, nil
}

// CreateMember inserts m and sets m.ID (and m.CreatedAt when zero). A taken
// login name wraps chat.ErrConflict; an unknown company chat.ErrNotFound.
func (s *Store) CreateMember(ctx context.Context, m *chat.Member) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("create member %q", m.LoginName)
	r := memberRow{
		CompanyID:    m.CompanyID,
		LoginName:    cleanText(m.LoginName),
		Name:         cleanText(m.Name),
		PasswordHash: cleanText(m.PasswordHash),
		IsAdmin:      m.IsAdmin,
		CreatedAt:    dbTime(m.CreatedAt),
		Status:       string(m.Status),
		Capacity:     m.Capacity,
	}
	if m.CreatedAt.IsZero() {
		r.CreatedAt = dbTime(s.now())
	}
	if r.Status == "" {
		r.Status = string(chat.MemberOffline)
	}
	if _, ok := chat.ParseMemberStatus(r.Status); !ok {
		return invalid(what, fmt.Errorf("status %q is not AVAILABLE, AWAY or OFFLINE", r.Status))
	}
	if r.Capacity == 0 {
		// A zero Member is a new counselor: the default capacity.
		r.Capacity = chat.DefaultCapacity
	}
	var l limitChecker
	if r.LoginName == "" {
		l.err = errors.New("login name is empty")
	}
	l.bytes("login name", r.LoginName, maxLoginBytes)
	l.chars("name", r.Name, maxNameChars)
	l.chars("password hash", r.PasswordHash, maxPasswordChars)
	if l.err != nil {
		return invalid(what, l.err)
	}
	if err := s.db.WithContext(ctx).Create(&r).Error; err != nil {
		return s.fail(what, err)
	}
	m.ID, m.CreatedAt, m.Status, m.Capacity = r.ID, r.CreatedAt, chat.MemberStatus(r.Status), r.Capacity
	return nil
}

// EnsureCustomer returns customer (companyID, number), creating it, and
// renames it when name is not empty and differs. Concurrent first calls for
// one customer converge on one row through its unique key.
func (s *Store) EnsureCustomer(ctx context.Context, companyID int64, number, name string) (*chat.Customer, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	what := fmt.Sprintf("ensure customer %d/%q", companyID, number)
	number, name = cleanText(number), cleanText(name)
	var l limitChecker
	if number == "" {
		l.err = errors.New("member number is empty")
	}
	l.bytes("member number", number, maxNumberBytes)
	l.chars("name", name, maxNameChars)
	if l.err != nil {
		return nil, invalid(what, l.err)
	}
	db := s.db.WithContext(ctx)
	for attempt := 0; ; attempt++ {
		var r customerRow
		err := db.Where("company_id = ? AND gasapp_member_number = ?", companyID, number).Take(&r).Error
		if err == nil {
			if name != "" && name != r.Name {
				if err := db.Model(&r).Update("name", name).Error; err != nil {
					return nil, s.fail(what, err)
				}
				r.Name = name
			}
			return r.toChat(), nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, s.fail(what, err)
		}
		r = customerRow{CompanyID: companyID, GasappMemberNumber: number, Name: name, CreatedAt: dbTime(s.now())}
		err = db.Create(&r).Error
		if err == nil {
			return r.toChat(), nil
		}
		if !s.isDuplicate(err) || attempt > 0 {
			return nil, s.fail(what, err)
		}
		// Another call created it between our read and insert: read it.
	}
}

// Customer returns customer id.
func (s *Store) Customer(ctx context.Context, id int64) (*chat.Customer, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r customerRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("customer %d", id), err)
	}
	return r.toChat(), nil
}

// MemberSpeaker returns member m's speaker, creating it on first use and
// keeping its name in step with the member's.
func (s *Store) MemberSpeaker(ctx context.Context, m *chat.Member) (*chat.Speaker, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	id := m.ID
	return s.ensureSpeaker(ctx, fmt.Sprintf("speaker of member %d", m.ID), "member_id",
		speakerRow{CompanyID: m.CompanyID, MemberID: &id, Name: cleanText(m.Name)})
}

// CustomerSpeaker returns customer c's speaker, creating it on first use and
// keeping its name in step with the customer's.
func (s *Store) CustomerSpeaker(ctx context.Context, c *chat.Customer) (*chat.Speaker, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	id := c.ID
	return s.ensureSpeaker(ctx, fmt.Sprintf("speaker of customer %d", c.ID), "customer_id",
		speakerRow{CompanyID: c.CompanyID, CustomerID: &id, Name: cleanText(c.Name)})
}

// ensureSpeaker finds the speaker whose ownerColumn matches want's owner,
// or inserts want; the unique key on the owner column settles races.
func (s *Store) ensureSpeaker(ctx context.Context, what, ownerColumn string, want speakerRow) (*chat.Speaker, error) {
	owner := want.MemberID
	if owner == nil {
		owner = want.CustomerID
	}
	if *owner <= 0 {
		return nil, invalid(what, errors.New("owner has no ID"))
	}
	var l limitChecker
	l.chars("name", want.Name, maxNameChars)
	if l.err != nil {
		return nil, invalid(what, l.err)
	}
	db := s.db.WithContext(ctx)
	for attempt := 0; ; attempt++ {
		var r speakerRow
		err := db.Where(ownerColumn+" = ?", *owner).Take(&r).Error
		if err == nil {
			if r.CompanyID != want.CompanyID {
				return nil, fmt.Errorf("store: %s: owner belongs to company %d, not %d: %w", what, r.CompanyID, want.CompanyID, chat.ErrConflict)
			}
			if want.Name != "" && want.Name != r.Name {
				if err := db.Model(&r).Update("name", want.Name).Error; err != nil {
					return nil, s.fail(what, err)
				}
				r.Name = want.Name
			}
			return r.toChat(), nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, s.fail(what, err)
		}
		r = want
		err = db.Create(&r).Error
		if err == nil {
			return r.toChat(), nil
		}
		if !s.isDuplicate(err) || attempt > 0 {
			return nil, s.fail(what, err)
		}
	}
}

// Speaker returns speaker id.
func (s *Store) Speaker(ctx context.Context, id int64) (*chat.Speaker, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var r speakerRow
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, s.fail(fmt.Sprintf("speaker %d", id), err)
	}
	return r.toChat(), nil
}
