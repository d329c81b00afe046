package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Repo is a local bare mirror of one remote: every branch and tag of the
// remote, fetched on demand, from which releases are exported. Methods are
// safe for concurrent use, also by several processes on the same
// directory: writes take an exclusive flock on the mirror, reads a shared
// one.
type Repo struct {
	dir    string
	remote string
	opts   Options

	mu sync.Mutex
	// commits are full SHAs git has said are commit objects. An object's
	// type never changes, so Export need not ask again; whether the object
	// is still there is checked by the git that reads it.
	commits map[string]struct{}
}

// maxKnownCommits bounds Repo.commits in a long-lived process.
const maxKnownCommits = 1024

func (r *Repo) rememberCommit(sha string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.commits == nil || len(r.commits) >= maxKnownCommits {
		r.commits = map[string]struct{}{}
	}
	r.commits[sha] = struct{}{}
}

func (r *Repo) knownCommit(sha string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.commits[sha]
	return ok
}

// mirrorRefspecs keep branches and tags exactly as the remote has them:
// forced, so that a force-push is followed, and pruned by Fetch.
func mirrorRefspecs() []string {
	return []string{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
}

// attributesOverride goes to info/attributes, which takes precedence over
// the .gitattributes files of the tree: a release holds the bytes that
// were committed, with no line-ending conversion and no filter (LFS
// included) run on them.
const attributesOverride = "# Written by fraisier: check out the committed bytes, unconverted.\n" +
	"* -text -eol -filter -ident -working-tree-encoding\n"

// OpenMirror opens the bare mirror of remote in dir, creating it (0700) if
// dir is missing or empty. An existing mirror whose configured URL differs
// from remote is pointed at remote; the next Fetch prunes what the new
// remote lacks. Nothing is fetched.
//
// Every git run on the mirror obeys the mirror's own config (ssh command,
// hooks path, proxies), so dir must be fraisier's alone: a directory (not
// a symlink) owned by this process's effective user and writable by no
// one else, or ErrUntrusted. The caller keeps it where no other user can
// replace it.
func OpenMirror(ctx context.Context, dir, remote string, opts Options) (*Repo, error) {
	if err := ValidateRemote(remote); err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", abs, err)
	}
	if err := checkPrivateDir(abs); err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", abs, err)
	}
	r := &Repo{dir: abs, remote: remote, opts: opts}
	unlock, err := lockDir(ctx, abs, true)
	if err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", abs, err)
	}
	defer unlock()
	if err := prepareBare(ctx, r.git(), r.remote, mirrorRefspecs()); err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", abs, err)
	}
	return r, nil
}

// Dir is the mirror's directory, absolute.
func (r *Repo) Dir() string { return r.dir }

// Remote is the URL the mirror fetches from.
func (r *Repo) Remote() string { return r.remote }

func (r *Repo) git() runner { return runner{gitDir: r.dir, opts: r.opts} }

// prepareBare makes g's git directory a bare repository whose origin is
// remote, fetching refspecs if it is new, or checks that it is one and
// points it at remote. The caller holds the exclusive lock. An existing
// repository that fraisier made costs no git process.
func prepareBare(ctx context.Context, g runner, remote string, refspecs []string) error {
	url := "" // origin's URL as configured; a new repository has none
	if err := clearUnfinished(g.gitDir); err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(g.gitDir, "HEAD"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := initBare(ctx, g, refspecs); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		var bare bool
		var plain bool
		// A repository fraisier made has a config file simple enough to
		// read here, which saves a git process on every deploy; anything
		// else is left to git, which knows every rule of its format.
		if bare, url, plain = readPlainMirrorConfig(g.gitDir); !plain {
			if bare, url, err = readMirrorConfig(ctx, g); err != nil {
				return fmt.Errorf("%w: %w", ErrNotRepository, err)
			}
		}
		if !bare {
			return fmt.Errorf("%w: not a bare repository", ErrNotRepository)
		}
	}
	if url != remote {
		if _, err := g.run(ctx, call{args: []string{"config", "remote.origin.url", remote}}); err != nil {
			return fmt.Errorf("set remote URL: %w", err)
		}
	}
	return writeAttributesOverride(filepath.Join(g.gitDir, "info"))
}

// initBare makes g's empty git directory a bare repository whose origin
// fetches refspecs. No template: sample hooks and the like have no place
// in it.
//
// initMarker stands in the directory from before git init until the
// configuration is written, so that a directory a crash left half made is
// known for fraisier's own, and made again (clearUnfinished), instead of
// being refused as someone else's at every later deployment.
func initBare(ctx context.Context, g runner, refspecs []string) error {
	if err := mustBeEmpty(g.gitDir); err != nil {
		return err
	}
	marker := filepath.Join(g.gitDir, initMarker)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		return fmt.Errorf("mark the repository unfinished: %w", err)
	}
	if _, err := g.run(ctx, call{args: []string{"init", "--quiet", "--bare", "--template="}}); err != nil {
		return err
	}
	for i, spec := range refspecs {
		mode := "--add"
		if i == 0 {
			mode = "--replace-all"
		}
		if _, err := g.run(ctx, call{args: []string{"config", mode, "remote.origin.fetch", spec}}); err != nil {
			return fmt.Errorf("configure refspecs: %w", err)
		}
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("mark the repository made: %w", err)
	}
	return nil
}

// initMarker is the file initBare keeps in a git directory it is making.
const initMarker = "fraisier-init"

// clearUnfinished empties, but for its lock, a git directory whose making
// a crash cut short (it holds initMarker), so that initBare makes it
// again. A directory without the marker is left alone: prepare refuses
// one that is not a repository.
func clearUnfinished(dir string) error {
	if _, err := os.Lstat(filepath.Join(dir, initMarker)); err != nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clear the unfinished repository %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Name() == lockName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("clear the unfinished repository %s: %w", dir, err)
		}
	}
	return nil
}

// checkPrivateDir refuses, with ErrUntrusted, a git directory that is a
// symlink, is owned by another uid than this process's effective one, or
// is writable by its group or others.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symlink", ErrUntrusted, dir)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrUntrusted, dir)
	case int(fi.Sys().(*syscall.Stat_t).Uid) != euid:
		return fmt.Errorf("%w: %s is owned by uid %d, not by fraisier's uid %d", ErrUntrusted, dir, fi.Sys().(*syscall.Stat_t).Uid, euid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%w: %s is writable by users other than its owner (mode %s)", ErrUntrusted, dir, fi.Mode().Perm())
	}
	return nil
}

// mustBeEmpty refuses to turn a directory holding anything but our lock
// into a repository: a wrong path in the configuration must not adopt,
// say, an application directory.
func mustBeEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != lockName {
			return fmt.Errorf("%w: %s is not empty and holds no git repository", ErrNotRepository, dir)
		}
	}
	return nil
}

func writeAttributesOverride(infoDir string) error {
	path := filepath.Join(infoDir, "attributes")
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, []byte(attributesOverride)) {
		return nil
	}
	if err := os.MkdirAll(infoDir, 0o755); err != nil {
		return fmt.Errorf("write attributes override: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(attributesOverride), 0o644); err != nil {
		return fmt.Errorf("write attributes override: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write attributes override: %w", err)
	}
	return nil
}

// Fetch brings every branch and tag of the remote into the mirror, forced
// (a force-pushed branch follows the remote) and pruned (deleted branches
// and tags disappear). A remote that cannot be contacted or read gives an
// error wrapping ErrUnreachable; a timeout wraps execx.ErrTimeout.
func (r *Repo) Fetch(ctx context.Context) error {
	unlock, err := lockDir(ctx, r.dir, true)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", redact(r.remote), err)
	}
	defer unlock()
	if err := fetch(ctx, r.git(), r.remote, mirrorRefspecs()); err != nil {
		return fmt.Errorf("fetch %s: %w", redact(r.remote), err)
	}
	return nil
}

func fetch(ctx context.Context, g runner, remote string, refspecs []string) error {
	args := []string{"fetch", "--prune", "--update-head-ok", "--no-write-fetch-head", "--no-recurse-submodules"}
	if g.opts.Output != nil {
		args = append(args, "--progress")
	} else {
		args = append(args, "--quiet")
	}
	// The URL itself rather than "origin": what is fetched cannot depend
	// on configuration someone else may have changed.
	args = append(args, "--end-of-options", remote)
	args = append(args, refspecs...)
	_, err := g.run(ctx, call{args: args, live: true})
	return classifyRemote(err)
}

// RemoteHead asks the remote, without fetching, which commit its branch
// points at. ErrRefNotFound if the branch does not exist there.
func (r *Repo) RemoteHead(ctx context.Context, branch string) (string, error) {
	if err := ValidateRef(branch); err != nil {
		return "", fmt.Errorf("remote head: %w", err)
	}
	return remoteHead(ctx, r.git(), r.remote, branch)
}

// LsRemote asks remote which commit its branch points at, as RemoteHead
// does, with no repository of fraisier's: git runs in "/" and reads no
// repository's configuration. It tells that a remote answers before
// anything was fetched from it (fraisier doctor).
func LsRemote(ctx context.Context, remote, branch string, opts Options) (string, error) {
	if err := ValidateRemote(remote); err != nil {
		return "", fmt.Errorf("remote head: %w", err)
	}
	if err := ValidateRef(branch); err != nil {
		return "", fmt.Errorf("remote head: %w", err)
	}
	return remoteHead(ctx, runner{gitDir: "/nonexistent/fraisier-no-repository", opts: opts}, remote, branch)
}

func remoteHead(ctx context.Context, g runner, remote, branch string) (string, error) {
	ref := "refs/heads/" + strings.TrimPrefix(branch, "refs/heads/")
	out, err := g.run(ctx, call{dir: "/", args: []string{"ls-remote", "--heads", "--end-of-options", remote, ref}})
	if err != nil {
		return "", fmt.Errorf("remote head %s of %s: %w", branch, redact(remote), classifyRemote(err))
	}
	// Patterns match on whole trailing components, so refs/heads/x/main
	// may come back for main too: take only the exact name.
	for _, line := range strings.Split(out, "\n") {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && name == ref && IsSHA(sha) {
			return sha, nil
		}
	}
	return "", fmt.Errorf("remote head %s of %s: %w", branch, redact(remote), ErrRefNotFound)
}
