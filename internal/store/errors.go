package store

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrSchemaTooOld means a read-only open found a database that needs a
	// migration (or no schema at all).
	ErrSchemaTooOld = errors.New("state database schema is older than this fraisier")
	// ErrFinished means a deployment or step was already finished.
	ErrFinished = errors.New("already finished")
)

// SchemaVersionError says how the database's schema and this binary
// disagree. It matches ErrSchemaTooNew or ErrSchemaTooOld with errors.Is.
type SchemaVersionError struct {
	Have  int // newest migration recorded in the database
	Known int // newest migration this binary embeds
}

func (e *SchemaVersionError) Error() string {
	if e.Have > e.Known {
		return fmt.Sprintf("state database schema version %d is newer than this fraisier (knows up to %d): upgrade fraisier or point --state elsewhere", e.Have, e.Known)
	}
	return fmt.Sprintf("state database schema version %d is older than this fraisier (needs %d): open it once without read-only to migrate it", e.Have, e.Known)
}

func (e *SchemaVersionError) Unwrap() error {
	if e.Have > e.Known {
		return ErrSchemaTooNew
	}
	return ErrSchemaTooOld
}

// LockedError is returned, wrapped, by AcquireLock when a live owner holds
// the lock. It matches ErrLocked with errors.Is.
type LockedError struct {
	Holder Lock
}

func (e *LockedError) Error() string {
	h := e.Holder
	why := ""
	if h.Reason != "" {
		why = ": " + h.Reason
	}
	return fmt.Sprintf("%s is locked by %s (host %s, pid %d) since %s until %s%s",
		h.Target, h.Owner, h.Host, h.PID,
		h.AcquiredAt.Format(time.RFC3339), h.ExpiresAt.Format(time.RFC3339), why)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// IsUnavailable reports whether err means the state database could not be
// used right now: SQLite busy or locked by another process past the busy
// timeout, or PostgreSQL unreachable, shutting down or refusing
// connections. Callers branch on it to say "the state database" rather
// than report an unexplained failure, and to exit with the state code.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code; extended codes add high bits
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN:
			return true
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-03: shutting down or not
		// yet accepting connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	// A syscall.Errno has Timeout and Temporary, so it is a net.Error too:
	// only network errors count here, not a file the database could not
	// open for a reason (EACCES, EROFS) the caller must report as it is.
	var ne net.Error
	if errors.As(err, &ne) {
		if _, errno := ne.(syscall.Errno); !errno {
			return true
		}
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
