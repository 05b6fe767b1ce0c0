package store

import (
	"fmt"

	"gorm.io/gorm"
)

// The counseling migration: routing (a company's autoAssign, a member's
// status, capacity and how long it has waited for a room, when a room was
// assigned), the reply templates, and the indexes the team figures read
// rooms by. Columns and indexes are added only where missing, so a
// migration that MySQL interrupted between two DDL statements (it cannot
// roll DDL back) simply runs again.

type addedColumn struct{ table, column, mysql, sqlite string }

type addedIndex struct{ table, name, columns string }

var counselingColumns = []addedColumn{
	{"companies", "auto_assign", "TINYINT(1) NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"},
	{"members", "status", "VARCHAR(16) NOT NULL DEFAULT 'OFFLINE'", "TEXT NOT NULL DEFAULT 'OFFLINE'"},
	{"members", "capacity", "INT NOT NULL DEFAULT 5", "INTEGER NOT NULL DEFAULT 5"},
	// idle_since: since when the member has waited for a room (it became
	// AVAILABLE or was last given one); the longest wait wins a tie.
	{"members", "idle_since", "DATETIME(6) NULL", "DATETIME NULL"},
	{"rooms", "assign_date", "DATETIME(6) NULL", "DATETIME NULL"},
}

var counselingIndexes = []addedIndex{
	{"members", "idx_members_routing", "company_id, status"},
	// A member's open rooms are counted at every assignment.
	{"rooms", "idx_rooms_member", "member_id, status"},
	{"rooms", "idx_rooms_ended", "company_id, end_date"},
	{"rooms", "idx_rooms_reviewed", "company_id, review_date"},
}

var cannedMySQL = `CREATE TABLE IF NOT EXISTS canned_responses (
		id BIGINT NOT NULL AUTO_INCREMENT,
		company_id BIGINT NOT NULL,
		shortcut VARBINARY(128) NOT NULL,
		title VARCHAR(255) NOT NULL,
		body TEXT NOT NULL,
		created_at DATETIME(6) NOT NULL,
		updated_at DATETIME(6) NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY uq_canned_responses_shortcut (company_id, shortcut),
		CONSTRAINT fk_canned_responses_company FOREIGN KEY (company_id) REFERENCES companies (id)
	)` + mysqlTableOptions

var cannedSQLite = []string{`CREATE TABLE IF NOT EXISTS canned_responses (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		company_id INTEGER NOT NULL REFERENCES companies (id),
		shortcut TEXT NOT NULL,
		title TEXT NOT NULL,
		body TEXT NOT NULL,
		created_at DATETIME NOT NULL,
		updated_at DATETIME NOT NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_canned_responses_shortcut ON canned_responses (company_id, shortcut)`,
}

func (s *Store) migrateCounseling(tx *gorm.DB) error {
	mysql := s.dialect == dialectMySQL
	m := tx.Migrator()
	if err := s.addColumns(tx, counselingColumns); err != nil {
		return err
	}
	for _, ix := range counselingIndexes {
		if m.HasIndex(ix.table, ix.name) {
			continue
		}
		stmt := fmt.Sprintf("CREATE INDEX %s ON %s (%s)", ix.name, ix.table, ix.columns)
		if err := tx.Exec(stmt).Error; err != nil {
			return fmt.Errorf("index %s: %w", ix.name, err)
		}
	}
	if mysql {
		return execAll([]string{cannedMySQL})(tx)
	}
	return execAll(cannedSQLite)(tx)
}

// counselingTables lists the tables the migration creates.
var counselingTables = []string{"canned_responses"}

func (s *Store) rollbackCounseling(tx *gorm.DB) error {
	if err := dropAll(counselingTables)(tx); err != nil {
		return err
	}
	m := tx.Migrator()
	for _, ix := range counselingIndexes {
		if m.HasIndex(ix.table, ix.name) {
			if err := m.DropIndex(ix.table, ix.name); err != nil {
				return fmt.Errorf("drop index %s: %w", ix.name, err)
			}
		}
	}
	return dropColumns(tx, counselingColumns)
}

// addColumns adds the columns that are missing.
func (s *Store) addColumns(tx *gorm.DB, cols []addedColumn) error {
	m := tx.Migrator()
	for _, c := range cols {
		if m.HasColumn(c.table, c.column) {
			continue
		}
		def := c.sqlite
		if s.dialect == dialectMySQL {
			def = c.mysql
		}
		if err := tx.Exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", c.table, c.column, def)).Error; err != nil {
			return fmt.Errorf("add %s.%s: %w", c.table, c.column, err)
		}
	}
	return nil
}

// dropColumns drops the columns that are there.
func dropColumns(tx *gorm.DB, cols []addedColumn) error {
	m := tx.Migrator()
	for _, c := range cols {
		if m.HasColumn(c.table, c.column) {
			if err := tx.Exec(fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", c.table, c.column)).Error; err != nil {
				return fmt.Errorf("drop %s.%s: %w", c.table, c.column, err)
			}
		}
	}
	return nil
}
