package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migrations are plain DDL per dialect, frozen once released: a later schema
// change is a new migration, never an edit of an old one. The statements are
// idempotent (IF NOT EXISTS) because MySQL cannot roll DDL back, so a
// migration interrupted half-way is simply run again.
//
// Identifiers compared exactly (login names, member numbers, client message
// ids) are VARBINARY on MySQL, matching SQLite's byte-wise comparison, so
// "Agent1" and "agent1" are different logins on both backends.
const mysqlTableOptions = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC"

var initialMySQL = []string{
	`CREATE TABLE IF NOT EXISTS companies (
		id BIGINT NOT NULL AUTO_INCREMENT,
		name VARCHAR(255) NOT NULL,
		legacy_key_prefix VARCHAR(255) NOT NULL,
		signing_secret VARCHAR(255) NOT NULL,
		require_signed TINYINT(1) NOT NULL,
		use_config_json MEDIUMTEXT NULL,
		waiting_text TEXT NULL,
		reply_text TEXT NULL,
		work_start VARCHAR(8) NOT NULL,
		work_end VARCHAR(8) NOT NULL,
		lunch_start VARCHAR(8) NOT NULL,
		lunch_end VARCHAR(8) NOT NULL,
		working_text TEXT NOT NULL,
		after_hours_text TEXT NOT NULL,
		lunch_text TEXT NOT NULL,
		allow_customer_video TINYINT(1) NOT NULL,
		PRIMARY KEY (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS members (
		id BIGINT NOT NULL AUTO_INCREMENT,
		company_id BIGINT NOT NULL,
		login_name VARBINARY(100) NOT NULL,
		name VARCHAR(255) NOT NULL,
		password_hash VARCHAR(255) NOT NULL,
		is_admin TINYINT(1) NOT NULL,
		created_at DATETIME(6) NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY uq_members_login_name (login_name),
		KEY idx_members_company (company_id),
		CONSTRAINT fk_members_company FOREIGN KEY (company_id) REFERENCES companies (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS customers (
		id BIGINT NOT NULL AUTO_INCREMENT,
		company_id BIGINT NOT NULL,
		gasapp_member_number VARBINARY(64) NOT NULL,
		name VARCHAR(255) NOT NULL,
		created_at DATETIME(6) NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY uq_customers_number (company_id, gasapp_member_number),
		CONSTRAINT fk_customers_company FOREIGN KEY (company_id) REFERENCES companies (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS speakers (
		id BIGINT NOT NULL AUTO_INCREMENT,
		company_id BIGINT NOT NULL,
		member_id BIGINT NULL,
		customer_id BIGINT NULL,
		name VARCHAR(255) NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY uq_speakers_member (member_id),
		UNIQUE KEY uq_speakers_customer (customer_id),
		KEY idx_speakers_company (company_id),
		CONSTRAINT fk_speakers_company FOREIGN KEY (company_id) REFERENCES companies (id),
		CONSTRAINT fk_speakers_member FOREIGN KEY (member_id) REFERENCES members (id),
		CONSTRAINT fk_speakers_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
	)` + mysqlTableOptions,
	// open_customer_id equals customer_id while the room is not ENDED and is
	// NULL afterwards; its unique key is the "one open room per customer"
	// rule that makes concurrent OpenRoom calls converge (MySQL has no
	// partial indexes).
	`CREATE TABLE IF NOT EXISTS rooms (
		id BIGINT NOT NULL AUTO_INCREMENT,
		company_id BIGINT NOT NULL,
		customer_id BIGINT NOT NULL,
		member_id BIGINT NULL,
		status VARCHAR(16) NOT NULL,
		name VARCHAR(255) NOT NULL,
		review_score INT NULL,
		review_date DATETIME(6) NULL,
		last_message_id BIGINT NOT NULL,
		create_date DATETIME(6) NOT NULL,
		update_date DATETIME(6) NOT NULL,
		end_date DATETIME(6) NULL,
		open_customer_id BIGINT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY uq_rooms_open_customer (open_customer_id),
		KEY idx_rooms_list (company_id, status, update_date),
		KEY idx_rooms_activity (company_id, update_date),
		KEY idx_rooms_customer (customer_id),
		CONSTRAINT fk_rooms_company FOREIGN KEY (company_id) REFERENCES companies (id),
		CONSTRAINT fk_rooms_customer FOREIGN KEY (customer_id) REFERENCES customers (id),
		CONSTRAINT fk_rooms_member FOREIGN KEY (member_id) REFERENCES members (id)
	)` + mysqlTableOptions,
	// client_message_id is NULL when the client sent none: NULLs never
	// collide in a unique key.
	//
	// messages is the hot table and has no foreign keys: the message writer
	// checks room and speaker inside its transaction, with the rooms locked,
	// and rooms and speakers are never deleted. Each key would cost a lookup
	// and a lock per inserted row.
	`CREATE TABLE IF NOT EXISTS messages (
		id BIGINT NOT NULL AUTO_INCREMENT,
		room_id BIGINT NOT NULL,
		company_id BIGINT NOT NULL,
		speaker_id BIGINT NOT NULL,
		speaker_name VARCHAR(255) NOT NULL,
		message_type INT NOT NULL,
		body MEDIUMTEXT NOT NULL,
		detail TEXT NOT NULL,
		thumbnail TEXT NOT NULL,
		admin_type INT NOT NULL,
		is_system TINYINT(1) NOT NULL,
		is_employee TINYINT(1) NOT NULL,
		is_customer TINYINT(1) NOT NULL,
		is_online TINYINT(1) NOT NULL,
		join_message_id BIGINT NOT NULL,
		client_message_id VARBINARY(128) NULL,
		deleted TINYINT(1) NOT NULL,
		create_date DATETIME(6) NOT NULL,
		update_date DATETIME(6) NOT NULL,
		PRIMARY KEY (id),
		KEY idx_messages_room (room_id, id),
		UNIQUE KEY uq_messages_client (room_id, speaker_id, client_message_id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS read_positions (
		room_id BIGINT NOT NULL,
		speaker_id BIGINT NOT NULL,
		last_read_id BIGINT NOT NULL,
		PRIMARY KEY (room_id, speaker_id),
		KEY idx_read_positions_speaker (speaker_id),
		CONSTRAINT fk_read_positions_room FOREIGN KEY (room_id) REFERENCES rooms (id),
		CONSTRAINT fk_read_positions_speaker FOREIGN KEY (speaker_id) REFERENCES speakers (id)
	)` + mysqlTableOptions,
}

var initialSQLite = []string{
	`CREATE TABLE IF NOT EXISTS companies (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		name TEXT NOT NULL,
		legacy_key_prefix TEXT NOT NULL,
		signing_secret TEXT NOT NULL,
		require_signed INTEGER NOT NULL,
		use_config_json TEXT NULL,
		waiting_text TEXT NULL,
		reply_text TEXT NULL,
		work_start TEXT NOT NULL,
		work_end TEXT NOT NULL,
		lunch_start TEXT NOT NULL,
		lunch_end TEXT NOT NULL,
		working_text TEXT NOT NULL,
		after_hours_text TEXT NOT NULL,
		lunch_text TEXT NOT NULL,
		allow_customer_video INTEGER NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS members (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		company_id INTEGER NOT NULL REFERENCES companies (id),
		login_name TEXT NOT NULL,
		name TEXT NOT NULL,
		password_hash TEXT NOT NULL,
		is_admin INTEGER NOT NULL,
		created_at DATETIME NOT NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_members_login_name ON members (login_name)`,
	`CREATE INDEX IF NOT EXISTS idx_members_company ON members (company_id)`,
	`CREATE TABLE IF NOT EXISTS customers (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		company_id INTEGER NOT NULL REFERENCES companies (id),
		gasapp_member_number TEXT NOT NULL,
		name TEXT NOT NULL,
		created_at DATETIME NOT NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_customers_number ON customers (company_id, gasapp_member_number)`,
	`CREATE TABLE IF NOT EXISTS speakers (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		company_id INTEGER NOT NULL REFERENCES companies (id),
		member_id INTEGER NULL REFERENCES members (id),
		customer_id INTEGER NULL REFERENCES customers (id),
		name TEXT NOT NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_speakers_member ON speakers (member_id)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_speakers_customer ON speakers (customer_id)`,
	`CREATE INDEX IF NOT EXISTS idx_speakers_company ON speakers (company_id)`,
	`CREATE TABLE IF NOT EXISTS rooms (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		company_id INTEGER NOT NULL REFERENCES companies (id),
		customer_id INTEGER NOT NULL REFERENCES customers (id),
		member_id INTEGER NULL REFERENCES members (id),
		status TEXT NOT NULL,
		name TEXT NOT NULL,
		review_score INTEGER NULL,
		review_date DATETIME NULL,
		last_message_id INTEGER NOT NULL,
		create_date DATETIME NOT NULL,
		update_date DATETIME NOT NULL,
		end_date DATETIME NULL,
		open_customer_id INTEGER NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_rooms_open_customer ON rooms (open_customer_id)`,
	`CREATE INDEX IF NOT EXISTS idx_rooms_list ON rooms (company_id, status, update_date)`,
	`CREATE INDEX IF NOT EXISTS idx_rooms_activity ON rooms (company_id, update_date)`,
	`CREATE INDEX IF NOT EXISTS idx_rooms_customer ON rooms (customer_id)`,
	`CREATE TABLE IF NOT EXISTS messages (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		room_id INTEGER NOT NULL,
		company_id INTEGER NOT NULL,
		speaker_id INTEGER NOT NULL,
		speaker_name TEXT NOT NULL,
		message_type INTEGER NOT NULL,
		body TEXT NOT NULL,
		detail TEXT NOT NULL,
		thumbnail TEXT NOT NULL,
		admin_type INTEGER NOT NULL,
		is_system INTEGER NOT NULL,
		is_employee INTEGER NOT NULL,
		is_customer INTEGER NOT NULL,
		is_online INTEGER NOT NULL,
		join_message_id INTEGER NOT NULL,
		client_message_id TEXT NULL,
		deleted INTEGER NOT NULL,
		create_date DATETIME NOT NULL,
		update_date DATETIME NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_messages_room ON messages (room_id, id)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_messages_client ON messages (room_id, speaker_id, client_message_id)`,
	`CREATE TABLE IF NOT EXISTS read_positions (
		room_id INTEGER NOT NULL REFERENCES rooms (id),
		speaker_id INTEGER NOT NULL REFERENCES speakers (id),
		last_read_id INTEGER NOT NULL,
		PRIMARY KEY (room_id, speaker_id)
	)`,
	`CREATE INDEX IF NOT EXISTS idx_read_positions_speaker ON read_positions (speaker_id)`,
}

// messagePathSQLite makes a message's INSERT cheaper to commit. The trigger
// keeps a room's last message and update date current with every message
// inserted, inside the INSERT itself: the message writer's batches need no
// second statement for their rooms (a room keeps a higher last message, or
// later update date, it already has). The client message id key holds only
// the messages that have one: the others cost no index page per commit.
var messagePathSQLite = []string{
	`CREATE TRIGGER IF NOT EXISTS ` + messageTriggerName + ` AFTER INSERT ON messages
	BEGIN
		UPDATE rooms SET
			last_message_id = CASE WHEN last_message_id < NEW.id THEN NEW.id ELSE last_message_id END,
			update_date = CASE WHEN update_date < NEW.create_date THEN NEW.create_date ELSE update_date END
		WHERE id = NEW.room_id;
	END`,
	`DROP INDEX IF EXISTS uq_messages_client`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_messages_client ON messages (room_id, speaker_id, client_message_id)
		WHERE client_message_id IS NOT NULL`,
}

var messagePathSQLiteRollback = []string{
	"DROP TRIGGER IF EXISTS " + messageTriggerName,
	`DROP INDEX IF EXISTS uq_messages_client`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_messages_client ON messages (room_id, speaker_id, client_message_id)`,
}

// roomBumpsSQLite leaves the rooms' last message and update date to the
// message writer, which bumps them in bulk (room_bumps.go): the trigger
// rewrote a room's row and index entries in every commit.
var roomBumpsSQLite = []string{"DROP TRIGGER IF EXISTS " + messageTriggerName}

// initialTables lists the tables of the first migration, parents last, for
// its rollback.
var initialTables = []string{"read_positions", "messages", "rooms", "speakers", "customers", "members", "companies"}

func (s *Store) migrations() []*gormigrate.Migration {
	initial := initialSQLite
	if s.dialect == dialectMySQL {
		initial = initialMySQL
	}
	guide, guideChecked, kt, contractsURL := guideSQLite, guideCheckedSQLite, ktSQLite, contractsURLSQLite
	messagePath, messagePathRollback := messagePathSQLite, messagePathSQLiteRollback
	roomBumps, roomBumpsRollback := roomBumpsSQLite, messagePathSQLite[:1]
	if s.dialect == dialectMySQL {
		roomBumps, roomBumpsRollback = nil, nil
		guide, guideChecked, kt, contractsURL = guideMySQL, guideCheckedMySQL, ktMySQL, contractsURLMySQL
		// MySQL's one-trip batch bumps its rooms in the same round trip,
		// and it has no partial indexes.
		messagePath, messagePathRollback = nil, nil
	}
	return []*gormigrate.Migration{{
		ID:       "202611230001_initial",
		Migrate:  execAll(initial),
		Rollback: dropAll(initialTables),
	}, {
		ID:       "202611230100_guide",
		Migrate:  execAll(guide),
		Rollback: dropAll(guideTables),
	}, {
		ID:       "202611231500_guide_checked",
		Migrate:  execAll(guideChecked),
		Rollback: gormigrate.RollbackFunc(execAll(guideCheckedRollback)),
	}, {
		ID:       "202612040001_knowledgetalk",
		Migrate:  execAll(kt),
		Rollback: dropAll(ktTables),
	}, {
		ID:       "202612050001_company_contracts_url",
		Migrate:  execAll(contractsURL),
		Rollback: gormigrate.RollbackFunc(execAll(contractsURLRollback)),
	}, {
		ID:       "202612050100_counseling",
		Migrate:  s.migrateCounseling,
		Rollback: s.rollbackCounseling,
	}, {
		ID:       "202612060001_message_path",
		Migrate:  execAll(messagePath),
		Rollback: gormigrate.RollbackFunc(execAll(messagePathRollback)),
	}, {
		ID:       "202612070001_recordings",
		Migrate:  s.migrateRecording,
		Rollback: s.rollbackRecording,
	}, {
		ID:       "202612080001_room_bumps_by_writer",
		Migrate:  execAll(roomBumps),
		Rollback: gormigrate.RollbackFunc(execAll(roomBumpsRollback)),
	}}
}

// contractsURL adds where a company's console fetches a customer's
// contracts from (chat.Company.ContractsURL).
var (
	contractsURLMySQL    = []string{`ALTER TABLE companies ADD COLUMN contracts_url VARCHAR(2048) NOT NULL DEFAULT ''`}
	contractsURLSQLite   = []string{`ALTER TABLE companies ADD COLUMN contracts_url TEXT NOT NULL DEFAULT ''`}
	contractsURLRollback = []string{`ALTER TABLE companies DROP COLUMN contracts_url`}
)

func dropAll(tables []string) gormigrate.RollbackFunc {
	return func(tx *gorm.DB) error {
		for _, table := range tables {
			if err := tx.Exec("DROP TABLE IF EXISTS " + table).Error; err != nil {
				return fmt.Errorf("drop %s: %w", table, err)
			}
		}
		return nil
	}
}

func execAll(statements []string) gormigrate.MigrateFunc {
	return func(tx *gorm.DB) error {
		for _, stmt := range statements {
			if err := tx.Exec(stmt).Error; err != nil {
				return fmt.Errorf("%s: %w", firstLine(stmt), err)
			}
		}
		return nil
	}
}

func firstLine(stmt string) string {
	if i := strings.IndexByte(stmt, '\n'); i >= 0 {
		return strings.TrimSpace(stmt[:i])
	}
	return stmt
}

// migrationLockTimeout bounds how long a node waits for another node that is
// migrating the same MySQL database.
const migrationLockTimeout = 120

// Migrate applies the schema migrations that have not run yet. Several nodes
// may call it at once against one MySQL database: a named lock makes them
// take turns, and the later ones find nothing left to do.
func (s *Store) Migrate(ctx context.Context) error {
	run := func(db *gorm.DB) error {
		m := gormigrate.New(db, &gormigrate.Options{
			TableName:    "schema_migrations",
			IDColumnName: "id",
			IDColumnSize: 191,
		}, s.migrations())
		if err := m.Migrate(); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		if s.dialect == dialectMySQL {
			if err := s.ensureMessageTrigger(db); err != nil {
				return fmt.Errorf("store: migrate: %w", err)
			}
		}
		migrations := s.migrations()
		s.log.Info("schema up to date", "version", migrations[len(migrations)-1].ID)
		return nil
	}
	db := s.db.WithContext(ctx)
	if s.dialect != dialectMySQL {
		// SQLite serializes writers itself and runs the DDL atomically.
		return db.Transaction(func(tx *gorm.DB) error {
			if err := run(tx); err != nil {
				return err
			}
			return s.repairRooms(tx)
		})
	}
	// GET_LOCK belongs to a connection, so pin one for lock, work and release.
	return db.Connection(func(pinned *gorm.DB) error {
		// Each statement starts from a clean session on the pinned connection.
		conn := pinned.Session(&gorm.Session{NewDB: true})
		var got *int
		if err := conn.Raw("SELECT GET_LOCK('cstalk_migrate', ?)", migrationLockTimeout).Row().Scan(&got); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		if got == nil || *got != 1 {
			return fmt.Errorf("store: migrate: another node held the migration lock for %ds", migrationLockTimeout)
		}
		defer conn.Exec("SELECT RELEASE_LOCK('cstalk_migrate')")
		// gormigrate creates its own table through GORM: utf8mb4 too.
		return run(conn.Set("gorm:table_options", strings.TrimSpace(mysqlTableOptions)).Session(&gorm.Session{}))
	})
}
