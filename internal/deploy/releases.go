package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The releases layout, as Capistrano and Deployer users know it:
//
//	app_path/
//	  current -> releases/20261125T101500Z-1a2b3c4d   (symlink, switched atomically)
//	  releases/<UTC timestamp>-<short sha>/             (one directory per release)
//	  shared/                                           (files linked into every release)
//	  repo/                                             (fraisier's git mirror)
const (
	currentLink = "current"
	releasesDir = "releases"
	sharedDir   = "shared"
	mirrorDir   = "repo"
)

// releaseName names a release by when it was made and what it holds, so
// that names sort by age and say what they contain.
func releaseName(now time.Time, sha string) string {
	short := sha
	if len(short) > 8 {
		short = short[:8]
	}
	// Milliseconds: two deployments in one second (a --force right after
	// a deploy, a quick rollback and redeploy) must not collide, and names
	// must still sort by age.
	return now.UTC().Format("20060102T150405.000Z") + "-" + short
}

// currentRelease returns the release that current points at, "" when there
// is no current link yet.
func currentRelease(appPath string) (string, error) {
	target, err := os.Readlink(filepath.Join(appPath, currentLink))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current release: %w", err)
	}
	return filepath.Base(target), nil
}

// switchCurrent points current at release atomically: a new symlink is made
// beside it and renamed over the old one, so that at every instant current
// names either the old release or the new one, never nothing.
func switchCurrent(appPath, release string) error {
	if release == "" {
		return errors.New("switch: empty release name")
	}
	if _, err := os.Stat(filepath.Join(appPath, releasesDir, release)); err != nil {
		return fmt.Errorf("switch to %s: %w", release, err)
	}
	tmp := filepath.Join(appPath, fmt.Sprintf(".%s.%d", currentLink, os.Getpid()))
	_ = os.Remove(tmp)
	// Relative, so that the tree can be moved or inspected from a container.
	if err := os.Symlink(filepath.Join(releasesDir, release), tmp); err != nil {
		return fmt.Errorf("switch to %s: %w", release, err)
	}
	if err := os.Rename(tmp, filepath.Join(appPath, currentLink)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("switch to %s: %w", release, err)
	}
	return syncDir(appPath)
}

// removeCurrent undoes a first deployment's switch: there was no current
// before it, and there is none after.
func removeCurrent(appPath string) error {
	err := os.Remove(filepath.Join(appPath, currentLink))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove current: %w", err)
	}
	return syncDir(appPath)
}

// syncDir makes a rename in dir durable before we report it done.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// checkShared verifies, before anything changes, that every shared entry
// exists under app_path/shared: a missing .env found after the switch would
// take the service down.
func checkShared(appPath string, shared []string) error {
	var missing []string
	for _, s := range shared {
		if _, err := os.Lstat(filepath.Join(appPath, sharedDir, s)); err != nil {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("shared entries missing under %s: %s (create them before deploying)",
			filepath.Join(appPath, sharedDir), strings.Join(missing, ", "))
	}
	return nil
}

// linkShared links every shared entry into a release, replacing whatever the
// commit had at that path (a committed .env.example must not shadow the
// real one).
func linkShared(appPath, releasePath string, shared []string) error {
	for _, s := range shared {
		dst := filepath.Join(releasePath, s)
		if !strings.HasPrefix(dst, releasePath+string(filepath.Separator)) {
			return fmt.Errorf("link shared %s: escapes the release", s)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("link shared %s: %w", s, err)
		}
		// The commit decides what the release contains: a committed
		// symlink on the way (config -> /etc) must not carry RemoveAll and
		// Symlink outside the release.
		parent, err := filepath.EvalSymlinks(filepath.Dir(dst))
		if err != nil {
			return fmt.Errorf("link shared %s: %w", s, err)
		}
		root, err := filepath.EvalSymlinks(releasePath)
		if err != nil {
			return fmt.Errorf("link shared %s: %w", s, err)
		}
		if parent != root && !strings.HasPrefix(parent, root+string(filepath.Separator)) {
			return fmt.Errorf("link shared %s: the release's own symlinks lead outside it (%s)", s, parent)
		}
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("link shared %s: %w", s, err)
		}
		if err := os.Symlink(filepath.Join(appPath, sharedDir, s), dst); err != nil {
			return fmt.Errorf("link shared %s: %w", s, err)
		}
	}
	return nil
}

// listReleases returns release directory names, oldest first.
func listReleases(appPath string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(appPath, releasesDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// pruneReleases removes the oldest releases beyond keep, never one named in
// protect (the current release and the last good one).
func pruneReleases(appPath string, keep int, protect ...string) ([]string, error) {
	names, err := listReleases(appPath)
	if err != nil {
		return nil, err
	}
	keepSet := map[string]bool{}
	for _, p := range protect {
		if p != "" {
			keepSet[p] = true
		}
	}
	var removed []string
	excess := len(names) - keep
	for _, n := range names {
		if excess <= 0 {
			break
		}
		if keepSet[n] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(appPath, releasesDir, n)); err != nil {
			return removed, fmt.Errorf("prune release %s: %w", n, err)
		}
		removed = append(removed, n)
		excess--
	}
	return removed, nil
}
