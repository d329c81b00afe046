package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// TestUnitRightUserScope: with a real user manager, the unit check finds
// the unit and says this user may restart it (its own manager), without
// restarting it: the unit's main process is the same before and after.
func TestUnitRightUserScope(t *testing.T) {
	mgr := tsystemd.UserManager(t)
	for _, kv := range mgr.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	unit := mgr.AppUnit(t, "right.service", 0, t.TempDir())
	mgr.MustSystemctl(t, "start", unit)
	pid := mgr.MustSystemctl(t, "show", "--property=MainPID", "--value", unit)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := doctorUnitAs(ctx, "user", unit, os.Geteuid())
	t.Logf("%+v", c)
	if c.Result != checkOK || !strings.Contains(c.Detail, "may restart it (its own user manager)") {
		t.Errorf("unit check %s %q, want ok and the right to restart", c.Result, c.Detail)
	}
	if after := mgr.MustSystemctl(t, "show", "--property=MainPID", "--value", unit); after != pid {
		t.Errorf("MainPID %s → %s: the check restarted the unit", pid, after)
	}
	missing := doctorUnitAs(ctx, "user", mgr.Unit("no-such.service"), os.Geteuid())
	if missing.Result != checkFail || strings.Contains(missing.Detail, "may restart") {
		t.Errorf("missing unit: %s %q, want fail without a right to restart", missing.Result, missing.Detail)
	}
}

// TestUnitRightPolkitUnreachable: in the system scope, a user other than
// root is told it cannot be checked when there is no system bus (a real
// absence: nothing listens at the address), with the fix; root needs no
// polkit. The euid passed stands for the user the check speaks of: the
// question itself fails before any identity matters.
func TestUnitRightPolkitUnreachable(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := mayRestart(ctx, "system", "hello.service", 65534)
	t.Logf("%+v", r)
	if r.result != checkWarn || !strings.Contains(r.detail, "cannot tell whether") || !strings.Contains(r.detail, "polkit unreachable") ||
		!strings.Contains(r.fix, "apt install polkitd") || !strings.Contains(r.fix, "fraisier install polkit") {
		t.Errorf("no system bus: %+v, want a warning with the fix", r)
	}
	root := mayRestart(ctx, "system", "hello.service", 0)
	if root.result != checkOK || !strings.HasPrefix(root.detail, "root may restart it") {
		t.Errorf("root: %+v, want ok", root)
	}
	loaded := doctorCheck{Check: "unit", Result: checkWarn, Detail: "its files changed on disk", Fix: "systemctl daemon-reload"}
	c := withRight(loaded, root)
	if c.Result != checkWarn || c.Fix != "systemctl daemon-reload" || !strings.HasSuffix(c.Detail, "; root may restart it (run doctor as the user that deploys to check that user's right: sudo -u fraisier fraisier doctor)") {
		t.Errorf("a warning and an ok right: %+v", c)
	}
}

// TestUnitFilesWritable: a system unit's file, or its directory, that the
// deploying user owns or may write through its group or everyone fails
// the unit line; root's files with the usual modes, and a masked unit, do
// not. Real files, owned by nobody (65534) as that user would own them.
func TestUnitFilesWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "the test gives files to another user (chown), which takes root")
	}
	const nobody = 65534
	gids := userGroups(nobody)
	if len(gids) == 0 {
		t.Fatalf("no groups for uid %d", nobody)
	}
	root := t.TempDir()
	mk := func(name string, mode os.FileMode, uid, gid int) string {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("[Service]\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	safe := mk("etc/hello.service", 0o644, 0, 0)
	owned := mk("srv/hello/current/hello.service", 0o644, nobody, gids[0])
	group := mk("etc2/group.service", 0o664, 0, gids[0])
	world := mk("etc3/world.service", 0o646, 0, 0)
	open := mk("open/hello.service", 0o644, 0, 0)
	if err := os.Chmod(filepath.Dir(open), 0o777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "etc", "linked.service")
	if err := os.Symlink(owned, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		files []string
		want  string // the path named, "" for none
	}{
		{"root's file and directory", []string{safe, "/dev/null"}, ""},
		{"a file the user owns", []string{safe, owned}, owned},
		{"a group-writable file of its group", []string{group}, group},
		{"a world-writable file", []string{world}, world},
		{"a directory anyone can write", []string{open}, filepath.Dir(open)},
		{"a link to a file the user owns", []string{link}, owned},
	}
	for _, c := range cases {
		r, bad := unitFilesWritable(c.files, nobody)
		switch {
		case c.want == "" && bad:
			t.Errorf("%s: %+v, want nothing", c.name, r)
		case c.want != "" && (!bad || r.result != checkFail || !strings.Contains(r.detail, "can write "+c.want+",") || !strings.Contains(r.fix, "chown root:root "+c.want)):
			t.Errorf("%s: %+v, want a failure naming %s", c.name, r, c.want)
		}
	}
}
