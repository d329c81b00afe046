package deploy

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestInplaceDistrustsAForeignHead: the first inplace deployment after the
// git directory left app_path returns, if it fails, to the commit the old
// checkout's .git/HEAD names (TestInplaceTakesOverAnOldCheckout). That
// file is believed only when fraisier's user wrote it and no one else can
// have: a former deploy user who owned app_path could have pointed it at
// an old commit of its choosing for the failure to return to.
func TestInplaceDistrustsAForeignHead(t *testing.T) {
	for _, tc := range []struct {
		name string
		// tamper leaves .git/HEAD naming planted.
		tamper func(t *testing.T, gitDir, planted string)
	}{
		{"HEAD written by another user", func(t *testing.T, gitDir, planted string) {
			writeOwned(t, filepath.Join(gitDir, "HEAD"), planted+"\n", nobody, 0o644)
		}},
		{".git owned by another user", func(t *testing.T, gitDir, planted string) {
			writeOwned(t, filepath.Join(gitDir, "HEAD"), planted+"\n", 0, 0o644)
			if err := os.Lchown(gitDir, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}},
		{"HEAD writable by its group", func(t *testing.T, gitDir, planted string) {
			writeOwned(t, filepath.Join(gitDir, "HEAD"), planted+"\n", 0, 0o664)
		}},
		{".git writable by others", func(t *testing.T, gitDir, planted string) {
			writeOwned(t, filepath.Join(gitDir, "HEAD"), planted+"\n", 0, 0o644)
			if err := os.Chmod(gitDir, 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{"HEAD a symlink to another user's file", func(t *testing.T, gitDir, planted string) {
			elsewhere := filepath.Join(filepath.Dir(filepath.Dir(gitDir)), "HEAD-elsewhere")
			writeOwned(t, elsewhere, planted+"\n", nobody, 0o644)
			head := filepath.Join(gitDir, "HEAD")
			if err := os.Remove(head); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, head); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLayoutFixture(t, "inplace", "")
			planted := f.push("healthy", nil)
			ran := f.push("healthy", nil)
			if err := os.MkdirAll(filepath.Dir(f.app), 0o755); err != nil {
				t.Fatal(err)
			}
			testenv.Git(t, filepath.Dir(f.app), "clone", "-q", f.repo.Dir, f.app)
			testenv.Git(t, f.app, "checkout", "-q", "--detach", ran)
			f.mgr.MustSystemctl(t, "restart", f.unit)
			tc.tamper(t, filepath.Join(f.app, ".git"), planted)

			f.push("unhealthy", nil)
			res := f.deploy(Request{})
			if res.OldSHA == planted {
				t.Fatalf("deployed from %s, the commit another user wrote in .git/HEAD (%s, %v)", short(planted), res.Status, res.Err)
			}
			if res.OldSHA != "" || res.Status != store.StatusFailed {
				t.Fatalf("deployed from %q: %s (%v); want no commit to return to, and failed", res.OldSHA, res.Status, res.Err)
			}
			if head, _ := git.InPlaceHead(context.Background(), filepath.Join(f.cfg.State.Dir, "mirrors", "hello", "production")); head == planted {
				t.Fatalf("the checkout is at %s, the commit another user named", short(planted))
			}
		})
	}
}

// writeOwned writes a file with the given owner and mode.
func writeOwned(t *testing.T, path, content string, uid int, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}
