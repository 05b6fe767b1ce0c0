package store

// The guide-session tables (package guide). gs_seq is guide_sessions.id and
// gh_seq guide_histories.id. Tickets are a balance on the user's account;
// the history counts those spent on it.

var guideMySQL = []string{
	`CREATE TABLE IF NOT EXISTS guide_accounts (
		id BIGINT NOT NULL AUTO_INCREMENT,
		role VARCHAR(8) NOT NULL,
		login_name VARBINARY(100) NOT NULL,
		name VARCHAR(255) NOT NULL,
		password_hash VARCHAR(255) NOT NULL,
		tickets INT NOT NULL,
		availability VARCHAR(16) NOT NULL,
		rating_sum BIGINT NOT NULL,
		rating_count BIGINT NOT NULL,
		rating_avg DOUBLE NOT NULL,
		created_at DATETIME(6) NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY uq_guide_accounts_login (login_name),
		KEY idx_guide_accounts_rank (role, availability, rating_avg, rating_count)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS guide_friends (
		user_id BIGINT NOT NULL,
		mate_id BIGINT NOT NULL,
		created_at DATETIME(6) NOT NULL,
		PRIMARY KEY (user_id, mate_id),
		CONSTRAINT fk_guide_friends_user FOREIGN KEY (user_id) REFERENCES guide_accounts (id),
		CONSTRAINT fk_guide_friends_mate FOREIGN KEY (mate_id) REFERENCES guide_accounts (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS guide_sessions (
		id BIGINT NOT NULL AUTO_INCREMENT,
		user_id BIGINT NOT NULL,
		mate_id BIGINT NOT NULL,
		kind VARCHAR(16) NOT NULL,
		status VARCHAR(16) NOT NULL,
		history_id BIGINT NOT NULL,
		created_at DATETIME(6) NOT NULL,
		answered_at DATETIME(6) NULL,
		ended_at DATETIME(6) NULL,
		PRIMARY KEY (id),
		KEY idx_guide_sessions_user (user_id, id),
		KEY idx_guide_sessions_mate (mate_id, id),
		CONSTRAINT fk_guide_sessions_user FOREIGN KEY (user_id) REFERENCES guide_accounts (id),
		CONSTRAINT fk_guide_sessions_mate FOREIGN KEY (mate_id) REFERENCES guide_accounts (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS guide_histories (
		id BIGINT NOT NULL AUTO_INCREMENT,
		session_id BIGINT NOT NULL,
		user_id BIGINT NOT NULL,
		mate_id BIGINT NOT NULL,
		began_at DATETIME(6) NOT NULL,
		ends_at DATETIME(6) NOT NULL,
		tickets_used INT NOT NULL,
		completed_at DATETIME(6) NULL,
		end_reason VARCHAR(32) NOT NULL,
		duration_ms BIGINT NOT NULL,
		PRIMARY KEY (id),
		UNIQUE KEY uq_guide_histories_session (session_id),
		KEY idx_guide_histories_open (completed_at),
		CONSTRAINT fk_guide_histories_session FOREIGN KEY (session_id) REFERENCES guide_sessions (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS guide_crm (
		history_id BIGINT NOT NULL,
		session_id BIGINT NOT NULL,
		user_id BIGINT NOT NULL,
		mate_id BIGINT NOT NULL,
		began_at DATETIME(6) NOT NULL,
		ended_at DATETIME(6) NOT NULL,
		duration_ms BIGINT NOT NULL,
		tickets_used INT NOT NULL,
		end_reason VARCHAR(32) NOT NULL,
		note TEXT NOT NULL,
		note_by BIGINT NOT NULL,
		created_at DATETIME(6) NOT NULL,
		PRIMARY KEY (history_id),
		KEY idx_guide_crm_mate (mate_id, created_at),
		CONSTRAINT fk_guide_crm_history FOREIGN KEY (history_id) REFERENCES guide_histories (id)
	)` + mysqlTableOptions,
	`CREATE TABLE IF NOT EXISTS guide_evaluations (
		history_id BIGINT NOT NULL,
		user_id BIGINT NOT NULL,
		mate_id BIGINT NOT NULL,
		stars INT NOT NULL,
		comment TEXT NOT NULL,
		created_at DATETIME(6) NOT NULL,
		PRIMARY KEY (history_id),
		KEY idx_guide_evaluations_mate (mate_id, created_at),
		CONSTRAINT fk_guide_evaluations_history FOREIGN KEY (history_id) REFERENCES guide_histories (id)
	)` + mysqlTableOptions,
}

var guideSQLite = []string{
	`CREATE TABLE IF NOT EXISTS guide_accounts (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		role TEXT NOT NULL,
		login_name TEXT NOT NULL,
		name TEXT NOT NULL,
		password_hash TEXT NOT NULL,
		tickets INTEGER NOT NULL,
		availability TEXT NOT NULL,
		rating_sum INTEGER NOT NULL,
		rating_count INTEGER NOT NULL,
		rating_avg REAL NOT NULL,
		created_at DATETIME NOT NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_guide_accounts_login ON guide_accounts (login_name)`,
	`CREATE INDEX IF NOT EXISTS idx_guide_accounts_rank ON guide_accounts (role, availability, rating_avg, rating_count)`,
	`CREATE TABLE IF NOT EXISTS guide_friends (
		user_id INTEGER NOT NULL REFERENCES guide_accounts (id),
		mate_id INTEGER NOT NULL REFERENCES guide_accounts (id),
		created_at DATETIME NOT NULL,
		PRIMARY KEY (user_id, mate_id)
	)`,
	`CREATE TABLE IF NOT EXISTS guide_sessions (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		user_id INTEGER NOT NULL REFERENCES guide_accounts (id),
		mate_id INTEGER NOT NULL REFERENCES guide_accounts (id),
		kind TEXT NOT NULL,
		status TEXT NOT NULL,
		history_id INTEGER NOT NULL,
		created_at DATETIME NOT NULL,
		answered_at DATETIME NULL,
		ended_at DATETIME NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_guide_sessions_user ON guide_sessions (user_id, id)`,
	`CREATE INDEX IF NOT EXISTS idx_guide_sessions_mate ON guide_sessions (mate_id, id)`,
	`CREATE TABLE IF NOT EXISTS guide_histories (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		session_id INTEGER NOT NULL REFERENCES guide_sessions (id),
		user_id INTEGER NOT NULL,
		mate_id INTEGER NOT NULL,
		began_at DATETIME NOT NULL,
		ends_at DATETIME NOT NULL,
		tickets_used INTEGER NOT NULL,
		completed_at DATETIME NULL,
		end_reason TEXT NOT NULL,
		duration_ms INTEGER NOT NULL
	)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS uq_guide_histories_session ON guide_histories (session_id)`,
	`CREATE INDEX IF NOT EXISTS idx_guide_histories_open ON guide_histories (completed_at)`,
	`CREATE TABLE IF NOT EXISTS guide_crm (
		history_id INTEGER PRIMARY KEY REFERENCES guide_histories (id),
		session_id INTEGER NOT NULL,
		user_id INTEGER NOT NULL,
		mate_id INTEGER NOT NULL,
		began_at DATETIME NOT NULL,
		ended_at DATETIME NOT NULL,
		duration_ms INTEGER NOT NULL,
		tickets_used INTEGER NOT NULL,
		end_reason TEXT NOT NULL,
		note TEXT NOT NULL,
		note_by INTEGER NOT NULL,
		created_at DATETIME NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_guide_crm_mate ON guide_crm (mate_id, created_at)`,
	`CREATE TABLE IF NOT EXISTS guide_evaluations (
		history_id INTEGER PRIMARY KEY REFERENCES guide_histories (id),
		user_id INTEGER NOT NULL,
		mate_id INTEGER NOT NULL,
		stars INTEGER NOT NULL,
		comment TEXT NOT NULL,
		created_at DATETIME NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS idx_guide_evaluations_mate ON guide_evaluations (mate_id, created_at)`,
}

// guideTables lists the guide tables, children first, for the rollback.
var guideTables = []string{"guide_evaluations", "guide_crm", "guide_histories", "guide_sessions", "guide_friends", "guide_accounts"}

// guideChecked adds the last session check another node answered, so the
// node running a guide's clock does not take its apps for vanished.
var guideCheckedMySQL = []string{`ALTER TABLE guide_histories ADD COLUMN checked_at DATETIME(6) NULL`}

var guideCheckedSQLite = []string{`ALTER TABLE guide_histories ADD COLUMN checked_at DATETIME NULL`}

var guideCheckedRollback = []string{`ALTER TABLE guide_histories DROP COLUMN checked_at`}
