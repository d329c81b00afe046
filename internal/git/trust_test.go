package git

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The config of a git directory is obeyed by every git run on it, hooks
// aside (core.sshCommand, proxies, credential helpers...): a git directory
// another user could write runs that user's commands as fraisier. These
// tests run as root and hand directories to uid 65534 (nobody).

const nobody = 65534

// plantSSHCommand writes into gitDir's config a core.sshCommand that
// records, in marker, that it ran and as whom.
func plantSSHCommand(t *testing.T, gitDir, marker string) {
	t.Helper()
	script := marker + ".sh"
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\nid -u > %s\nexit 1\n", marker)), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(gitDir, "config")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, append(b, []byte("[core]\n\tsshCommand = "+script+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertNotRun(t *testing.T, marker string) {
	t.Helper()
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the planted core.sshCommand ran (as uid %s)", strings.TrimSpace(string(b)))
	}
}

// TestInPlaceNeverReadsTheWorkTreesGitDir: an inplace work tree is written
// by whoever deploys into it; a .git in it, left by a clone from before the
// git directory moved out, is taken over but never read: its planted
// core.sshCommand does not run, and it is left as it was.
func TestInPlaceNeverReadsTheWorkTreesGitDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	o.commit("v1", map[string]file{"app.py": {content: "v1"}})
	o.push("main")
	app := filepath.Join(t.TempDir(), "app")
	o.git(filepath.Dir(app), "clone", "--quiet", o.bare, app)
	marker := filepath.Join(t.TempDir(), "ran")
	plantSSHCommand(t, filepath.Join(app, ".git"), marker)
	// What a deployment taking the clone over can return to, read without git.
	if got := WorkTreeHead(app); got != "" {
		t.Errorf("WorkTreeHead of a clone on a branch = %q, want none", got)
	}
	v1 := o.git(app, "rev-parse", "HEAD")
	o.git(app, "checkout", "--quiet", "--detach", v1)
	if got := WorkTreeHead(app); got != v1 {
		t.Errorf("WorkTreeHead of a detached clone = %q, want %s", got, v1)
	}
	before := snapshot(t, filepath.Join(app, ".git"))

	// A commit the old clone lacks, over ssh to a closed port: only the
	// planted command could make this fetch do anything.
	v2 := o.commit("v2", map[string]file{"app.py": {content: "v2"}})
	o.push("main")
	err := CheckoutInPlace(ctx, t.TempDir(), app, "ssh://git@127.0.0.1:1/origin.git", v2, Options{})
	assertNotRun(t, marker)
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("checkout over ssh to a closed port = %v, want ErrUnreachable", err)
	}

	// From a remote that works, the old clone is checked out over.
	gitDir := t.TempDir()
	if err := CheckoutInPlace(ctx, gitDir, app, o.bare, v2, Options{}); err != nil {
		t.Fatal(err)
	}
	assertHead(t, gitDir, v2)
	if b, _ := os.ReadFile(filepath.Join(app, "app.py")); string(b) != "v2" {
		t.Errorf("app.py = %q, want v2", b)
	}
	if diff := cmp.Diff(before, snapshot(t, filepath.Join(app, ".git"))); diff != "" {
		t.Errorf("the old .git was touched (-before +after):\n%s", diff)
	}
	assertNotRun(t, marker)
}

// TestUntrustedGitDirRefused: a mirror or inplace git directory that is a
// symlink, belongs to another user or is writable by others is refused
// with ErrUntrusted before git runs in it, so a config planted there never
// runs.
func TestUntrustedGitDirRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("c", map[string]file{"a": {content: "1"}})
	o.push("main")
	const remote = "ssh://git@127.0.0.1:1/origin.git"
	for _, tc := range []struct {
		name string
		// spoil makes dir, an initialised bare repository, untrusted, and
		// returns the path to open.
		spoil func(t *testing.T, dir string) string
		want  string
	}{
		{"owned by another user", func(t *testing.T, dir string) string {
			filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
			return dir
		}, "owned by uid 65534"},
		{"writable by others", func(t *testing.T, dir string) string {
			os.Chmod(dir, 0o777)
			return dir
		}, "writable by users other than its owner"},
		{"writable by its group", func(t *testing.T, dir string) string {
			os.Chmod(dir, 0o770)
			return dir
		}, "writable by users other than its owner"},
		{"a symlink", func(t *testing.T, dir string) string {
			link := dir + ".link"
			if err := os.Symlink(dir, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "is a symlink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, op := range []struct {
				name string
				run  func(gitDir string) error
			}{
				{"OpenMirror", func(gitDir string) error {
					r, err := OpenMirror(ctx, gitDir, remote, Options{})
					if err == nil {
						err = r.Fetch(ctx)
					}
					return err
				}},
				{"CheckoutInPlace", func(gitDir string) error {
					return CheckoutInPlace(ctx, gitDir, filepath.Join(t.TempDir(), "app"), remote, sha, Options{})
				}},
				{"InPlaceHead", func(gitDir string) error {
					_, err := InPlaceHead(ctx, gitDir)
					return err
				}},
			} {
				dir := filepath.Join(t.TempDir(), "git")
				o.git(filepath.Dir(dir), "init", "--quiet", "--bare", dir)
				marker := filepath.Join(t.TempDir(), "ran")
				plantSSHCommand(t, dir, marker)
				err := op.run(tc.spoil(t, dir))
				assertNotRun(t, marker)
				if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s = %v, want ErrUntrusted saying %q", op.name, err, tc.want)
				}
			}
		})
	}
}

// TestExportFollowsNoSymlinkedParent: a release is written only into a
// real directory; a parent that is a symlink (releases/ pointed
// elsewhere) is refused and nothing is written where it leads.
func TestExportFollowsNoSymlinkedParent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("c", map[string]file{"a": {content: "1"}})
	o.push("main")
	r := o.mirror(ctx)
	elsewhere, app := t.TempDir(), t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(app, "releases")); err != nil {
		t.Fatal(err)
	}
	if err := r.Export(ctx, sha, filepath.Join(app, "releases", "r1")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Export through a symlinked parent = %v, want it refused", err)
	}
	if got := leftovers(t, elsewhere); len(got) > 0 {
		t.Errorf("written where the symlink leads: %v", got)
	}
}
