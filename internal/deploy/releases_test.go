package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReleaseName(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 15, 0, 0, time.FixedZone("CET", 3600))
	got := releaseName(at, "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d")
	if want := "20261125T091500.000Z-1a2b3c4d"; got != want {
		t.Errorf("releaseName = %s, want %s", got, want)
	}
}

func makeRelease(t *testing.T, app, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(app, releasesDir, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestSwitchCurrent(t *testing.T) {
	app := t.TempDir()
	makeRelease(t, app, "r1")
	makeRelease(t, app, "r2")
	if got, err := currentRelease(app); err != nil || got != "" {
		t.Fatalf("currentRelease before any switch = %q, %v", got, err)
	}
	for _, r := range []string{"r1", "r2", "r1"} {
		if err := switchCurrent(app, r); err != nil {
			t.Fatal(err)
		}
		if got, _ := currentRelease(app); got != r {
			t.Errorf("current = %s, want %s", got, r)
		}
		target, _ := os.Readlink(filepath.Join(app, currentLink))
		if filepath.IsAbs(target) {
			t.Errorf("current link %s is absolute", target)
		}
	}
	if err := switchCurrent(app, "missing"); err == nil {
		t.Error("switch to a missing release succeeded")
	}
	if got, _ := currentRelease(app); got != "r1" {
		t.Errorf("a failed switch moved current to %s", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(app, ".current.*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary links left behind: %v", leftovers)
	}
	if err := removeCurrent(app); err != nil {
		t.Fatal(err)
	}
	if got, _ := currentRelease(app); got != "" {
		t.Errorf("current after remove = %s", got)
	}
}

func TestShared(t *testing.T) {
	app := t.TempDir()
	makeRelease(t, app, "r1")
	rel := filepath.Join(app, releasesDir, "r1")
	if err := checkShared(app, []string{".env", "media"}); err == nil || !strings.Contains(err.Error(), ".env, media") {
		t.Fatalf("checkShared with nothing shared = %v", err)
	}
	os.MkdirAll(filepath.Join(app, sharedDir, "media"), 0o755)
	os.WriteFile(filepath.Join(app, sharedDir, ".env"), []byte("X=1\n"), 0o600)
	if err := checkShared(app, []string{".env", "media"}); err != nil {
		t.Fatal(err)
	}
	// The commit's own .env must not shadow the shared one.
	os.WriteFile(filepath.Join(rel, ".env"), []byte("X=committed\n"), 0o644)
	if err := linkShared(app, rel, []string{".env", "media"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(rel, ".env"))
	if err != nil || string(b) != "X=1\n" {
		t.Errorf("release .env = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(rel, "media")); err != nil || !fi.IsDir() {
		t.Errorf("media not linked: %v", err)
	}
	if err := linkShared(app, rel, []string{"../escape"}); err == nil {
		t.Error("a shared entry escaping the release was linked")
	}
}

func TestPruneReleases(t *testing.T) {
	tests := []struct {
		name    string
		have    []string
		keep    int
		protect []string
		left    []string
	}{
		{"under the limit", []string{"a", "b"}, 3, nil, []string{"a", "b"}},
		{"oldest go first", []string{"a", "b", "c", "d"}, 2, []string{"d"}, []string{"c", "d"}},
		{"protected old release stays", []string{"a", "b", "c", "d"}, 2, []string{"d", "a"}, []string{"a", "d"}},
		{"keep one", []string{"a", "b", "c"}, 1, []string{"c"}, []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := t.TempDir()
			for _, r := range tt.have {
				makeRelease(t, app, r)
			}
			if _, err := pruneReleases(app, tt.keep, tt.protect...); err != nil {
				t.Fatal(err)
			}
			got, _ := listReleases(app)
			if diff := cmp.Diff(tt.left, got); diff != "" {
				t.Errorf("releases left (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSharedRefusesSymlinkEscape: a release whose commit holds a symlink
// out of it cannot make linkShared touch what is outside.
func TestSharedRefusesSymlinkEscape(t *testing.T) {
	app, outside := t.TempDir(), t.TempDir()
	makeRelease(t, app, "r1")
	rel := filepath.Join(app, releasesDir, "r1")
	os.MkdirAll(filepath.Join(app, sharedDir, "config"), 0o755)
	os.WriteFile(filepath.Join(app, sharedDir, "config", "app.ini"), []byte("x"), 0o644)
	victim := filepath.Join(outside, "app.ini")
	os.WriteFile(victim, []byte("precious"), 0o644)
	if err := os.Symlink(outside, filepath.Join(rel, "config")); err != nil {
		t.Fatal(err)
	}
	err := linkShared(app, rel, []string{"config/app.ini"})
	if err == nil || !strings.Contains(err.Error(), "lead outside") {
		t.Fatalf("linkShared through an escaping symlink: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("file outside the release changed: %q", b)
	}
}
