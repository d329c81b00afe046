package nspawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// RootEnv names the environment variable that points at another tree than
// the repository's .cache/nspawn/bookworm.
const RootEnv = "FRAISIER_NSPAWN_ROOT"

// Bind is a host path seen inside the machine at Path.
type Bind struct {
	Host, Path string
	ReadOnly   bool
}

// Machine is a booted system; Boot stops it when the test ends.
type Machine struct {
	Name   string
	leader int // the machine's init, as this process sees it
	cmd    *exec.Cmd
	done   chan struct{}
	log    *testenv.SyncBuffer
}

// Root returns the tree to boot, or why there is none.
func Root() (string, error) {
	dir := os.Getenv(RootEnv)
	if dir == "" {
		mod, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(mod, ".cache", "nspawn", "bookworm")
	}
	if _, err := os.Stat(filepath.Join(dir, ".fraisier-nspawn-root")); err != nil {
		return "", fmt.Errorf("no Debian tree at %s (./scripts/test-deps.sh makes it, as root)", dir)
	}
	return dir, nil
}

// moduleRoot is the directory holding fraisier's go.mod, found upwards
// from the test's working directory (its package directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// Boot starts the tree's systemd as a machine's init and waits until it
// has finished starting up. A missing part (root, systemd-nspawn, nsenter,
// the tree) ends the test through testenv.Unavailable.
func Boot(t testing.TB, binds ...Bind) *Machine {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "booting a machine with systemd-nspawn needs root")
	}
	for _, tool := range []string{"systemd-nspawn", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, "%s not found (./scripts/test-deps.sh installs it)", tool)
		}
	}
	root, err := Root()
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	m := &Machine{Name: "fraisier-" + testenv.RandomHex(4), done: make(chan struct{}), log: &testenv.SyncBuffer{}}
	argv := []string{"systemd-nspawn", "--quiet", "--directory=" + root, "--volatile=overlay", "--boot",
		"--register=no", "--keep-unit", "--private-network", "--console=pipe", "--machine=" + m.Name}
	for _, b := range binds {
		opt := "--bind="
		if b.ReadOnly {
			opt = "--bind-ro="
		}
		argv = append(argv, opt+b.Host+":"+b.Path)
	}
	m.cmd = exec.Command(argv[0], argv[1:]...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	m.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_LOG_LEVEL=warning"}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	t.Cleanup(func() { m.stop(t) })
	if m.leader, err = m.findLeader(30 * time.Second); err != nil {
		t.Fatalf("boot %s: %v\n%s", m.Name, err, m.log.String())
	}
	if err := m.waitRunning(time.Minute); err != nil {
		t.Fatalf("boot %s: %v\n%s", m.Name, err, m.log.String())
	}
	return m
}

// waitRunning waits until the machine's manager has finished starting up.
// Until it has made /run/systemd/system, systemctl does not wait but says
// the system was not booted with systemd: ask again.
func (m *Machine) waitRunning(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		state, err := m.Run(ctx, "systemctl", "is-system-running", "--wait")
		switch state = strings.TrimSpace(state); {
		case state == "running":
			return nil
		case state == "degraded":
			failed, _ := m.Run(ctx, "systemctl", "--failed", "--no-legend")
			return fmt.Errorf("system is degraded; failed units:\n%s", failed)
		case ctx.Err() != nil:
			return fmt.Errorf("system is %q after %v: %v", state, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findLeader finds the machine's init among systemd-nspawn's descendants:
// the process whose own PID namespace numbers it 1.
func (m *Machine) findLeader(limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return 0, errors.New("systemd-nspawn exited")
		default:
		}
		queue := []int{m.cmd.Process.Pid}
		for len(queue) > 0 {
			pid := queue[0]
			queue = queue[1:]
			if nsPID(pid) == 1 && pid != m.cmd.Process.Pid {
				return pid, nil
			}
			queue = append(queue, children(pid)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("no init after %v", limit)
}

// nsPID is pid's number in its innermost PID namespace, or 0.
func nsPID(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) < 2 {
				return 0 // in this namespace: not the machine's
			}
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// maxOutput caps what Run keeps of a command's output.
const maxOutput = 1 << 20

// Run runs argv inside the machine as root, with a plain environment, and
// returns its combined output. It waits at most until ctx ends.
func (m *Machine) Run(ctx context.Context, argv ...string) (string, error) {
	return m.RunInput(ctx, nil, argv...)
}

// RunInput is Run with stdin.
func (m *Machine) RunInput(ctx context.Context, stdin []byte, argv ...string) (string, error) {
	full := append([]string{"nsenter", "--target=" + strconv.Itoa(m.leader),
		"--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd", "--"}, argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root", "TERM=dumb"}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out capped
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s in %s: %w", strings.Join(argv, " "), m.Name, err)
	}
	return out.String(), err
}

// MustRun is Run for a test: a failure ends it, with the command's output.
func (m *Machine) MustRun(t testing.TB, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := m.Run(ctx, argv...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// RunAs runs argv inside the machine as user, through runuser.
func (m *Machine) RunAs(ctx context.Context, user string, argv ...string) (string, error) {
	return m.Run(ctx, append([]string{"runuser", "-u", user, "--"}, argv...)...)
}

// Journal is the machine's journal for unit, for a failure's report.
func (m *Machine) Journal(unit string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := m.Run(ctx, "journalctl", "--no-pager", "-o", "short-precise", "-u", unit)
	if err != nil {
		return fmt.Sprintf("journal of %s: %v\n%s", unit, err, out)
	}
	return out
}

// stop powers the machine off (systemd-nspawn turns SIGTERM into a clean
// shutdown), killing it when that takes too long.
func (m *Machine) stop(t testing.TB) {
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		// A second SIGTERM makes systemd-nspawn end the machine at once.
		m.cmd.Process.Signal(syscall.SIGTERM)
		<-m.done
		t.Errorf("%s did not power off in 30s\n%s", m.Name, testenv.Tail(m.log.String(), 20))
	}
}

// capped keeps the first maxOutput bytes written to it.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
