package polkit_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"github.com/fraiseql/fraisier/internal/polkit"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// Where Debian installs polkitd, and the directory it reads site rules
// from; the test mounts its own rules over the latter, in a mount
// namespace of polkitd's alone.
const (
	polkitdBin    = "/usr/lib/polkit-1/polkitd"
	siteRulesDir  = "/etc/polkit-1/rules.d"
	helperEnv     = "FRAISIER_TEST_POLKITD_RULES"
	polkitService = "org.freedesktop.PolicyKit1"
)

// TestMain doubles as the helper that starts polkitd: run with helperEnv
// set, in a new mount namespace, the test binary mounts that directory
// over the site rules and becomes polkitd.
func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		if err := unix.Mount(dir, siteRulesDir, "", unix.MS_BIND, ""); err != nil {
			fmt.Fprintf(os.Stderr, "mount %s over %s: %v\n", dir, siteRulesDir, err)
			os.Exit(1)
		}
		err := syscall.Exec(polkitdBin, []string{polkitdBin}, os.Environ())
		fmt.Fprintf(os.Stderr, "exec %s: %v\n", polkitdBin, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// background starts cmd for the length of the test: the test's end
// kills it (it was started here, so by its pid) and waits for it.
func background(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

// privateBus starts a dbus-daemon of type system on a socket of its own,
// with no activatable service, and points DBUS_SYSTEM_BUS_ADDRESS at it.
func privateBus(t *testing.T) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		testenv.Unavailable(t, "dbus-daemon not found: %v", err)
	}
	// Not t.TempDir(): its directories are 0700, and polkitd connects as
	// its own user.
	dir, err := os.MkdirTemp("", "fraisier-bus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "bus")
	conf := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`
	if err := os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--nopidfile")
	log := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	background(t, cmd)
	// The socket file exists from bind(), before listen(): a connection
	// that succeeds is the sign it listens.
	testenv.WaitFor(t, "dbus-daemon listens", 10*time.Second, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	addr := "unix:path=" + sock
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	return addr
}

// startPolkitd runs the real polkitd on the private bus with rule as the
// only site rule, and waits until it owns its name.
func startPolkitd(t *testing.T, rule []byte) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "polkitd starts as root (it drops to its own user) and the test mounts its rules")
	}
	if _, err := os.Stat(polkitdBin); err != nil {
		testenv.Unavailable(t, "polkitd not installed (apt install polkitd): %v", err)
	}
	if st, err := os.Stat(siteRulesDir); err != nil || !st.IsDir() {
		testenv.Unavailable(t, "%s missing: %v", siteRulesDir, err)
	}
	rules := t.TempDir()
	if err := os.Chmod(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := polkit.WriteRule(filepath.Join(rules, "50-fraisier.rules"), rule); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"="+rules)
	// A mount namespace of its own (Go makes its mounts private): the
	// host's rules directory is left alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	log := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	background(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("polkitd:\n%s", log.String())
		}
	})
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testenv.WaitFor(t, "polkitd on the bus", 20*time.Second, func() bool {
		var has bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, polkitService).Store(&has)
		return err == nil && has
	})
}

// checkAs asks polkitd, as root (the one caller it takes details from),
// whether the process pid may run verb on unit: what systemd asks when
// that process calls it.
func checkAs(t *testing.T, pid int, action, unit, verb string) bool {
	t.Helper()
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	subject := struct {
		Kind    string
		Details map[string]dbus.Variant
	}{"unix-process", map[string]dbus.Variant{"pid": dbus.MakeVariant(uint32(pid)), "start-time": dbus.MakeVariant(uint64(0))}}
	details := map[string]string{"unit": unit, "verb": verb}
	var res struct {
		Authorized, Challenge bool
		Details               map[string]string
	}
	err = conn.Object(polkitService, "/org/freedesktop/PolicyKit1/Authority").
		Call("org.freedesktop.PolicyKit1.Authority.CheckAuthorization", 0, subject, action, details, uint32(0), "").Store(&res)
	if err != nil {
		t.Fatalf("CheckAuthorization: %v", err)
	}
	return res.Authorized
}

// processAs starts a process that does nothing, as uid, and returns its pid.
func processAs(t *testing.T, uid uint32) int {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	background(t, cmd)
	return cmd.Process.Pid
}

// TestRuleInPolkitd runs the rendered rule in the real polkitd (its own
// JavaScript engine, its own subject and detail handling) on a private
// system bus: the rule's user gets its units and verbs, nothing else, and
// nobody else gets anything.
func TestRuleInPolkitd(t *testing.T) {
	privateBus(t)
	escaped := `app\x2dblue.service`
	rule, err := polkit.Render(polkit.Grant{User: "nobody", Units: []string{"hello.service", escaped}, Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	startPolkitd(t, rule)
	nobody, daemon := processAs(t, 65534), processAs(t, 1)
	cases := []struct {
		name               string
		pid                int
		action, unit, verb string
		want               bool
	}{
		{"restart", nobody, polkit.ActionManageUnits, "hello.service", "restart", true},
		{"stop", nobody, polkit.ActionManageUnits, "hello.service", "stop", true},
		{"reset-failed", nobody, polkit.ActionManageUnits, "hello.service", "reset-failed", true},
		{"a name with a backslash", nobody, polkit.ActionManageUnits, escaped, "restart", true},
		{"start", nobody, polkit.ActionManageUnits, "hello.service", "start", true},
		{"reload", nobody, polkit.ActionManageUnits, "hello.service", "reload", true},
		{"kill", nobody, polkit.ActionManageUnits, "hello.service", "kill", false},
		{"a unit not listed", nobody, polkit.ActionManageUnits, "ssh.service", "restart", false},
		{"the unescaped name", nobody, polkit.ActionManageUnits, "app-blue.service", "restart", false},
		{"daemon-reload", nobody, "org.freedesktop.systemd1.reload-daemon", "hello.service", "restart", false},
		{"unit files", nobody, "org.freedesktop.systemd1.manage-unit-files", "hello.service", "restart", false},
		{"another user", daemon, polkit.ActionManageUnits, "hello.service", "restart", false},
	}
	for _, c := range cases {
		if got := checkAs(t, c.pid, c.action, c.unit, c.verb); got != c.want {
			t.Errorf("%s: authorized %v, want %v", c.name, got, c.want)
		}
	}
}

// TestMayRestartUnreachable: with no system bus at the address, and on a
// real bus where polkitd neither runs nor can be started, MayRestart says
// polkit is unreachable.
func TestMayRestartUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	if _, err := polkit.MayRestart(ctx, "hello.service"); !errors.Is(err, polkit.ErrUnreachable) || !strings.Contains(err.Error(), "connect to the system bus") {
		t.Errorf("no bus: %v, want ErrUnreachable", err)
	}
	privateBus(t)
	_, err := polkit.MayRestart(ctx, "hello.service")
	if !errors.Is(err, polkit.ErrUnreachable) || !strings.Contains(err.Error(), "polkitd is not on the system bus") {
		t.Errorf("a bus without polkitd: %v, want ErrUnreachable", err)
	}
	if _, err := polkit.MayRestart(ctx, `x"; y.service`); err == nil || errors.Is(err, polkit.ErrUnreachable) {
		t.Errorf("an invalid unit name: %v, want refused before asking", err)
	}
}
