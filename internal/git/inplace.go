package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// inplaceRefspecs keep the remote's branches where an ordinary clone keeps
// them, so that what the git directory holds reads as a clone's would.
func inplaceRefspecs() []string {
	return []string{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
}

// errLostRace: another process created the directory while we checked out.
var errLostRace = errors.New("directory appeared while checking out")

// CheckoutInPlace implements the inplace layout: dir is a work tree of
// remote switched to commit sha (a full SHA), whose git directory is
// gitDir, kept apart from it. Whoever can write dir must not decide what
// git does: a git directory inside it (dir/.git) would have its config
// obeyed, hooks and ssh command included. gitDir must exist (empty the
// first time, or holding only fraisier's lock); it is made a bare
// repository and fetched into unless it already has sha, and pointed at
// remote if its URL changed. A .git directory left in dir by an older
// checkout is never read.
//
// A missing or empty dir is checked out into a sibling directory renamed
// into place, so a failed first checkout leaves nothing behind. A dir with
// content is checked out over only when gitDir has checked it out before,
// or when it holds a .git directory: a checkout of the layout that kept
// its git directory in dir, taken over as it is (its .git never read).
// Anything else gives ErrNotRepository, so that a wrong path does not
// adopt someone's files.
//
// The switch is git checkout --force --detach: tracked files are made
// exactly those of sha, local edits to them are lost, and untracked and
// ignored files (.env, uploads, caches) are left alone. There is
// deliberately no git clean: it would delete runtime data. Submodules give
// ErrSubmodules.
func CheckoutInPlace(ctx context.Context, gitDir, dir, remote, sha string, opts Options) error {
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
	if gitDir, err = filepath.Abs(gitDir); err != nil {
		return fmt.Errorf("check out in place %s: %w", dir, err)
	}
	if err := checkout(ctx, gitDir, dir, remote, sha, opts); err != nil {
		return fmt.Errorf("check out %s in place %s: %w", sha, dir, err)
	}
	return nil
}

func checkout(ctx context.Context, gitDir, dir, remote, sha string, opts Options) error {
	if err := checkPrivateDir(gitDir); err != nil {
		return err
	}
	unlock, err := lockDir(ctx, gitDir, true)
	if err != nil {
		return err
	}
	defer unlock()
	g := runner{gitDir: gitDir, opts: opts}
	// Bare, so that git never takes the directory itself for a work
	// tree; every checkout names its work tree explicitly.
	if err := prepareBare(ctx, g, remote, inplaceRefspecs()); err != nil {
		return err
	}
	// A commit is immutable: when the git directory has it (a rollback, a
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
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0):
		err = checkoutNew(ctx, g, dir, sha)
		if !errors.Is(err, errLostRace) {
			return err
		}
	case err != nil:
		return err
	}
	if _, err := os.Stat(filepath.Join(gitDir, "index")); err != nil {
		if fi, err := os.Lstat(filepath.Join(dir, ".git")); err != nil || !fi.IsDir() {
			return fmt.Errorf("%w: %s is not empty and is not a git checkout", ErrNotRepository, dir)
		}
	}
	g.workTree = dir
	return checkoutDetached(ctx, g, sha)
}

// checkoutNew checks sha out into a new directory beside dir and renames
// it into place.
func checkoutNew(ctx context.Context, g runner, dir, sha string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	err := buildBeside(dir, func(tmp string) error {
		g.workTree = tmp
		if err := checkoutDetached(ctx, g, sha); err != nil {
			return err
		}
		// The rename refuses an existing directory, even an empty one;
		// rmdir removes it only while it is still empty. The index names
		// paths relative to the work tree, so it stays true once the tree
		// has moved.
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
				return errLostRace
			}
			return err
		}
		return nil
	})
	if errors.Is(err, errDestTaken) {
		return errLostRace
	}
	return err
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

// InPlaceHead is the commit last checked out from the inplace git
// directory gitDir. ErrNotRepository when gitDir holds no repository,
// ErrRefNotFound when nothing was checked out from it yet. The checkout
// detaches HEAD, so a HEAD still naming a branch (the mirror's default,
// however far that branch was fetched) means nothing was checked out.
func InPlaceHead(ctx context.Context, gitDir string) (string, error) {
	gitDir, err := filepath.Abs(gitDir)
	if err != nil {
		return "", fmt.Errorf("in-place head %s: %w", gitDir, err)
	}
	if err := checkPrivateDir(gitDir); err != nil {
		return "", fmt.Errorf("in-place head %s: %w", gitDir, err)
	}
	// Reading HEAD needs no lock: git replaces it by rename.
	b, err := os.ReadFile(filepath.Join(gitDir, "HEAD"))
	if err != nil {
		return "", fmt.Errorf("in-place head %s: %w", gitDir, ErrNotRepository)
	}
	head := strings.TrimSpace(string(b))
	if !IsSHA(head) {
		return "", fmt.Errorf("in-place head %s: nothing checked out yet: %w", gitDir, ErrRefNotFound)
	}
	ok, err := hasCommit(ctx, runner{gitDir: gitDir}, head)
	if err != nil {
		return "", fmt.Errorf("in-place head %s: %w", gitDir, err)
	}
	if !ok {
		return "", fmt.Errorf("in-place head %s: %s is not a commit here: %w", gitDir, head, ErrRefNotFound)
	}
	return head, nil
}

// WorkTreeHead is the commit that an inplace checkout keeping its git
// directory in dir/.git (a layout fraisier does not write) left
// detached in dir/.git/HEAD, or "" when there is none. It is what a
// deployment that takes such a checkout over can return to. The file is
// read as text, never through git, which would obey that directory's
// config, and only when .git and HEAD are fraisier's own (its effective
// uid's, writable by no one else, no symlink): another user who could
// write them could pick the commit a failed deployment returns to. A HEAD
// naming a branch gives "".
func WorkTreeHead(dir string) string {
	gitDir := filepath.Join(dir, ".git")
	if checkPrivateDir(gitDir) != nil {
		return ""
	}
	f, err := os.OpenFile(filepath.Join(gitDir, "HEAD"), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 {
		return ""
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return ""
	}
	if head := strings.TrimSpace(string(b)); IsSHA(head) {
		return head
	}
	return ""
}
