package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// unitPath validates name and places it in the unit directory.
func (m *Manager) unitPath(name string) (string, error) {
	if err := ValidateUnitName(name); err != nil {
		return "", err
	}
	return filepath.Join(m.unitDir, name), nil
}

// WriteUnit writes a unit file (mode 0644) unless it already has exactly
// content, and reports whether it changed, so that callers reload the
// manager and restart only when something did. The file is replaced
// atomically: systemd never reads half a unit. The change takes effect at
// the next DaemonReload.
func (m *Manager) WriteUnit(name string, content []byte) (changed bool, err error) {
	path, err := m.unitPath(name)
	if err != nil {
		return false, fmt.Errorf("write unit: %w", err)
	}
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, content) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("write unit %s: %w", name, err)
	}
	if err := os.MkdirAll(m.unitDir, 0o755); err != nil {
		return false, fmt.Errorf("write unit %s: %w", name, err)
	}
	if err := ReplaceFile(path, content, 0o644); err != nil {
		return false, fmt.Errorf("write unit %s: %w", name, err)
	}
	return true, nil
}

// ReplaceFile writes a file a daemon rereads from its directory (systemd
// its units, polkitd its rules) through a hidden temporary file beside it,
// which neither loads (its name starts with "."), and renames it into
// place with mode, syncing file and directory: a crash leaves either the
// old file or the new one, and the daemon never reads half of one.
func ReplaceFile(path string, content []byte, mode os.FileMode) (err error) {
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
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RemoveUnit deletes a unit file and reports whether there was one. Stop
// and disable the unit first; DaemonReload afterwards.
func (m *Manager) RemoveUnit(name string) (removed bool, err error) {
	path, err := m.unitPath(name)
	if err != nil {
		return false, fmt.Errorf("remove unit: %w", err)
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("remove unit %s: %w", name, err)
	}
	if err := syncDir(m.unitDir); err != nil {
		return true, fmt.Errorf("remove unit %s: %w", name, err)
	}
	return true, nil
}

// ReadUnit returns the content of a unit file in the unit directory; an
// absent one is an error that wraps fs.ErrNotExist.
func (m *Manager) ReadUnit(name string) ([]byte, error) {
	path, err := m.unitPath(name)
	if err != nil {
		return nil, fmt.Errorf("read unit: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read unit %s: %w", name, err)
	}
	return b, nil
}
