package cli

import (
	"errors"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// Exit codes are part of fraisier's interface: scripts branch on them, so
// they are defined here, once, and documented in docs/exit-codes.md.
const (
	ExitOK       = 0 // the command did what was asked
	ExitError    = 1 // an unexpected error
	ExitUsage    = 2 // bad flags or arguments
	ExitConfig   = 3 // the configuration is missing or invalid
	ExitState    = 4 // the state database cannot be used (unreachable, schema too new)
	ExitNotFound = 5 // the named fraise, environment or deployment does not exist

	ExitDeployFailed   = 10 // the deployment failed and nothing changed
	ExitRolledBack     = 11 // the deployment failed; the previous release serves again
	ExitRollbackFailed = 12 // the deployment failed and so did its rollback: operator needed
	ExitLocked         = 13 // another deployment holds the target
	ExitCheckFailed    = 14 // doctor: at least one check failed
)

// exitError carries an exit code chosen where the failure was understood.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageError marks a mistake in how the command was called.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var ee *exitError
	var ue *usageError
	var ce *config.Error
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ce):
		return ExitConfig
	case errors.Is(err, store.ErrNotFound):
		return ExitNotFound
	case errors.Is(err, store.ErrSchemaTooNew), store.IsUnavailable(err):
		return ExitState
	}
	return ExitError
}
