package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
)

// publishGate keeps the pool of a SQLite file from reading a batch that the
// writer committed and has not yet synced. The writer's connection commits
// with synchronous=OFF and syncs the WAL itself right after (append_sqlite.go),
// so between the two a commit is visible in the WAL index, not yet durable.
// The writer closes the gate before it begins a batch and opens it once the
// batch is synced; in between, a pool statement outside a transaction or a
// transaction's BEGIN waits to start, and the writer waits for those already
// started to take their snapshot (a statement's first step: a query's first
// row, an exec's end, a BEGIN IMMEDIATE's lock). A transaction's own
// statements pass: its BEGIN took the write lock while the gate was open,
// and nobody commits until it ends.
type publishGate struct {
	mu      sync.Mutex
	active  int           // statements between their start and their snapshot
	closed  chan struct{} // non-nil while closed; closed when the gate opens
	drained chan struct{} // the closing writer's, closed when active reaches 0
	onWait  func()        // when set (by tests only), runs as a statement starts waiting
}

// enter waits until the gate is open and counts a statement in.
func (g *publishGate) enter(ctx context.Context) error {
	g.mu.Lock()
	for g.closed != nil {
		wait := g.closed
		g.mu.Unlock()
		if g.onWait != nil {
			g.onWait()
		}
		var err error
		select {
		case <-wait:
		case <-ctx.Done():
			err = fmt.Errorf("wait for the message writer's sync: %w", ctx.Err())
		}
		g.mu.Lock()
		if err != nil {
			g.mu.Unlock()
			return err
		}
	}
	g.active++
	g.mu.Unlock()
	return nil
}

// leave counts a statement out once it holds its snapshot (or failed).
func (g *publishGate) leave() {
	g.mu.Lock()
	g.active--
	if g.active == 0 && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
	g.mu.Unlock()
}

// close stops new statements and waits for the started ones' snapshots.
// Only the writer goroutine closes and opens the gate.
func (g *publishGate) close() {
	g.mu.Lock()
	g.closed = make(chan struct{})
	if g.active == 0 {
		g.mu.Unlock()
		return
	}
	drained := make(chan struct{})
	g.drained = drained
	g.mu.Unlock()
	<-drained
}

// open lets the waiting statements start.
func (g *publishGate) open() {
	g.mu.Lock()
	close(g.closed)
	g.closed = nil
	g.mu.Unlock()
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
	if err := c.gate.enter(ctx); err != nil {
		return nil, err
	}
	tx, err := c.inner.BeginTx(ctx, opts)
	c.gate.leave()
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return gatedTx{inner: tx, conn: c}, nil
}

func (c *gatedConn) Ping(ctx context.Context) error { return c.inner.Ping(ctx) }

// run enters the gate for a statement outside a transaction.
func (c *gatedConn) run(ctx context.Context) (gated bool, err error) {
	if c.inTx {
		return false, nil
	}
	return true, c.gate.enter(ctx)
}

func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	gated, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.inner.ExecContext(ctx, query, args)
	if gated {
		c.gate.leave()
	}
	return res, err
}

func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	gated, err := c.run(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.inner.QueryContext(ctx, query, args)
	return c.gateRows(gated, rows, err)
}

// gateRows keeps a query counted in until its first row is read: the
// driver runs a query's last statement's first step there.
func (c *gatedConn) gateRows(gated bool, rows driver.Rows, err error) (driver.Rows, error) {
	if err != nil || !gated {
		if gated {
			c.gate.leave()
		}
		return rows, err
	}
	return &gatedRows{Rows: rows, gate: c.gate, counted: true}, nil
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
	gated, err := s.conn.run(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.inner.ExecContext(ctx, args)
	if gated {
		s.conn.gate.leave()
	}
	return res, err
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	gated, err := s.conn.run(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.inner.QueryContext(ctx, args)
	return s.conn.gateRows(gated, rows, err)
}

// gatedRows counts its query out after the first row (or the end).
type gatedRows struct {
	driver.Rows
	gate    *publishGate
	counted bool
}

func (r *gatedRows) release() {
	if r.counted {
		r.counted = false
		r.gate.leave()
	}
}

func (r *gatedRows) Next(dest []driver.Value) error {
	err := r.Rows.Next(dest)
	r.release()
	return err
}

func (r *gatedRows) Close() error {
	r.release()
	return r.Rows.Close()
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
	_ io.Closer        = (*gatedRows)(nil)
)
