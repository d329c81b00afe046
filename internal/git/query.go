package git

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// RefKind says what a name given to Resolve turned out to be.
type RefKind string

const (
	RefBranch RefKind = "branch"
	RefTag    RefKind = "tag"
	RefCommit RefKind = "commit"
)

// minAbbrev is the shortest SHA prefix Resolve accepts: shorter ones
// collide too easily to name a release.
const minAbbrev = 7

// Resolve turns a branch name, a tag name (annotated tags peeled to their
// commit), or a full or abbreviated (at least 7 hex digits) commit SHA
// into a full commit SHA, looking in that order: refs/heads/<ref>, then
// refs/tags/<ref>, then the name itself when it is spelled refs/heads/...
// or refs/tags/... (or is a pull request head FetchRef brought), then a
// SHA prefix. An unknown name, a ref that does not
// lead to a commit and an ambiguous prefix give ErrRefNotFound. It reads
// the mirror only: Fetch first to see the remote's latest state.
func (r *Repo) Resolve(ctx context.Context, ref string) (string, RefKind, error) {
	if err := ValidateRef(ref); err != nil {
		return "", "", fmt.Errorf("resolve: %w", err)
	}
	type candidate struct {
		name string
		kind RefKind
	}
	cands := []candidate{{"refs/heads/" + ref, RefBranch}, {"refs/tags/" + ref, RefTag}}
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		cands = append(cands, candidate{ref, RefBranch})
	case strings.HasPrefix(ref, "refs/tags/"):
		cands = append(cands, candidate{ref, RefTag})
	case PullRequestRefOf(ref) == ref:
		// Only what FetchRef brought: a branch pushed under the name
		// refs/pull/7/head must not stand in for the pull request. Its
		// head moves like a branch's.
		cands = []candidate{{mirrorName(ref), RefBranch}}
	}
	prefix := strings.ToLower(ref)
	isPrefix := len(prefix) >= minAbbrev && len(prefix) <= 64 && isLowerHex(prefix)
	if isPrefix {
		cands = append(cands, candidate{prefix, RefCommit})
	}
	names := make([]string, len(cands))
	for i, c := range cands {
		// ^{commit} peels annotated tags and, for a prefix, makes git
		// disambiguate among commits only.
		names[i] = c.name + "^{commit}"
	}
	if isPrefix {
		// Peeling reports an ambiguous prefix as missing; the bare
		// prefix tells the two apart, for the error message.
		names = append(names, prefix)
	}

	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	defer unlock()
	answers, err := batchCheck(ctx, r.git(), names)
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", ref, err)
	}
	for i, a := range answers[:len(cands)] {
		if a.sha == "" {
			continue
		}
		// A prefix of a tag object peels to a commit with another name:
		// the prefix must name the commit itself.
		if cands[i].kind == RefCommit && !strings.HasPrefix(a.sha, prefix) {
			continue
		}
		if a.typ == "commit" && IsSHA(a.sha) {
			r.rememberCommit(a.sha)
		}
		return a.sha, cands[i].kind, nil
	}
	if isPrefix && answers[len(answers)-1].ambiguous {
		return "", "", fmt.Errorf("resolve %s: prefix matches several objects: %w", ref, ErrRefNotFound)
	}
	return "", "", fmt.Errorf("resolve %s: no such branch, tag or commit: %w", ref, ErrRefNotFound)
}

// HasCommit reports whether the mirror holds commit sha (a full SHA).
func (r *Repo) HasCommit(ctx context.Context, sha string) (bool, error) {
	if err := validateSHA(sha); err != nil {
		return false, fmt.Errorf("has commit: %w", err)
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return false, fmt.Errorf("has commit %s: %w", sha, err)
	}
	defer unlock()
	ok, err := hasCommit(ctx, r.git(), sha)
	if err != nil {
		return false, fmt.Errorf("has commit %s: %w", sha, err)
	}
	if ok {
		r.rememberCommit(sha)
	}
	return ok, nil
}

func hasCommit(ctx context.Context, g runner, sha string) (bool, error) {
	answers, err := batchCheck(ctx, g, []string{sha})
	if err != nil {
		return false, err
	}
	return answers[0].sha == sha && answers[0].typ == "commit", nil
}

type objectInfo struct {
	sha, typ  string // empty when missing
	ambiguous bool
}

// batchCheck asks git cat-file about several object names in one process.
// Names must not contain whitespace (validated refs and hex never do).
func batchCheck(ctx context.Context, g runner, names []string) ([]objectInfo, error) {
	stdin := strings.Join(names, "\n") + "\n"
	out, err := g.run(ctx, call{args: []string{"cat-file", "--batch-check"}, stdin: strings.NewReader(stdin)})
	if err != nil {
		return nil, err
	}
	// One line per name, in order. stdout and stderr arrive mixed, so
	// anything that is not an answer (a warning, a trace) is skipped.
	answers := make([]objectInfo, 0, len(names))
	for _, line := range strings.Split(out, "\n") {
		if len(answers) == len(names) {
			break
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && IsSHA(f[0]) && isNumber(f[2]):
			answers = append(answers, objectInfo{sha: f[0], typ: f[1]})
		case len(f) == 2 && f[0] == names[len(answers)] && f[1] == "missing":
			answers = append(answers, objectInfo{})
		case len(f) == 2 && f[0] == names[len(answers)] && f[1] == "ambiguous":
			answers = append(answers, objectInfo{ambiguous: true})
		}
	}
	if len(answers) != len(names) {
		return nil, fmt.Errorf("cat-file: unexpected output %q", clip(out))
	}
	return answers, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// Commit is one entry of Log.
type Commit struct {
	SHA     string    `json:"sha"`
	Subject string    `json:"subject"`
	Author  string    `json:"author"`
	Date    time.Time `json:"date"` // committer date
}

// Log lists the commits reachable from to and not from from (git's
// from..to), newest first, at most max of them (max <= 0: all). With from
// empty it lists to and its ancestors. Both are full SHAs, as Resolve
// returns them; a commit the mirror lacks gives ErrRefNotFound.
func (r *Repo) Log(ctx context.Context, from, to string, max int) ([]Commit, error) {
	if err := validateRange(from, to); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	rng := to
	if from != "" {
		rng = from + ".." + to
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", rng, err)
	}
	defer unlock()
	var commits []Commit
	err = withOutputFile(func(path string) error {
		args := []string{"log", "--no-color", "--no-decorate", "--no-show-signature", "--encoding=UTF-8", "-z",
			"--format=%H%x00%s%x00%an%x00%cI", "--output=" + path}
		if max > 0 {
			args = append(args, "--max-count="+strconv.Itoa(max))
		}
		args = append(args, "--end-of-options", rng, "--")
		_, err := r.git().run(ctx, call{args: args})
		return classifyRevision(err)
	}, func(f *os.File) error {
		b, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		commits, err = parseLog(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", rng, err)
	}
	return commits, nil
}

// parseLog reads records of four NUL-terminated fields (-z ends each
// commit with NUL as well, and %x00 separates the fields), so subjects and
// names may hold any other character.
func parseLog(b []byte) ([]Commit, error) {
	if len(b) == 0 {
		return nil, nil
	}
	fields := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(fields)%4 != 0 {
		return nil, fmt.Errorf("parse log: %d fields, not a multiple of 4", len(fields))
	}
	commits := make([]Commit, 0, len(fields)/4)
	for i := 0; i < len(fields); i += 4 {
		sha := fields[i]
		if !IsSHA(sha) {
			return nil, fmt.Errorf("parse log: %q is not a SHA", clip(sha))
		}
		date, err := time.Parse(time.RFC3339, fields[i+3])
		if err != nil {
			return nil, fmt.Errorf("parse log: commit %s: %w", sha, err)
		}
		commits = append(commits, Commit{SHA: sha, Subject: fields[i+1], Author: fields[i+2], Date: date})
	}
	return commits, nil
}

// ChangedFiles lists the paths that differ between the trees of from and
// to (full SHAs; from empty means every path of to), sorted bytewise. A
// rename lists both the old and the new path.
func (r *Repo) ChangedFiles(ctx context.Context, from, to string) ([]string, error) {
	if err := validateRange(from, to); err != nil {
		return nil, fmt.Errorf("changed files: %w", err)
	}
	base := from
	if base == "" {
		base = emptyTree(to)
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return nil, fmt.Errorf("changed files %s..%s: %w", from, to, err)
	}
	defer unlock()
	var files []string
	err = withOutputFile(func(path string) error {
		_, err := r.git().run(ctx, call{args: []string{"diff", "--name-only", "-z", "--no-renames",
			"--no-ext-diff", "--no-textconv", "--no-color", "--no-relative", "--output=" + path,
			"--end-of-options", base, to, "--"}})
		return classifyRevision(err)
	}, func(f *os.File) error {
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		sc.Split(splitNUL)
		for sc.Scan() {
			files = append(files, sc.Text())
		}
		return sc.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("changed files %s..%s: %w", from, to, err)
	}
	// diff.orderFile in someone's configuration would reorder git's list.
	slices.Sort(files)
	return files, nil
}

func validateRange(from, to string) error {
	if from != "" {
		if err := validateSHA(from); err != nil {
			return err
		}
	}
	return validateSHA(to)
}

// emptyTree names the empty tree, which git knows without storing it, in
// the hash of the repository sha belongs to.
func emptyTree(sha string) string {
	if len(sha) == 64 {
		return "6ef19b41225c5369f1c104d45d8d85efa9b057b53b14b4b9b939dd74decc5321"
	}
	return "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
}

// classifyRevision turns git's complaints about a commit it does not have
// into ErrRefNotFound.
func classifyRevision(err error) error {
	var ee *execx.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	for _, sign := range []string{"bad object", "unknown revision", "Invalid revision range", "bad revision", "not a valid object name", "Not a valid object name",
		"failed to unpack tree object"} {
		if strings.Contains(ee.Output, sign) {
			return fmt.Errorf("%w: %s", ErrRefNotFound, stderrTail(ee.Output))
		}
	}
	return err
}

func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
