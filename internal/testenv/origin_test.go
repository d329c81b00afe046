package testenv

import (
	"path/filepath"
	"strings"
	"testing"
)

// Commits from the work clone and from Import both reach the origin, and
// Import continues a branch it made before.
func TestOrigin(t *testing.T) {
	o := NewOrigin(t, t.TempDir())
	o.Write("dir/VERSION", "v1\n")
	o.WriteMode("run.sh", "#!/bin/sh\n", 0o755)
	sha := o.Commit("v1")
	if got := Git(t, o.Dir, "rev-parse", "main"); got != sha {
		t.Fatalf("origin main %s, want the commit %s", got, sha)
	}
	if got := Git(t, o.Dir, "ls-tree", "main", "run.sh"); !strings.HasPrefix(got, "100755 ") {
		t.Errorf("run.sh in the origin: %q, want mode 100755", got)
	}

	first := o.Import("feature", []ImportCommit{
		{Message: "f1", Files: map[string]string{"VERSION": "f1\n"}, Exec: map[string]string{"bin/x": "exit 0\n"}},
		{Message: "f2", Files: map[string]string{"VERSION": "f2\n"}},
	})
	next := o.Import("feature", []ImportCommit{{Message: "f3", Files: map[string]string{"VERSION": "f3\n"}}})
	if len(first) != 2 || len(next) != 1 {
		t.Fatalf("Import returned %q and %q", first, next)
	}
	if got := Git(t, o.Dir, "rev-list", "--reverse", "feature"); got != strings.Join(append(first, next...), "\n") {
		t.Fatalf("origin feature history:\n%s\nwant %q then %q", got, first, next)
	}
	if got := Git(t, o.Dir, "show", "feature:VERSION"); got != "f3" {
		t.Errorf("feature's VERSION %q, want f3", got)
	}
	if got := Git(t, o.Dir, "ls-tree", "feature", "bin/x"); !strings.HasPrefix(got, "100755 ") {
		t.Errorf("bin/x kept from the first import: %q, want mode 100755", got)
	}
	if got := Git(t, o.Dir, "log", "-1", "--format=%ct", "feature"); got != "1700000003" {
		t.Errorf("the third commit is dated %s, want 1700000003", got)
	}
	if filepath.Dir(o.Dir) != filepath.Dir(o.Work) {
		t.Errorf("origin %s and work %s not side by side", o.Dir, o.Work)
	}
}
