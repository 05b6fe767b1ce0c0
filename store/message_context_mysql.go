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
)

// On MySQL every MESSAGE reads its context (roomCache is SQLite's), and
// database/sql starts a goroutine for every query whose context can end, to
// close its rows: about one goroutine per message, with reflection for
// every column scanned. The readers query through the driver itself
// instead, on a connection of the pool, and assign the columns by their
// few types.

// readRoomContextsDirect is readRoomContexts for MySQL.
func (s *Store) readRoomContextsDirect(ctx context.Context, ids []int64) (map[int64]*roomContext, error) {
	var q strings.Builder
	q.Grow(len(messageContextQuery) + 3*len(ids))
	q.WriteString(strings.TrimSuffix(messageContextQuery, "?"))
	q.WriteString("(")
	args := make([]driver.NamedValue, len(ids))
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("?")
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: id}
	}
	q.WriteString(")")
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	found := make(map[int64]*roomContext, len(ids))
	err = conn.Raw(func(dc any) error {
		queryer, ok := dc.(driver.QueryerContext)
		if !ok {
			return errors.New("the driver cannot query directly")
		}
		rows, err := queryer.QueryContext(ctx, q.String(), args)
		if err != nil {
			return err
		}
		defer rows.Close()
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
	})
	if err != nil {
		return nil, err
	}
	return found, nil
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
