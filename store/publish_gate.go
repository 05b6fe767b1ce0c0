package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// publishGate keeps the pool of a SQLite file from handing out a batch that
// the writer committed and has not yet synced. The writer's connection
// commits with synchronous=OFF and syncs the WAL itself right after
// (append_sqlite.go), so between the two a commit is visible in the WAL
// index, not yet durable. The writer closes the gate just before COMMIT and
// opens it once the sync returns. A pool query, once its first step has
// taken its snapshot, and a pool transaction, once its BEGIN IMMEDIATE has,
// wait while the gate is closed before they hand anything out: a commit
// their snapshot holds was published after the gate closed, so it is synced
// once the gate opens. The writer never waits for readers. A transaction's
// own statements read its BEGIN's snapshot; an Exec outside one hands out
// no rows, and one that writes commits under FULL, which syncs the whole
// WAL, the writer's batch included.
type publishGate struct {
	mu     sync.Mutex
	closed chan struct{} // non-nil while closed; closed when the gate opens
	onWait func()        // when set (by tests only), runs as a statement starts waiting
}

// close marks a commit published and not yet synced. The writer alone
// closes and opens the gate.
func (g *publishGate) close() {
	g.mu.Lock()
	g.closed = make(chan struct{})
	g.mu.Unlock()
}

// open marks the commit synced and lets the waiting statements go on.
func (g *publishGate) open() {
	g.mu.Lock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
	g.mu.Unlock()
}

// pass returns once no commit is published and unsynced; a statement calls
// it after taking its snapshot.
func (g *publishGate) pass(ctx context.Context) error {
	g.mu.Lock()
	wait := g.closed
	g.mu.Unlock()
	if wait == nil {
		return nil
	}
	if g.onWait != nil {
		g.onWait()
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the message writer's sync: %w", ctx.Err())
	}
}

// gatedConnector opens the pool's connections to a SQLite file through g.
type gatedConnector struct {
	driver driver.Driver
	dsn    string
	gate   *publishGate
}

func (c *gatedConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(gatedInner)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("sqlite driver connection %T lacks context methods", conn)
	}
	return &gatedConn{inner: inner, gate: c.gate}, nil
}

func (c *gatedConnector) Driver() driver.Driver { return c.driver }

// gatedInner is what the SQLite driver's connections implement.
type gatedInner interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
}

// gatedConn is one pool connection; it is used by one goroutine at a time.
type gatedConn struct {
	inner gatedInner
	gate  *publishGate
	inTx  bool
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	inner, ok := st.(gatedInnerStmt)
	if !ok {
		_ = st.Close()
		return nil, fmt.Errorf("sqlite driver statement %T lacks context methods", st)
	}
	return &gatedStmt{inner: inner, conn: c}, nil
}

func (c *gatedConn) Close() error { return c.inner.Close() }

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := c.gate.pass(ctx); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	c.inTx = true
	return gatedTx{inner: tx, conn: c}, nil
}

func (c *gatedConn) Ping(ctx context.Context) error { return c.inner.Ping(ctx) }

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.inner.ExecContext(ctx, query, args)
}

func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.inner.QueryContext(ctx, query, args)
	return c.gateRows(ctx, rows, err)
}

// gateRows has a query outside a transaction pass the gate after its first
// row is read: the driver runs a query's last statement's first step there.
func (c *gatedConn) gateRows(ctx context.Context, rows driver.Rows, err error) (driver.Rows, error) {
	if err != nil || c.inTx {
		return rows, err
	}
	return &gatedRows{Rows: rows, ctx: ctx, gate: c.gate}, nil
}

type gatedTx struct {
	inner driver.Tx
	conn  *gatedConn
}

func (t gatedTx) Commit() error {
	t.conn.inTx = false
	return t.inner.Commit()
}

func (t gatedTx) Rollback() error {
	t.conn.inTx = false
	return t.inner.Rollback()
}

type gatedInnerStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type gatedStmt struct {
	inner gatedInnerStmt
	conn  *gatedConn
}

func (s *gatedStmt) Close() error  { return s.inner.Close() }
func (s *gatedStmt) NumInput() int { return s.inner.NumInput() }

func (s *gatedStmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, errors.New("sqlite pool: Exec without context")
}

func (s *gatedStmt) Query([]driver.Value) (driver.Rows, error) {
	return nil, errors.New("sqlite pool: Query without context")
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.inner.ExecContext(ctx, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.inner.QueryContext(ctx, args)
	return s.conn.gateRows(ctx, rows, err)
}

// gatedRows passes the gate once, after its first row (or the end).
type gatedRows struct {
	driver.Rows
	ctx    context.Context
	gate   *publishGate
	passed bool
}

func (r *gatedRows) Next(dest []driver.Value) error {
	err := r.Rows.Next(dest)
	if !r.passed {
		r.passed = true
		if gerr := r.gate.pass(r.ctx); gerr != nil {
			return gerr
		}
	}
	return err
}

// The driver's column type information passes through for GORM's migrator.

func (r *gatedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *gatedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *gatedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *gatedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *gatedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

var (
	_ driver.Connector = (*gatedConnector)(nil)
	_ gatedInner       = (*gatedConn)(nil)
	_ gatedInnerStmt   = (*gatedStmt)(nil)
)
