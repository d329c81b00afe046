package git

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/google/go-cmp/cmp"
)

// TestMirrorFollowsRemote walks a mirror through what a forge does to a
// repository between deploys.
func TestMirrorFollowsRemote(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("first", map[string]file{"a": {content: "1"}})
	o.git(o.work, "branch", "feature")
	o.git(o.work, "tag", "v1")
	o.push("main", "feature", "v1")

	r := o.mirror(ctx)
	for ref, want := range map[string]string{"main": first, "feature": first, "v1": first} {
		if got := mustResolve(t, r, ref); got != want {
			t.Errorf("after first fetch %s = %s, want %s", ref, got, want)
		}
	}

	// New pushes arrive on the next fetch, and only then.
	second := o.commit("second", map[string]file{"a": {content: "2"}})
	o.push("main")
	if got := mustResolve(t, r, "main"); got != first {
		t.Errorf("before fetch main = %s, want %s", got, first)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, r, "main"); got != second {
		t.Errorf("after fetch main = %s, want %s", got, second)
	}

	// A force-push rewrites history; the mirror follows.
	o.git(o.work, "reset", "--quiet", "--hard", first)
	rewritten := o.commit("second, rewritten", map[string]file{"a": {content: "2b"}})
	o.push("--force", "main")
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, r, "main"); got != rewritten {
		t.Errorf("after force-push main = %s, want %s", got, rewritten)
	}

	// Deleted branches and tags are pruned.
	o.push("--delete", "feature", "v1")
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"feature", "v1"} {
		if _, _, err := r.Resolve(ctx, ref); !errors.Is(err, ErrRefNotFound) {
			t.Errorf("after deletion Resolve(%s) = %v, want ErrRefNotFound", ref, err)
		}
	}
	// The commits themselves stay reachable by SHA until git collects
	// them: a rollback to a rewritten commit still works.
	if ok, err := r.HasCommit(ctx, second); err != nil || !ok {
		t.Errorf("HasCommit(rewritten-away commit) = %v, %v", ok, err)
	}
}

func TestOpenMirror(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newOrigin(t)
	shaA := a.commit("from a", nil)
	a.push("main")
	b := newOrigin(t)
	b.commit("from b", nil)
	shaB := b.commit("from b again", nil)
	b.git(b.work, "branch", "only-in-b")
	b.push("main", "only-in-b")

	dir := filepath.Join(t.TempDir(), "m.git")
	r, err := OpenMirror(ctx, dir, a.bare, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hooks")); !os.IsNotExist(err) {
		t.Errorf("mirror was created from a template (hooks dir: %v)", err)
	}

	// Reopening is cheap and keeps what was fetched.
	r, err = OpenMirror(ctx, dir, a.bare, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, r, "main"); got != shaA {
		t.Errorf("reopened main = %s, want %s", got, shaA)
	}

	// A changed remote is followed: new refs come, others are pruned.
	r, err = OpenMirror(ctx, dir, b.bare, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, r, "main"); got != shaB {
		t.Errorf("after remote change main = %s, want %s", got, shaB)
	}
	url, err := r.git().run(ctx, call{args: []string{"config", "--get", "remote.origin.url"}})
	if err != nil || url != b.bare {
		t.Errorf("remote.origin.url = %q, %v; want %q", url, err, b.bare)
	}

	// A directory holding something else is never adopted.
	busy := t.TempDir()
	if err := os.WriteFile(filepath.Join(busy, "app.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMirror(ctx, busy, a.bare, Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("OpenMirror(non-empty dir) = %v, want ErrNotRepository", err)
	}
	if _, err := OpenMirror(ctx, a.work, a.bare, Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("OpenMirror(work clone) = %v, want ErrNotRepository", err)
	}
}

func TestFetchUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "no-such-repo.git")
	r, err := OpenMirror(ctx, filepath.Join(t.TempDir(), "m.git"), missing, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Fetch(ctx)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Fetch = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "does not appear to be a git repository") {
		t.Errorf("error %q lacks git's explanation", err)
	}
	if _, err := r.RemoteHead(ctx, "main"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("RemoteHead = %v, want ErrUnreachable", err)
	}
}

// TestFetchTimeout stands in a hanging ssh server with a GIT_SSH_COMMAND
// that never answers: no network is involved.
func TestFetchTimeout(t *testing.T) {
	ctx := context.Background()
	script := filepath.Join(t.TempDir(), "hang")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_SSH_COMMAND", script)
	r, err := OpenMirror(ctx, filepath.Join(t.TempDir(), "m.git"), "ssh://git@example.invalid/repo.git", Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = r.Fetch(ctx)
	if !errors.Is(err, execx.ErrTimeout) {
		t.Fatalf("Fetch = %v, want execx.ErrTimeout", err)
	}
	if !strings.HasPrefix(err.Error(), "fetch ssh://git@example.invalid/repo.git: ") {
		t.Errorf("error %q does not say what timed out", err)
	}
	if errors.Is(err, ErrUnreachable) {
		t.Errorf("a timeout is not reported as unreachable: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Fetch took %s", d)
	}
}

func TestRemoteHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("first", nil)
	o.git(o.work, "branch", "x/main")
	o.push("main", "x/main")
	r := o.mirror(ctx)

	second := o.commit("second", nil)
	o.push("main")
	// Without a fetch the mirror lags and the remote does not.
	if got := mustResolve(t, r, "main"); got != first {
		t.Errorf("mirror main = %s, want %s", got, first)
	}
	tests := []struct {
		branch  string
		want    string
		wantErr error
	}{
		{branch: "main", want: second},
		{branch: "refs/heads/main", want: second},
		{branch: "x/main", want: first},
		{branch: "nope", wantErr: ErrRefNotFound},
		{branch: "-main", wantErr: ErrInvalid},
		{branch: "main..x", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		got, err := r.RemoteHead(ctx, tt.branch)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("RemoteHead(%q) = %q, %v; want %v", tt.branch, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RemoteHead(%q) = %q, %v; want %q", tt.branch, got, err, tt.want)
		}
	}
}

// TestLsRemote asks a remote with no mirror of it: the branch's commit,
// ErrRefNotFound for a branch it lacks, ErrUnreachable for a remote that
// is gone, and nothing written anywhere.
func TestLsRemote(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("first", nil)
	o.push("main")
	if got, err := LsRemote(ctx, o.bare, "main", Options{Timeout: 10 * time.Second}); err != nil || got != first {
		t.Errorf("LsRemote(main) = %q, %v; want %q", got, err, first)
	}
	if _, err := LsRemote(ctx, o.bare, "nope", Options{}); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("LsRemote(nope): %v, want ErrRefNotFound", err)
	}
	gone := filepath.Join(t.TempDir(), "gone.git")
	if _, err := LsRemote(ctx, gone, "main", Options{}); !errors.Is(err, ErrUnreachable) {
		t.Errorf("LsRemote(%s): %v, want ErrUnreachable", gone, err)
	}
	if _, err := LsRemote(ctx, "ext::sh -c id", "main", Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("LsRemote(ext::): %v, want ErrInvalid", err)
	}
}

// TestConcurrentFetch: several goroutines (standing in for fraisier
// processes; the flock does not tell them apart) create and fetch the same
// mirror at once.
func TestConcurrentFetch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	for i := range 5 {
		o.commit("commit", map[string]file{"f": {content: strings.Repeat("x", i)}})
	}
	o.git(o.work, "tag", "v1")
	o.push("main", "v1")
	want := o.git(o.work, "rev-parse", "HEAD")

	dir := filepath.Join(t.TempDir(), "m.git")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			r, err := OpenMirror(ctx, dir, o.bare, Options{})
			if err != nil {
				errs <- err
				return
			}
			for range 3 {
				if err := r.Fetch(ctx); err != nil {
					errs <- err
					return
				}
				if sha, _, err := r.Resolve(ctx, "v1"); err != nil || sha != want {
					errs <- errors.Join(err, errors.New("v1 resolved to "+sha))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if out, err := o.gitErr(dir, "", "fsck", "--no-progress"); err != nil {
		t.Errorf("fsck after concurrent fetches: %v\n%s", err, out)
	}
}

// TestHooksNeverRun plants hooks that would leave a mark in the mirror and
// in an in-place clone, runs every operation, and checks that the mark is
// absent; then shows that plain git would have run them.
func TestHooksNeverRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("first", map[string]file{"a": {content: "1"}})
	o.push("main")
	r := o.mirror(ctx)
	inplace, inplaceGit := filepath.Join(t.TempDir(), "app"), t.TempDir()
	if err := CheckoutInPlace(ctx, inplaceGit, inplace, o.bare, first, Options{}); err != nil {
		t.Fatal(err)
	}

	marks := t.TempDir()
	hook := "#!/bin/sh\ntouch " + marks + "/$(basename $0)\n"
	for _, gitDir := range []string{r.Dir(), inplaceGit} {
		hooks := filepath.Join(gitDir, "hooks")
		if err := os.MkdirAll(hooks, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"reference-transaction", "post-checkout", "post-merge", "post-index-change", "pre-auto-gc"} {
			if err := os.WriteFile(filepath.Join(hooks, name), []byte(hook), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}

	second := o.commit("second", map[string]file{"a": {content: "2"}})
	o.push("main")
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Export(ctx, second, filepath.Join(t.TempDir(), "release")); err != nil {
		t.Fatal(err)
	}
	if err := CheckoutInPlace(ctx, inplaceGit, inplace, o.bare, second, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := leftovers(t, marks); len(got) > 0 {
		t.Fatalf("hooks ran: %v", got)
	}

	// The hooks are real: git without fraisier's settings runs them.
	if out, err := o.gitErr(r.Dir(), "", "--git-dir="+r.Dir(), "update-ref", "refs/heads/probe", second); err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	if got := leftovers(t, marks); !slices.Contains(got, "reference-transaction") {
		t.Errorf("probe: the planted hook did not run (%v), so the test proves nothing", got)
	}
}

// TestExtRemoteRefused: a remote that would make git run a command is
// refused before any process starts or any directory is created.
func TestExtRemoteRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mark := filepath.Join(t.TempDir(), "pwned")
	remote := "ext::sh -c touch% " + mark
	dir := filepath.Join(t.TempDir(), "m.git")
	if _, err := OpenMirror(ctx, dir, remote, Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenMirror(ext::) = %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("OpenMirror(ext::) created %s", dir)
	}
	app := filepath.Join(t.TempDir(), "app")
	if err := CheckoutInPlace(ctx, t.TempDir(), app, remote, strings.Repeat("a", 40), Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CheckoutInPlace(ext::) = %v, want ErrInvalid", err)
	}
	if _, err := os.Stat(mark); !os.IsNotExist(err) {
		t.Errorf("the ext:: command ran")
	}
}

// TestFetchProgress: the live sink sees git's progress, and file:// URLs
// work like plain paths.
func TestFetchProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("c", map[string]file{"a": {content: "1"}})
	o.push("main")
	var live strings.Builder
	r, err := OpenMirror(ctx, filepath.Join(t.TempDir(), "m.git"), "file://"+o.bare, Options{Output: &live})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mustResolve(t, r, "main"); got != sha {
		t.Errorf("main = %s, want %s", got, sha)
	}
	if !strings.Contains(live.String(), "objects") {
		t.Errorf("live output %q shows no progress", live.String())
	}
}

// TestInheritedGitEnvironment: fraisier started from a git hook inherits
// GIT_DIR and friends; they must not redirect what it does.
func TestInheritedGitEnvironment(t *testing.T) {
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("c", map[string]file{"a": {content: "1"}})
	o.push("main")
	decoy := t.TempDir()
	o.git(decoy, "init", "--quiet", "--bare", "decoy.git")
	decoyDir := filepath.Join(decoy, "decoy.git")
	before := snapshot(t, decoy)
	t.Setenv("GIT_DIR", decoyDir)
	t.Setenv("GIT_OBJECT_DIRECTORY", filepath.Join(decoyDir, "objects"))
	t.Setenv("GIT_INDEX_FILE", filepath.Join(decoy, "index"))
	t.Setenv("GIT_CONFIG_PARAMETERS", "'core.hookspath'='"+decoy+"'")

	r := o.mirror(ctx)
	if got := mustResolve(t, r, "main"); got != sha {
		t.Errorf("main = %s, want %s", got, sha)
	}
	if err := r.Export(ctx, sha, filepath.Join(t.TempDir(), "rel")); err != nil {
		t.Fatal(err)
	}
	app, appGit := filepath.Join(t.TempDir(), "app"), t.TempDir()
	if err := CheckoutInPlace(ctx, appGit, app, o.bare, sha, Options{}); err != nil {
		t.Fatal(err)
	}
	assertHead(t, appGit, sha)
	if diff := cmp.Diff(before, snapshot(t, decoy)); diff != "" {
		t.Errorf("the inherited repository was touched (-before +after):\n%s", diff)
	}
}

// TestOpenMirrorAfterInterruptedInit: a mirror whose making a crash cut
// short (killed between git init and its configuration) is made again at
// the next open, instead of being refused as not fraisier's at every
// later deployment; a directory fraisier did not start making still is.
func TestOpenMirrorAfterInterruptedInit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	sha := o.commit("v1", map[string]file{"a": {content: "1"}})
	o.push("main")
	for _, tc := range []struct {
		name string
		left map[string]string // files the crash left, by path
		want error
	}{
		{"killed in git init", map[string]string{initMarker: "", "objects/pack/x": "", "config": "[core]\n"}, nil},
		{"killed after git init", map[string]string{initMarker: "", "HEAD": "ref: refs/heads/main\n", "config": "[core]\n\tbare = true\n", "objects/info/x": ""}, nil},
		{"not fraisier's", map[string]string{"objects/pack/x": "", "notes.txt": "mine"}, ErrNotRepository},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mirror")
			for name, content := range tc.left {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r, err := OpenMirror(ctx, dir, o.bare, Options{})
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("OpenMirror = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenMirror: %v", err)
			}
			if err := r.Fetch(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _, err := r.Resolve(ctx, "main"); err != nil || got != sha {
				t.Fatalf("Resolve(main) = %s, %v; want %s", got, err, sha)
			}
			if _, err := os.Lstat(filepath.Join(dir, initMarker)); !os.IsNotExist(err) {
				t.Errorf("the marker is still there (%v)", err)
			}
		})
	}
}
