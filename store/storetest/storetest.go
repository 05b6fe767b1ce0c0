// Package storetest gives a Go test a fresh MariaDB database of its own on
// the machine's server, for the store's suite and for every package whose
// tests run against a real store. It is for tests only.
//
// CSTALK_TEST_MYSQL_DSN names the server (default DefaultDSN; its database
// part is ignored) and CSTALK_TEST_MYSQL=off skips the tests that need it.
// It never imports store, so the store's own tests can use it.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
)

// DefaultDSN is the server used when CSTALK_TEST_MYSQL_DSN is unset.
const DefaultDSN = "mysql://root@127.0.0.1:3306/test"

// maxPrefix keeps cstalk_<prefix>_<12 hex digits> within MariaDB's 64
// characters for a database name.
const maxPrefix = 64 - len("cstalk_") - len("_") - 2*suffixBytes

const suffixBytes = 6

// MariaDB creates the database cstalk_<prefix>_<random hex> (utf8mb4) for t
// and drops it when t ends. It returns the database's DSN in the form
// store.Open takes and a connection to it, closed when t ends, for checking
// what the code under test stored; callers that only need the DSN ignore it.
//
// An unreachable server fails the test rather than skipping it, so a broken
// machine is never mistaken for a pass; only CSTALK_TEST_MYSQL=off skips.
func MariaDB(t testing.TB, prefix string) (dsn string, db *sql.DB) {
	t.Helper()
	if os.Getenv("CSTALK_TEST_MYSQL") == "off" {
		t.Skip("CSTALK_TEST_MYSQL=off")
	}
	if prefix == "" || len(prefix) > maxPrefix || strings.Trim(prefix, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
		t.Fatalf("storetest: database prefix %q: want 1 to %d lower-case letters, digits or _", prefix, maxPrefix)
	}
	base := os.Getenv("CSTALK_TEST_MYSQL_DSN")
	if base == "" {
		base = DefaultDSN
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		t.Fatalf("storetest: CSTALK_TEST_MYSQL_DSN %q: want mysql://user:pass@host:port/db (%v)", redact(base), err)
	}
	cfg := mysqldriver.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	admin, err := openDB(cfg)
	if err != nil {
		t.Fatalf("storetest: open MariaDB at %s: %v", u.Redacted(), err)
	}

	suffix := make([]byte, suffixBytes)
	_, _ = rand.Read(suffix)
	name := "cstalk_" + prefix + "_" + hex.EncodeToString(suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		_ = admin.Close()
		t.Fatalf("MariaDB at %s is required for this test (CSTALK_TEST_MYSQL_DSN names another server; CSTALK_TEST_MYSQL=off skips the test): create database %s: %v", u.Redacted(), name, err)
	}

	own := cfg.Clone()
	own.DBName = name
	own.ParseTime = true
	db, err = openDB(own)
	t.Cleanup(func() {
		if db != nil {
			_ = db.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	if err != nil {
		t.Fatalf("storetest: open database %s: %v", name, err)
	}

	u.Path = "/" + name
	return u.String(), db
}

func openDB(cfg *mysqldriver.Config) (*sql.DB, error) {
	connector, err := mysqldriver.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(connector), nil
}

// redact hides a password in a DSN that may not parse as a URL.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "(unparsable DSN)"
}
