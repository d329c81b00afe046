package deploy

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestInstallRunsAsUser: with user: set, the release is handed to that
// user (symlinks themselves, nothing they point at) before install runs,
// and install runs as that user with its HOME, USER and LOGNAME; app_path
// and releases/ stay fraisier's. Before user: existed, install ran as root.
func TestInstallRunsAsUser(t *testing.T) {
	f := newTreeFixture(t)
	nobodyUser, err := user.LookupId("65534")
	if err != nil {
		testenv.Unavailable(t, "no user 65534 on this host")
	}
	// The user must be able to reach its release, as under /srv.
	for _, dir := range []string{filepath.Dir(f.root), f.root} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// What the commit links to outside the release, and the shared .env,
	// must keep their owner: the walk follows no symlink.
	victim := filepath.Join(f.root, "victim")
	writeFile(t, victim, "root's\n")
	if err := os.Symlink(victim, filepath.Join(f.repo.Work, "outside")); err != nil {
		t.Fatal(err)
	}
	f.repo.Write("sub/file", "x\n")
	f.repo.Commit("a tree with a link out")
	mkdirOwned(t, filepath.Join(f.app, "shared"), 0, 0o755)
	writeFile(t, filepath.Join(f.app, "shared", ".env"), "A=1\n")

	env := f.env("", `        user: nobody
        shared: [.env]
        install:
          command: [sh, -c, 'id -u > uid; id -g > gid; echo "$$HOME $$USER $$LOGNAME" > who']
`)
	res := f.deploy(env)
	if res.Status != store.StatusSucceeded {
		t.Fatalf("status %s (%v)", res.Status, res.Err)
	}
	rel := filepath.Join(f.app, "releases", res.Release)
	for file, want := range map[string]string{
		"uid": "65534",
		"gid": nobodyUser.Gid,
		"who": nobodyUser.HomeDir + " nobody nobody",
	} {
		if b, err := os.ReadFile(filepath.Join(rel, file)); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("install's %s: %q (%v), want %q", file, b, err, want)
		}
	}
	owner := func(p string) uint32 {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Uid
	}
	filepath.Walk(rel, func(p string, _ os.FileInfo, err error) error {
		if err == nil && owner(p) != nobody {
			t.Errorf("%s is owned by uid %d, want the environment's user", p, owner(p))
		}
		return nil
	})
	for _, p := range []string{victim, filepath.Join(f.app, "shared", ".env"), f.app, filepath.Join(f.app, "releases")} {
		if owner(p) != 0 {
			t.Errorf("%s is owned by uid %d: it must stay root's", p, owner(p))
		}
	}
	// The next deployment checks the tree the first one left: the
	// release belongs to the user, what holds it still to fraisier.
	f.repo.Write("VERSION", "v3\n")
	f.repo.Commit("v3")
	if res := f.deploy(env); res.Status != store.StatusSucceeded {
		t.Fatalf("second deployment: %s (%v)", res.Status, res.Err)
	}
}

// TestUserRefusals: a user or group that does not exist, or an
// environment whose commands could not all run as the user, fails the
// deployment before anything changes, saying why.
func TestUserRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"unknown user", "        user: no-such-user-fraisier\n", "user: no-such-user-fraisier does not exist on this host"},
		{"unknown group", "        user: nobody\n        group: no-such-group-fraisier\n", "group: no-such-group-fraisier does not exist on this host"},
		{"unknown uid", "        user: \"4000000000\"\n", "user: no user has id 4000000000 on this host"},
		{"inplace layout", "        user: nobody\n        layout: inplace\n", "needs the releases layout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTreeFixture(t)
			res := f.deploy(f.env("", tc.extra))
			f.refused(res, tc.want)
			if _, err := os.Stat(f.app); !os.IsNotExist(err) {
				t.Errorf("the refused deployment made app_path (%v)", err)
			}
		})
	}
}

// TestResolveAccount: who commands run as, for fraisier as root and not.
func TestResolveAccount(t *testing.T) {
	nobodyUser, err := user.LookupId("65534")
	if err != nil {
		testenv.Unavailable(t, "no user 65534 on this host")
	}
	gid, err := strconv.Atoi(nobodyUser.Gid)
	if err != nil {
		t.Fatal(err)
	}
	nobodyGID := uint32(gid)
	for _, tc := range []struct {
		name        string
		user, group string
		euid, egid  int
		want        account
		wantErr     string
	}{
		{name: "neither set", euid: 0, egid: 0},
		{name: "root switches", user: "nobody", euid: 0, egid: 0,
			want: account{name: "nobody", uid: nobody, gid: nobodyGID, home: nobodyUser.HomeDir, switchTo: true}},
		{name: "by id", user: "65534", euid: 0, egid: 0,
			want: account{name: "nobody", uid: nobody, gid: nobodyGID, home: nobodyUser.HomeDir, switchTo: true}},
		{name: "a group of its own", user: "nobody", group: "0", euid: 0, egid: 0,
			want: account{name: "nobody", uid: nobody, gid: 0, home: nobodyUser.HomeDir, switchTo: true}},
		{name: "not root, itself", user: "nobody", euid: nobody, egid: int(nobodyGID),
			want: account{name: "nobody", uid: nobody, gid: nobodyGID, home: nobodyUser.HomeDir}},
		{name: "not root, another user", user: "nobody", euid: 1000, egid: 1000, wantErr: "not as root, and cannot run commands as another user"},
		{name: "not root, another group", user: "nobody", group: "0", euid: nobody, egid: int(nobodyGID), wantErr: "cannot switch to another group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &config.Environment{User: tc.user, Group: tc.group}
			got, err := resolveAccount(env, tc.euid, tc.egid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.name != tc.want.name || got.uid != tc.want.uid || got.gid != tc.want.gid || got.home != tc.want.home || got.switchTo != tc.want.switchTo {
				t.Errorf("account %+v, want %+v", got, tc.want)
			}
			if tc.want.switchTo != (got.credential() != nil) {
				t.Errorf("credential %v with switchTo %v", got.credential(), tc.want.switchTo)
			}
		})
	}
}

// TestJobUnitsRunAsUser: the units rendered for a scheduled environment's
// jobs run as its user: and group:.
func TestJobUnitsRunAsUser(t *testing.T) {
	f := newSchedFixture(t)
	u, err := f.collab.JobUnits("user")
	if err != nil {
		t.Fatal(err)
	}
	env := &config.Environment{User: "nobody", Group: "nogroup"}
	job := &config.Job{Name: "nightly", SystemdService: "fraisier-cron-nightly.service", SystemdTimer: "fraisier-cron-nightly.timer",
		Command: []string{"/bin/true"}, Schedule: "0 3 * * *"}
	rj, err := renderJob(context.Background(), u, store.Target{Fraise: "cron", Environment: "production"}, job, "/srv/cron/current", "/srv/cron/releases/r1", env)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"\nUser=nobody\n", "\nGroup=nogroup\n"} {
		if !strings.Contains(string(rj.serviceText), line) {
			t.Errorf("the job's service has no %q:\n%s", strings.TrimSpace(line), rj.serviceText)
		}
	}
}
