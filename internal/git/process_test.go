package git

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDeployProcesses pins the git processes of one deploy of an
// existing mirror: each costs milliseconds, and a deploy is compared with
// a shell script doing the same work. Not parallel: traceGit sets PATH.
func TestDeployProcesses(t *testing.T) {
	ctx := context.Background()
	o := newOrigin(t)
	o.commit("release", releaseTree)
	o.git(o.work, "tag", "v1")
	o.push("main", "v1")
	dir := filepath.Join(t.TempDir(), "mirror.git")
	if _, err := OpenMirror(ctx, dir, o.bare, Options{}); err != nil {
		t.Fatal(err)
	}

	calls := traceGit(t)

	r, err := OpenMirror(ctx, dir, o.bare, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	sha, _, err := r.Resolve(ctx, "main")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Export(ctx, sha, filepath.Join(t.TempDir(), "release")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, args := range calls() {
		got = append(got, args[0])
	}
	// git fetch also starts git maintenance run --auto itself, which the
	// trace does not see.
	// OpenMirror reads the config file fraisier wrote itself, with no git.
	want := []string{"fetch", "for-each-ref", "read-tree"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("git processes of OpenMirror+Fetch+Resolve+Export (-want +got):\n%s", diff)
	}
}

func BenchmarkResolve(b *testing.B) {
	ctx := context.Background()
	o := newOrigin(b)
	sha := o.commit("release", releaseTree)
	o.git(o.work, "tag", "v1")
	o.push("main", "v1")
	r := o.mirror(ctx)
	for _, ref := range []string{"main", "v1", sha[:10]} {
		b.Run(ref[:min(len(ref), 4)], func(b *testing.B) {
			for b.Loop() {
				if _, _, err := r.Resolve(ctx, ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenMirror(b *testing.B) {
	ctx := context.Background()
	o := newOrigin(b)
	o.commit("release", releaseTree)
	o.push("main")
	r := o.mirror(ctx)
	for b.Loop() {
		if _, err := OpenMirror(ctx, r.Dir(), o.bare, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExportKnownCommitGone: Export trusts Resolve that a SHA is a
// commit, but not that it is still in the mirror.
func TestExportKnownCommitGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	o.commit("release", releaseTree)
	o.git(o.work, "tag", "--annotate", "-m", "v1", "v1")
	o.push("main", "v1")
	r := o.mirror(ctx)
	if _, _, err := r.Resolve(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	// The tag object itself was never taken for a commit.
	if err := r.Export(ctx, o.git(o.work, "rev-parse", "v1"), filepath.Join(parent, "tag")); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Export(annotated tag SHA) = %v, want ErrRefNotFound", err)
	}
	gone := strings.Repeat("1", 40)
	r.rememberCommit(gone)
	if err := r.Export(ctx, gone, filepath.Join(parent, "gone")); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Export(known commit gone from the mirror) = %v, want ErrRefNotFound", err)
	}
	if got := leftovers(t, parent); len(got) > 0 {
		t.Errorf("left behind: %v", got)
	}
}

func TestParseMirrorConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		out      string
		wantBare bool
		wantURL  string
	}{
		{out: "core.bare\ntrue\x00remote.origin.url\n/srv/app.git\x00", wantBare: true, wantURL: "/srv/app.git"},
		{out: "core.bare\nfalse\x00remote.origin.url\n/srv/app.git\x00", wantURL: "/srv/app.git"},
		{out: "core.bare\x00", wantBare: true},
		{out: "core.bare\n\x00", wantBare: false},
		{out: "core.bare\nYes\x00", wantBare: true},
		{out: "core.bare\n1\x00", wantBare: true},
		{out: "core.bare\n0\x00", wantBare: false},
		{out: "core.bare\nmaybe\x00", wantBare: false},
		{out: "core.bare\ntrue\x00core.bare\nfalse\x00", wantBare: false},
		{out: "remote.origin.url\na\x00remote.origin.url\nb\x00core.bare\ntrue\x00", wantBare: true, wantURL: "b"},
		{out: "warning: something\nmore\ncore.bare\ntrue\x00remote.origin.url\nu\x00", wantBare: true, wantURL: "u"},
		{out: "remote.origin.url\nu\x00", wantURL: "u"},
		{out: ""},
	}
	for _, tt := range tests {
		bare, url := parseMirrorConfig(tt.out)
		if bare != tt.wantBare || url != tt.wantURL {
			t.Errorf("parseMirrorConfig(%q) = %v, %q; want %v, %q", tt.out, bare, url, tt.wantBare, tt.wantURL)
		}
	}
}

func TestParsePlainConfig(t *testing.T) {
	t.Parallel()
	const made = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n" +
		"[remote \"origin\"]\n\tfetch = +refs/heads/*:refs/heads/*\n\tfetch = +refs/tags/*:refs/tags/*\n\turl = /srv/app.git\n"
	tests := []struct {
		name      string
		text      string
		wantBare  bool
		wantURL   string
		wantPlain bool
	}{
		{name: "as git init and config write it", text: made, wantBare: true, wantURL: "/srv/app.git", wantPlain: true},
		{name: "no url yet", text: "[core]\n\tbare = true\n", wantBare: true, wantPlain: true},
		{name: "not bare", text: "[core]\n\tbare = false\n[remote \"origin\"]\n\turl = u\n", wantURL: "u", wantPlain: true},
		{name: "bare unset", text: "[core]\n\tfilemode = true\n", wantPlain: true},
		{name: "valueless boolean", text: "[core]\n\tbare\n", wantBare: true, wantPlain: true},
		{name: "case of section and key", text: "[CORE]\n\tBare = YES\n", wantBare: true, wantPlain: true},
		{name: "number", text: "[core]\n\tbare = 1\n", wantBare: true, wantPlain: true},
		{name: "last value wins", text: "[core]\n\tbare = true\n[core]\n\tbare = off\n", wantPlain: true},
		{name: "comments and blank lines", text: "# top\n\n[core]\n; note\n\tbare = true\n", wantBare: true, wantPlain: true},
		{name: "other remote's url", text: "[core]\n\tbare = true\n[remote \"other\"]\n\turl = x\n", wantBare: true, wantPlain: true},
		{name: "subsection is case-sensitive", text: "[core]\n\tbare = true\n[remote \"Origin\"]\n\turl = x\n", wantBare: true, wantPlain: true},
		{name: "url with = in it", text: "[remote \"origin\"]\n\turl = https://h/r?a=b\n", wantURL: "https://h/r?a=b", wantPlain: true},

		// What git must read: the answer could differ from a naive one.
		{name: "include", text: "[core]\n\tbare = true\n[include]\n\tpath = other\n"},
		{name: "includeIf", text: "[includeIf \"gitdir:/x/\"]\n\tpath = other\n"},
		{name: "extensions", text: "[extensions]\n\tworktreeConfig = true\n"},
		{name: "quoted value", text: "[remote \"origin\"]\n\turl = \"/srv/a;b\"\n"},
		{name: "inline comment", text: "[core]\n\tbare = false # really\n"},
		{name: "continuation", text: "[remote \"origin\"]\n\turl = /srv/\\\napp.git\n"},
		{name: "old subsection form", text: "[remote.origin]\n\turl = u\n"},
		{name: "escaped subsection", text: "[remote \"or\\\"igin\"]\n\turl = u\n"},
		{name: "key outside a section", text: "bare = true\n"},
		{name: "section on one line with a key", text: "[core] bare = true\n"},
		{name: "bad boolean", text: "[core]\n\tbare = maybe\n"},
		{name: "valueless url", text: "[remote \"origin\"]\n\turl\n"},
		{name: "unclosed header", text: "[core\n\tbare = true\n"},
	}
	for _, tt := range tests {
		bare, url, plain := parsePlainConfig(tt.text)
		if plain != tt.wantPlain || bare != tt.wantBare || url != tt.wantURL {
			t.Errorf("%s: parsePlainConfig(%q) = %v, %q, %v; want %v, %q, %v", tt.name, tt.text, bare, url, plain, tt.wantBare, tt.wantURL, tt.wantPlain)
		}
	}
}

// TestOpenMirrorConfigReadByGit: a config file that is not plain is read
// by git, includes and quoting included, and what it says decides. Not
// parallel: traceGit sets PATH.
func TestOpenMirrorConfigReadByGit(t *testing.T) {
	ctx := context.Background()
	o := newOrigin(t)
	o.commit("c", nil)
	o.push("main")
	dir := o.mirror(ctx).Dir()
	// core.bare false comes from an included file: only git sees it.
	if err := os.WriteFile(filepath.Join(dir, "notbare"), []byte("[core]\n\tbare = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.git(o.work, "config", "--file", filepath.Join(dir, "config"), "include.path", "notbare")
	if _, err := OpenMirror(ctx, dir, o.bare, Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("OpenMirror(core.bare false by include) = %v, want ErrNotRepository", err)
	}

	// A path with ";" is written quoted; git reads it back as the same
	// remote, so OpenMirror reads the config and rewrites nothing.
	remote := filepath.Join(t.TempDir(), "a;b.git")
	o.git(o.work, "clone", "--quiet", "--bare", o.bare, remote)
	dir2 := filepath.Join(t.TempDir(), "mirror.git")
	if _, err := OpenMirror(ctx, dir2, remote, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir2, "config")); !strings.Contains(string(b), `"`) {
		t.Fatalf("git did not quote the URL, the case is not tested:\n%s", b)
	}
	calls := traceGit(t)
	if _, err := OpenMirror(ctx, dir2, remote, Options{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, args := range calls() {
		got = append(got, strings.Join(args, " "))
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "config --local") {
		t.Errorf("git processes of OpenMirror with a quoted URL: %q, want the config read alone", got)
	}
}

// TestOpenMirrorRefusesNonBare: the config read refuses what git rev-parse
// --is-bare-repository would not call a bare repository.
func TestOpenMirrorRefusesNonBare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := newOrigin(t)
	o.commit("c", nil)
	// A work clone's git directory: a repository, not bare.
	if _, err := OpenMirror(ctx, filepath.Join(o.work, ".git"), o.bare, Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("OpenMirror(.git of a work clone) = %v, want ErrNotRepository", err)
	}
	// A HEAD file but no repository.
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMirror(ctx, fake, o.bare, Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("OpenMirror(HEAD only) = %v, want ErrNotRepository", err)
	}
	// A bare repository with core.bare unset is not taken for one, as
	// git itself would not.
	unset := filepath.Join(t.TempDir(), "unset.git")
	o.git(o.work, "init", "--quiet", "--bare", unset)
	o.git(unset, "config", "--unset", "core.bare")
	if _, err := OpenMirror(ctx, unset, o.bare, Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("OpenMirror(core.bare unset) = %v, want ErrNotRepository", err)
	}
}

// OpenMirror+Fetch+Resolve+Export of an existing mirror, as a deploy does.
func BenchmarkDeploy(b *testing.B) {
	ctx := context.Background()
	o := newOrigin(b)
	o.commit("release", releaseTree)
	o.push("main")
	dir := o.mirror(ctx).Dir()
	parent := b.TempDir()
	for i := 0; b.Loop(); i++ {
		r, err := OpenMirror(ctx, dir, o.bare, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Fetch(ctx); err != nil {
			b.Fatal(err)
		}
		sha, _, err := r.Resolve(ctx, "main")
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Export(ctx, sha, filepath.Join(parent, "rel-"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIndexGitlink(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	files := map[string]file{"a": {content: "1"}, "z/last": {content: "z"}}
	for i := range 40 {
		files[fmt.Sprintf("src/pkg%d/%s%d.py", i%4, strings.Repeat("long", i), i)] = file{content: "x"}
	}
	sha := o.commit("files", files)
	index := filepath.Join(o.work, ".git", "index")
	check := func(version, want string) {
		t.Helper()
		o.git(o.work, "update-index", "--index-version", version)
		got, err := indexGitlink(index, sha)
		if err != nil || got != want {
			t.Errorf("index v%s: indexGitlink = %q, %v; want %q", version, got, err, want)
		}
	}
	for _, v := range []string{"2", "3", "4"} {
		check(v, "")
	}
	o.git(o.work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",src/pkg2/vendor/lib")
	for _, v := range []string{"2", "4"} {
		check(v, "src/pkg2/vendor/lib")
	}
	// Extended flags make version 3.
	o.git(o.work, "update-index", "--skip-worktree", "a")
	for _, v := range []string{"3", "4"} {
		check(v, "src/pkg2/vendor/lib")
	}
	// A split index holds its entries elsewhere: refused, not read.
	o.git(o.work, "update-index", "--no-skip-worktree", "a")
	o.git(o.work, "rm", "--quiet", "--cached", "src/pkg2/vendor/lib")
	o.git(o.work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",vendor/lib")
	o.git(o.work, "update-index", "--split-index")
	if got, err := indexGitlink(index, sha); err == nil {
		t.Errorf("split index: indexGitlink = %q, nil error", got)
	}
	if _, err := indexGitlink(filepath.Join(o.work, "a"), sha); err == nil {
		t.Error("indexGitlink(not an index) = nil error")
	}
}
