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
	"gorm.io/gorm"
)

// On MySQL a batch would take six round trips through GORM (BEGIN, the
// room and speaker lookups, INSERT, UPDATE, COMMIT), and in a busy server
// each one waits behind every connection's work before the writer sees
// its answer: at a few thousand messages/s the writer spent most of each
// batch waiting, not the database. The room and speaker companies are
// remembered (roomCompanies), and the transaction itself is one statement
// on a connection of its own: a multi-row INSERT in autocommit, prepared
// once for each batch size up to maxPreparedRows, whose rows bump their
// rooms through the trigger Migrate creates (ensureMessageTrigger). The
// server parses it once and gets its values in the binary protocol; each
// batch is one round trip and one commit.
//
// A bigger batch (only at saturation) takes a transaction of several such
// INSERTs. Until the trigger exists (a database not migrated yet, or a user
// who may not create it), a batch goes as one text multi-statement instead:
// START TRANSACTION, the multi-row INSERT, the room bump and COMMIT.
//
// Only this writer's statements use that connection, and every value in
// them is a placeholder escaped by the driver, as on the main pool.

// messageTriggerMySQL is the SQLite trigger of migration 202612060001 for
// MySQL.
const messageTriggerMySQL = `CREATE TRIGGER ` + messageTriggerName + ` AFTER INSERT ON messages FOR EACH ROW
	UPDATE rooms SET
		last_message_id = GREATEST(last_message_id, NEW.id),
		update_date = GREATEST(update_date, NEW.create_date)
	WHERE id = NEW.room_id`

// mysqlNeedSuper is the error of a CREATE TRIGGER refused because binary
// logging is on and log_bin_trust_function_creators is off.
const mysqlNeedSuper = 1419

// ensureMessageTrigger creates the room trigger unless it exists. It is not
// a migration: a server whose binary log keeps this user from creating
// triggers refuses it, the writer then does without (see the top of this
// file), and the next Migrate, once the server allows it, tries again.
// Migrate holds its lock around this, so nodes do not race.
func (s *Store) ensureMessageTrigger(db *gorm.DB) error {
	var found int64
	if err := db.Raw("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() "+
		"AND EVENT_OBJECT_TABLE = 'messages' AND TRIGGER_NAME = ?", messageTriggerName).Row().Scan(&found); err != nil {
		return fmt.Errorf("look for trigger %s: %w", messageTriggerName, err)
	}
	if found > 0 {
		return nil
	}
	err := db.Exec(messageTriggerMySQL).Error
	if myErr := (*mysqldriver.MySQLError)(nil); errors.As(err, &myErr) && myErr.Number == mysqlNeedSuper {
		s.log.Warn("messages are stored with a multi-statement per batch: the server's binary log keeps this user from "+
			"creating the room trigger (set log_bin_trust_function_creators=1 and migrate again)", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("create trigger %s: %w", messageTriggerName, err)
	}
	return nil
}

// maxPreparedRows is the largest prepared INSERT; bigger batches are split.
const maxPreparedRows = 64

// rollbackTimeout bounds the ROLLBACK that ends a failed one-trip batch.
const rollbackTimeout = 5 * time.Second

// messageColumns are the columns the one-trip INSERT writes, in the order
// appendMessageValues gives them; id is left to auto-increment, as GORM
// does.
const messageColumns = "room_id, company_id, speaker_id, speaker_name, message_type, body, detail, thumbnail, " +
	"admin_type, is_system, is_employee, is_customer, is_online, join_message_id, client_message_id, " +
	"deleted, create_date, update_date"

const messagePlaceholders = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// messageColumnCount is how many columns messageColumns names.
const messageColumnCount = 18

// messageValues are r's column values in messageColumns' order.
func messageValues(r *messageRow) []any {
	return appendMessageArgs(make([]any, 0, messageColumnCount), r)
}

// appendMessageArgs appends r's column values, in messageColumns' order,
// to args.
func appendMessageArgs(args []any, r *messageRow) []any {
	var clientID any
	if r.ClientMessageID != nil {
		clientID = *r.ClientMessageID
	}
	return append(args, r.RoomID, r.CompanyID, r.SpeakerID, r.SpeakerName, int64(r.MessageType), r.Body, r.Detail, r.Thumbnail,
		int64(r.AdminType), r.IsSystem, r.IsEmployee, r.IsCustomer, r.IsOnline, r.JoinMessageID, clientID,
		r.Deleted, r.CreateDate, r.UpdateDate)
}

// appendMessageValues appends r's column values, in messageColumns' order,
// to args as driver values.
func appendMessageValues(args []driver.NamedValue, r *messageRow) []driver.NamedValue {
	for _, v := range messageValues(r) {
		args = append(args, driver.NamedValue{Ordinal: len(args) + 1, Value: v})
	}
	return args
}

// openOwnDB opens connections of the store's own (the writer's, the
// context readers'): at most conns, multi carrying several statements in
// one round trip.
func (t target) openOwnDB(conns int, multi bool) (*sql.DB, error) {
	cfg, err := mysqldriver.ParseDSN(t.driverDSN)
	if err != nil {
		return nil, fmt.Errorf("store: own connection to %s: %w", t.redacted, err)
	}
	cfg.MultiStatements = multi
	useRawTCP(cfg)
	connector, err := mysqldriver.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: own connection to %s: %w", t.redacted, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
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
	args := make([]driver.NamedValue, 0, len(rows)*messageColumnCount+len(bumpArgs))
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

// mysqlInserts are the writer's prepared INSERTs, by batch size; they
// belong to the writer goroutine.
type mysqlInserts struct {
	triggerFound bool
	retryAt      time.Time // when to look for the trigger again
	bySize       [maxPreparedRows + 1]*sql.Stmt
}

// insertBatch inserts rows, bumping their rooms, in one transaction and one
// round trip, setting their IDs (see the top of this file).
func (s *Store) insertBatch(ctx context.Context, rows []messageRow) error {
	if len(rows) <= maxPreparedRows {
		if st := s.preparedInsert(ctx, len(rows)); st != nil {
			return insertPrepared(ctx, st, rows)
		}
		return s.insertOneTrip(ctx, rows)
	}
	full, rest := s.preparedInsert(ctx, maxPreparedRows), (*sql.Stmt)(nil)
	if n := len(rows) % maxPreparedRows; n > 0 {
		rest = s.preparedInsert(ctx, n)
	}
	if full == nil || (rest == nil && len(rows)%maxPreparedRows > 0) {
		return s.insertOneTrip(ctx, rows)
	}
	return insertChunks(ctx, s.batchDB, full, rest, rows)
}

// insertChunks inserts a batch bigger than maxPreparedRows with the
// prepared INSERTs of full and of the rest, in one transaction: a round
// trip per chunk and two more, still parsed once.
func insertChunks(ctx context.Context, db *sql.DB, full, rest *sql.Stmt, rows []messageRow) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert %d messages: begin: %w", len(rows), err)
	}
	for start := 0; start < len(rows); start += maxPreparedRows {
		chunk, st := rows[start:min(start+maxPreparedRows, len(rows))], full
		if len(chunk) < maxPreparedRows {
			st = rest
		}
		// The statement is already prepared on the transaction's
		// connection, the writer's only one.
		if err := insertPrepared(ctx, tx.StmtContext(ctx, st), chunk); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert %d messages: commit: %w", len(rows), err)
	}
	return nil
}

// preparedInsert returns the INSERT of n rows, preparing it on first use;
// nil when n rows must take insertOneTrip.
func (s *Store) preparedInsert(ctx context.Context, n int) *sql.Stmt {
	p := &s.mysqlInserts
	if n > maxPreparedRows {
		return nil
	}
	if !p.triggerFound {
		if time.Now().Before(p.retryAt) {
			return nil
		}
		var found int
		err := s.batchDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TRIGGERS "+
			"WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'messages' AND TRIGGER_NAME = ?", messageTriggerName).Scan(&found)
		if err != nil || found != 1 {
			s.log.Debug("message writer sends multi-statements until the room trigger exists", "err", err)
			p.retryAt = time.Now().Add(time.Second)
			return nil
		}
		p.triggerFound = true
	}
	if st := p.bySize[n]; st != nil {
		return st
	}
	var q strings.Builder
	q.Grow(len(messageColumns) + n*(len(messagePlaceholders)+2) + 40)
	q.WriteString("INSERT INTO messages (" + messageColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(messagePlaceholders)
	}
	st, err := s.batchDB.PrepareContext(ctx, q.String())
	if err != nil {
		s.log.Warn("message writer could not prepare its INSERT", "rows", n, "err", err)
		return nil
	}
	p.bySize[n] = st
	return st
}

// insertPrepared runs st, the INSERT of len(rows) rows, in autocommit and
// sets the rows' IDs. An error leaves nothing stored, except when the commit
// itself was not confirmed (as with any commit) or the IDs reported after
// it cannot be trusted.
func insertPrepared(ctx context.Context, st *sql.Stmt, rows []messageRow) error {
	args := make([]any, 0, len(rows)*messageColumnCount)
	for i := range rows {
		args = appendMessageArgs(args, &rows[i])
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("insert %d messages: %w", len(rows), err)
	}
	first, idErr := res.LastInsertId()
	n, nErr := res.RowsAffected()
	if idErr != nil || nErr != nil || first <= 0 || n != int64(len(rows)) {
		return fmt.Errorf("insert %d messages: unexpected result (first id %d, rows %d): the messages may be stored under unknown IDs: %w",
			len(rows), first, n, errors.Join(idErr, nErr))
	}
	for i := range rows {
		rows[i].ID = first + int64(i)
	}
	return nil
}

// closeInserts closes the prepared INSERTs; the writer calls it as it ends.
func (s *Store) closeInserts() {
	for i, st := range s.mysqlInserts.bySize {
		if st != nil {
			_ = st.Close()
			s.mysqlInserts.bySize[i] = nil
		}
	}
}
