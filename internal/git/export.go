package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Export writes the exact tree of commit sha (a full SHA) into dest, a
// directory that must not exist yet (its parent must): files with their executable bits,
// symlinks as symlinks, bytes as committed (no line-ending conversion, no
// filters), and nothing else — no .git, no marker file. The tree is
// written next to dest and renamed into place, so dest appears complete
// or not at all. A tree holding a submodule gives ErrSubmodules, an
// unknown commit ErrRefNotFound, an existing dest fs.ErrExist.
func (r *Repo) Export(ctx context.Context, sha, dest string) error {
	if err := validateSHA(sha); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	dest, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("export %s: %w", sha, err)
	}
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("export %s to %s: %w", sha, dest, fs.ErrExist)
	}
	unlock, err := lockDir(ctx, r.dir, false)
	if err != nil {
		return fmt.Errorf("export %s: %w", sha, err)
	}
	defer unlock()
	if err := r.export(ctx, sha, dest); err != nil {
		return fmt.Errorf("export %s to %s: %w", sha, dest, err)
	}
	return nil
}

func (r *Repo) export(ctx context.Context, sha, dest string) error {
	g := r.git()
	// A SHA Resolve or HasCommit saw as a commit is one; if it has gone
	// since, the tree listing below fails with ErrRefNotFound.
	if !r.knownCommit(sha) {
		ok, err := hasCommit(ctx, g, sha)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no such commit in the mirror: %w", ErrRefNotFound)
		}
		r.rememberCommit(sha)
	}
	if err := refuseGitlinks(ctx, g, sha); err != nil {
		return err
	}

	// Same directory as dest, so that the final rename is atomic.
	tmp, err := os.MkdirTemp(filepath.Dir(dest), filepath.Base(dest)+".tmp-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	// A throwaway index: the mirror's own is not touched, and concurrent
	// exports do not share one.
	indexDir, err := os.MkdirTemp("", "fraisier-index-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(indexDir)

	g.workTree = tmp
	g.index = filepath.Join(indexDir, "index")
	if _, err := g.run(ctx, call{args: []string{"read-tree", "--reset", "-u", sha}, dir: tmp}); err != nil {
		return fmt.Errorf("check out tree: %w", err)
	}
	// MkdirTemp made it 0700; a release is read by the service's user.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// os.Rename refuses an existing dest, even an empty directory.
	if err := os.Rename(tmp, dest); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTDIR) {
			return fs.ErrExist
		}
		return err
	}
	done = true
	return nil
}

// refuseGitlinks fails with ErrSubmodules when the tree of sha holds a
// gitlink. Checkout would leave an empty directory in its place, which
// deploys an application with a hole in it.
func refuseGitlinks(ctx context.Context, g runner, sha string) error {
	var gitlink string
	err := withOutputFile(func(path string) error {
		_, err := g.run(ctx, call{args: []string{"diff-tree", "-r", "-z", "--raw", "--no-renames",
			"--no-commit-id", "--output=" + path, "--end-of-options", emptyTree(sha), sha}})
		if err != nil {
			return fmt.Errorf("list tree: %w", classifyRevision(err))
		}
		return nil
	}, func(f *os.File) error {
		// Raw records: ":000000 <mode> <oid> <oid> A", NUL, path, NUL.
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		sc.Split(splitNUL)
		for sc.Scan() {
			head := sc.Text()
			if !strings.HasPrefix(head, ":") || !sc.Scan() {
				continue
			}
			if f := strings.Fields(head); len(f) >= 2 && f[1] == "160000" {
				gitlink = sc.Text()
				return nil
			}
		}
		return sc.Err()
	})
	if err != nil {
		return err
	}
	if gitlink != "" {
		return fmt.Errorf("%s is a submodule: %w", gitlink, ErrSubmodules)
	}
	return nil
}
