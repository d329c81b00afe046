package deploy

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/migrate"
	"github.com/fraiseql/fraisier/internal/systemd"
)

// RealCollaborators uses real git, systemd and migration tools. extraEnv is
// added to every systemctl call: XDG_RUNTIME_DIR to reach a user manager
// other than the caller's own (rootless installs and tests).
func RealCollaborators(extraEnv []string) Collaborators {
	managers := &systemdManagers{env: extraEnv, byScope: map[string]*systemd.Manager{}}
	return Collaborators{
		OpenSource: func(ctx context.Context, dir, remote string, out io.Writer) (Source, error) {
			return git.OpenMirror(ctx, dir, remote, git.Options{Output: out})
		},
		Units: func(scope string) Units {
			m, err := managers.get(scope)
			if err != nil {
				return brokenUnits{err}
			}
			return systemdUnits{m}
		},
		JobUnits: func(scope string) (JobUnits, error) {
			m, err := managers.get(scope)
			if err != nil {
				return nil, err // not a typed nil inside the interface
			}
			return m, nil
		},
		NewMigrator: func(env *config.Environment, releaseDir string, out io.Writer) (Migrator, error) {
			db := env.Database
			as, err := resolveAccount(env, os.Geteuid(), os.Getegid())
			if err != nil {
				return nil, err
			}
			m, err := migrate.New(migrate.Config{
				Tool: db.Tool, Dir: releaseDir, URL: db.URL.Reveal(), Env: append(as.env(), sortedEnv(db.Env)...),
				Python: db.Python, Program: db.Program, Manage: db.Manage, Settings: db.Settings, Config: db.Config, SQLDir: db.Dir,
				Up: db.Up, Down: db.Down, Current: db.Current, Backup: backupArgv(db), Credential: as.credential(), Protected: env.IsProtected(),
				Timeout: env.Timeouts.Migrate.D(), Output: out,
			})
			if err != nil {
				return nil, err
			}
			return migrator{m}, nil
		},
	}
}

func backupArgv(db *config.Database) []string {
	if db.Backup != nil {
		return db.Backup.Argv
	}
	return nil
}

// sortedEnv is a configured env as KEY=value entries, in a stable order.
func sortedEnv(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// systemdManagers keeps one systemd.Manager per scope, so that every step of
// every deployment shares its connection to the manager instead of opening
// one of its own.
type systemdManagers struct {
	env     []string
	mu      sync.Mutex
	byScope map[string]*systemd.Manager
}

func (s *systemdManagers) get(scope string) (*systemd.Manager, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.byScope[scope]; ok {
		return m, nil
	}
	m, err := systemd.New(systemd.Options{Scope: systemd.Scope(scope), Env: s.env})
	if err != nil {
		return nil, err
	}
	s.byScope[scope] = m
	return m, nil
}

// systemdUnits adapts *systemd.Manager to Units.
type systemdUnits struct{ m *systemd.Manager }

func (u systemdUnits) DaemonReload(ctx context.Context) error { return u.m.DaemonReload(ctx) }
func (u systemdUnits) Restart(ctx context.Context, units ...string) error {
	err := u.m.Restart(ctx, units...)
	if err == nil {
		return nil
	}
	// A unit that hit its start limit (quick successive deploys, or a
	// rollback right after a crash loop) refuses to start until its failed
	// state is reset: reset and try once more. Only on failure, so that a
	// deploy that needs no reset pays for no extra call.
	if rerr := u.m.ResetFailed(ctx, units...); rerr != nil {
		return err
	}
	return u.m.Restart(ctx, units...)
}
func (u systemdUnits) Stop(ctx context.Context, units ...string) error {
	return u.m.Stop(ctx, units...)
}
func (u systemdUnits) WaitActive(ctx context.Context, unit string, settle time.Duration) error {
	return u.m.WaitActive(ctx, unit, settle)
}
func (u systemdUnits) IsActive(ctx context.Context, unit string) (bool, error) {
	return u.m.IsActive(ctx, unit)
}

// UnitFiles asks systemd itself (over its private socket where it
// can, see systemd.Manager.NeedDaemonReload), so that fraisier reloads
// exactly when systemd would say a unit's files changed on disk: no model
// of its rules here to drift from them.
func (u systemdUnits) UnitFiles(ctx context.Context, unit string) (bool, string, []string, error) {
	f, err := u.m.UnitFiles(ctx, unit)
	return f.NeedReload, f.LoadState, f.Files, err
}

func (u systemdUnits) Start(ctx context.Context, units ...string) error {
	return u.m.Start(ctx, units...)
}
func (u systemdUnits) ResetFailed(ctx context.Context, units ...string) error {
	return u.m.ResetStartLimit(ctx, units...)
}
func (u systemdUnits) TriggeredBy(ctx context.Context, unit string) ([]string, error) {
	return u.m.TriggeredBy(ctx, unit)
}
func (u systemdUnits) Triggers(ctx context.Context, unit string) ([]string, error) {
	return u.m.Triggers(ctx, unit)
}
func (u systemdUnits) StopTimeout(ctx context.Context, unit string) (time.Duration, error) {
	t, err := u.m.ServiceTimeouts(ctx, unit)
	return t.Stop, err
}

// brokenUnits reports why the systemd manager could not be built, at the
// first use, where the step that needed it can record it.
type brokenUnits struct{ err error }

func (b brokenUnits) DaemonReload(context.Context) error                      { return b.err }
func (b brokenUnits) Restart(context.Context, ...string) error                { return b.err }
func (b brokenUnits) Stop(context.Context, ...string) error                   { return b.err }
func (b brokenUnits) WaitActive(context.Context, string, time.Duration) error { return b.err }
func (b brokenUnits) IsActive(context.Context, string) (bool, error)          { return false, b.err }
func (b brokenUnits) Start(context.Context, ...string) error                  { return b.err }
func (b brokenUnits) ResetFailed(context.Context, ...string) error            { return b.err }
func (b brokenUnits) TriggeredBy(context.Context, string) ([]string, error)   { return nil, b.err }
func (b brokenUnits) Triggers(context.Context, string) ([]string, error)      { return nil, b.err }
func (b brokenUnits) StopTimeout(context.Context, string) (time.Duration, error) {
	return 0, b.err
}
func (b brokenUnits) UnitFiles(context.Context, string) (bool, string, []string, error) {
	return false, "", nil, b.err
}

// migrator adapts *migrate.Migrator to Migrator.
type migrator struct{ m *migrate.Migrator }

// MigrationProgram is the executable env's migration tool would start in
// its current release, as migrate.Migrator.Program resolves it: "" with
// no database section or for the sql tool. It runs nothing.
func MigrationProgram(env *config.Environment) (string, error) {
	if env.Database == nil {
		return "", nil
	}
	m, err := RealCollaborators(nil).NewMigrator(env, filepath.Join(env.CodePath(), currentLink), io.Discard)
	if err != nil {
		return "", err
	}
	return m.(migrator).m.Program(), nil
}

func (m migrator) Current(ctx context.Context) (string, error) {
	r, err := m.m.Current(ctx)
	return string(r), err
}
func (m migrator) Up(ctx context.Context) (string, error) {
	r, err := m.m.Up(ctx)
	return string(r), err
}
func (m migrator) Down(ctx context.Context, to string) error {
	return m.m.Down(ctx, migrate.Revision(to))
}
func (m migrator) Rebuild(ctx context.Context) error { return m.m.Rebuild(ctx) }
func (m migrator) Backup(ctx context.Context, dir string) (string, error) {
	return m.m.Backup(ctx, dir)
}
func (m migrator) Pending(ctx context.Context) ([]string, error) { return m.m.Pending(ctx) }
func (m migrator) CheckDown(ctx context.Context, to string) error {
	return m.m.CheckDown(ctx, migrate.Revision(to))
}
