// Package store owns cstalk's persistence: it implements chat.Store on GORM
// over an embedded SQLite file (the default) or MySQL/MariaDB (production).
//
// GORM, SQL and the row layout stay inside this package; chat sees only its
// own domain types. All times are stored in UTC with microsecond precision.
//
// Both backends behave alike, and the contract tests hold them to it:
//   - Text: every string written is made valid UTF-8 first (invalid byte
//     sequences become U+FFFD); MySQL would otherwise refuse such bytes
//     while SQLite kept them. Tables are utf8mb4 on MySQL, so emoji and
//     Korean round-trip verbatim.
//   - Identifiers (login names, member numbers, client message ids) compare
//     byte for byte, case and trailing spaces included.
//   - Lengths and ranges MySQL would refuse (names over 255 characters,
//     bodies over 16 MiB, dates outside the years 1000-9999, ...) are
//     refused up front with an "invalid input" error, on SQLite too.
//
// AppendMessage is group-committed by a writer goroutine (append.go).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/cstalk/cstalk/chat"
)

var _ chat.Store = (*Store)(nil)

// errClosed is returned by AppendMessage once Close has begun.
var errClosed = errors.New("store: closed")

// Store is the GORM implementation of chat.Store. It is safe for concurrent
// use. AppendMessage goes through a writer goroutine that commits queued
// messages in groups (see append.go); Close stops it.
type Store struct {
	db      *gorm.DB
	dialect dialect
	memory  bool // SQLite in memory: nothing is synced
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	// multiRowInsert is false when the server cannot guarantee consecutive
	// auto-increment values for one INSERT (MySQL with
	// innodb_autoinc_lock_mode=2 or auto_increment_increment>1); batches are
	// then inserted row by row inside their transaction.
	multiRowInsert bool
	// batchDB, on MySQL with multiRowInsert, is the writer's connection
	// that sends a whole batch in one round trip (append_mysql.go).
	batchDB *sql.DB
	// mysqlInserts are batchDB's prepared statements; the writer's.
	mysqlInserts mysqlInserts
	// readDB, on MySQL, holds the context readers' connections, each in
	// contextConns with its prepared queries (message_context_mysql.go).
	readDB       *sql.DB
	contextConns chan *contextConn
	// sqlitePath is the SQLite file (empty in memory and on MySQL): the
	// writer and the checkpointer open connections of their own to it
	// (append_sqlite.go). sqliteW and sqliteRetryAt belong to the writer.
	sqlitePath         string
	commitSpacing      time.Duration // between batch starts under load (append.go)
	sqliteW            *sqliteWriter
	gate               *publishGate // the pool's; the writer closes it from a COMMIT to its sync
	bumps              *roomBumps   // on a SQLite file (room_bumps.go)
	sqliteRetryAt      time.Time
	commits            chan struct{} // a commit grew the WAL: for the checkpointer
	checkpointerEnd    chan struct{} // closed when the checkpointer has exited
	cancelCheckpointer context.CancelFunc
	// walRestartAt is when the checkpointer asked the writer to let the
	// WAL start over (unix nanoseconds; 0: not asked); walRestartFrames
	// is the WAL's size in frames that makes it ask, and walGrown counts
	// the pages the writer wrote to the WAL (append_sqlite.go).
	walRestartAt, walRestartFrames, walGrown atomic.Int64

	// The message writer (append.go).
	appends      chan *appendRequest
	stop         chan struct{}  // closed by Close: the writer drains and exits
	writerEnd    chan struct{}  // closed when the writer has exited
	deadlines    *deadlineClock // wakes appends waiting past their deadline
	cancelWriter context.CancelFunc

	// precheckBatches (owned by the writer goroutine) counts down the
	// batches that still look client message ids up before inserting.
	precheckBatches int
	// roomCompany and speakerCompany (owned by the writer goroutine)
	// remember the company of rooms and speakers already stored to.
	roomCompany, speakerCompany map[int64]int64
	// beforeInsert, when set (by tests only, before the first append), runs
	// on the writer just before a batch's messages are inserted (in its
	// transaction, or before its one-trip statement is sent): the moment
	// another node's commit can slip past the duplicate check.
	beforeInsert func()
	// afterCommit, when set (by tests only, before the first append), runs
	// on the SQLite writer between a batch's COMMIT and its sync.
	afterCommit func()

	// The message context readers (message_context.go); they stop with
	// the writer.
	contexts   chan *contextRequest
	readersEnd chan struct{} // closed when every reader has exited
	// roomCache keeps the contexts read (on MySQL only after
	// CacheRoomContexts); feedOut publishes the changes to them for the
	// other nodes sharing a MySQL database (room_feed.go).
	roomCache *roomCache
	feedOut   *feedOut
	// afterFeed, when set (by tests only, before CacheRoomContexts), runs
	// after each payload of other nodes' changes is applied.
	afterFeed func()

	// callTimeout bounds every call of the store's API (SetCallTimeout);
	// 0: only the caller's context does.
	callTimeout atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// SetCallTimeout bounds each call of the store's API (Migrate aside) to d,
// whatever the caller's context allows: a database that stops answering
// without closing its connections must not hold a request for minutes. A
// call past it fails with an error that wraps context.DeadlineExceeded. 0
// leaves calls to the caller's context.
func (s *Store) SetCallTimeout(d time.Duration) { s.callTimeout.Store(int64(d)) }

// bound gives ctx the call deadline; every exported method that reaches the
// database starts with it.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d := time.Duration(s.callTimeout.Load()); d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return ctx, func() {}
}

// Open connects to dsn ("sqlite:PATH", "sqlite::memory:" or
// "mysql://user:pass@host:port/dbname") and starts the message writer. It
// does not migrate; call Migrate.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "store")
	target, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := target.open(ctx, newGormLogger(log))
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:              db,
		dialect:         target.dialect,
		memory:          target.memory,
		log:             log,
		metrics:         newMetrics(),
		now:             time.Now,
		multiRowInsert:  true,
		commitSpacing:   mysqlCommitSpacing,
		appends:         make(chan *appendRequest, appendQueueSize),
		stop:            make(chan struct{}),
		writerEnd:       make(chan struct{}),
		deadlines:       newDeadlineClock(),
		roomCompany:     map[int64]int64{},
		speakerCompany:  map[int64]int64{},
		contexts:        make(chan *contextRequest, contextQueueSize),
		readersEnd:      make(chan struct{}),
		commits:         make(chan struct{}, 1),
		checkpointerEnd: make(chan struct{}),
	}
	s.walRestartFrames.Store(walRestartFrames)
	if target.dialect == dialectSQLite && !target.memory {
		s.sqlitePath = target.path
		s.commitSpacing = sqliteCommitSpacing
		syncDataOnly()
		s.bumps = newRoomBumps()
		if pool, ok := db.ConnPool.(*flushingPool); ok {
			pool.before = s.flushRoomBumps
			s.gate = pool.gate
		}
	}
	if target.dialect == dialectSQLite {
		s.roomCache = &roomCache{rooms: map[int64]*roomContext{}}
	}
	if target.dialect == dialectMySQL {
		if err := s.checkAutoIncrement(ctx); err != nil {
			s.closeDB()
			return nil, err
		}
		if s.multiRowInsert {
			if s.batchDB, err = target.openOwnDB(1, true); err != nil {
				s.closeDB()
				return nil, err
			}
		}
		if s.readDB, err = target.openOwnDB(contextReaders, false); err != nil {
			s.closeDB()
			return nil, err
		}
		s.contextConns = make(chan *contextConn, contextReaders)
		for range contextReaders {
			s.contextConns <- &contextConn{}
		}
	}
	// The writer outlives Open's ctx; Close ends it.
	writerCtx, cancel := context.WithCancel(context.Background())
	s.cancelWriter = cancel
	go s.runWriter(writerCtx)
	var readers sync.WaitGroup
	for range contextReaders {
		readers.Go(func() { s.runContextReader(writerCtx) })
	}
	go func() {
		readers.Wait()
		close(s.readersEnd)
	}()
	checkpointerCtx, cancelCheckpointer := context.WithCancel(context.Background())
	s.cancelCheckpointer = cancelCheckpointer
	if s.sqlitePath != "" {
		go s.runCheckpointer(checkpointerCtx)
	} else {
		close(s.checkpointerEnd)
	}
	log.Info("store opened", "backend", string(target.dialect), "target", target.redacted)
	return s, nil
}

// checkAutoIncrement decides whether one multi-row INSERT may be trusted to
// yield consecutive IDs (GORM derives every row's ID from the first).
func (s *Store) checkAutoIncrement(ctx context.Context) error {
	var lockMode, increment int
	row := s.db.WithContext(ctx).Raw("SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment").Row()
	if err := row.Scan(&lockMode, &increment); err != nil {
		return fmt.Errorf("store: read auto-increment settings: %w", err)
	}
	if lockMode == 2 || increment != 1 {
		s.multiRowInsert = false
		s.log.Info("row-by-row message inserts (auto-increment values may interleave)",
			"innodb_autoinc_lock_mode", lockMode, "auto_increment_increment", increment)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close stops the writer after it has stored what was already queued, then
// closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		grace := time.NewTimer(closeGrace)
		defer grace.Stop()
		select {
		case <-s.writerEnd:
		case <-grace.C:
			s.log.Warn("store close: cancelling queued message writes", "after", closeGrace)
		}
		s.cancelWriter()
		<-s.writerEnd
		<-s.readersEnd
		s.stopFeed()
		s.cancelCheckpointer()
		<-s.checkpointerEnd
		s.closeErr = s.closeDB()
	})
	return s.closeErr
}

func (s *Store) closeDB() error {
	s.closeContextConns()
	var batchErr error
	if s.batchDB != nil {
		if err := s.batchDB.Close(); err != nil {
			batchErr = fmt.Errorf("store: close batch connection: %w", err)
		}
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return errors.Join(batchErr, fmt.Errorf("store: close: %w", err))
	}
	if err := sqlDB.Close(); err != nil {
		return errors.Join(batchErr, fmt.Errorf("store: close: %w", err))
	}
	return batchErr
}
