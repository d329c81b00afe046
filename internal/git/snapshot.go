package git

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Snapshot fetches the tip of remote's default branch, one commit deep,
// into a new bare repository dir/git (0700) and writes its tree to
// dir/tree, for reading what a repository holds without a full clone. It
// returns the branch and the commit. remote is validated as for a mirror;
// dir must exist and be empty.
func Snapshot(ctx context.Context, remote, dir string, opts Options) (branch, sha string, err error) {
	if err := ValidateRemote(remote); err != nil {
		return "", "", fmt.Errorf("snapshot: %w", err)
	}
	gitDir := filepath.Join(dir, "git")
	if err := os.Mkdir(gitDir, 0o700); err != nil {
		return "", "", fmt.Errorf("snapshot: %w", err)
	}
	g := runner{gitDir: gitDir, opts: opts}
	if _, err := g.run(ctx, call{args: []string{"init", "--quiet", "--bare", "--template="}}); err != nil {
		return "", "", fmt.Errorf("snapshot: %w", err)
	}
	out, err := g.run(ctx, call{args: []string{"ls-remote", "--symref", "--end-of-options", remote, "HEAD"}})
	if err != nil {
		return "", "", fmt.Errorf("snapshot %s: %w", redact(remote), classifyRemote(err))
	}
	branch = defaultBranch(out)
	if branch == "" {
		return "", "", fmt.Errorf("snapshot %s: the remote names no default branch (an empty repository?): %w", redact(remote), ErrRefNotFound)
	}
	if err := ValidateRef(branch); err != nil {
		return "", "", fmt.Errorf("snapshot %s: %w", redact(remote), err)
	}
	ref := "refs/heads/" + branch
	if _, err := g.run(ctx, call{args: []string{"fetch", "--quiet", "--depth=1", "--no-tags", "--no-write-fetch-head",
		"--no-recurse-submodules", "--end-of-options", remote, "+" + ref + ":" + ref}}); err != nil {
		return "", "", fmt.Errorf("snapshot %s: %w", redact(remote), classifyRemote(err))
	}
	if err := writeAttributesOverride(filepath.Join(gitDir, "info")); err != nil {
		return "", "", fmt.Errorf("snapshot: %w", err)
	}
	r := &Repo{dir: gitDir, remote: remote, opts: opts}
	if sha, err = r.RefCommit(ctx, ref); err != nil {
		return "", "", fmt.Errorf("snapshot %s: %w", redact(remote), err)
	}
	if err := r.Export(ctx, sha, filepath.Join(dir, "tree")); err != nil {
		return "", "", fmt.Errorf("snapshot %s: %w", redact(remote), err)
	}
	return branch, sha, nil
}

// defaultBranch reads the branch from ls-remote --symref's answer,
// "ref: refs/heads/<branch>\tHEAD".
func defaultBranch(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		target, ok := strings.CutPrefix(sc.Text(), "ref: refs/heads/")
		if name, head, found := strings.Cut(target, "\t"); ok && found && head == "HEAD" {
			return name
		}
	}
	return ""
}

// CheckoutInfo is what a local checkout says of itself without running
// anything from it: origin's URL and the branch HEAD is on.
type CheckoutInfo struct {
	Remote string // "" when there is no origin
	Branch string // "" when HEAD is detached
}

// ReadCheckout reads dir/.git's HEAD and its config file (with git
// config --file, which reads a file and runs nothing the file names).
// A dir without a .git directory gives ErrNotRepository.
func ReadCheckout(ctx context.Context, dir string) (CheckoutInfo, error) {
	gitDir := filepath.Join(dir, ".git")
	if fi, err := os.Lstat(gitDir); err != nil || !fi.IsDir() {
		return CheckoutInfo{}, fmt.Errorf("%s: %w: no .git directory", dir, ErrNotRepository)
	}
	var info CheckoutInfo
	if head, err := os.ReadFile(filepath.Join(gitDir, "HEAD")); err == nil {
		if name, ok := strings.CutPrefix(strings.TrimSpace(string(head)), "ref: refs/heads/"); ok && ValidateRef(name) == nil {
			info.Branch = name
		}
	}
	g := runner{gitDir: gitDir}
	out, err := g.run(ctx, call{args: []string{"config", "--file", filepath.Join(gitDir, "config"), "--get", "remote.origin.url"}})
	var ce *commandError
	switch {
	case err == nil:
		info.Remote = strings.TrimSpace(out)
	case errors.As(err, &ce) && ce.exit.Code == 1: // the key is not set
	default:
		return CheckoutInfo{}, fmt.Errorf("read %s: %w", gitDir, err)
	}
	return info, nil
}
