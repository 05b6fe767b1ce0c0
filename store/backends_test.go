package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Every backend passes the same contract suite (contract_test.go). SQLite
// runs in a temporary directory (and in memory); MariaDB gets a fresh
// database per run, created through a root connection and dropped
// afterwards.

const defaultTestMySQL = "mysql://root@127.0.0.1:3306/test"

type backend struct {
	name string
	// newDSN returns the DSN of a fresh, empty database that lives until t
	// ends; "" for the in-memory store, which a second Open cannot share.
	newDSN func(t testing.TB) string
}

func backends() []backend {
	return []backend{
		{name: "sqlite", newDSN: newSQLiteDSN},
		{name: "sqlite-memory", newDSN: func(testing.TB) string { return "" }},
		{name: "mariadb", newDSN: newMariaDBDSN},
	}
}

// open returns a migrated store on a fresh database, and its DSN.
func (b backend) open(t testing.TB) (*Store, string) {
	dsn := b.newDSN(t)
	if dsn == "" {
		return openForTest(t, "sqlite::memory:"), ""
	}
	return openForTest(t, dsn), dsn
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openForTest opens dsn, migrates, and closes the store when t ends.
func openForTest(t testing.TB, dsn string) *Store {
	t.Helper()
	s := openUnmigrated(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func openUnmigrated(t testing.TB, dsn string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, testLogger(t))
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func newSQLiteDSN(t testing.TB) string {
	// A missing parent directory is part of the contract: Open creates it.
	return "sqlite:" + filepath.Join(t.TempDir(), "data", "cstalk.db")
}

func newMariaDBDSN(t testing.TB) string {
	t.Helper()
	if os.Getenv("CSTALK_TEST_MYSQL") == "off" {
		t.Skip("CSTALK_TEST_MYSQL=off")
	}
	base := os.Getenv("CSTALK_TEST_MYSQL_DSN")
	if base == "" {
		base = defaultTestMySQL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := Open(ctx, base, testLogger(t))
	if err != nil {
		t.Fatalf("MariaDB is required for this test (CSTALK_TEST_MYSQL=off skips it; CSTALK_TEST_MYSQL_DSN points elsewhere): %v", err)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "cstalk_test_" + hex.EncodeToString(suffix)
	// latin1 on purpose: the migrations must make every table utf8mb4
	// themselves, whatever the database's default.
	if err := admin.db.WithContext(ctx).Exec("CREATE DATABASE " + name + " CHARACTER SET latin1").Error; err != nil {
		_ = admin.Close()
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.db.WithContext(ctx).Exec("DROP DATABASE IF EXISTS " + name).Error; err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	u.Path = "/" + name
	return u.String()
}
