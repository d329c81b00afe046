package git

import (
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

// IsAncestor reports whether commit ancestor is reachable from commit
// descendant (a commit is its own ancestor). Both are full SHAs; one the
// mirror lacks gives ErrRefNotFound.
func (r *Repo) IsAncestor(ctx context.Context, ancestor, descendant string) (bool, error) {
	if err := validateRange(ancestor, descendant); err != nil || ancestor == "" {
		if err == nil {
			err = fmt.Errorf("ancestor: empty: %w", ErrInvalid)
		}
		return false, fmt.Errorf("is ancestor: %w", err)
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return false, fmt.Errorf("is ancestor %s of %s: %w", short(ancestor), short(descendant), err)
	}
	defer unlock()
	_, err = r.git().run(ctx, call{args: []string{"merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant}})
	var ee *execx.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.Code == 1:
		return false, nil
	}
	return false, fmt.Errorf("is ancestor %s of %s: %w", short(ancestor), short(descendant), classifyRevision(err))
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
		sc := nulScanner(f)
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
