package git

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("first", map[string]file{"a": {content: "1"}})
	o.git(o.work, "tag", "light")
	o.git(o.work, "tag", "--annotate", "-m", "release 1", "v1.0")
	second := o.commit("second", map[string]file{"a": {content: "2"}})
	// A branch and a tag with one name: refused unless they agree.
	o.git(o.work, "tag", "both", first)
	o.git(o.work, "branch", "both", second)
	o.git(o.work, "tag", "agree", second)
	o.git(o.work, "branch", "agree", second)
	o.git(o.work, "branch", "release/2024", first)
	// A tag of a tree leads to no commit.
	tree := o.git(o.work, "rev-parse", "HEAD^{tree}")
	o.git(o.work, "tag", "treetag", tree)
	amb1, amb2, prefixLen := ambiguousCommits(t, o, tree)
	o.git(o.work, "branch", "amb1", amb1)
	o.git(o.work, "branch", "amb2", amb2)
	o.push("--tags", "main", "refs/heads/both", "refs/heads/agree", "release/2024", "amb1", "amb2")
	r := o.mirror(ctx)
	annotated := o.git(o.work, "rev-parse", "v1.0")
	if annotated == first {
		t.Fatal("v1.0 is not an annotated tag")
	}

	tests := []struct {
		ref      string
		wantSHA  string
		wantKind RefKind
		wantErr  error
	}{
		{ref: "main", wantSHA: second, wantKind: RefBranch},
		{ref: "release/2024", wantSHA: first, wantKind: RefBranch},
		{ref: "refs/heads/main", wantSHA: second, wantKind: RefBranch},
		{ref: "light", wantSHA: first, wantKind: RefTag},
		{ref: "v1.0", wantSHA: first, wantKind: RefTag},
		{ref: "refs/tags/v1.0", wantSHA: first, wantKind: RefTag},
		{ref: "both", wantErr: ErrRefNotFound},
		{ref: "refs/heads/both", wantSHA: second, wantKind: RefBranch},
		{ref: "refs/tags/both", wantSHA: first, wantKind: RefTag},
		{ref: "agree", wantSHA: second, wantKind: RefBranch},
		{ref: first, wantSHA: first, wantKind: RefCommit},
		{ref: first[:7], wantSHA: first, wantKind: RefCommit},
		{ref: strings.ToUpper(first[:12]), wantSHA: first, wantKind: RefCommit},
		{ref: amb1[:prefixLen+1], wantSHA: amb1, wantKind: RefCommit},
		{ref: amb1[:prefixLen], wantErr: ErrRefNotFound},
		{ref: first[:6], wantErr: ErrRefNotFound},
		// A full SHA is <sha>^{commit}: an annotated tag's own SHA, which
		// forges send as a tag push's after, peels to its commit. A prefix
		// must name the commit itself.
		{ref: annotated, wantSHA: first, wantKind: RefCommit},
		{ref: annotated[:10], wantErr: ErrRefNotFound},
		{ref: tree, wantErr: ErrRefNotFound},
		{ref: "treetag", wantErr: ErrRefNotFound},
		{ref: "nope", wantErr: ErrRefNotFound},
		{ref: strings.Repeat("0", 40), wantErr: ErrRefNotFound},
		{ref: "HEAD", wantErr: ErrRefNotFound},
		{ref: "main..both", wantErr: ErrInvalid},
		{ref: "-main", wantErr: ErrInvalid},
		{ref: "--output=/tmp/x", wantErr: ErrInvalid},
		{ref: "main@{1}", wantErr: ErrInvalid},
		{ref: "main~1", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			sha, kind, err := r.Resolve(ctx, tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Resolve = %s, %s, %v; want %v", sha, kind, err, tt.wantErr)
				}
				return
			}
			if err != nil || sha != tt.wantSHA || kind != tt.wantKind {
				t.Fatalf("Resolve = %s, %s, %v; want %s, %s", sha, kind, err, tt.wantSHA, tt.wantKind)
			}
		})
	}
	// The ambiguous prefix says so, rather than "no such commit".
	if _, _, err := r.Resolve(ctx, amb1[:prefixLen]); err == nil || !strings.Contains(err.Error(), "several objects") {
		t.Errorf("Resolve(ambiguous prefix) = %v, want a mention of several objects", err)
	}
}

// TestValidationBeforeGit: bad input is refused before any lock or
// process; a repository that does not exist would fail otherwise.
func TestValidationBeforeGit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := &Repo{dir: filepath.Join(t.TempDir(), "missing"), remote: "/nowhere"}
	sha := strings.Repeat("a", 40)
	calls := map[string]func() error{
		"Resolve ..":      func() error { _, _, err := r.Resolve(ctx, "a..b"); return err },
		"Resolve -":       func() error { _, _, err := r.Resolve(ctx, "-a"); return err },
		"RemoteHead":      func() error { _, err := r.RemoteHead(ctx, "--upload-pack=x"); return err },
		"HasCommit":       func() error { _, err := r.HasCommit(ctx, "main"); return err },
		"Log to":          func() error { _, err := r.Log(ctx, "", "main", 0); return err },
		"Log from":        func() error { _, err := r.Log(ctx, "-p", sha, 0); return err },
		"ChangedFiles":    func() error { _, err := r.ChangedFiles(ctx, sha, strings.ToUpper(sha)); return err },
		"Export":          func() error { return r.Export(ctx, sha[:7], t.TempDir()+"/x") },
		"CheckoutInPlace": func() error { return CheckoutInPlace(ctx, t.TempDir(), t.TempDir(), "/r", "HEAD", Options{}) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", name, err)
		}
	}
}

// ambiguousCommits writes two commits on tree whose SHAs share their first
// prefixLen (>= 7) hex digits, found by hashing candidate commit objects
// here rather than by committing thousands of times.
func ambiguousCommits(t *testing.T, o *origin, tree string) (string, string, int) {
	t.Helper()
	body := func(n int) string {
		return fmt.Sprintf("tree %s\nauthor A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\nambiguous %d\n", tree, n)
	}
	seen := map[string]int{}
	for n := 0; ; n++ {
		b := body(n)
		sum := sha1.Sum([]byte(fmt.Sprintf("commit %d\x00%s", len(b), b)))
		p := hex.EncodeToString(sum[:])[:minAbbrev]
		if m, ok := seen[p]; ok {
			a := o.writeCommit(body(m))
			c := o.writeCommit(b)
			l := minAbbrev
			for a[l] == c[l] {
				l++
			}
			return a, c, l
		}
		seen[p] = n
	}
}

func (o *origin) writeCommit(body string) string {
	o.t.Helper()
	out, err := o.gitErr(o.work, body, "hash-object", "-t", "commit", "-w", "--stdin")
	if err != nil {
		o.t.Fatalf("hash-object: %v\n%s", err, out)
	}
	return out
}

func TestLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	a := o.commit("first", nil)
	b := o.commit("second: with\ttab, ünïcode and \"quotes\"", nil)
	c := o.commit("third", nil)
	o.push("main")
	r := o.mirror(ctx)
	date := func(tick int) time.Time { return time.Unix(1700000000+int64(tick)*60, 0).UTC() }
	commit := func(sha, subject string, tick int) Commit {
		return Commit{SHA: sha, Subject: subject, Author: "Ada Lovelace", Date: date(tick)}
	}
	all := []Commit{commit(c, "third", 3), commit(b, "second: with\ttab, ünïcode and \"quotes\"", 2), commit(a, "first", 1)}

	tests := []struct {
		name     string
		from, to string
		max      int
		want     []Commit
	}{
		{name: "range", from: a, to: c, want: all[:2]},
		{name: "range capped", from: a, to: c, max: 1, want: all[:1]},
		{name: "no from", to: c, want: all},
		{name: "no from capped", to: c, max: 2, want: all[:2]},
		{name: "empty range", from: c, to: c, want: nil},
		{name: "backwards", from: c, to: a, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Log(ctx, tt.from, tt.to, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(x, y time.Time) bool { return x.Equal(y) })); diff != "" {
				t.Errorf("Log (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := r.Log(ctx, a, strings.Repeat("0", 40), 0); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Log(unknown) = %v, want ErrRefNotFound", err)
	}
}

func TestChangedFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	a := o.commit("first", map[string]file{
		"app.py":                     {content: "print(1)"},
		"deploy/app.service":         {content: "[Service]"},
		"old name.txt":               {content: "moved"},
		"gone":                       {content: "bye"},
		"same":                       {content: "same"},
		"dir with space/tab\there.x": {content: "odd"},
	})
	b := o.commit("second", map[string]file{
		"app.py":                     {content: "print(2)"},
		"deploy/app.service":         {content: "[Service]\nRestart=always"},
		"deploy/worker.service":      {content: "[Service]"},
		"old name.txt":               {delete: true},
		"new name.txt":               {content: "moved"},
		"gone":                       {delete: true},
		"dir with space/tab\there.x": {content: "odder"},
	})
	o.push("main")
	r := o.mirror(ctx)

	tests := []struct {
		name     string
		from, to string
		want     []string
	}{
		{name: "changes", from: a, to: b, want: []string{"app.py", "deploy/app.service", "deploy/worker.service", "dir with space/tab\there.x", "gone", "new name.txt", "old name.txt"}},
		{name: "none", from: b, to: b, want: nil},
		{name: "everything", to: a, want: []string{"app.py", "deploy/app.service", "dir with space/tab\there.x", "gone", "old name.txt", "same"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.ChangedFiles(ctx, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ChangedFiles (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := r.ChangedFiles(ctx, strings.Repeat("0", 40), b); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("ChangedFiles(unknown) = %v, want ErrRefNotFound", err)
	}
}

func TestHasCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	c := o.commit("c", map[string]file{"a": {content: "1"}})
	o.git(o.work, "tag", "-a", "-m", "t", "t1")
	o.push("main", "t1")
	r := o.mirror(ctx)
	tests := []struct {
		sha  string
		want bool
	}{
		{c, true},
		{o.git(o.work, "rev-parse", "t1"), false},          // a tag object
		{o.git(o.work, "rev-parse", "HEAD^{tree}"), false}, // a tree
		{strings.Repeat("0", 40), false},
	}
	for _, tt := range tests {
		got, err := r.HasCommit(ctx, tt.sha)
		if err != nil || got != tt.want {
			t.Errorf("HasCommit(%s) = %v, %v; want %v", tt.sha, got, err, tt.want)
		}
	}
}

// TestResolveRefsCannotImpersonate: anyone who can push a branch or a tag
// must not decide what another name means. A branch named like a commit's
// full SHA once took over a queued deployment of that commit.
func TestResolveRefsCannotImpersonate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	pushed := o.commit("pushed", map[string]file{"a": {content: "pushed"}})
	planted := o.commit("planted", map[string]file{"a": {content: "planted"}})
	o.git(o.work, "branch", "main-at-pushed", pushed)
	// Refs named like the pushed commit, like a prefix of it, and like a
	// full ref whose own branch is missing, all leading to the planted one.
	long := pushed + strings.Repeat("0", 24) // SHA-256's length, in a SHA-1 repository
	o.push("main-at-pushed",
		planted+":refs/heads/"+long,
		planted+":refs/heads/"+pushed,
		planted+":refs/tags/"+pushed,
		planted+":refs/heads/"+pushed[:9],
		planted+":refs/heads/refs/heads/gone",
		planted+":refs/heads/refs/tags/gone")
	r := o.mirror(ctx)

	if sha, kind, err := r.Resolve(ctx, pushed); err != nil || sha != pushed || kind != RefCommit {
		t.Errorf("Resolve(full SHA) = %s, %s, %v; want the commit %s itself", sha, kind, err, pushed)
	}
	if sha, kind, err := r.Resolve(ctx, long); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Resolve(64 hex digits, a branch's name) = %s, %s, %v; want ErrRefNotFound", sha, kind, err)
	}
	if sha, _, err := r.Resolve(ctx, pushed[:9]); !errors.Is(err, ErrRefNotFound) || !strings.Contains(fmt.Sprint(err), "names both") {
		t.Errorf("Resolve(prefix that is also a branch) = %s, %v; want ambiguous", sha, err)
	}
	// A branch of that name leading to the same commit is no ambiguity.
	if sha, kind, err := r.Resolve(ctx, "main-at-pushed"); err != nil || sha != pushed || kind != RefBranch {
		t.Errorf("Resolve(branch) = %s, %s, %v", sha, kind, err)
	}
	for _, ref := range []string{"refs/heads/gone", "refs/tags/gone", "refs/remotes/origin/main", "refs/fraisier/pull/1/head"} {
		if sha, _, err := r.Resolve(ctx, ref); !errors.Is(err, ErrRefNotFound) {
			t.Errorf("Resolve(%s) = %s, %v; want ErrRefNotFound (only that exact ref may answer)", ref, sha, err)
		}
		if sha, err := r.RefCommit(ctx, ref); !errors.Is(err, ErrRefNotFound) {
			t.Errorf("RefCommit(%s) = %s, %v; want ErrRefNotFound", ref, sha, err)
		}
	}
	if sha, err := r.RefCommit(ctx, "refs/heads/main-at-pushed"); err != nil || sha != pushed {
		t.Errorf("RefCommit(branch) = %s, %v; want %s", sha, err, pushed)
	}
	if _, err := r.RefCommit(ctx, "main-at-pushed"); !errors.Is(err, ErrInvalid) {
		t.Errorf("RefCommit(short name) = %v, want ErrInvalid", err)
	}
}

func TestRefCommitPeelsTags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("first", map[string]file{"a": {content: "1"}})
	o.git(o.work, "tag", "--annotate", "-m", "one", "v1")
	o.git(o.work, "tag", "--annotate", "-m", "of a tag", "v1-again", "v1")
	o.git(o.work, "tag", "light")
	o.push("--tags", "main")
	r := o.mirror(ctx)
	for _, ref := range []string{"refs/heads/main", "refs/tags/v1", "refs/tags/v1-again", "refs/tags/light"} {
		if sha, err := r.RefCommit(ctx, ref); err != nil || sha != first {
			t.Errorf("RefCommit(%s) = %s, %v; want %s", ref, sha, err, first)
		}
	}
}

func TestIsAncestor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("first", map[string]file{"a": {content: "1"}})
	second := o.commit("second", map[string]file{"a": {content: "2"}})
	o.git(o.work, "checkout", "--quiet", "-b", "side", first)
	side := o.commit("side", map[string]file{"b": {content: "x"}})
	o.push("main", "side")
	r := o.mirror(ctx)
	tests := []struct {
		a, b string
		want bool
	}{
		{first, second, true},
		{second, second, true},
		{second, first, false},
		{second, side, false},
		{first, side, true},
	}
	for _, tt := range tests {
		got, err := r.IsAncestor(ctx, tt.a, tt.b)
		if err != nil || got != tt.want {
			t.Errorf("IsAncestor(%.7s, %.7s) = %v, %v; want %v", tt.a, tt.b, got, err, tt.want)
		}
	}
	if _, err := r.IsAncestor(ctx, strings.Repeat("e", 40), second); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("IsAncestor(missing) = %v, want ErrRefNotFound", err)
	}
	if _, err := r.IsAncestor(ctx, "main", second); !errors.Is(err, ErrInvalid) {
		t.Errorf("IsAncestor(name) = %v, want ErrInvalid", err)
	}
}
