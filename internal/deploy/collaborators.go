package deploy

import (
	"context"
	"io"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
)

// Source is the git side of a deployment: a local mirror of the
// environment's repository.
type Source interface {
	Fetch(ctx context.Context) error
	// FetchRef brings one pull request head besides (git.PullRequestRefOf).
	FetchRef(ctx context.Context, ref string) error
	Resolve(ctx context.Context, ref string) (string, git.RefKind, error)
	Export(ctx context.Context, sha, dest string) error
	Log(ctx context.Context, from, to string, max int) ([]git.Commit, error)
}

// Units is the systemd side: the units of one scope.
type Units interface {
	DaemonReload(ctx context.Context) error
	// UnitFiles says whether systemd must reload unit's files before it is
	// restarted, how systemd loaded it ("not-found" when no file defines
	// it), and which files it loaded it from.
	UnitFiles(ctx context.Context, unit string) (needReload bool, loadState string, files []string, err error)
	Restart(ctx context.Context, units ...string) error
	Stop(ctx context.Context, units ...string) error
	WaitActive(ctx context.Context, unit string, settle time.Duration) error
	IsActive(ctx context.Context, unit string) (bool, error)

	// What restart: socket needs besides (socket.go).

	// Start starts units and waits for their jobs.
	Start(ctx context.Context, units ...string) error
	// ResetFailed clears units' failed state and their start-limit count.
	ResetFailed(ctx context.Context, units ...string) error
	// TriggeredBy lists the loaded units that start unit (its sockets);
	// Triggers, the units unit starts (a socket's service).
	TriggeredBy(ctx context.Context, unit string) ([]string, error)
	Triggers(ctx context.Context, unit string) ([]string, error)
	// StopTimeout is how long systemd waits for a service to stop after
	// SIGTERM before it kills it (TimeoutStopSec=); zero: no limit.
	StopTimeout(ctx context.Context, unit string) (time.Duration, error)
}

// Migrator runs one environment's database migrations from one release.
// Revisions are opaque strings; "" is an empty database.
type Migrator interface {
	Current(ctx context.Context) (string, error)
	Up(ctx context.Context) (string, error)
	Down(ctx context.Context, to string) error
	// Pending lists migrations Up would apply, where the tool can tell.
	Pending(ctx context.Context) ([]string, error)
	// Rebuild drops and recreates the database from scratch (strategy
	// rebuild; refused on protected environments).
	Rebuild(ctx context.Context) error
	// Backup writes a backup into dir and returns its path.
	Backup(ctx context.Context, dir string) (string, error)
	// CheckDown says, changing nothing, whether Down(to) could run.
	CheckDown(ctx context.Context, to string) error
}

// Collaborators open the outside systems a deployment touches. The
// defaults use real git, systemd and migration tools; tests replace one to
// inject a fault the real part cannot produce on demand.
type Collaborators struct {
	OpenSource  func(ctx context.Context, dir, remote string, out io.Writer) (Source, error)
	Units       func(scope string) Units
	NewMigrator func(env *config.Environment, releaseDir string, out io.Writer) (Migrator, error)
	JobUnits    func(scope string) (JobUnits, error) // scheduled fraises; see scheduled.go
}
