package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// Revision is where a database stands, in the tool's own terms: an alembic
// revision id, the sql tool's highest applied version, confiture's version,
// whatever a command prints, or for django a canonical JSON object of the
// last applied migration per app (see DjangoRevision). "" is the empty
// database. Callers store it and hand it back; they never parse it.
type Revision string

// Tools this package drives.
const (
	ToolAlembic   = "alembic"
	ToolDjango    = "django"
	ToolConfiture = "confiture"
	ToolSQL       = "sql"
	ToolCommand   = "command"
)

// URLEnv is the environment variable through which every tool gets the
// database URL, never through argv, which any user can read in ps.
// DATABASE_URL is set too for alembic, django and command, for projects
// that follow that convention; confiture gets CONFITURE_DATABASE_URL
// instead, and pg_dump PG* variables. An alembic project's env.py must
// read it, e.g.
//
//	url = os.environ.get("FRAISIER_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
const URLEnv = "FRAISIER_DATABASE_URL"

// Config says how to migrate one database from one release. It is a plain
// value, decoupled from the configuration file's types.
type Config struct {
	Tool string // alembic, django, confiture, sql or command
	// Dir is the release directory: every tool runs there and relative
	// paths below are resolved against it.
	Dir string
	// URL is the database URL. It is a secret: it goes to tools through the
	// environment only and never appears in errors or streamed output.
	URL string
	// Env is added to every tool's environment (KEY=VALUE, later wins),
	// which otherwise holds only execx's allowlist of fraisier's own and
	// the URL.
	Env []string

	// Python is the interpreter of alembic (without Program) and django;
	// default the release's virtualenv's, else python3 (see program.go).
	Python   string
	Manage   string // django: manage.py (default manage.py)
	Settings string // django: DJANGO_SETTINGS_MODULE
	Config   string // alembic: ini file (default alembic.ini); confiture: config file
	// SQLDir is the sql tool's directory of NNN_name.up.sql and
	// NNN_name.down.sql files; for confiture, its --migrations-dir.
	SQLDir string
	// Program is the executable of alembic or confiture, e.g.
	// .venv/bin/confiture; default the release's virtualenv's, else the
	// tool's name in PATH (alembic: python -m alembic). A path relative to
	// Dir is taken from there.
	Program string

	// The command tool's argv. In Down the token {revision} is replaced by
	// the target revision (also in $FRAISIER_TARGET_REVISION), which is
	// checked first to hold only letters, digits and _.:+- and not to start
	// with -. Current must print the revision as its last line of output.
	Up, Down, Current []string

	// Backup, when set, replaces the built-in backup (pg_dump, VACUUM INTO):
	// the token {path} is replaced by the suggested backup file, which is
	// also in $FRAISIER_BACKUP_PATH.
	Backup []string

	// Credential, when set, is the user and groups every tool runs as.
	// What the package does itself (the sql tool, a SQLite backup) runs
	// in fraisier's own process.
	Credential *syscall.Credential

	// Protected makes Rebuild refuse. The deploy engine and config
	// validation own that policy; this is the last line of defence.
	Protected bool

	// Timeout bounds each call (Current, Up, Down, ...) as a whole; zero
	// means only the context does.
	Timeout time.Duration
	// Output receives the tools' output as they run, secrets redacted.
	Output io.Writer
	// Now is the clock for backup names and applied_at; nil is time.Now.
	Now func() time.Time
}

// Migrator migrates one database from one release directory. Its methods
// may be called one after another; they are not meant to run concurrently
// on one Migrator (two Migrators on one database are fine: the sql tool
// locks, the other tools lock or not as they do themselves).
type Migrator struct {
	cfg  Config
	sec  *secrets
	impl tool
	// urlEnv hands the URL to the tool; it comes before Config.Env so the
	// project can still override a name.
	urlEnv []string
}

// tool is what each migration tool implements. Methods get a context
// already bounded by Config.Timeout and return errors that Migrator wraps
// with the operation and scrubs of secrets.
type tool interface {
	current(ctx context.Context) (Revision, error)
	up(ctx context.Context) (Revision, error)
	down(ctx context.Context, to Revision) error
	checkDown(ctx context.Context, to Revision) error
	pending(ctx context.Context) ([]string, error)
	rebuild(ctx context.Context) error
	canDown() bool
}

// New checks cfg and returns a Migrator for it. It touches neither the
// filesystem nor the database.
func New(cfg Config) (*Migrator, error) {
	if cfg.Manage == "" {
		cfg.Manage = "manage.py"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Migrator{cfg: cfg, sec: newSecrets(cfg.URL)}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("migrations (%s): %w", cfg.Tool, m.sec.scrubError(err))
	}
	return m, nil
}

func (m *Migrator) validate() error {
	cfg := &m.cfg
	if cfg.Dir == "" {
		return errors.New("no release directory")
	}
	for _, a := range []struct {
		name string
		argv []string
	}{{"up", cfg.Up}, {"down", cfg.Down}, {"current", cfg.Current}, {"backup", cfg.Backup}} {
		// ps shows every argv to every user of the machine.
		if m.sec.in(strings.Join(a.argv, "\x00")) {
			return fmt.Errorf("the database URL or its password appears in the %s argv, where ps shows it to every user: read it from $%s instead", a.name, URLEnv)
		}
	}
	if cfg.Program != "" && cfg.Tool != ToolAlembic && cfg.Tool != ToolConfiture {
		return fmt.Errorf("a program is for alembic and confiture, not %s (django runs manage.py with Python)", cfg.Tool)
	}
	if cfg.Tool != ToolCommand && (len(cfg.Up) > 0 || len(cfg.Down) > 0 || len(cfg.Current) > 0) {
		return fmt.Errorf("up, down and current argv are for the command tool, not %s", cfg.Tool)
	}
	if cfg.URL != "" {
		m.urlEnv = []string{URLEnv + "=" + cfg.URL, "DATABASE_URL=" + cfg.URL}
	}
	switch cfg.Tool {
	case ToolAlembic:
		if cfg.Config == "" {
			cfg.Config = "alembic.ini"
		}
		m.impl = &alembicTool{m: m}
	case ToolDjango:
		m.impl = &djangoTool{m: m}
	case ToolConfiture:
		// confiture treats an ambient DATABASE_URL as a mistake to refuse,
		// and its own variable as the deliberate choice.
		m.urlEnv = nil
		if cfg.URL != "" {
			m.urlEnv = []string{URLEnv + "=" + cfg.URL, "CONFITURE_DATABASE_URL=" + cfg.URL}
		}
		m.impl = &confitureTool{m: m}
	case ToolCommand:
		if len(cfg.Up) == 0 {
			return errors.New("the command tool needs an up argv")
		}
		m.impl = &commandTool{m: m}
	case ToolSQL:
		if cfg.SQLDir == "" {
			return errors.New("the sql tool needs a directory of migrations (SQLDir)")
		}
		if cfg.URL == "" {
			return errors.New("the sql tool needs a database URL")
		}
		u, err := parseDBURL(cfg.URL)
		if err != nil {
			return fmt.Errorf("database URL: %w", err)
		}
		if u.kind == dbOther {
			return fmt.Errorf("the sql tool speaks PostgreSQL (postgres://) and SQLite (sqlite:////path), not %s", u.scheme)
		}
		m.impl = &sqlTool{m: m, db: u}
	case "":
		return errors.New("no migration tool")
	default:
		return fmt.Errorf("unknown migration tool %q (alembic, django, confiture, sql or command)", cfg.Tool)
	}
	return nil
}

// Tool is the configured tool's name.
func (m *Migrator) Tool() string { return m.cfg.Tool }

// Current reports where the database stands.
func (m *Migrator) Current(ctx context.Context) (Revision, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	rev, err := m.impl.current(ctx)
	return rev, m.fail(ctx, "read current revision", err)
}

// Up applies every pending migration and returns the revision reached. On
// failure the migrations before the failing one stay applied (each runs in
// its own transaction where the tool and database allow), and the error is
// a *StepError when the tool's output names the failing step.
func (m *Migrator) Up(ctx context.Context) (Revision, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	rev, err := m.impl.up(ctx)
	return rev, m.fail(ctx, "migrate up", err)
}

// Down migrates back to the revision to, recorded by Current before an Up.
// Run it from the newer release: only it knows how to undo its migrations.
func (m *Migrator) Down(ctx context.Context, to Revision) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.fail(ctx, fmt.Sprintf("migrate down to %s", showRevision(to)), m.impl.down(ctx, to))
}

// CheckDown reports, without changing anything, whether Down(ctx, to) could
// run: a malformed revision is an ErrBadRevision and an sql migration
// without a down file an *IrreversibleError. Tools that only find out by
// trying (a Python downgrade that raises) pass.
func (m *Migrator) CheckDown(ctx context.Context, to Revision) error {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.fail(ctx, fmt.Sprintf("check migrating down to %s", showRevision(to)), m.impl.checkDown(ctx, to))
}

// Pending lists the migrations Up would apply, in order, named the tool's
// way. It is ErrUnsupported for the command tool.
func (m *Migrator) Pending(ctx context.Context) ([]string, error) {
	ctx, cancel := m.bound(ctx)
	defer cancel()
	p, err := m.impl.pending(ctx)
	return p, m.fail(ctx, "list pending migrations", err)
}

// Rebuild drops everything in the database and migrates up from nothing
// (confiture: its own migrate rebuild). It refuses with ErrRebuildRefused
// when Config.Protected is set.
func (m *Migrator) Rebuild(ctx context.Context) error {
	if m.cfg.Protected {
		return fmt.Errorf("rebuild (%s): %w", m.cfg.Tool, ErrRebuildRefused)
	}
	ctx, cancel := m.bound(ctx)
	defer cancel()
	return m.fail(ctx, "rebuild", m.impl.rebuild(ctx))
}

// CanDown reports whether this release can migrate down at all, answered
// without the database. For the command tool it needs a down and a current
// argv; for sql, a down file for every migration in the directory (one
// irreversible migration anywhere makes it false — CheckDown answers for a
// particular target). alembic, django and confiture say yes and find out
// when a downgrade raises.
func (m *Migrator) CanDown() bool { return m.impl.canDown() }

// bound applies Config.Timeout. The cause wraps execx.ErrTimeout so that
// callers test one sentinel whichever tool timed out.
func (m *Migrator) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.cfg.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, m.cfg.Timeout, fmt.Errorf("%w after %s", execx.ErrTimeout, m.cfg.Timeout))
}

// fail wraps err with the operation and the tool, adds the context's cause
// when the context ended (a driver reports that only as "context
// canceled"), and scrubs secrets.
func (m *Migrator) fail(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	return m.sec.scrubError(fmt.Errorf("%s (%s): %w", op, m.cfg.Tool, err))
}

func showRevision(r Revision) string {
	if r == "" {
		return "the empty database"
	}
	s := string(r)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return fmt.Sprintf("%q", s)
}
