package git

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/execx"
)

// TestMain gives the whole test binary, and so every git the code under
// test starts, an empty HOME: the machine's global git configuration is
// never read nor written.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "fraisier-git-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("HOME", home)
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}

// origin is a bare repository with a working clone that commits and
// pushes to it, standing in for a forge.
type origin struct {
	t    testing.TB
	home string
	bare string // the remote
	work string
	tick int // commit dates, so that SHAs are reproducible
}

func newOrigin(t testing.TB) *origin {
	t.Helper()
	root := t.TempDir()
	o := &origin{t: t, home: filepath.Join(root, "home"), bare: filepath.Join(root, "origin.git"), work: filepath.Join(root, "work")}
	if err := os.Mkdir(o.home, 0o755); err != nil {
		t.Fatal(err)
	}
	o.git(root, "init", "--quiet", "--bare", o.bare)
	o.git(root, "init", "--quiet", o.work)
	o.git(o.work, "remote", "add", "origin", o.bare)
	return o
}

func (o *origin) env() []string {
	date := fmt.Sprintf("%d +0000", 1700000000+o.tick*60)
	return []string{
		"HOME=" + o.home,
		"XDG_CONFIG_HOME=" + filepath.Join(o.home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"LC_ALL=C",
		"GIT_AUTHOR_NAME=Ada Lovelace", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Fraisier Test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date,
	}
}

// git runs a test-side git and returns its output, failing the test on error.
func (o *origin) git(dir string, args ...string) string {
	o.t.Helper()
	out, err := o.gitErr(dir, "", args...)
	if err != nil {
		o.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (o *origin) gitErr(dir, stdin string, args ...string) (string, error) {
	argv := append([]string{"git", "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false",
		"-c", "advice.detachedHead=false"}, args...)
	return execx.Output(context.Background(), execx.Cmd{Argv: argv, Dir: dir, Env: o.env(), Stdin: strings.NewReader(stdin)})
}

// file is one path of a commit: content, or a symlink target, mode 0644
// unless exec.
type file struct {
	content string
	symlink bool
	exec    bool
	delete  bool
}

// commit writes files into the work tree, commits everything and returns
// the new SHA. Nothing is pushed.
func (o *origin) commit(msg string, files map[string]file) string {
	o.t.Helper()
	for name, f := range files {
		p := filepath.Join(o.work, name)
		os.RemoveAll(p)
		if f.delete {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			o.t.Fatal(err)
		}
		var err error
		switch {
		case f.symlink:
			err = os.Symlink(f.content, p)
		case f.exec:
			err = os.WriteFile(p, []byte(f.content), 0o755)
		default:
			err = os.WriteFile(p, []byte(f.content), 0o644)
		}
		if err != nil {
			o.t.Fatal(err)
		}
	}
	o.tick++
	o.git(o.work, "add", "--all")
	o.git(o.work, "commit", "--quiet", "--allow-empty", "-m", msg)
	return o.git(o.work, "rev-parse", "HEAD")
}

func (o *origin) push(args ...string) {
	o.t.Helper()
	o.git(o.work, append([]string{"push", "--quiet", "origin"}, args...)...)
}

// mirror opens a fresh mirror of o and fetches it.
func (o *origin) mirror(ctx context.Context) *Repo {
	o.t.Helper()
	r, err := OpenMirror(ctx, filepath.Join(o.t.TempDir(), "mirror.git"), o.bare, Options{})
	if err != nil {
		o.t.Fatal(err)
	}
	if err := r.Fetch(ctx); err != nil {
		o.t.Fatal(err)
	}
	return r
}

func mustResolve(t testing.TB, r *Repo, ref string) string {
	t.Helper()
	sha, _, err := r.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", ref, err)
	}
	return sha
}

// entry is what a directory walk sees at one path.
type entry struct {
	Kind    string // file, exec, symlink, dir
	Content string // bytes, or symlink target
}

func snapshot(t testing.TB, root string) map[string]entry {
	t.Helper()
	got := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			got[rel] = entry{Kind: "symlink", Content: target}
			return err
		case info.IsDir():
			got[rel] = entry{Kind: "dir"}
		default:
			b, err := os.ReadFile(p)
			kind := "file"
			if info.Mode()&0o111 != 0 {
				kind = "exec"
			}
			got[rel] = entry{Kind: kind, Content: string(b)}
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// leftovers lists what in dir is not one of keep: temporary directories a
// failed operation should have removed.
func leftovers(t testing.TB, dir string, keep ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			extra = append(extra, e.Name())
		}
	}
	return extra
}

// traceGit puts a git first in PATH that records the arguments of every
// git process started from then on, and runs the real git. git's own
// children (git maintenance after a fetch) find git through its exec path,
// so only the processes the package starts are recorded. It returns the
// arguments of each, oldest first, after the -c settings. It sets PATH
// for the whole test binary, so the test must not be parallel.
func traceGit(t *testing.T) (calls func() [][]string) {
	t.Helper()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	// One line a process, its arguments ended by US (\037).
	script := fmt.Sprintf("#!/bin/sh\n{ printf '%%s\\037' \"$@\"; printf '\\n'; } >>'%s'\nexec '%s' \"$@\"\n", log, real)
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() [][]string {
		b, err := os.ReadFile(log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var out [][]string
		for line := range strings.Lines(string(b)) {
			args := strings.Split(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\x1f"), "\x1f")
			for len(args) >= 2 && args[0] == "-c" {
				args = args[2:]
			}
			out = append(out, args)
		}
		return out
	}
}
