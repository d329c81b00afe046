package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// A deploy user who owns app_path, or could write into it once, must not get
// fraisier's own rights: the attacks below are what such a user can plant.
// The tests run as root (fraisier's usual case) and give the planted files
// to uid 65534 (nobody), a real other user.

const nobody = 65534

// treeFixture is one api fraise with no unit and no health check: real git,
// a real state database, and an app_path the test may tamper with.
type treeFixture struct {
	t          *testing.T
	root       string
	repo       *testenv.Origin
	app, state string
	// top is YAML put before fraises: (a git: section, say).
	top string
	db  *store.DB
	log strings.Builder
}

func newTreeFixture(t *testing.T) *treeFixture {
	t.Helper()
	f := &treeFixture{t: t, root: t.TempDir()}
	f.app = filepath.Join(f.root, "srv", "hello")
	f.state = filepath.Join(f.root, "state")
	f.repo = testenv.NewOrigin(t, f.root)
	f.repo.Write("VERSION", "v1\n")
	f.repo.Commit("v1")
	f.db = openState(t, filepath.Join(f.state, "fraisier.db"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine output:\n%s", f.log.String())
		}
	})
	return f
}

// env is the environment with extra YAML lines, and remote as git_repo
// ("" for the fixture's origin).
func (f *treeFixture) env(remote, extra string) *config.Environment {
	f.t.Helper()
	if remote == "" {
		remote = f.repo.Dir
	}
	yaml := fmt.Sprintf(`%s
state:
  dir: %s
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        keep_releases: 3
%s`, f.top, f.state, remote, f.app, extra)
	return lookup(f.t, parseConfig(f.t, f.root, yaml), "hello", "production")
}

func (f *treeFixture) engine() *Engine { return newEngine(f.t, f.db, &f.log) }

func (f *treeFixture) deploy(env *config.Environment) Result {
	f.t.Helper()
	res, err := f.engine().Deploy(context.Background(), RealCollaborators(nil), Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
	if err != nil {
		f.t.Fatalf("Deploy: %v", err)
	}
	return res
}

// refused checks that a deployment failed, recorded, with an error naming
// every one of want.
func (f *treeFixture) refused(res Result, want ...string) {
	f.t.Helper()
	if res.Status != store.StatusFailed {
		f.t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
	}
	f.t.Logf("refused: %v", res.Err)
	d, err := f.db.Deployment(context.Background(), res.DeploymentID)
	if err != nil {
		f.t.Fatal(err)
	}
	if d.Status != store.StatusFailed {
		f.t.Fatalf("recorded status %s, want failed", d.Status)
	}
	for _, w := range want {
		if !strings.Contains(res.Err.Error(), w) {
			f.t.Errorf("error %q does not say %q", res.Err, w)
		}
	}
}

func mkdirOwned(t *testing.T, dir string, uid int, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// plantSSHCommand writes a bare repository's config into dir, owned by
// nobody, whose core.sshCommand records that it ran (and as whom) in marker.
func plantSSHCommand(t *testing.T, dir, marker string) {
	t.Helper()
	for _, sub := range []string{"objects", "refs", "info"} {
		mkdirOwned(t, filepath.Join(dir, sub), nobody, 0o755)
	}
	script := filepath.Join(filepath.Dir(marker), "planted.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\nid -u > %s\nexit 1\n", marker))
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "HEAD"), "ref: refs/heads/main\n")
	writeFile(t, filepath.Join(dir, "config"), fmt.Sprintf("[core]\n\tbare = true\n\tsshCommand = %s\n", script))
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
	mkdirOwned(t, dir, nobody, 0o755)
}

// TestPlantedMirrorConfigNeverRuns: the mirror's own config is obeyed by
// every git fraisier runs on it (GIT_DIR bypasses safe.directory), so a
// core.sshCommand planted there by another user would run as fraisier.
// Wherever it is planted (a mirror under app_path, where an older layout
// kept it, or a mirror under the state directory that another user owns),
// it never runs.
func TestPlantedMirrorConfigNeverRuns(t *testing.T) {
	for _, tc := range []struct {
		name string
		// plant returns the directory the config is planted in.
		plant func(f *treeFixture) string
		// refusal, when set, is what the failed deployment must say.
		refusal func(f *treeFixture) []string
	}{
		{"old mirror under an app_path nobody owns", func(f *treeFixture) string {
			mkdirOwned(t, f.app, nobody, 0o755)
			return filepath.Join(f.app, "repo")
		}, func(f *treeFixture) []string { return []string{f.app, "owned by uid 65534", "chown"} }},
		{"old mirror left under a root-owned app_path", func(f *treeFixture) string {
			mkdirOwned(t, f.app, 0, 0o755)
			return filepath.Join(f.app, "repo")
		}, nil},
		{"mirror in the state directory owned by nobody", func(f *treeFixture) string {
			return filepath.Join(f.state, "mirrors", "hello", "production")
		}, func(f *treeFixture) []string {
			return []string{filepath.Join(f.state, "mirrors", "hello", "production"), "owned by uid 65534", "remove it"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTreeFixture(t)
			marker := filepath.Join(f.root, "planted-ran")
			plantSSHCommand(t, tc.plant(f), marker)
			// An ssh remote on a closed port: only core.sshCommand could
			// make this fetch do anything.
			res := f.deploy(f.env("ssh://git@127.0.0.1:1/hello.git", ""))
			if b, err := os.ReadFile(marker); err == nil {
				t.Fatalf("the planted core.sshCommand ran (as uid %s)", strings.TrimSpace(string(b)))
			}
			if tc.refusal != nil {
				f.refused(res, tc.refusal(f)...)
			} else if res.Status != store.StatusFailed {
				t.Fatalf("status %s, want failed at the fetch over ssh", res.Status)
			}
		})
	}
}

// treeSnapshot is every path under dir with its type, mode, owner and link
// target: what a refused deployment must leave exactly as it was.
func treeSnapshot(t *testing.T, dirs ...string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	for _, dir := range dirs {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			v := fmt.Sprintf("%s %d:%d", fi.Mode(), st.Uid, st.Gid)
			if fi.Mode()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				v += " -> " + target
			}
			snap[p] = v
			return nil
		})
	}
	return snap
}

// TestDeployRefusesAHostileTree: app_path, releases/ and shared/ must be
// real directories that only fraisier's user can write, in a path no other
// user can change, and current a link into releases/. Otherwise the
// deployment fails before it changes anything, and says which path, who
// owns it and what to do: a releases/ symlinked elsewhere would otherwise
// get a release written into it and old directories pruned from it.
func TestDeployRefusesAHostileTree(t *testing.T) {
	oldReleases := []string{"20200101T000000.000Z-aaaaaaaa", "20200102T000000.000Z-bbbbbbbb", "20200103T000000.000Z-cccccccc", "20200104T000000.000Z-dddddddd"}
	for _, tc := range []struct {
		name  string
		extra string
		// tamper shapes the tree; elsewhere is a directory outside it.
		tamper func(t *testing.T, f *treeFixture, elsewhere string)
		want   func(f *treeFixture) []string
	}{
		{"app_path owned by another user", "", func(t *testing.T, f *treeFixture, _ string) {
			mkdirOwned(t, f.app, nobody, 0o755)
		}, func(f *treeFixture) []string {
			return []string{f.app, "owned by uid 65534 (nobody)", "chown -R root", "set user: nobody"}
		}},
		{"app_path writable by its group", "", func(t *testing.T, f *treeFixture, _ string) {
			mkdirOwned(t, f.app, 0, 0o775)
		}, func(f *treeFixture) []string { return []string{f.app, "writable by its group", "chmod go-w"} }},
		{"app_path writable by others", "", func(t *testing.T, f *treeFixture, _ string) {
			mkdirOwned(t, f.app, 0, 0o757)
		}, func(f *treeFixture) []string { return []string{f.app, "writable by others"} }},
		{"app_path a symlink", "", func(t *testing.T, f *treeFixture, elsewhere string) {
			mkdirOwned(t, filepath.Dir(f.app), 0, 0o755)
			if err := os.Symlink(elsewhere, f.app); err != nil {
				t.Fatal(err)
			}
		}, func(f *treeFixture) []string { return []string{f.app, "symlink"} }},
		{"releases a symlink to a directory elsewhere", "", func(t *testing.T, f *treeFixture, elsewhere string) {
			mkdirOwned(t, f.app, 0, 0o755)
			for _, r := range oldReleases {
				mkdirOwned(t, filepath.Join(elsewhere, r), 0, 0o755)
			}
			if err := os.Symlink(elsewhere, filepath.Join(f.app, "releases")); err != nil {
				t.Fatal(err)
			}
		}, func(f *treeFixture) []string { return []string{filepath.Join(f.app, "releases"), "symlink"} }},
		{"releases owned by another user", "", func(t *testing.T, f *treeFixture, _ string) {
			mkdirOwned(t, f.app, 0, 0o755)
			mkdirOwned(t, filepath.Join(f.app, "releases"), nobody, 0o755)
		}, func(f *treeFixture) []string {
			return []string{filepath.Join(f.app, "releases"), "owned by uid 65534"}
		}},
		{"shared a symlink", "        shared: [.env]\n", func(t *testing.T, f *treeFixture, elsewhere string) {
			mkdirOwned(t, f.app, 0, 0o755)
			writeFile(t, filepath.Join(elsewhere, ".env"), "A=1\n")
			if err := os.Symlink(elsewhere, filepath.Join(f.app, "shared")); err != nil {
				t.Fatal(err)
			}
		}, func(f *treeFixture) []string { return []string{filepath.Join(f.app, "shared"), "symlink"} }},
		{"current pointing outside releases", "", func(t *testing.T, f *treeFixture, elsewhere string) {
			mkdirOwned(t, filepath.Join(f.app, "releases"), 0, 0o755)
			mkdirOwned(t, filepath.Join(elsewhere, oldReleases[0]), 0, 0o755)
			if err := os.Symlink(filepath.Join(elsewhere, oldReleases[0]), filepath.Join(f.app, "current")); err != nil {
				t.Fatal(err)
			}
		}, func(f *treeFixture) []string { return []string{filepath.Join(f.app, "current"), "releases/<name>"} }},
		{"current climbing out of releases", "", func(t *testing.T, f *treeFixture, elsewhere string) {
			mkdirOwned(t, filepath.Join(f.app, "releases"), 0, 0o755)
			mkdirOwned(t, filepath.Join(elsewhere, oldReleases[0]), 0, 0o755)
			rel, _ := filepath.Rel(filepath.Join(f.app, "releases"), filepath.Join(elsewhere, oldReleases[0]))
			if err := os.Symlink("releases/"+rel, filepath.Join(f.app, "current")); err != nil {
				t.Fatal(err)
			}
		}, func(f *treeFixture) []string { return []string{filepath.Join(f.app, "current"), "releases/<name>"} }},
		{"current a directory", "", func(t *testing.T, f *treeFixture, _ string) {
			mkdirOwned(t, filepath.Join(f.app, "current"), 0, 0o755)
		}, func(f *treeFixture) []string { return []string{filepath.Join(f.app, "current"), "not a symlink"} }},
		{"an ancestor writable by others", "", func(t *testing.T, f *treeFixture, _ string) {
			mkdirOwned(t, filepath.Dir(f.app), 0, 0o777)
		}, func(f *treeFixture) []string { return []string{filepath.Dir(f.app), "writable by others"} }},
		{"an ancestor owned by another user", "", func(t *testing.T, f *treeFixture, _ string) {
			mkdirOwned(t, filepath.Dir(f.app), nobody, 0o755)
		}, func(f *treeFixture) []string { return []string{filepath.Dir(f.app), "owned by uid 65534"} }},
		{"an ancestor reached through a symlink in a directory another user owns", "", func(t *testing.T, f *treeFixture, elsewhere string) {
			// root/srv -> root/lair/srv, and root/lair belongs to nobody,
			// who could point srv anywhere.
			lair := filepath.Join(f.root, "lair")
			mkdirOwned(t, filepath.Join(lair, "srv"), 0, 0o755)
			mkdirOwned(t, lair, nobody, 0o755)
			if err := os.Symlink(filepath.Join(lair, "srv"), filepath.Dir(f.app)); err != nil {
				t.Fatal(err)
			}
		}, func(f *treeFixture) []string { return []string{filepath.Join(f.root, "lair"), "owned by uid 65534"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTreeFixture(t)
			elsewhere := filepath.Join(f.root, "elsewhere")
			mkdirOwned(t, elsewhere, 0, 0o755)
			tc.tamper(t, f, elsewhere)
			before := treeSnapshot(t, filepath.Join(f.root, "srv"), elsewhere, filepath.Join(f.root, "lair"))
			res := f.deploy(f.env("", tc.extra))
			f.refused(res, tc.want(f)...)
			if diff := cmp.Diff(before, treeSnapshot(t, filepath.Join(f.root, "srv"), elsewhere, filepath.Join(f.root, "lair"))); diff != "" {
				t.Errorf("the refused deployment changed the tree (-before +after):\n%s", diff)
			}
		})
	}
}

// TestDeployAcceptsASafeTree: what the checks must let through: a first
// deployment into a path that does not exist yet, an ancestor that is
// world-writable but sticky (/tmp), and a second deployment on the tree the
// first one made.
func TestDeployAcceptsASafeTree(t *testing.T) {
	f := newTreeFixture(t)
	mkdirOwned(t, filepath.Join(f.root, "sticky"), 0, 0o777|os.ModeSticky)
	f.app = filepath.Join(f.root, "sticky", "srv", "hello")
	env := f.env("", "")
	for i := range 2 {
		if res := f.deploy(env); res.Status != store.StatusSucceeded && !(i == 1 && res.Status == store.StatusSkipped) {
			t.Fatalf("deployment %d: %s (%v)", i+1, res.Status, res.Err)
		}
	}
	fi, err := os.Lstat(filepath.Join(f.app, "current"))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("current after the deployment: %v, %v", fi, err)
	}
}

// TestPlanRefusesAHostileTree: deploy --plan reads current and writes a
// scratch export under app_path, so it checks the tree as a deployment
// does, before it fetches.
func TestPlanRefusesAHostileTree(t *testing.T) {
	f := newTreeFixture(t)
	mkdirOwned(t, f.app, nobody, 0o755)
	_, err := f.engine().Plan(context.Background(), RealCollaborators(nil), Request{Env: f.env("", "")})
	if err == nil || !strings.Contains(err.Error(), f.app) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("plan on an app_path nobody owns: %v, want it refused", err)
	}
	if _, err := os.Stat(filepath.Join(f.state, "mirrors")); !os.IsNotExist(err) {
		t.Errorf("the refused plan made the mirrors directory (%v)", err)
	}
}
