package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// slowQuery is the duration above which a statement is logged as slow.
const slowQuery = 500 * time.Millisecond

// gormLogger sends GORM's own reports to slog: slow statements as warnings.
// Failed statements are not logged here, because the store returns every
// error to its caller, which decides whether it matters (a duplicate key is
// often expected).
type gormLogger struct {
	log *slog.Logger
}

func newGormLogger(log *slog.Logger) logger.Interface { return gormLogger{log: log} }

func (l gormLogger) LogMode(logger.LogLevel) logger.Interface { return l }

func (l gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(msg, args...))
}

func (l gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(msg, args...))
}

func (l gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, fmt.Sprintf(msg, args...))
}

func (l gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	if elapsed < slowQuery || (err != nil && !errors.Is(err, gorm.ErrRecordNotFound)) {
		return
	}
	sql, rows := fc()
	l.log.WarnContext(ctx, "slow statement", "elapsed", elapsed, "rows", rows, "sql", statementHead(sql))
}

// statementHead keeps a statement's shape and drops its values, which may
// hold message text or password hashes that must not reach the logs.
func statementHead(sql string) string {
	cut := len(sql)
	for _, marker := range []string{" VALUES", " WHERE", " SET", "("} {
		if i := strings.Index(sql, marker); i >= 0 && i < cut {
			cut = i
		}
	}
	return sql[:cut]
}
