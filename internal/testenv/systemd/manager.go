package systemd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// ModeEnv chooses how Start gets a manager: "private" (start one, never
// borrow), "session" (borrow the session's, never start one) or empty
// (start one if the machine allows, else borrow).
const ModeEnv = "FRAISIER_TEST_SYSTEMD"

// ErrUnavailable reports that this machine cannot provide a user manager
// (no systemd, no privileges, no cgroup to use): a reason to skip, not a bug.
var ErrUnavailable = errors.New("systemd user manager unavailable")

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// Manager is a running systemd user manager that tests may use.
type Manager struct {
	// RuntimeDir is the manager's XDG_RUNTIME_DIR; clients find it there.
	RuntimeDir string
	// ConfigDir is its XDG_CONFIG_HOME (empty for a borrowed session manager).
	ConfigDir string
	// UnitDir is where tests write unit files; daemon-reload picks them up.
	// For a private manager it is $XDG_CONFIG_HOME/systemd/user, the same
	// directory fraisier's user scope writes to by default.
	UnitDir string
	// Prefix starts the name of every unit a test creates (see Unit), so
	// that Close can find them on a borrowed manager.
	Prefix string
	// Private says whether Start started this manager itself.
	Private bool

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	tmp     string
	cgroup  string
	logPath string

	closeOnce sync.Once
	closeErr  error
}

// UserManager starts a private user manager for the test and stops it when
// the test ends. Each test gets a clean one, cheap enough to start per
// test, and tests using one each can run in parallel. A package whose
// tests share one manager can call Start in TestMain and Close after
// m.Run, naming units with Prefix to keep tests apart. Skips the test when
// the machine cannot run a manager; fails it under FRAISIER_TEST_STRICT=1.
func UserManager(t testing.TB) *Manager {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := Start(ctx)
	if errors.Is(err, ErrUnavailable) {
		testenv.Unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("start systemd user manager: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && m.Private {
			t.Logf("systemd user manager log (tail):\n%s", m.LogTail(8<<10))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("stop systemd user manager: %v", err)
		}
	})
	return m
}

// Start gets a user manager as ModeEnv says. A private one runs as follows:
// the test binary re-executes itself in a new mount namespace, mounts a
// tmpfs on /run/systemd there (systemd --user insists on
// /run/systemd/system), moves itself into a cgroup v2 of its own (on a
// hybrid host it also mounts the v2 hierarchy over /sys/fs/cgroup, see
// findCgroupLayout for why) and execs
// `systemd --user` with XDG_RUNTIME_DIR, XDG_CONFIG_HOME, HOME and the
// other XDG directories in a fresh temporary directory. The host's /run and
// the real home directory are never touched. It is ready when its private
// socket answers and its start-up jobs are done.
func Start(ctx context.Context) (*Manager, error) {
	switch mode := os.Getenv(ModeEnv); mode {
	case "private":
		return startPrivate(ctx)
	case "session":
		return startSession(ctx, os.Getenv("XDG_RUNTIME_DIR"))
	case "":
		m, err := startPrivate(ctx)
		if !errors.Is(err, ErrUnavailable) {
			return m, err
		}
		m, serr := startSession(ctx, os.Getenv("XDG_RUNTIME_DIR"))
		if serr != nil {
			return nil, fmt.Errorf("%w; and no session manager to borrow: %v", err, serr)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("%s=%q: want private, session or empty", ModeEnv, mode)
	}
}

// systemdBinaries are where distributions install the manager.
var systemdBinaries = []string{"/lib/systemd/systemd", "/usr/lib/systemd/systemd"}

// privateCanRun finds the systemd binary and the test binary a private
// manager is started with, or says why this machine cannot start one.
func privateCanRun() (bin, exe string, err error) {
	for _, p := range systemdBinaries {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			bin = p
			break
		}
	}
	if bin == "" {
		return "", "", unavailable("no systemd binary in %s", strings.Join(systemdBinaries, ", "))
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return "", "", unavailable("no systemctl: %v", err)
	}
	if os.Geteuid() != 0 {
		return "", "", unavailable("a private manager needs root (mount namespace, cgroup)")
	}
	exe, err = os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("find test binary: %w", err)
	}
	return bin, exe, nil
}

func startPrivate(ctx context.Context) (_ *Manager, err error) {
	bin, exe, err := privateCanRun()
	if err != nil {
		return nil, err
	}
	layout, err := findCgroupLayout()
	if err != nil {
		return nil, err
	}

	m := &Manager{Private: true, Prefix: newPrefix(), done: make(chan struct{})}
	// Not t.TempDir: the private socket path must fit in sun_path (108
	// bytes) and test names make long directories.
	m.tmp, err = os.MkdirTemp("", "fsd-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = m.Close(context.WithoutCancel(ctx))
		}
	}()
	if err := m.makeDirs(); err != nil {
		return nil, err
	}
	if m.cgroup, err = makeCgroup(layout.base); err != nil {
		return nil, err
	}
	m.logPath = filepath.Join(m.tmp, "manager.log")
	logf, err := os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	m.cmd = exec.Command(exe, "-test.run=^$")
	m.cmd.Env = append(m.managerEnv(),
		launcherEnv+"=1",
		launcherBinEnv+"="+bin,
		launcherCgroupEnv+"="+m.cgroup,
	)
	if layout.hybrid() {
		m.cmd.Env = append(m.cmd.Env, launcherUnifiedEnv+"="+layout.unified)
	}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS,
		// Its own group, so a terminal's ^C reaches the test, not systemd.
		Setpgid: true,
		// If the test binary dies without Close, SIGTERM makes a user
		// manager stop its units and exit.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := m.cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return nil, unavailable("new mount namespace: %v", err)
		}
		return nil, fmt.Errorf("start launcher: %w", err)
	}
	go func() {
		m.waitErr = m.cmd.Wait()
		close(m.done)
	}()
	if err := m.waitReady(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// makeDirs makes the private manager's XDG directories under m.tmp.
func (m *Manager) makeDirs() error {
	m.RuntimeDir = filepath.Join(m.tmp, "run")
	m.ConfigDir = filepath.Join(m.tmp, "config")
	m.UnitDir = filepath.Join(m.ConfigDir, "systemd", "user")
	for _, d := range []string{m.RuntimeDir, m.UnitDir, m.dataDir(), m.stateDir(), m.cacheDir(), m.homeDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("make %s: %w", d, err)
		}
	}
	return nil
}

func (m *Manager) dataDir() string  { return filepath.Join(m.tmp, "data") }
func (m *Manager) stateDir() string { return filepath.Join(m.tmp, "state") }
func (m *Manager) cacheDir() string { return filepath.Join(m.tmp, "cache") }
func (m *Manager) homeDir() string  { return filepath.Join(m.tmp, "home") }

// managerEnv is the whole environment of a private manager, and so of its
// services: nothing from the test's environment leaks into units.
func (m *Manager) managerEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + m.homeDir(),
		"XDG_RUNTIME_DIR=" + m.RuntimeDir,
		"XDG_CONFIG_HOME=" + m.ConfigDir,
		"XDG_DATA_HOME=" + m.dataDir(),
		"XDG_STATE_HOME=" + m.stateDir(),
		"XDG_CACHE_HOME=" + m.cacheDir(),
		"SYSTEMD_LOG_TARGET=console",
	}
}

func (m *Manager) waitReady(ctx context.Context) error {
	socket := filepath.Join(m.RuntimeDir, "systemd", "private")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.done:
			var ee *exec.ExitError
			if errors.As(m.waitErr, &ee) && ee.ExitCode() == exitNotPermitted {
				return unavailable("launcher not permitted: %s", lastLine(m.LogTail(4<<10)))
			}
			return fmt.Errorf("systemd --user exited during start-up (%v):\n%s", m.waitErr, m.LogTail(4<<10))
		case <-ctx.Done():
			return fmt.Errorf("wait for systemd --user: %w:\n%s", ctx.Err(), m.LogTail(4<<10))
		case <-tick.C:
		}
		if _, err := os.Stat(socket); err != nil {
			continue
		}
		// The socket exists a moment before it accepts; and tests should not
		// race the manager's own start-up jobs.
		out, err := m.Systemctl(ctx, "show", "--property=SystemState", "--value")
		if err == nil && (out == "running" || out == "degraded") {
			return nil
		}
	}
}

// startSession borrows the user manager reachable through runtimeDir.
func startSession(ctx context.Context, runtimeDir string) (*Manager, error) {
	if runtimeDir == "" {
		return nil, unavailable("XDG_RUNTIME_DIR is not set")
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		return nil, unavailable("no systemctl: %v", err)
	}
	m := &Manager{RuntimeDir: runtimeDir, Prefix: newPrefix()}
	// The runtime unit directory rather than ~/.config: it is in the
	// manager's search path and vanishes with the session.
	m.UnitDir = filepath.Join(runtimeDir, "systemd", "user")
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := m.Systemctl(qctx, "show", "--property=Version"); err != nil {
		return nil, unavailable("no user manager answers at %s: %v", runtimeDir, err)
	}
	if err := os.MkdirAll(m.UnitDir, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", m.UnitDir, err)
	}
	return m, nil
}

func newPrefix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "ft-" + hex.EncodeToString(b[:]) + "-"
}

// Unit returns name with the manager's Prefix: the name a test should use.
func (m *Manager) Unit(name string) string { return m.Prefix + name }

// Env is what a client process needs to reach this manager, to be added to
// its environment: `systemctl --user` then talks to this manager and
// installs units (enable) where this manager looks for them.
func (m *Manager) Env() []string {
	env := []string{
		"XDG_RUNTIME_DIR=" + m.RuntimeDir,
		// Never the developer's session bus, should the private socket fail.
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(m.RuntimeDir, "bus"),
	}
	if m.Private {
		env = append(env,
			"XDG_CONFIG_HOME="+m.ConfigDir,
			"XDG_DATA_HOME="+m.dataDir(),
			"XDG_STATE_HOME="+m.stateDir(),
			"XDG_CACHE_HOME="+m.cacheDir(),
		)
	}
	return env
}

// Systemctl runs `systemctl --user args...` against this manager and
// returns its trimmed output.
func (m *Manager) Systemctl(ctx context.Context, args ...string) (string, error) {
	return execx.Output(ctx, execx.Cmd{
		Argv:    append([]string{"systemctl", "--user", "--no-pager"}, args...),
		Env:     m.Env(),
		Timeout: 30 * time.Second,
	})
}

// LogTail returns up to the last n bytes of a private manager's output,
// which includes its units' stdout and stderr (there is no journal).
func (m *Manager) LogTail(n int) string {
	if m.logPath == "" {
		return ""
	}
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Close stops a private manager and everything it runs and removes its
// files and cgroup; for a borrowed one it stops, disables and removes the
// units named with Prefix. Safe to call more than once.
func (m *Manager) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		if m.Private {
			m.closeErr = m.closePrivate(ctx)
		} else {
			m.closeErr = m.closeSession(ctx)
		}
	})
	return m.closeErr
}

func (m *Manager) closePrivate(ctx context.Context) error {
	var errs []error
	if m.cmd != nil && m.cmd.Process != nil {
		// exit stops the units first, then the manager.
		select {
		case <-m.done:
		default:
			if _, err := m.Systemctl(ctx, "exit"); err != nil {
				errs = append(errs, fmt.Errorf("systemctl --user exit: %w", err))
				_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
			}
		}
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			errs = append(errs, errors.New("systemd --user did not exit within 10s; killed"))
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-m.done
		}
	}
	if m.cgroup != "" {
		// Anything left (a unit that ignored SIGTERM) is killed here.
		if err := removeCgroup(m.cgroup); err != nil {
			errs = append(errs, err)
		}
	}
	if m.tmp != "" {
		if err := os.RemoveAll(m.tmp); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", m.tmp, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) closeSession(ctx context.Context) error {
	entries, err := os.ReadDir(m.UnitDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list %s: %w", m.UnitDir, err)
	}
	var units []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), m.Prefix) && !e.IsDir() {
			units = append(units, e.Name())
		}
	}
	var errs []error
	// Stop by pattern: it also catches loaded units whose files are gone.
	if _, err := m.Systemctl(ctx, "stop", m.Prefix+"*"); err != nil {
		errs = append(errs, err)
	}
	if len(units) > 0 {
		// disable undoes enable's symlinks in the real ~/.config.
		if _, err := m.Systemctl(ctx, append([]string{"disable", "--"}, units...)...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range units {
		if err := os.Remove(filepath.Join(m.UnitDir, u)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := m.Systemctl(ctx, "daemon-reload"); err != nil {
		errs = append(errs, err)
	}
	// reset-failed forgets failed units that no longer have a file.
	_, _ = m.Systemctl(ctx, "reset-failed", m.Prefix+"*")
	return errors.Join(errs...)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
