package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

type dialect string

const (
	dialectSQLite dialect = "sqlite"
	dialectMySQL  dialect = "mysql"
)

// sqliteBusyTimeout is how long a SQLite connection waits for another
// connection's write lock before failing.
const sqliteBusyTimeout = 10 * time.Second

// target is a parsed store DSN.
type target struct {
	dialect   dialect
	driverDSN string // what the database/sql driver gets
	redacted  string // safe to log
	path      string // SQLite file; empty for in-memory
	memory    bool
}

// parseDSN understands "sqlite:PATH", "sqlite::memory:" and
// "mysql://user:pass@host:port/dbname[?driver-params]".
func parseDSN(dsn string) (target, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return parseSQLiteDSN(strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "mysql://"):
		return parseMySQLDSN(dsn)
	default:
		return target{}, fmt.Errorf("store: unsupported dsn %q: want sqlite:PATH or mysql://user:pass@host:port/dbname", redactDSN(dsn))
	}
}

func parseSQLiteDSN(path string) (target, error) {
	// WAL lets readers run beside the writer; "immediate" transactions take
	// the write lock at BEGIN, so two read-then-write transactions queue on
	// the busy timeout instead of failing with SQLITE_BUSY on upgrade.
	params := url.Values{}
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	params.Set("_txlock", "immediate")
	switch {
	case path == "":
		return target{}, fmt.Errorf("store: sqlite dsn needs a path (sqlite:./data/cstalk.db)")
	case path == ":memory:" || path == "memory" || path == "memory:":
		return target{dialect: dialectSQLite, driverDSN: ":memory:?" + params.Encode(), redacted: "sqlite::memory:", memory: true}, nil
	case strings.ContainsAny(path, "?#"):
		return target{}, fmt.Errorf("store: sqlite path %q must not contain '?' or '#'", path)
	}
	params.Add("_pragma", "journal_mode(WAL)")
	// FULL syncs the WAL at every commit: an acknowledged message survives
	// a power cut, not only a crash. Group commit pays it once per batch.
	params.Add("_pragma", "synchronous(FULL)")
	// Checkpoints are the store's checkpointer's (append_sqlite.go), off
	// the commit path.
	params.Add("_pragma", "wal_autocheckpoint(0)")
	return target{dialect: dialectSQLite, driverDSN: path + "?" + params.Encode(), redacted: "sqlite:" + path, path: path}, nil
}

func parseMySQLDSN(dsn string) (target, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return target{}, fmt.Errorf("store: mysql dsn %q: %w", redactDSN(dsn), err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || dbName == "" || strings.Contains(dbName, "/") {
		return target{}, fmt.Errorf("store: mysql dsn %q: want mysql://user:pass@host:port/dbname", u.Redacted())
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg := mysqldriver.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = host
	cfg.DBName = dbName
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// The collation selects utf8mb4 for the connection in the handshake, so
	// no extra SET NAMES round trip is needed per connection.
	cfg.Collation = "utf8mb4_unicode_ci"
	// Interpolating parameters client-side (safe for utf8mb4) saves the
	// prepare and close round trips of every statement.
	cfg.InterpolateParams = true
	// RowsAffected counts matched rows, as SQLite does, so an UPDATE that
	// sets a column to its current value still proves the row exists.
	cfg.ClientFoundRows = true
	cfg.Timeout = 10 * time.Second
	driverDSN := cfg.FormatDSN()
	if u.RawQuery != "" {
		// Extra driver parameters (tls, readTimeout, ...) pass through.
		driverDSN += "&" + u.RawQuery
	}
	if _, err := mysqldriver.ParseDSN(driverDSN); err != nil {
		return target{}, fmt.Errorf("store: mysql dsn %q: %w", u.Redacted(), err)
	}
	return target{dialect: dialectMySQL, driverDSN: driverDSN, redacted: u.Redacted()}, nil
}

// redactDSN hides a password in a DSN that did not parse as a URL.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

func (t target) open(ctx context.Context, log logger.Interface) (*gorm.DB, error) {
	var dialector gorm.Dialector
	switch t.dialect {
	case dialectSQLite:
		if t.path != "" {
			if dir := filepath.Dir(t.path); dir != "" {
				if err := os.MkdirAll(dir, 0o750); err != nil {
					return nil, fmt.Errorf("store: create directory for %s: %w", t.path, err)
				}
			}
			if err := ownerOnly(t.path); err != nil {
				return nil, err
			}
		}
		dialector = sqlite.Open(t.driverDSN)
		if t.path != "" {
			// A file's pool has the message writer write its room bumps
			// before each use (room_bumps.go), and reads no batch the
			// writer has not synced yet (publish_gate.go).
			registered, err := sql.Open(sqlite.DriverName, t.driverDSN)
			if err != nil {
				return nil, fmt.Errorf("store: open %s: %w", t.redacted, err)
			}
			gate := &publishGate{}
			pool := sql.OpenDB(&gatedConnector{driver: registered.Driver(), dsn: t.driverDSN, gate: gate})
			_ = registered.Close() // it opened no connection
			dialector = &sqlite.Dialector{DSN: t.driverDSN, Conn: &flushingPool{db: pool, gate: gate}}
		}
	case dialectMySQL:
		dialector = mysql.New(mysql.Config{DSN: t.driverDSN})
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		// Every write that needs atomicity opens its own transaction.
		SkipDefaultTransaction: true,
		Logger:                 log,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", t.redacted, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", t.redacted, err)
	}
	switch {
	case t.memory:
		// Each connection to ":memory:" is a separate database: keep one.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetConnMaxLifetime(0)
		sqlDB.SetConnMaxIdleTime(0)
	case t.dialect == dialectSQLite:
		sqlDB.SetMaxOpenConns(8)
		sqlDB.SetMaxIdleConns(8)
	default:
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(32)
		// Recycle connections before a server's wait_timeout or a proxy
		// drops them under us.
		sqlDB.SetConnMaxLifetime(30 * time.Minute)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("store: connect %s: %w", t.redacted, err)
	}
	return db, nil
}

// ownerOnly makes the SQLite file readable by its owner alone, as the
// signing key is: it holds password hashes and every conversation. A new
// file is created 0600 before SQLite opens it, and SQLite gives its -wal and
// -shm files the mode of the database file; an existing file (and its -wal
// and -shm) loses the group's and others' permissions.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("store: make %s readable by its owner alone: %w", p, err)
			}
		}
	}
	return nil
}
