package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
)

// On MySQL a batch would take six round trips through GORM (BEGIN, the
// room and speaker lookups, INSERT, UPDATE, COMMIT), and in a busy server
// each one waits behind every connection's work before the writer sees
// its answer: at a few thousand messages/s the writer spent most of each
// batch waiting, not the database. The room and speaker companies are
// remembered (roomCompanies), and the transaction itself goes in one round
// trip: START TRANSACTION, the multi-row INSERT, the room bump and COMMIT
// sent as one multi-statement on a connection of its own.
//
// Only this writer's statements use that connection, and every value in
// them is a placeholder escaped by the driver, as on the main pool.

// rollbackTimeout bounds the ROLLBACK that ends a failed one-trip batch.
const rollbackTimeout = 5 * time.Second

// messageColumns are the columns the one-trip INSERT writes, in the order
// appendMessageValues gives them; id is left to auto-increment, as GORM
// does.
const messageColumns = "room_id, company_id, speaker_id, speaker_name, message_type, body, detail, thumbnail, " +
	"admin_type, is_system, is_employee, is_customer, is_online, join_message_id, client_message_id, " +
	"deleted, create_date, update_date"

const messagePlaceholders = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// messageValues are r's column values in messageColumns' order.
func messageValues(r *messageRow) []any {
	var clientID any
	if r.ClientMessageID != nil {
		clientID = *r.ClientMessageID
	}
	return []any{r.RoomID, r.CompanyID, r.SpeakerID, r.SpeakerName, int64(r.MessageType), r.Body, r.Detail, r.Thumbnail,
		int64(r.AdminType), r.IsSystem, r.IsEmployee, r.IsCustomer, r.IsOnline, r.JoinMessageID, clientID,
		r.Deleted, r.CreateDate, r.UpdateDate}
}

// appendMessageValues appends r's column values, in messageColumns' order,
// to args as driver values.
func appendMessageValues(args []driver.NamedValue, r *messageRow) []driver.NamedValue {
	for _, v := range messageValues(r) {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
	}
	return args
}

// openBatchDB opens the writer's own connection, which may carry several
// statements in one round trip.
func (t target) openBatchDB() (*sql.DB, error) {
	cfg, err := mysqldriver.ParseDSN(t.driverDSN)
	if err != nil {
		return nil, fmt.Errorf("store: batch connection to %s: %w", t.redacted, err)
	}
	cfg.MultiStatements = true
	connector, err := mysqldriver.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: batch connection to %s: %w", t.redacted, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// fitsOneInsert reports whether reqs fit in the one INSERT statement that
// the one-trip batch sends (insertMessages splits bigger batches).
func fitsOneInsert(reqs []*appendRequest) bool {
	size := 0
	for _, req := range reqs {
		size += len(req.row.Body) + len(req.row.Detail) + len(req.row.Thumbnail) + 256
	}
	return size < maxInsertBytes
}

// insertOneTrip inserts rows and bumps their rooms in one transaction sent
// as one multi-statement, setting the rows' IDs. An error leaves nothing
// stored, except when the commit itself was not confirmed (as with any
// commit) or the IDs reported after it cannot be trusted.
func (s *Store) insertOneTrip(ctx context.Context, rows []messageRow) error {
	// The room bump needs the new IDs, which only the server knows yet.
	bump, bumpArgs := bumpRooms(rows, true)
	var q strings.Builder
	q.Grow(len(rows)*(len(messagePlaceholders)+2) + len(bump) + len(messageColumns) + 80)
	args := make([]driver.NamedValue, 0, len(rows)*18+len(bumpArgs))
	q.WriteString("START TRANSACTION; INSERT INTO messages (" + messageColumns + ") VALUES ")
	for i := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(messagePlaceholders)
		args = appendMessageValues(args, &rows[i])
	}
	q.WriteString("; ")
	q.WriteString(bump)
	for _, v := range bumpArgs {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
	}
	q.WriteString("; COMMIT")

	conn, err := s.batchDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("insert %d messages: batch connection: %w", len(rows), err)
	}
	defer conn.Close()
	var ids, affected []int64
	err = conn.Raw(func(dc any) error {
		execer, ok := dc.(driver.ExecerContext)
		if !ok {
			return errors.New("the driver cannot execute statements")
		}
		res, err := execer.ExecContext(ctx, q.String(), args)
		if err != nil {
			return err
		}
		all, ok := res.(mysqldriver.Result)
		if !ok {
			return errors.New("the driver reports no per-statement results")
		}
		ids, affected = all.AllLastInsertIds(), all.AllRowsAffected()
		return nil
	})
	if err != nil {
		s.endFailedBatch(ctx, conn)
		return fmt.Errorf("insert %d messages: %w", len(rows), err)
	}
	// Results: START TRANSACTION, INSERT, UPDATE, COMMIT.
	if len(ids) != 4 || affected[1] != int64(len(rows)) || ids[1] <= 0 {
		return fmt.Errorf("insert %d messages: unexpected results (ids %v, rows %v): the messages may be stored under unknown IDs", len(rows), ids, affected)
	}
	for i := range rows {
		rows[i].ID = ids[1] + int64(i)
	}
	return nil
}

// endFailedBatch rolls back what a failed multi-statement left open, or
// discards the connection when that is not possible, so the next batch
// never joins a stale transaction.
func (s *Store) endFailedBatch(ctx context.Context, conn *sql.Conn) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if _, err := conn.ExecContext(rctx, "ROLLBACK"); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}
