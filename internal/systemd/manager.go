package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// Scope says which manager a Manager talks to.
type Scope string

const (
	// ScopeSystem is the system manager (systemctl): production installs.
	ScopeSystem Scope = "system"
	// ScopeUser is a user manager (systemctl --user): rootless installs and
	// tests.
	ScopeUser Scope = "user"
)

// ErrUnitNotFound is wrapped when systemd does not know a unit.
var ErrUnitNotFound = errors.New("unit not found")

// queryTimeout bounds a command that only asks (show, status, analyze):
// those answer in milliseconds unless the manager is wedged. Commands that
// run jobs (start, restart) are bounded by their context alone, because the
// unit's own TimeoutStartSec decides how long a start may take.
const queryTimeout = 30 * time.Second

// defaultPoll is how often WaitActive looks at a unit.
const defaultPoll = 100 * time.Millisecond

// systemctlNotFound is systemctl's exit status for a unit that is not
// loaded (LSB "program is not installed").
const systemctlNotFound = 5

// Options configure a Manager.
type Options struct {
	Scope Scope
	// Env is added to the environment of every command run (see passEnv()
	// for what they inherit): XDG_RUNTIME_DIR (and XDG_CONFIG_HOME, for
	// enable) to reach a user manager other than the caller's session one.
	Env []string
	// UnitDir overrides where unit files are written. The default is
	// /etc/systemd/system for the system scope and
	// $XDG_CONFIG_HOME/systemd/user (else ~/.config/systemd/user) for the
	// user scope, with XDG_CONFIG_HOME taken from Env first.
	UnitDir string
	// PollInterval is how often WaitActive looks at a unit; zero means
	// 100ms.
	PollInterval time.Duration
}

// Manager talks to the systemd manager of one scope. Questions about a
// unit's state go over the manager's private socket where it can be used
// (see bus.go) and to systemctl otherwise; jobs (start, restart, enable...)
// run systemctl. A Manager is safe for concurrent use; it keeps its
// connection to the socket only while questions come.
type Manager struct {
	scope   Scope
	env     []string
	unitDir string
	poll    time.Duration
	// bus is nil where the private socket cannot be used.
	bus *sharedBus
}

// New returns a Manager for opts.
func New(opts Options) (*Manager, error) {
	m := &Manager{scope: opts.Scope, env: append([]string(nil), opts.Env...), unitDir: opts.UnitDir, poll: opts.PollInterval}
	if m.poll <= 0 {
		m.poll = defaultPoll
	}
	switch {
	case m.scope != ScopeSystem && m.scope != ScopeUser:
		return nil, fmt.Errorf("systemd scope %q: want %q or %q", m.scope, ScopeSystem, ScopeUser)
	case m.unitDir != "":
	case m.scope == ScopeSystem:
		m.unitDir = "/etc/systemd/system"
	default:
		dir, err := m.userConfigDir()
		if err != nil {
			return nil, err
		}
		m.unitDir = filepath.Join(dir, "systemd", "user")
	}
	if !filepath.IsAbs(m.unitDir) {
		return nil, fmt.Errorf("unit directory %q is not absolute", m.unitDir)
	}
	if m.scope == ScopeUser && m.getenv("XDG_RUNTIME_DIR") == "" {
		if dir := ownRuntimeDir(); dir != "" {
			m.env = append(m.env, "XDG_RUNTIME_DIR="+dir)
		}
	}
	if p := m.busPath(); p != "" {
		m.bus = &sharedBus{path: p}
	}
	return m, nil
}

// ownRuntimeDir is /run/user/UID when it exists and is this user's: where
// logind starts a lingering user's manager. sudo -u and runuser leave
// XDG_RUNTIME_DIR unset; systemctl --user would then find no manager.
func ownRuntimeDir() string {
	uid := os.Geteuid()
	dir := "/run/user/" + strconv.Itoa(uid)
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil || int(st.Uid) != uid || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return ""
	}
	return dir
}

// Scope returns the manager's scope.
func (m *Manager) Scope() Scope { return m.scope }

// UnitDir returns the directory WriteUnit writes to.
func (m *Manager) UnitDir() string { return m.unitDir }

// userConfigDir follows the XDG rule systemctl --user itself follows, so
// that enable finds the files WriteUnit wrote.
func (m *Manager) userConfigDir() (string, error) {
	if v := m.getenv("XDG_CONFIG_HOME"); filepath.IsAbs(v) {
		return v, nil
	}
	home := m.getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("find user unit directory: %w", err)
		}
	}
	return filepath.Join(home, ".config"), nil
}

// getenv reads a variable as the child processes will see it.
func (m *Manager) getenv(key string) string {
	for i := len(m.env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(m.env[i], key+"="); ok {
			return v
		}
	}
	return os.Getenv(key)
}

// passEnv returns the variables of fraisier's environment systemctl and
// systemd-analyze get beyond execx's allowlist: where a user manager and
// its bus listen, and where its unit files live (enable writes there).
func passEnv() []string {
	return []string{"XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "XDG_CONFIG_HOME", "XDG_DATA_HOME"}
}

func (m *Manager) systemctl(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	argv := []string{"systemctl"}
	if m.scope == ScopeUser {
		argv = append(argv, "--user")
	}
	// Never wait on a password prompt nobody will answer.
	argv = append(argv, "--no-ask-password", "--no-pager")
	return execx.Output(ctx, execx.Cmd{Argv: append(argv, args...), Env: m.env, PassEnv: passEnv(), Timeout: timeout})
}

// job runs a systemctl verb on units (start, restart and stop over D-Bus
// where it can, see jobBus) and says what went wrong in terms of the
// units: ErrUnitNotFound, or a *UnitError when a start job failed.
func (m *Manager) job(ctx context.Context, verb string, flags []string, units []string) error {
	if err := validateUnitNames(units); err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	var err error
	ran := false
	if len(flags) == 0 {
		ran, err = m.jobBus(ctx, verb, units)
	}
	if !ran {
		args := append(append([]string{verb}, flags...), "--")
		_, err = m.systemctl(ctx, 0, append(args, units...)...)
	}
	if err == nil {
		return nil
	}
	what := verb + " " + strings.Join(units, " ")
	var ee *execx.ExitError
	switch {
	case errors.Is(err, ErrUnitNotFound):
		return fmt.Errorf("%s: %w", what, err)
	case errors.As(err, &ee) && ee.Code == systemctlNotFound:
		return fmt.Errorf("%s: %w: %w", what, ErrUnitNotFound, err)
	case ee == nil && !errors.Is(err, errJobFailed):
		return fmt.Errorf("%s: %w", what, err)
	}
	if verb == "start" || verb == "restart" || (verb == "enable" && len(flags) > 0) {
		// A failed start job leaves the unit failed; say which and why.
		for _, u := range units {
			st, serr := m.UnitState(ctx, u)
			if serr == nil && st.ActiveState != "active" {
				return m.unitError(ctx, st, verb+" failed", err)
			}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// DaemonReload makes the manager read changed unit files.
func (m *Manager) DaemonReload(ctx context.Context) error {
	if _, err := m.systemctl(ctx, 0, "daemon-reload"); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// Start starts units and waits for their start jobs. For Type=simple that
// means the process was forked, not that it is up: see WaitActive.
func (m *Manager) Start(ctx context.Context, units ...string) error {
	return m.job(ctx, "start", nil, units)
}

// Restart restarts units (starting those that are stopped) and waits for
// the jobs; the same caveat as Start applies. A unit started more than its
// StartLimitBurst (default 5) times within StartLimitIntervalSec (default
// 10s), as a crash loop or quick successive deploys do, refuses with a
// *UnitError of Result "start-limit-hit" until ResetFailed.
func (m *Manager) Restart(ctx context.Context, units ...string) error {
	return m.job(ctx, "restart", nil, units)
}

// Stop stops units and waits until they are stopped.
func (m *Manager) Stop(ctx context.Context, units ...string) error {
	return m.job(ctx, "stop", nil, units)
}

// Enable enables units (their [Install] section), and starts them if now.
func (m *Manager) Enable(ctx context.Context, now bool, units ...string) error {
	return m.job(ctx, "enable", nowFlag(now), units)
}

// Disable disables units, and stops them if now.
func (m *Manager) Disable(ctx context.Context, now bool, units ...string) error {
	return m.job(ctx, "disable", nowFlag(now), units)
}

// ResetFailed clears the failed state (and the restart counter) of units.
// It takes at least one unit: resetting every unit on a host is not
// fraisier's business.
func (m *Manager) ResetFailed(ctx context.Context, units ...string) error {
	return m.job(ctx, "reset-failed", nil, units)
}

func nowFlag(now bool) []string {
	if now {
		return []string{"--now"}
	}
	return nil
}
