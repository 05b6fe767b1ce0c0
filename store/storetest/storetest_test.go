package storetest_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cstalk/cstalk/store/storetest"
)

// TestMariaDB: the database exists under its prefix, utf8mb4, reachable
// through the returned handle, while the test runs, and is gone after.
func TestMariaDB(t *testing.T) {
	var name string
	t.Run("inside", func(t *testing.T) {
		dsn, db := storetest.MariaDB(t, "storetest")
		u, err := url.Parse(dsn)
		if err != nil || u.Scheme != "mysql" {
			t.Fatalf("dsn %q: want mysql://user:pass@host:port/name (%v)", dsn, err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		if !strings.HasPrefix(name, "cstalk_storetest_") {
			t.Fatalf("database %q: want the prefix cstalk_storetest_", name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var current, charset string
		if err := db.QueryRowContext(ctx, "SELECT DATABASE(), @@character_set_database").Scan(&current, &charset); err != nil {
			t.Fatalf("query the new database: %v", err)
		}
		if current != name || charset != "utf8mb4" {
			t.Fatalf("handle on %q (%s), want %q (utf8mb4)", current, charset, name)
		}
	})
	if name == "" {
		t.Skip("the database was not created")
	}
	// A second database proves the first one was dropped when its test ended.
	_, db := storetest.MariaDB(t, "storetest")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil {
		t.Fatalf("look for %s: %v", name, err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}
