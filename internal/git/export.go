package git

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Export writes the exact tree of commit sha (a full SHA) into dest, a
// directory that must not exist yet (its parent must, as a directory, not
// a symlink: the caller made and checked it): files with their executable bits,
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
	if fi, err := os.Lstat(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("export %s to %s: %w", sha, dest, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("export %s to %s: %s is not a directory (a symlink is not followed)", sha, dest, filepath.Dir(dest))
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

	// A throwaway index: the mirror's own is not touched, and concurrent
	// exports do not share one.
	indexDir, err := os.MkdirTemp("", "fraisier-index-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(indexDir)
	g.index = filepath.Join(indexDir, "index")

	err = buildBeside(dest, func(tmp string) error {
		g.workTree = tmp
		// The index is read back for gitlinks below, which saves listing
		// the tree in another git process; it must be one file (not split).
		if _, err := g.run(ctx, call{args: []string{"read-tree", "--reset", "-u", sha}, dir: tmp,
			config: []string{"-c", "core.splitIndex=false"}}); err != nil {
			// git reports a full disk as "unable to write file X" and
			// drops the errno; say what the user needs to know while tmp
			// still holds what filled it.
			if full(tmp) {
				return fmt.Errorf("check out tree: no space left on device under %s: %w", filepath.Dir(dest), classifyRevision(err))
			}
			return fmt.Errorf("check out tree: %w", classifyRevision(err))
		}
		// A gitlink was checked out as an empty directory, which would
		// deploy an application with a hole in it; tmp is removed.
		gitlink, err := indexGitlink(g.index, sha)
		if err != nil {
			return fmt.Errorf("read index: %w", err)
		}
		if gitlink != "" {
			return fmt.Errorf("%s is a submodule: %w", gitlink, ErrSubmodules)
		}
		return nil
	})
	if errors.Is(err, errDestTaken) {
		return fs.ErrExist
	}
	return err
}

// errDestTaken: something stood at the destination when buildBeside
// renamed its directory there.
var errDestTaken = errors.New("destination taken")

// buildBeside makes the directory dest appear complete or not at all:
// fill writes a new directory beside dest (on the same filesystem, so that
// the rename is atomic), which is made 0755 (read by the service's user)
// and renamed to dest. The new directory is removed when anything fails;
// errDestTaken when dest exists by then, a directory not empty or a file.
func buildBeside(dest string, fill func(tmp string) error) error {
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
	if err := fill(tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// os.Rename refuses an existing dest, even an empty directory.
	if err := os.Rename(tmp, dest); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTDIR) {
			return errDestTaken
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
		sc := nulScanner(f)
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

// indexGitlink returns the path of the first gitlink (mode 160000) in the
// index file at path, written by git for commit sha (whose length gives
// the hash size), or "" when there is none. Versions 2 to 4 of the index
// format are read; a split or sparse index is an error, never "".
func indexGitlink(path, sha string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	hashLen := len(sha) / 2
	if len(b) < 12 || string(b[:4]) != "DIRC" {
		return "", errors.New("not an index file")
	}
	version := binary.BigEndian.Uint32(b[4:8])
	if version < 2 || version > 4 {
		return "", fmt.Errorf("index version %d", version)
	}
	count := binary.BigEndian.Uint32(b[8:12])
	const statLen = 40 // ctime, mtime, dev, ino, mode, uid, gid, size
	off := 12
	var name []byte // previous name, for version 4's prefix compression
	for range count {
		start := off
		fixed := statLen + hashLen + 2
		if off+fixed > len(b) {
			return "", errors.New("index truncated")
		}
		mode := binary.BigEndian.Uint32(b[off+24 : off+28])
		flags := binary.BigEndian.Uint16(b[off+statLen+hashLen:])
		off += fixed
		if version >= 3 && flags&0x4000 != 0 {
			off += 2
			fixed += 2
		}
		if version == 4 {
			strip, n := indexVarint(b[off:])
			if n == 0 || strip > uint64(len(name)) {
				return "", errors.New("index entry name")
			}
			off += n
			end := bytes.IndexByte(b[off:], 0)
			if end < 0 {
				return "", errors.New("index truncated")
			}
			name = append(name[:uint64(len(name))-strip], b[off:off+end]...)
			off += end + 1
		} else {
			end := bytes.IndexByte(b[off:], 0)
			if end < 0 {
				return "", errors.New("index truncated")
			}
			name = append(name[:0], b[off:off+end]...)
			// NUL padding to a multiple of 8, at least one byte.
			off = start + (fixed+end+8)&^7
		}
		if mode&0o170000 == 0o160000 {
			return string(name), nil
		}
	}
	// Extensions, then the checksum. A split index keeps entries in
	// another file, and a sparse one has directories for entries: either
	// would hide a gitlink, so neither is trusted.
	for off+8 <= len(b)-hashLen {
		sig := string(b[off : off+4])
		if sig == "link" || sig == "sdir" {
			return "", fmt.Errorf("index has a %q extension", sig)
		}
		off += 8 + int(binary.BigEndian.Uint32(b[off+4:off+8]))
	}
	if off != len(b)-hashLen {
		return "", errors.New("index truncated")
	}
	return "", nil
}

// indexVarint decodes git's offset varint (varint.c); n is 0 on bad input.
func indexVarint(b []byte) (val uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	c := b[0]
	val = uint64(c & 127)
	n = 1
	for c&128 != 0 {
		if n >= len(b) || val >= 1<<56 {
			return 0, 0
		}
		val++
		c = b[n]
		n++
		val = val<<7 + uint64(c&127)
	}
	return val, n
}

// full reports whether the filesystem holding dir is out of room for this
// process (root may use the reserved blocks): under a megabyte free, where
// the write that failed needed more, or no inode left.
func full(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	free := st.Bavail
	if os.Geteuid() == 0 {
		free = st.Bfree
	}
	return free*uint64(st.Bsize) < 1<<20 || (st.Files > 0 && st.Ffree == 0)
}
