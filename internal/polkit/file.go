package polkit

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteRule installs a rule at path (mode 0644) unless the file holds
// exactly content already, and reports whether it changed. polkitd
// rereads its rules when a file in its directories changes, so an
// unchanged rule is not rewritten. The file is replaced atomically,
// through a hidden temporary file whose name does not end in ".rules"
// (polkitd reads only those): polkitd never reads half a rule, and a
// failure leaves the old rule in place. The directory must exist: it is
// polkit's, and missing means polkit is not installed.
func WriteRule(path string, content []byte) (changed bool, err error) {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, content) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read the installed rule %s: %w", path, err)
	}
	if err := replaceFile(path, content, 0o644); err != nil {
		return false, fmt.Errorf("write the rule %s: %w", path, err)
	}
	return true, nil
}

// replaceFile writes content through a temporary file in path's directory
// and renames it into place, syncing the file and the directory, so that
// a crash leaves the old file or the new one.
func replaceFile(path string, content []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	// Chmod, not CreateTemp's 0600 under the umask: polkitd runs as its
	// own user and must read the file.
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(content); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
