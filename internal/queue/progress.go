package queue

import (
	"bytes"
	"log/slog"
)

// lineLogger turns the engine's progress lines into log records.
type lineLogger struct {
	log *slog.Logger
	buf []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimSpace(l.buf[:i]); len(line) > 0 {
			l.log.Info(string(line))
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush logs a last line that had no newline.
func (l *lineLogger) Flush() {
	if line := bytes.TrimSpace(l.buf); len(line) > 0 {
		l.log.Info(string(line))
	}
	l.buf = nil
}
