package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// inplaceRefspecs give the clone the layout of an ordinary git clone, so
// that people inspecting the directory find what they expect.
func inplaceRefspecs() []string {
	return []string{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
}

// errLostRace: another process created the directory while we cloned.
var errLostRace = errors.New("directory appeared while cloning")

// CheckoutInPlace implements the inplace layout: dir is an ordinary clone
// of remote whose working tree is switched to commit sha (a full SHA). A
// missing or empty dir is cloned (into a sibling directory renamed into
// place, so a failed clone leaves nothing behind); an existing clone is
// fetched unless it already has sha, and pointed at remote if its URL
// changed.
//
// The switch is git checkout --force --detach: tracked files are made
// exactly those of sha, local edits to them are lost, and untracked and
// ignored files (.env, uploads, caches) are left alone. There is
// deliberately no git clean: it would delete runtime data. Submodules give
// ErrSubmodules, a directory that is neither empty nor a clone
// ErrNotRepository.
func CheckoutInPlace(ctx context.Context, dir, remote, sha string, opts Options) error {
	if err := ValidateRemote(remote); err != nil {
		return fmt.Errorf("check out in place %s: %w", dir, err)
	}
	if err := validateSHA(sha); err != nil {
		return fmt.Errorf("check out in place %s: %w", dir, err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("check out in place %s: %w", dir, err)
	}
	fi, err := os.Lstat(filepath.Join(dir, ".git"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = cloneInPlace(ctx, dir, remote, sha, opts)
		if !errors.Is(err, errLostRace) {
			if err != nil {
				return fmt.Errorf("check out %s in place %s: %w", sha, dir, err)
			}
			return nil
		}
	case err != nil:
		return fmt.Errorf("check out in place %s: %w", dir, err)
	case !fi.IsDir():
		// A gitfile: a worktree or a submodule of something else.
		return fmt.Errorf("check out in place %s: %w: .git is not a directory", dir, ErrNotRepository)
	}
	if err := updateInPlace(ctx, dir, remote, sha, opts); err != nil {
		return fmt.Errorf("check out %s in place %s: %w", sha, dir, err)
	}
	return nil
}

func inPlaceRunner(dir string, opts Options) runner {
	return runner{gitDir: filepath.Join(dir, ".git"), workTree: dir, opts: opts}
}

func cloneInPlace(ctx context.Context, dir, remote, sha string, opts Options) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: %s is not empty and is not a git clone", ErrNotRepository, dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	g := inPlaceRunner(tmp, opts)
	if _, err := g.run(ctx, call{args: []string{"init", "--quiet", "--template="}, dir: tmp}); err != nil {
		return err
	}
	for i, spec := range inplaceRefspecs() {
		mode := "--add"
		if i == 0 {
			mode = "--replace-all"
		}
		if _, err := g.run(ctx, call{args: []string{"config", mode, "remote.origin.fetch", spec}}); err != nil {
			return fmt.Errorf("configure refspecs: %w", err)
		}
	}
	if err := setRemoteURL(ctx, g, remote); err != nil {
		return err
	}
	if err := writeAttributesOverride(filepath.Join(g.gitDir, "info")); err != nil {
		return err
	}
	if err := fetch(ctx, g, remote, inplaceRefspecs()); err != nil {
		return fmt.Errorf("fetch %s: %w", redact(remote), err)
	}
	if err := checkoutDetached(ctx, g, sha); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// os.Rename refuses an existing directory, even an empty one. rmdir
	// removes it only while it is still empty.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return errLostRace
		}
		return err
	}
	// Moving the clone moves nothing git recorded: the work tree is found
	// as the parent of .git, not by a stored path.
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return errLostRace
		}
		return err
	}
	done = true
	return nil
}

func updateInPlace(ctx context.Context, dir, remote, sha string, opts Options) error {
	g := inPlaceRunner(dir, opts)
	unlock, err := lockDir(ctx, g.gitDir, true)
	if err != nil {
		return err
	}
	defer unlock()
	if err := setRemoteURL(ctx, g, remote); err != nil {
		return err
	}
	if err := writeAttributesOverride(filepath.Join(g.gitDir, "info")); err != nil {
		return err
	}
	// A commit is immutable: when the clone has it (a rollback, a
	// redeploy), the remote need not even be reachable.
	ok, err := hasCommit(ctx, g, sha)
	if err != nil {
		return err
	}
	if !ok {
		if err := fetch(ctx, g, remote, inplaceRefspecs()); err != nil {
			return fmt.Errorf("fetch %s: %w", redact(remote), err)
		}
	}
	return checkoutDetached(ctx, g, sha)
}

func checkoutDetached(ctx context.Context, g runner, sha string) error {
	ok, err := hasCommit(ctx, g, sha)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("commit not on the remote: %w", ErrRefNotFound)
	}
	if err := refuseGitlinks(ctx, g, sha); err != nil {
		return err
	}
	// No --end-of-options: checkout (2.39) takes it for a path. sha is
	// validated hex and cannot be read as an option anyway.
	if _, err := g.run(ctx, call{args: []string{"checkout", "--quiet", "--force", "--detach", sha}, dir: g.workTree}); err != nil {
		return err
	}
	return nil
}

// InPlaceHead is the commit checked out in an inplace directory.
// ErrNotRepository when dir is not a clone, ErrRefNotFound when it has no
// commit checked out yet.
func InPlaceHead(ctx context.Context, dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("in-place head %s: %w", dir, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("in-place head %s: %w", dir, ErrNotRepository)
	}
	// Reading HEAD needs no lock: git replaces it by rename.
	answers, err := batchCheck(ctx, inPlaceRunner(dir, Options{}), []string{"HEAD^{commit}"})
	if err != nil {
		return "", fmt.Errorf("in-place head %s: %w", dir, err)
	}
	if answers[0].sha == "" {
		return "", fmt.Errorf("in-place head %s: %w", dir, ErrRefNotFound)
	}
	return answers[0].sha, nil
}
