package store

// The KnowledgeTalk tables (package video/knowledgetalk): licences (a
// company's cpCode/authKey pairs, the key kept as a SHA-256 hash) and the
// rooms CreateRoom made. A room id is the seed's 8-digit number, unique
// across companies so that no two nodes ever hand out the same one.

var ktMySQL = []string{
	`CREATE TABLE IF NOT EXISTS kt_licences (
		cp_code VARBINARY(128) NOT NULL,
		company_id BIGINT NOT NULL,
		auth_key_hash CHAR(64) NOT NULL,
		created_at DATETIME(6) NOT NULL,
		PRIMARY KEY (cp_code),
		KEY idx_kt_licences_company (company_id),
		CONSTRAINT fk_kt_licences_company FOREIGN KEY (company_id) REFERENCES companies (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS kt_rooms (
		id CHAR(8) NOT NULL,
		company_id BIGINT NOT NULL,
		capacity INT NOT NULL,
		created_at DATETIME(6) NOT NULL,
		active_at DATETIME(6) NOT NULL,
		PRIMARY KEY (id),
		KEY idx_kt_rooms_active (active_at),
		CONSTRAINT fk_kt_rooms_company FOREIGN KEY (company_id) REFERENCES companies (id)
	)` + mysqlTableOptions,
}

var ktSQLite = []string{
	`CREATE TABLE IF NOT EXISTS kt_licences (
		cp_code TEXT NOT NULL PRIMARY KEY,
		company_id INTEGER NOT NULL REFERENCES companies (id),
		auth_key_hash TEXT NOT NULL,
		created_at DATETIME NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_kt_licences_company ON kt_licences (company_id)`,
	`CREATE TABLE IF NOT EXISTS kt_rooms (
		id TEXT NOT NULL PRIMARY KEY,
		company_id INTEGER NOT NULL REFERENCES companies (id),
		capacity INTEGER NOT NULL,
		created_at DATETIME NOT NULL,
		active_at DATETIME NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_kt_rooms_active ON kt_rooms (active_at)`,
}

// ktTables lists the KnowledgeTalk tables for the rollback.
var ktTables = []string{"kt_rooms", "kt_licences"}
