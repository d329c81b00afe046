package systemd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

func TestPrivateManager(t *testing.T) {
	hostRunSystemd := exists("/run/systemd/system")
	ownV2, ownV1 := cgroupLines(t, "self")
	start := time.Now()
	m := UserManager(t)
	t.Logf("private=%v, ready after %s", m.Private, time.Since(start))
	if !m.Private {
		testenv.Unavailable(t, "borrowed a session manager; this test is about a private one")
	}
	ctx := context.Background()

	unit := m.Unit("sleeper.service")
	m.WriteUnit(t, unit, "[Service]\nExecStart=/bin/sleep 600\n")
	m.MustSystemctl(t, "start", unit)
	pid, err := strconv.Atoi(m.MustSystemctl(t, "show", "--property=MainPID", "--value", unit))
	if err != nil || pid <= 0 {
		t.Fatalf("MainPID = %d, %v", pid, err)
	}
	if got := m.MustSystemctl(t, "is-active", unit); got != "active" {
		t.Fatalf("is-active = %q", got)
	}
	// The unit runs with the manager's clean environment, not the test's.
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(environ), "HOME="+m.homeDir()) || strings.Contains(string(environ), launcherEnv) {
		t.Errorf("unit environment leaks the test's: %q", environ)
	}
	// systemd moves every process of its cgroup into init.scope: in the
	// host's root cgroup that would be every process on the machine.
	layout, err := findCgroupLayout()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{m.cmd.Process.Pid, pid} {
		v2, v1 := cgroupLines(t, strconv.Itoa(p))
		t.Logf("process %d: v2 cgroup %s", p, v2)
		if want := strings.TrimPrefix(m.cgroup, layout.unified) + "/"; !strings.HasPrefix(v2, want) {
			t.Errorf("process %d runs in v2 cgroup %q, want one under %q", p, v2, want)
		}
		if !slices.Equal(v1, ownV1) {
			t.Errorf("process %d's v1 cgroups moved: %q, the test's are %q", p, v1, ownV1)
		}
	}
	if v2, v1 := cgroupLines(t, "self"); v2 != ownV2 || !slices.Equal(v1, ownV1) {
		t.Errorf("the test binary was moved from %q %q to %q %q", ownV2, ownV1, v2, v1)
	}
	if exists("/run/systemd/system") != hostRunSystemd {
		t.Errorf("the host's /run/systemd/system changed")
	}

	stop := time.Now()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("stopped after %s", time.Since(stop))
	if alive(pid) {
		t.Errorf("unit process %d outlived Close", pid)
	}
	if alive(m.cmd.Process.Pid) {
		t.Errorf("manager %d outlived Close", m.cmd.Process.Pid)
	}
	for _, p := range []string{m.tmp, m.cgroup} {
		if exists(p) {
			t.Errorf("%s outlived Close", p)
		}
	}
	if err := m.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBorrowedManager runs the session-manager path against a private
// manager standing in for a developer's session.
func TestBorrowedManager(t *testing.T) {
	host := UserManager(t)
	if !host.Private {
		testenv.Unavailable(t, "no private manager to stand in for a session")
	}
	ctx := context.Background()
	m, err := startSession(ctx, host.RuntimeDir)
	if err != nil {
		t.Fatalf("startSession: %v", err)
	}
	if m.Private || m.Prefix == host.Prefix {
		t.Fatalf("borrowed manager: private=%v prefix=%q", m.Private, m.Prefix)
	}
	mine, other := m.Unit("a.service"), "other.service"
	for _, u := range []string{mine, other} {
		writeFile(t, filepath.Join(m.UnitDir, u), "[Service]\nExecStart=/bin/sleep 600\n")
	}
	m.MustSystemctl(t, "daemon-reload")
	m.MustSystemctl(t, "start", mine, other)

	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, _ := host.Systemctl(ctx, "is-active", mine); got == "active" {
		t.Errorf("%s still active after Close", mine)
	}
	if exists(filepath.Join(m.UnitDir, mine)) {
		t.Errorf("%s still on disk after Close", mine)
	}
	if got, _ := host.Systemctl(ctx, "is-active", other); got != "active" {
		t.Errorf("Close touched a unit without its prefix: %s is %q", other, got)
	}
}

func TestStartRejectsUnknownMode(t *testing.T) {
	t.Setenv(ModeEnv, "bogus")
	if _, err := Start(context.Background()); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("Start = %v, want an error naming the mode", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// alive treats a zombie as gone: it no longer runs anything.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// cgroupLines returns pid's /proc/PID/cgroup: v2 path and v1 lines apart.
func cgroupLines(t *testing.T, pid string) (v2 string, v1 []string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			v2 = p
		} else {
			v1 = append(v1, line)
		}
	}
	return v2, v1
}
