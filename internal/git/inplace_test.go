package git

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckoutInPlace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	v1 := o.commit("v1", map[string]file{
		"app.py":     {content: "v1"},
		"bin/run":    {content: "#!/bin/sh\n", exec: true},
		"link":       {content: "app.py", symlink: true},
		"removed.py": {content: "old"},
		"crlf.txt":   {content: "a\nb\n"},
		".gitignore": {content: "cache/\n"},
		// Conversions would make the clone differ from an export.
		".gitattributes": {content: "*.txt eol=crlf\n"},
	})
	o.push("main")
	parent := t.TempDir()
	app := filepath.Join(parent, "app")
	gitDir := t.TempDir()

	// First time: checked out.
	if err := CheckoutInPlace(ctx, gitDir, app, o.bare, v1, Options{}); err != nil {
		t.Fatal(err)
	}
	assertHead(t, gitDir, v1)
	got := snapshot(t, app)
	for path, want := range map[string]entry{
		"app.py":   {Kind: "file", Content: "v1"},
		"bin/run":  {Kind: "exec", Content: "#!/bin/sh\n"},
		"link":     {Kind: "symlink", Content: "app.py"},
		"crlf.txt": {Kind: "file", Content: "a\nb\n"},
	} {
		if diff := cmp.Diff(want, got[path]); diff != "" {
			t.Errorf("%s after clone (-want +got):\n%s", path, diff)
		}
	}
	if fi, err := os.Stat(app); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("app mode = %v, %v; want 0755", fi.Mode(), err)
	}
	if got := leftovers(t, parent, "app"); len(got) > 0 {
		t.Errorf("left behind: %v", got)
	}
	if _, err := os.Lstat(filepath.Join(app, ".git")); !os.IsNotExist(err) {
		t.Errorf("the work tree holds a .git (%v): its git directory belongs elsewhere", err)
	}

	// Runtime data, local edits, then an upgrade.
	for name, content := range map[string]string{".env": "SECRET=1", "cache/x": "c", "app.py": "edited on the server"} {
		p := filepath.Join(app, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2 := o.commit("v2", map[string]file{"app.py": {content: "v2"}, "removed.py": {delete: true}, "new.py": {content: "new"}})
	o.push("main")
	if err := CheckoutInPlace(ctx, gitDir, app, o.bare, v2, Options{}); err != nil {
		t.Fatal(err)
	}
	assertHead(t, gitDir, v2)
	got = snapshot(t, app)
	for path, want := range map[string]entry{
		"app.py":     {Kind: "file", Content: "v2"}, // the local edit is gone
		"new.py":     {Kind: "file", Content: "new"},
		"removed.py": {},                                  // deleted upstream
		".env":       {Kind: "file", Content: "SECRET=1"}, // untracked: kept
		"cache/x":    {Kind: "file", Content: "c"},        // ignored: kept
	} {
		if diff := cmp.Diff(want, got[path]); diff != "" {
			t.Errorf("%s after upgrade (-want +got):\n%s", path, diff)
		}
	}

	// A rollback to a commit the clone has needs no remote at all.
	gone := filepath.Join(t.TempDir(), "gone.git")
	if err := CheckoutInPlace(ctx, gitDir, app, gone, v1, Options{}); err != nil {
		t.Fatalf("rollback without the remote: %v", err)
	}
	assertHead(t, gitDir, v1)
	// ...but a commit it lacks does.
	if err := CheckoutInPlace(ctx, gitDir, app, gone, strings.Repeat("1", 40), Options{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("unknown commit from a missing remote = %v, want ErrUnreachable", err)
	}
	// A commit the remote does not have either.
	if err := CheckoutInPlace(ctx, gitDir, app, o.bare, strings.Repeat("1", 40), Options{}); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("unknown commit = %v, want ErrRefNotFound", err)
	}
	assertHead(t, gitDir, v1)
}

func TestCheckoutInPlaceRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("c", map[string]file{"a": {content: "1"}})
	o.push("main")

	// A directory with content but no clone is not taken over.
	busy := t.TempDir()
	if err := os.WriteFile(filepath.Join(busy, "data"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckoutInPlace(ctx, t.TempDir(), busy, o.bare, sha, Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("non-empty dir = %v, want ErrNotRepository", err)
	}
	// An empty directory is fine: provisioning may create it.
	empty, emptyGit := t.TempDir(), t.TempDir()
	if err := CheckoutInPlace(ctx, emptyGit, empty, o.bare, sha, Options{}); err != nil {
		t.Errorf("empty dir: %v", err)
	}
	assertHead(t, emptyGit, sha)

	// A failed first clone leaves nothing.
	parent := t.TempDir()
	if err := CheckoutInPlace(ctx, t.TempDir(), filepath.Join(parent, "app"), o.bare, strings.Repeat("2", 40), Options{}); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("unknown commit = %v, want ErrRefNotFound", err)
	}
	if got := leftovers(t, parent); len(got) > 0 {
		t.Errorf("left behind: %v", got)
	}

	if _, err := InPlaceHead(ctx, t.TempDir()); !errors.Is(err, ErrNotRepository) {
		t.Errorf("InPlaceHead(no repository) = %v, want ErrNotRepository", err)
	}
	unborn := t.TempDir()
	o.git(unborn, "init", "--quiet", "--bare")
	if _, err := InPlaceHead(ctx, unborn); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("InPlaceHead(no commit) = %v, want ErrRefNotFound", err)
	}
	// The deploy engine fetches into the same git directory as a mirror
	// before it checks out: a branch fetched is not a commit checked out.
	fetched := t.TempDir()
	r, err := OpenMirror(ctx, fetched, o.bare, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := InPlaceHead(ctx, fetched); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("InPlaceHead(fetched, never checked out) = %v, want ErrRefNotFound", err)
	}
	// ...and a mirror checks out like any inplace git directory.
	app := filepath.Join(t.TempDir(), "app")
	if err := CheckoutInPlace(ctx, fetched, app, o.bare, sha, Options{}); err != nil {
		t.Fatal(err)
	}
	assertHead(t, fetched, sha)
}

func assertHead(t *testing.T, gitDir, want string) {
	t.Helper()
	got, err := InPlaceHead(context.Background(), gitDir)
	if err != nil || got != want {
		t.Errorf("InPlaceHead = %s, %v; want %s", got, err, want)
	}
}
