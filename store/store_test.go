package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"

	"github.com/cstalk/cstalk/chat"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn     string
		dialect dialect
		want    func(t *testing.T, tg target)
		wantErr string
	}{
		{dsn: "sqlite:./data/cstalk.db", dialect: dialectSQLite, want: func(t *testing.T, tg target) {
			if tg.path != "./data/cstalk.db" || !strings.HasPrefix(tg.driverDSN, "./data/cstalk.db?") ||
				!strings.Contains(tg.driverDSN, "journal_mode%28WAL%29") || !strings.Contains(tg.driverDSN, "foreign_keys%281%29") ||
				!strings.Contains(tg.driverDSN, "_txlock=immediate") || !strings.Contains(tg.driverDSN, "busy_timeout") {
				t.Errorf("driver DSN %q", tg.driverDSN)
			}
		}},
		{dsn: "sqlite::memory:", dialect: dialectSQLite, want: func(t *testing.T, tg target) {
			if !tg.memory || !strings.HasPrefix(tg.driverDSN, ":memory:?") {
				t.Errorf("memory target %+v", tg)
			}
		}},
		{dsn: "mysql://cs:p%40ss:w%2Frd@db.internal:3307/cstalk?tls=skip-verify", dialect: dialectMySQL, want: func(t *testing.T, tg target) {
			cfg, err := mysqldriver.ParseDSN(tg.driverDSN)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.User != "cs" || cfg.Passwd != "p@ss:w/rd" || cfg.Addr != "db.internal:3307" || cfg.DBName != "cstalk" ||
				!cfg.ParseTime || cfg.Loc != time.UTC || cfg.Collation != "utf8mb4_unicode_ci" || cfg.TLSConfig != "skip-verify" {
				t.Errorf("driver config %+v", cfg)
			}
			if strings.Contains(tg.redacted, "p%40ss") || strings.Contains(tg.redacted, "p@ss") {
				t.Errorf("redacted DSN shows the password: %s", tg.redacted)
			}
		}},
		{dsn: "mysql://root@localhost/cstalk", dialect: dialectMySQL, want: func(t *testing.T, tg target) {
			cfg, err := mysqldriver.ParseDSN(tg.driverDSN)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != "localhost:3306" || cfg.Passwd != "" {
				t.Errorf("default port: %+v", cfg)
			}
		}},
		{dsn: "mysql://root@localhost:3306/", wantErr: "dbname"},
		{dsn: "mysql://root@localhost:3306/a?readTimeout=banana", wantErr: "banana"},
		{dsn: "sqlite:", wantErr: "path"},
		{dsn: "sqlite:/tmp/a?b.db", wantErr: "must not contain"},
		{dsn: "postgres://x:secret@h/db", wantErr: "unsupported"},
		{dsn: "./cstalk.db", wantErr: "unsupported"},
	} {
		t.Run(tc.dsn, func(t *testing.T) {
			tg, err := parseDSN(tc.dsn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.dialect != tc.dialect {
				t.Fatalf("dialect %s, want %s", tg.dialect, tc.dialect)
			}
			tc.want(t, tg)
		})
	}
}

// Several nodes starting at once all migrate the same database.
func TestMigrateConcurrently(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dsn := b.newDSN(t)
			if dsn == "" {
				t.Skip("an in-memory database has one node")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stores := []*Store{openUnmigrated(t, dsn), openUnmigrated(t, dsn), openUnmigrated(t, dsn)}
			var wg sync.WaitGroup
			errs := make([]error, len(stores))
			for i, s := range stores {
				wg.Go(func() { errs[i] = s.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
			}
			var applied int64
			if err := stores[0].db.WithContext(ctx).Table("schema_migrations").Count(&applied).Error; err != nil {
				t.Fatal(err)
			}
			if applied != int64(len(stores[0].migrations())) {
				t.Fatalf("%d migrations recorded, want %d", applied, len(stores[0].migrations()))
			}
			must(t, stores[1].Ping(ctx))
		})
	}
}

// The test database is created latin1; every table must still be utf8mb4
// so emoji and Korean survive.
func TestMySQLTablesAreUTF8MB4(t *testing.T) {
	s, _ := backend{newDSN: newMariaDBDSN}.open(t)
	var rows []struct {
		TableName      string `gorm:"column:TABLE_NAME"`
		TableCollation string `gorm:"column:TABLE_COLLATION"`
	}
	err := s.db.Raw("SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").Scan(&rows).Error
	must(t, err)
	if len(rows) != len(initialTables)+len(guideTables)+len(ktTables)+len(counselingTables)+len(recordingTables)+1 { // and schema_migrations
		t.Fatalf("found %d tables", len(rows))
	}
	for _, r := range rows {
		if r.TableCollation != "utf8mb4_unicode_ci" {
			t.Errorf("table %s has collation %s", r.TableName, r.TableCollation)
		}
	}
}

func TestSQLitePragmas(t *testing.T) {
	s, _ := backend{newDSN: newSQLiteDSN}.open(t)
	var mode string
	must(t, s.db.Raw("PRAGMA journal_mode").Scan(&mode).Error)
	var fk, sync int
	must(t, s.db.Raw("PRAGMA foreign_keys").Scan(&fk).Error)
	must(t, s.db.Raw("PRAGMA synchronous").Scan(&sync).Error)
	if mode != "wal" || fk != 1 || sync != 2 {
		t.Fatalf("journal_mode %q foreign_keys %d synchronous %d, want wal 1 2 (FULL)", mode, fk, sync)
	}
}

// Servers that cannot promise consecutive auto-increment values for one
// INSERT get row-by-row inserts inside the batch; the append contract holds.
func TestRowByRowInserts(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, dsn := b.open(t)
			s.multiRowInsert = false // read only by the writer, which has not been sent anything yet
			for _, c := range contract {
				if !strings.HasPrefix(c.name, "Append") {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					c.run(t, env{s: s, dsn: dsn, ctx: ctx})
				})
			}
		})
	}
}

// A message another node commits between this node's duplicate check and
// its INSERT fails the whole batch; the batch is then stored one by one, so
// the duplicates are answered with the other node's messages and the rest
// are stored. Only MySQL can interleave so (SQLite's writer holds the
// database's write lock), and only a hook can place the other node's commit
// at that moment.
func TestGroupCommitFallsBackOneByOne(t *testing.T) {
	b := backend{name: "mariadb", newDSN: newMariaDBDSN}
	s, dsn := b.open(t)
	otherNode := openForTest(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := env{s: s, dsn: dsn, ctx: ctx}
	f := newFixture(t, e)

	// The other node's messages, written straight into the table (its room
	// update does not matter here).
	var sneakErr error
	sneak := func(cid string) int64 {
		row, err := newMessageRow(&chat.Message{RoomID: f.room.ID, CompanyID: f.company.ID, SpeakerID: f.customerSp.ID, Body: "다른 노드", ClientMessageID: cid}, time.Now())
		if err == nil {
			err = otherNode.db.WithContext(ctx).Create(&row).Error
		}
		sneakErr = errors.Join(sneakErr, err)
		return row.ID
	}
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	var sneaked [2]int64
	// The hook runs on the writer goroutine; the test reads what it wrote
	// only after the appends it serves have returned.
	s.beforeInsert = func() {
		calls++
		switch calls {
		case 1: // the blocker's batch: hold it until the three are queued
			close(entered)
			<-release
		case 2: // the optimistic attempt
			sneaked[0] = sneak("x1")
		case 3: // the attempt that looked the ids up first
			sneaked[1] = sneak("x3")
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, _, err := s.AppendMessage(ctx, f.msg(f.agentSp, "blocker"))
		blocked <- err
	}()
	<-entered
	msgs := []*chat.Message{f.msg(f.customerSp, "x1"), f.msg(f.customerSp, "plain"), f.msg(f.customerSp, "x3")}
	msgs[0].ClientMessageID, msgs[2].ClientMessageID = "x1", "x3"
	type result struct {
		stored *chat.Message
		dup    bool
		err    error
	}
	results := make([]result, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			stored, dup, err := s.AppendMessage(ctx, m)
			results[i] = result{stored, dup, err}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); len(s.appends) < len(msgs); {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages queued", len(s.appends))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	must(t, <-blocked)
	wg.Wait()
	must(t, sneakErr)

	if calls < 4 {
		t.Fatalf("beforeInsert ran %d times: the batch did not fall back to one by one", calls)
	}
	for i, r := range results {
		must(t, r.err)
		switch i {
		case 0, 2:
			if !r.dup || r.stored.ID != sneaked[i/2] || r.stored.Body != "다른 노드" {
				t.Errorf("%s: got %+v dup=%v, want the other node's message %d", msgs[i].ClientMessageID, r.stored, r.dup, sneaked[i/2])
			}
		case 1:
			if r.dup || r.stored.ID == 0 || r.stored.Body != "plain" {
				t.Errorf("plain message: %+v dup=%v", r.stored, r.dup)
			}
		}
	}
	list, err := s.Messages(ctx, f.room.ID, 0, 100, true)
	must(t, err)
	if len(list) != 4 { // blocker, two from the other node, plain
		t.Fatalf("room holds %d messages, want 4", len(list))
	}
}

// On MySQL a batch goes in one multi-statement round trip. When another
// node's message makes its INSERT fail, nothing of the batch is stored, the
// transaction it began does not stay open on the writer's connection (the
// next batch's START TRANSACTION would commit whatever it held), and the
// batch is answered as any duplicate is.
func TestOneTripBatchFailureLeavesNoTransaction(t *testing.T) {
	b := backend{name: "mariadb", newDSN: newMariaDBDSN}
	s, dsn := b.open(t)
	if s.batchDB == nil {
		t.Fatal("MariaDB store without its one-trip batch connection")
	}
	otherNode := openForTest(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := env{s: s, dsn: dsn, ctx: ctx}
	f := newFixture(t, e)
	before := appendOK(t, e, f.msg(f.customerSp, "먼저"))

	theirs, dup, err := otherNode.AppendMessage(ctx, func() *chat.Message {
		m := f.msg(f.customerSp, "다른 노드")
		m.ClientMessageID = "retry-1"
		return m
	}())
	must(t, err)
	if dup {
		t.Fatal("the other node's message is a duplicate")
	}
	m := f.msg(f.customerSp, "이 노드")
	m.ClientMessageID = "retry-1"
	got, dup, err := s.AppendMessage(ctx, m)
	must(t, err)
	if !dup || got.ID != theirs.ID || got.Body != "다른 노드" {
		t.Fatalf("append of a stored client message id: %+v dup=%v, want the other node's %d", got, dup, theirs.ID)
	}
	var open int
	must(t, s.batchDB.QueryRowContext(ctx, "SELECT @@in_transaction").Scan(&open))
	if open != 0 {
		t.Fatal("the failed batch left its transaction open on the writer's connection")
	}
	list, err := s.Messages(ctx, f.room.ID, 0, 100, true)
	must(t, err)
	if len(list) != 2 || list[0].ID != before.ID || list[1].ID != theirs.ID {
		t.Fatalf("room holds %+v, want only %d and %d", list, before.ID, theirs.ID)
	}

	// Past the batches that look ids up first, one-trip batches store again.
	for i := range precheckAfterDuplicate + 1 {
		appendOK(t, e, f.msg(f.agentSp, fmt.Sprint("답변 ", i)))
	}
	last := appendOK(t, e, f.msg(f.agentSp, "마지막"))
	room, err := otherNode.Room(ctx, f.room.ID)
	must(t, err)
	if room.LastMessageID != last.ID {
		t.Fatalf("the other node sees LastMessageID %d, want %d", room.LastMessageID, last.ID)
	}
}

// A batch too big for one statement is not sent in one trip: it is inserted
// in several statements inside one transaction, and its room still ends at
// its newest message.
func TestBatchBeyondOneStatement(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s, dsn := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			f := newFixture(t, env{s: s, dsn: dsn, ctx: ctx})
			var reqs []*appendRequest
			for i := range 3 {
				row, err := newMessageRow(f.msg(f.customerSp, strings.Repeat(fmt.Sprint(i), maxInsertBytes/2)), t0)
				must(t, err)
				reqs = append(reqs, &appendRequest{ctx: ctx, row: row, done: make(chan appendResult, 1)})
			}
			if fitsOneInsert(reqs) {
				t.Fatal("the batch fits one statement")
			}
			// The writer is idle: nothing else touches its state meanwhile.
			results, err := s.storeBatch(ctx, reqs, false)
			must(t, err)
			var last int64
			for i, r := range results {
				must(t, r.err)
				got, err := s.Message(ctx, r.msg.ID)
				must(t, err)
				if r.msg.ID <= last || got.Body != strings.Repeat(fmt.Sprint(i), maxInsertBytes/2) {
					t.Fatalf("message %d: ID %d after %d, body of %d bytes", i, r.msg.ID, last, len(got.Body))
				}
				last = r.msg.ID
			}
			room, err := s.Room(ctx, f.room.ID)
			must(t, err)
			if room.LastMessageID != last {
				t.Fatalf("room LastMessageID %d, want %d", room.LastMessageID, last)
			}
		})
	}
}

// The SQLite file holds password hashes and conversations: it, its -wal
// and its -shm are readable by their owner alone, whether the store
// creates the file or finds it open to others.
func TestSQLiteFileOwnerOnly(t *testing.T) {
	dsn := newSQLiteDSN(t)
	path := strings.TrimPrefix(dsn, "sqlite:")
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if mode := st.Mode().Perm(); mode != 0o600 {
				t.Errorf("%s: %s has mode %#o, want 0600", when, filepath.Base(p), mode)
			}
		}
	}
	write := func(s *Store) {
		t.Helper()
		must(t, s.SaveCompany(context.Background(), &chat.Company{ID: 7, Name: "mode"}))
	}
	s := openForTest(t, dsn)
	write(s)
	check("created")
	must(t, s.Close())

	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		// The WAL and shared memory may be gone after a clean close; an
		// empty one is what SQLite would find after a crash.
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
		must(t, err)
		must(t, f.Close())
		must(t, os.Chmod(p, 0o644))
	}
	s = openForTest(t, dsn)
	write(s)
	check("reopened")
}
