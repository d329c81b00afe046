package store

import (
	"errors"
	"fmt"
	"time"
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
