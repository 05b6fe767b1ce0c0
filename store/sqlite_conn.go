package store

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"gorm.io/gorm"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteConn is one connection to the SQLite file driven through the C API
// that modernc.org/sqlite compiles to Go. The message path uses it instead
// of database/sql because its statements stay prepared: the driver under
// GORM (glebarez/go-sqlite) parses and plans every statement again on each
// execution, which cost a quarter of the server's CPU per message.
// (modernc.org/sqlite's own driver keeps statements, but registers the
// driver name "sqlite" that glebarez/go-sqlite already holds.)
//
// A sqliteConn belongs to one goroutine at a time.
type sqliteConn struct {
	tls     *libc.TLS
	db      uintptr
	out     uintptr // 8 bytes of C memory for out-parameters
	text    uintptr // C copies of the text parameters of one execution
	textCap int
	times   []byte // the text of the time parameters of one execution
}

// cmem is the address p of C memory (allocated by modernc.org/libc, outside
// Go's heap) as a pointer.
func cmem(p uintptr) unsafe.Pointer { return unsafe.Add(nil, p) }

// sqliteTimeFormat is how glebarez/go-sqlite writes a time.Time, so the
// rows written here read back, sort and compare like GORM's.
const sqliteTimeFormat = "2006-01-02 15:04:05.999999999-07:00"

// openSQLiteConn opens path and runs each pragma statement on it.
func openSQLiteConn(path string, pragmas ...string) (*sqliteConn, error) {
	c := &sqliteConn{tls: libc.NewTLS()}
	c.out = libc.Xmalloc(c.tls, 8)
	name, err := libc.CString(path)
	if err != nil || c.out == 0 {
		c.close()
		return nil, errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, name)
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, c.out, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_CREATE|sqlite3.SQLITE_OPEN_FULLMUTEX, 0)
	c.db = *(*uintptr)(cmem(c.out))
	if rc != sqlite3.SQLITE_OK {
		err := c.error(rc)
		c.close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	for _, p := range pragmas {
		if err := c.exec(p); err != nil {
			c.close()
			return nil, fmt.Errorf("sqlite: %s: %w", p, err)
		}
	}
	return c, nil
}

func (c *sqliteConn) close() {
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	if c.text != 0 {
		libc.Xfree(c.tls, c.text)
		c.text = 0
	}
	if c.out != 0 {
		libc.Xfree(c.tls, c.out)
		c.out = 0
	}
	c.tls.Close()
}

// exec runs sql once (pragmas and the like).
func (c *sqliteConn) exec(sql string) error {
	s, err := c.prepare(sql, false)
	if err != nil {
		return err
	}
	defer s.finalize()
	for {
		row, err := s.step()
		if err != nil || !row {
			return err
		}
	}
}

// prepare compiles sql; persistent tells SQLite the statement lives long.
func (c *sqliteConn) prepare(sql string, persistent bool) (*sqliteStmt, error) {
	z, err := libc.CString(sql)
	if err != nil {
		return nil, errors.New("sqlite: out of memory")
	}
	defer libc.Xfree(c.tls, z)
	var flags uint32
	if persistent {
		flags = sqlite3.SQLITE_PREPARE_PERSISTENT
	}
	if rc := sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, z, -1, flags, c.out, 0); rc != sqlite3.SQLITE_OK {
		return nil, fmt.Errorf("sqlite: prepare %q: %w", firstLine(sql), c.error(rc))
	}
	return &sqliteStmt{c: c, p: *(*uintptr)(cmem(c.out))}, nil
}

func (c *sqliteConn) lastInsertID() int64 { return sqlite3.Xsqlite3_last_insert_rowid(c.tls, c.db) }

// sqliteError is an error SQLite reported; a unique or primary key
// violation unwraps to gorm.ErrDuplicatedKey, as GORM's translator would
// have it.
type sqliteError struct {
	code int32 // extended result code
	msg  string
}

func (e *sqliteError) Error() string { return fmt.Sprintf("%s (%d)", e.msg, e.code) }

func (e *sqliteError) Unwrap() error {
	if e.code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return gorm.ErrDuplicatedKey
	}
	return nil
}

func (c *sqliteConn) error(rc int32) error {
	e := &sqliteError{code: rc, msg: libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))}
	if c.db != 0 {
		e.code = sqlite3.Xsqlite3_extended_errcode(c.tls, c.db)
		e.msg = libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	}
	return e
}

// textArea returns C memory for n bytes of text parameters.
func (c *sqliteConn) textArea(n int) (uintptr, error) {
	if n > c.textCap {
		size := max(n, 2*c.textCap, 4096)
		p := libc.Xrealloc(c.tls, c.text, uint64(size))
		if p == 0 {
			return 0, errors.New("sqlite: out of memory")
		}
		c.text, c.textCap = p, size
	}
	return c.text, nil
}

// sqliteStmt is a prepared statement of a sqliteConn.
type sqliteStmt struct {
	c *sqliteConn
	p uintptr
}

func (s *sqliteStmt) finalize() {
	if s.p != 0 {
		sqlite3.Xsqlite3_finalize(s.c.tls, s.p)
		s.p = 0
	}
}

// step runs the statement to its next row; false when it is done (and
// reset, ready to run again).
func (s *sqliteStmt) step() (bool, error) {
	switch rc := sqlite3.Xsqlite3_step(s.c.tls, s.p); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		sqlite3.Xsqlite3_reset(s.c.tls, s.p)
		return false, nil
	default:
		err := s.c.error(rc)
		sqlite3.Xsqlite3_reset(s.c.tls, s.p)
		return false, err
	}
}

func (s *sqliteStmt) int64Column(i int) int64 {
	return sqlite3.Xsqlite3_column_int64(s.c.tls, s.p, int32(i))
}

// reset abandons the rows not read yet.
func (s *sqliteStmt) reset() { sqlite3.Xsqlite3_reset(s.c.tls, s.p) }

// run binds args (int64, int, bool, string, time.Time or nil) and executes
// the statement to its end.
func (s *sqliteStmt) run(args ...any) error {
	if err := s.bind(args); err != nil {
		return err
	}
	for {
		row, err := s.step()
		if err != nil || !row {
			return err
		}
	}
}

func (s *sqliteStmt) bind(args []any) error {
	tls := s.c.tls
	var texts [24]string
	if len(args) > len(texts) {
		return fmt.Errorf("sqlite: %d parameters, at most %d", len(args), len(texts))
	}
	// Texts are copied into the connection's text area, which stays put
	// until the statement has run (SQLITE_STATIC: SQLite copies nothing).
	size := 0
	times := s.c.times[:0]
	for i, a := range args {
		switch v := a.(type) {
		case string:
			texts[i] = v
		case time.Time:
			// Formatted into the connection's reused buffer, not a new
			// string per time: the text is copied below before the buffer
			// is written again (a buffer that grows leaves the earlier
			// texts in the old one).
			start := len(times)
			times = v.AppendFormat(times, sqliteTimeFormat)
			texts[i] = unsafe.String(unsafe.SliceData(times[start:]), len(times)-start)
		default:
			continue
		}
		size += len(texts[i]) + 1
	}
	s.c.times = times
	area, err := s.c.textArea(size)
	if err != nil {
		return err
	}
	off := uintptr(0)
	for i, a := range args {
		n := int32(i + 1)
		var rc int32
		switch v := a.(type) {
		case nil:
			rc = sqlite3.Xsqlite3_bind_null(tls, s.p, n)
		case int64:
			rc = sqlite3.Xsqlite3_bind_int64(tls, s.p, n, v)
		case int:
			rc = sqlite3.Xsqlite3_bind_int64(tls, s.p, n, int64(v))
		case bool:
			var b int64
			if v {
				b = 1
			}
			rc = sqlite3.Xsqlite3_bind_int64(tls, s.p, n, b)
		case string, time.Time:
			t := texts[i]
			p := area + off
			b := unsafe.Slice((*byte)(cmem(p)), len(t)+1)
			copy(b, t)
			b[len(t)] = 0
			off += uintptr(len(t) + 1)
			rc = sqlite3.Xsqlite3_bind_text(tls, s.p, n, p, int32(len(t)), 0)
		default:
			return fmt.Errorf("sqlite: cannot bind %T", a)
		}
		if rc != sqlite3.SQLITE_OK {
			return s.c.error(rc)
		}
	}
	return nil
}
