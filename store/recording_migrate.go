package store

import "gorm.io/gorm"

// The recordings migration (package video/recording): a company's choice
// to record its calls (NULL: the server's default), one row per recorded
// call and one per participant's file. Recordings of guide sessions belong
// to no company (company_id 0), so company_id has no foreign key.

var recordingMySQL = []string{
	`CREATE TABLE IF NOT EXISTS recordings (
		id BIGINT NOT NULL AUTO_INCREMENT,
		company_id BIGINT NOT NULL,
		video_room_id VARCHAR(160) NOT NULL,
		chat_room_id BIGINT NULL,
		guide_session_id BIGINT NULL,
		started_at DATETIME(6) NOT NULL,
		ended_at DATETIME(6) NULL,
		PRIMARY KEY (id),
		KEY idx_recordings_company (company_id, id),
		KEY idx_recordings_room (chat_room_id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS recording_files (
		id BIGINT NOT NULL AUTO_INCREMENT,
		recording_id BIGINT NOT NULL,
		user_id VARCHAR(128) NOT NULL,
		name VARCHAR(255) NOT NULL,
		customer TINYINT(1) NOT NULL DEFAULT 0,
		path VARCHAR(512) NOT NULL DEFAULT '',
		started_at DATETIME(6) NOT NULL,
		ended_at DATETIME(6) NULL,
		bytes BIGINT NOT NULL DEFAULT 0,
		duration_ms BIGINT NOT NULL DEFAULT 0,
		status VARCHAR(16) NOT NULL,
		PRIMARY KEY (id),
		KEY idx_recording_files_recording (recording_id),
		CONSTRAINT fk_recording_files_recording FOREIGN KEY (recording_id) REFERENCES recordings (id)
	)` + mysqlTableOptions,
}

var recordingSQLite = []string{
	`CREATE TABLE IF NOT EXISTS recordings (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		company_id INTEGER NOT NULL,
		video_room_id TEXT NOT NULL,
		chat_room_id INTEGER NULL,
		guide_session_id INTEGER NULL,
		started_at DATETIME NOT NULL,
		ended_at DATETIME NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_recordings_company ON recordings (company_id, id)`,
	`CREATE INDEX IF NOT EXISTS idx_recordings_room ON recordings (chat_room_id)`,
	`CREATE TABLE IF NOT EXISTS recording_files (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		recording_id INTEGER NOT NULL REFERENCES recordings (id),
		user_id TEXT NOT NULL,
		name TEXT NOT NULL,
		customer INTEGER NOT NULL DEFAULT 0,
		path TEXT NOT NULL DEFAULT '',
		started_at DATETIME NOT NULL,
		ended_at DATETIME NULL,
		bytes INTEGER NOT NULL DEFAULT 0,
		duration_ms INTEGER NOT NULL DEFAULT 0,
		status TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_recording_files_recording ON recording_files (recording_id)`,
}

// recordCallsColumn is the company's choice.
var recordCallsColumn = addedColumn{"companies", "record_calls", "TINYINT(1) NULL", "INTEGER NULL"}

// recordingTables lists the recording tables for the rollback.
var recordingTables = []string{"recording_files", "recordings"}

func (s *Store) migrateRecording(tx *gorm.DB) error {
	if err := s.addColumns(tx, []addedColumn{recordCallsColumn}); err != nil {
		return err
	}
	if s.dialect == dialectMySQL {
		return execAll(recordingMySQL)(tx)
	}
	return execAll(recordingSQLite)(tx)
}

func (s *Store) rollbackRecording(tx *gorm.DB) error {
	if err := dropAll(recordingTables)(tx); err != nil {
		return err
	}
	return dropColumns(tx, []addedColumn{recordCallsColumn})
}
