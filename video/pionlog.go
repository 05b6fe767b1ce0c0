package video

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's logging into slog with a scope attribute. Pion
// reports as errors much that is a remote peer's fault (a failed TURN
// integrity check, a late DTLS packet), so its levels move down one.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) at(level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, msg)
	}
}

func (l pionLogger) Trace(string)          {}
func (l pionLogger) Tracef(string, ...any) {}
func (l pionLogger) Debug(msg string)      { l.at(slog.LevelDebug-4, msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.at(slog.LevelDebug-4, fmt.Sprintf(format, args...))
}
func (l pionLogger) Info(msg string) { l.at(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.at(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l pionLogger) Warn(msg string) { l.at(slog.LevelInfo, msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.at(slog.LevelInfo, fmt.Sprintf(format, args...))
}
func (l pionLogger) Error(msg string) { l.at(slog.LevelWarn, msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.at(slog.LevelWarn, fmt.Sprintf(format, args...))
}

var _ logging.LoggerFactory = pionLogs{}
