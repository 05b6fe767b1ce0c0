package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
)

// On MySQL a MESSAGE reads its context unless it is cached (roomCache), and
// database/sql starts a goroutine for every query whose context can end, to
// close its rows: about one goroutine per message, with reflection for
// every column scanned, and the server parsing the query each time. So each
// reader holds a connection of its own (readDB) with the query prepared for
// every shape it used (1, 2, 4, ... rooms; a batch in between repeats its
// last room), and queries through the driver itself, assigning the columns
// by their few types.

// contextConn is a reader's connection and its prepared queries by shape;
// it belongs to whoever took it from contextConns.
type contextConn struct {
	conn  *sql.Conn
	stmts map[int]driver.Stmt
}

// readRoomContextsDirect is readRoomContexts for MySQL.
func (s *Store) readRoomContextsDirect(ctx context.Context, ids []int64) (map[int64]*roomContext, error) {
	var cc *contextConn
	select {
	case cc = <-s.contextConns: // one per reader: free at once
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { s.contextConns <- cc }()
	found, err := cc.read(ctx, s.readDB, ids)
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysqldriver.ErrInvalidConn) {
		// Closed while idle (wait_timeout, a server restart): unlike the
		// pool, a held connection is not checked before use. The query
		// only reads, so it may run again.
		cc.discard()
		found, err = cc.read(ctx, s.readDB, ids)
	}
	if err != nil {
		// Whatever broke, the next read starts on a fresh connection.
		cc.discard()
	}
	return found, err
}

func (cc *contextConn) read(ctx context.Context, db *sql.DB, ids []int64) (map[int64]*roomContext, error) {
	if cc.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		cc.conn, cc.stmts = conn, map[int]driver.Stmt{}
	}
	shape := 1
	for shape < len(ids) {
		shape *= 2
	}
	args := make([]driver.NamedValue, shape)
	for i := range args {
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: ids[min(i, len(ids)-1)]}
	}
	found := make(map[int64]*roomContext, len(ids))
	err := cc.conn.Raw(func(dc any) error {
		st := cc.stmts[shape]
		if st == nil {
			prep, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return errors.New("the driver cannot prepare statements")
			}
			var err error
			if st, err = prep.PrepareContext(ctx, contextQuery(shape)); err != nil {
				return err
			}
			cc.stmts[shape] = st
		}
		query, ok := st.(driver.StmtQueryContext)
		if !ok {
			return errors.New("the driver cannot query a statement")
		}
		rows, err := query.QueryContext(ctx, args)
		if err != nil {
			return err
		}
		defer rows.Close()
		return scanContexts(rows, found)
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// contextQuery is messageContextQuery for n rooms.
func contextQuery(n int) string {
	var q strings.Builder
	q.Grow(len(messageContextQuery) + 3*n)
	q.WriteString(strings.TrimSuffix(messageContextQuery, "?"))
	q.WriteString("(?")
	q.WriteString(strings.Repeat(", ?", n-1))
	q.WriteString(")")
	return q.String()
}

// scanContexts adds what rows hold to found.
func scanContexts(rows driver.Rows, found map[int64]*roomContext) error {
	values := make([]driver.Value, len(rows.Columns()))
	for {
		if err := rows.Next(values); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		var sc contextScan
		dest := sc.dest()
		if len(dest) != len(values) {
			return fmt.Errorf("message context: %d columns, want %d", len(values), len(dest))
		}
		for i, v := range values {
			if err := assignColumn(dest[i], v); err != nil {
				return fmt.Errorf("message context column %d: %w", i, err)
			}
		}
		sc.addTo(found)
	}
}

// discard closes the connection, its statements with it.
func (cc *contextConn) discard() {
	if cc.conn == nil {
		return
	}
	_ = cc.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = cc.conn.Close()
	cc.conn, cc.stmts = nil, nil
}

// closeContextConns closes the readers' connections once they have exited.
func (s *Store) closeContextConns() {
	if s.readDB == nil {
		return
	}
	for range contextReaders {
		select {
		case cc := <-s.contextConns:
			if cc.conn != nil {
				_ = cc.conn.Close()
			}
		default:
		}
	}
	_ = s.readDB.Close()
}

// assignColumn stores a value of go-sql-driver's (int64, []byte, time.Time
// with parseTime, nil) in dest, one of contextScan's destinations.
func assignColumn(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case sql.Scanner:
		return d.Scan(v)
	case *int64:
		n, err := columnInt(v)
		*d = n
		return err
	case **int64:
		if v == nil {
			*d = nil
			return nil
		}
		n, err := columnInt(v)
		*d = &n
		return err
	case **int:
		if v == nil {
			*d = nil
			return nil
		}
		n, err := columnInt(v)
		i := int(n)
		*d = &i
		return err
	case *string:
		switch x := v.(type) {
		case []byte:
			*d = string(x)
		case string:
			*d = x
		default:
			return fmt.Errorf("%T is not a string", v)
		}
		return nil
	case *time.Time:
		t, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("%T is not a time", v)
		}
		*d = t
		return nil
	case **time.Time:
		if v == nil {
			*d = nil
			return nil
		}
		t, ok := v.(time.Time)
		if !ok {
			return fmt.Errorf("%T is not a time", v)
		}
		*d = &t
		return nil
	}
	return fmt.Errorf("cannot assign to %T", dest)
}

func columnInt(v driver.Value) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case uint64:
		return int64(x), nil
	case []byte:
		return strconv.ParseInt(string(x), 10, 64)
	}
	return 0, fmt.Errorf("%T is not an integer", v)
}
