package migrate

import (
	"errors"
	"fmt"
)

// ErrUnsupported reports that the tool cannot answer or do what was asked
// (Pending for command, Rebuild of a database URL this package cannot drop).
var ErrUnsupported = errors.New("not supported by this migration tool")

// ErrMultipleHeads reports that the database is at several alembic heads at
// once, which no single Revision can record.
var ErrMultipleHeads = errors.New("database is at several alembic heads")

// ErrRebuildRefused reports a Rebuild asked of a protected environment.
var ErrRebuildRefused = errors.New("rebuild drops the database; refused on a protected environment")

// ErrBadRevision reports a revision that is malformed for the tool, or one
// that could be taken for an option or shell syntax.
var ErrBadRevision = errors.New("invalid revision")

// StepError is one migration that failed, named the way its tool names it
// ("002_add_x.up.sql", "upgrade a1b2 -> c3d4, add column",
// "shop.0002_price"). Migrations before it stay applied.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("migration %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// ChecksumError reports an sql migration whose file differs from the one that
// was applied: running on would leave the database matching neither.
type ChecksumError struct {
	File string // e.g. 002_add_x.up.sql
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("migration %s changed after it was applied", e.File)
}

// IrreversibleError reports that migrating down would have to undo a
// migration that cannot be undone (an sql migration without a down file).
// Nothing was undone.
type IrreversibleError struct {
	Migration string // e.g. 003_backfill
	Reason    string
}

func (e *IrreversibleError) Error() string {
	return fmt.Sprintf("migration %s cannot be undone: %s", e.Migration, e.Reason)
}
