package store

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cstalk/cstalk/store/storetest"
)

// Every backend passes the same contract suite (contract_test.go). SQLite
// runs in a temporary directory (and in memory); MariaDB gets a fresh
// database per run (storetest.MariaDB), dropped afterwards.

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
	dsn, db := storetest.MariaDB(t, "test")
	// latin1 on purpose: the migrations must make every table utf8mb4
	// themselves, whatever the database's default.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "ALTER DATABASE CHARACTER SET latin1"); err != nil {
		t.Fatalf("make the database latin1: %v", err)
	}
	return dsn
}
