package git

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestSnapshot reads a remote's default branch one commit deep: the tree
// of its tip, and no other branch's history.
func TestSnapshot(t *testing.T) {
	o := newOrigin(t)
	o.commit("first", map[string]file{"old.txt": {content: "old"}})
	tip := o.commit("second", map[string]file{"go.mod": {content: "module x\n"}, "run.sh": {content: "#!/bin/sh\n", exec: true}})
	o.push("HEAD:refs/heads/main")
	dir := t.TempDir()
	branch, sha, err := Snapshot(context.Background(), "file://"+o.bare, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if branch != "main" || sha != tip {
		t.Fatalf("Snapshot = %s %s, want main %s", branch, sha, tip)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "tree", "go.mod")); err != nil || string(b) != "module x\n" {
		t.Fatalf("tree/go.mod = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tree", "run.sh")); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("run.sh lost its executable bit: %v %v", fi, err)
	}
	if n := o.git(dir, "--git-dir", filepath.Join(dir, "git"), "rev-list", "--count", "--all"); n != "1" {
		t.Fatalf("the snapshot holds %s commits, want 1 (depth 1)", n)
	}
}

func TestSnapshotRefusesHostileRemotes(t *testing.T) {
	for _, remote := range []string{"ext::sh -c touch% /tmp/pwned", "-upload-pack=touch", "http://example.com/x.git", "git://example.com/x", "relative/path"} {
		if _, _, err := Snapshot(context.Background(), remote, t.TempDir(), Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Snapshot(%q) = %v, want ErrInvalid", remote, err)
		}
	}
}

func TestSnapshotEmptyRemote(t *testing.T) {
	o := newOrigin(t)
	_, _, err := Snapshot(context.Background(), o.bare, t.TempDir(), Options{})
	if !errors.Is(err, ErrRefNotFound) {
		t.Fatalf("Snapshot of an empty repository = %v, want ErrRefNotFound", err)
	}
}

func TestReadCheckout(t *testing.T) {
	o := newOrigin(t)
	o.commit("first", nil)
	info, err := ReadCheckout(context.Background(), o.work)
	if err != nil {
		t.Fatal(err)
	}
	if info.Remote != o.bare || info.Branch != "main" {
		t.Fatalf("ReadCheckout = %+v, want remote %s branch main", info, o.bare)
	}
	o.git(o.work, "remote", "remove", "origin")
	if info, err := ReadCheckout(context.Background(), o.work); err != nil || info.Remote != "" {
		t.Fatalf("without origin: %+v, %v", info, err)
	}
	if _, err := ReadCheckout(context.Background(), t.TempDir()); !errors.Is(err, ErrNotRepository) {
		t.Fatalf("a plain directory: %v, want ErrNotRepository", err)
	}
}
