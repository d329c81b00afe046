package testenv

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Origin is the git side of a deployment test: a bare repository that a
// fraise clones (its git_repo), and a work clone whose main the test
// commits to and pushes.
type Origin struct {
	t    testing.TB
	root string
	// Dir is the bare repository, default branch main.
	Dir string
	// Work is a clone of Dir that pushes to it.
	Work string
}

// NewOrigin makes root/origin.git and its clone root/work. A machine
// without git ends the test as Unavailable says.
func NewOrigin(t testing.TB, root string) *Origin {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		Unavailable(t, "git not installed")
	}
	o := &Origin{t: t, root: root, Dir: filepath.Join(root, "origin.git"), Work: filepath.Join(root, "work")}
	Git(t, root, "init", "-q", "--bare", "-b", "main", o.Dir)
	Git(t, root, "clone", "-q", o.Dir, o.Work)
	return o
}

// Git runs git in the work clone and returns its trimmed output.
func (o *Origin) Git(args ...string) string {
	o.t.Helper()
	return Git(o.t, o.Work, args...)
}

// Write writes a file of the work tree (mode 0644), making its directory.
func (o *Origin) Write(name, content string) {
	o.t.Helper()
	o.WriteMode(name, content, 0o644)
}

// WriteMode writes a file of the work tree with mode, also when the file
// exists with another.
func (o *Origin) WriteMode(name, content string, mode os.FileMode) {
	o.t.Helper()
	p := filepath.Join(o.Work, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		o.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		o.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		o.t.Fatal(err)
	}
}

// Commit commits everything in the work tree, pushes it to main and
// returns the commit's SHA.
func (o *Origin) Commit(msg string) string {
	o.t.Helper()
	o.Git("add", "-A")
	o.Git("commit", "-q", "-m", msg)
	o.Git("push", "-q", "origin", "HEAD:main")
	return o.Git("rev-parse", "HEAD")
}

// ImportCommit is one commit Import makes: files written on top of its
// parent's tree.
type ImportCommit struct {
	Message string
	// Files maps paths to contents, mode 0644; Exec, mode 0755.
	Files, Exec map[string]string
}

// Import makes commits on branch, after what Import made on it before, in
// one git fast-import, pushes them to the origin in one push and returns
// their SHAs, oldest first: hundreds cost a fraction of a second. The
// k-th commit of a branch is dated 1700000000+k seconds. It uses a bare
// repository of its own beside the origin, not the work clone.
func (o *Origin) Import(branch string, commits []ImportCommit) []string {
	o.t.Helper()
	pusher := filepath.Join(o.root, "pusher.git")
	if _, err := os.Stat(pusher); err != nil {
		Git(o.t, o.root, "init", "-q", "--bare", "-b", "main", pusher)
		Git(o.t, pusher, "remote", "add", "origin", o.Dir)
	}
	ref := "refs/heads/" + branch
	have := 0
	if gitIn(o.t, pusher, nil, true, "rev-parse", "-q", "--verify", ref) != "" {
		have, _ = strconv.Atoi(Git(o.t, pusher, "rev-list", "--count", ref))
	}
	var b bytes.Buffer
	data := func(s string) { fmt.Fprintf(&b, "data %d\n%s\n", len(s), s) }
	for i, c := range commits {
		fmt.Fprintf(&b, "commit %s\nmark :%d\ncommitter test <test@example.com> %d +0000\n", ref, i+1, 1700000000+have+i+1)
		data(c.Message)
		if i == 0 && have > 0 {
			fmt.Fprintf(&b, "from %s^0\n", ref)
		}
		for _, f := range []struct {
			mode  string
			files map[string]string
		}{{"644", c.Files}, {"755", c.Exec}} {
			for _, name := range sortedKeys(f.files) {
				fmt.Fprintf(&b, "M %s inline %s\n", f.mode, name)
				data(f.files[name])
			}
		}
	}
	b.WriteString("done\n")
	marks := filepath.Join(pusher, "fast-import-marks")
	gitIn(o.t, pusher, &b, false, "fast-import", "--quiet", "--done", "--export-marks="+marks)
	Git(o.t, pusher, "push", "-q", "origin", ref+":"+ref)
	mb, err := os.ReadFile(marks)
	if err != nil {
		o.t.Fatal(err)
	}
	shas := make([]string, len(commits))
	for _, line := range strings.Split(strings.TrimSpace(string(mb)), "\n") {
		mark, sha, ok := strings.Cut(line, " ")
		i, err := strconv.Atoi(strings.TrimPrefix(mark, ":"))
		if !ok || err != nil || i < 1 || i > len(shas) {
			o.t.Fatalf("fast-import mark %q", line)
		}
		shas[i-1] = sha
	}
	return shas
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// gitIn runs git in dir with stdin; with mayFail a failure returns ""
// instead of ending the test.
func gitIn(t testing.TB, dir string, stdin io.Reader, mayFail bool, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Env = GitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if mayFail {
			return ""
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
