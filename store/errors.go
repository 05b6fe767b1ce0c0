package store

import (
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

// translate maps a driver error to GORM's portable sentinels
// (ErrDuplicatedKey, ErrForeignKeyViolated) using the dialect's own
// translator, and leaves anything else as it was. The translators only
// recognise the driver's error itself, so the wrapping chain is walked.
func (s *Store) translate(err error) error {
	t, ok := s.db.Dialector.(gorm.ErrorTranslator)
	if !ok {
		return err
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if translated := t.Translate(e); translated != e {
			return translated
		}
	}
	return err
}

func (s *Store) isDuplicate(err error) bool {
	return errors.Is(s.translate(err), gorm.ErrDuplicatedKey)
}

// fail wraps err with what the store was doing, turning a missing row or a
// violated foreign key into chat.ErrNotFound and a unique violation into
// chat.ErrConflict, so chat can tell them apart without knowing SQL.
func (s *Store) fail(what string, err error) error {
	return s.failAs(what, err, chat.ErrNotFound, chat.ErrConflict)
}

// failAs is fail with the not-found and conflict sentinels of another
// domain package; an error that already is one of own passes unchanged.
func (s *Store) failAs(what string, err, notFound, conflict error, own ...error) error {
	for _, o := range own {
		if errors.Is(err, o) {
			return fmt.Errorf("store: %s: %w", what, err)
		}
	}
	switch t := s.translate(err); {
	case errors.Is(t, gorm.ErrRecordNotFound):
		return fmt.Errorf("store: %s: %w", what, notFound)
	case errors.Is(t, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("store: %s: referenced row missing: %w", what, notFound)
	case errors.Is(t, gorm.ErrDuplicatedKey):
		return fmt.Errorf("store: %s: %w", what, conflict)
	default:
		return fmt.Errorf("store: %s: %w", what, err)
	}
}

// invalid reports input the store refuses before touching the database.
func invalid(what string, err error) error {
	return fmt.Errorf("store: %s: invalid input: %w", what, err)
}
