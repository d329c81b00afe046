package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
)

// The releases layout, as Capistrano and Deployer users know it:
//
//	app_path/
//	  current -> releases/20261125T101500Z-1a2b3c4d   (symlink, switched atomically)
//	  releases/<UTC timestamp>-<short sha>/             (one directory per release)
//	  shared/                                           (files linked into every release)
//
// fraisier's git mirror is not there but in its own state directory (see
// mirrorPath). Every change below app_path goes through an os.Root opened
// on it: a symlink planted on the way cannot lead a write or a removal
// out of the tree.
const (
	currentLink = "current"
	releasesDir = "releases"
	sharedDir   = "shared"
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
// is no current link yet. A current that is not a symlink to
// releases/<name> is refused (readCurrent).
func currentRelease(appPath string) (string, error) {
	return readCurrent(appPath)
}

// openApp opens app_path as an os.Root, for the operations that change
// what is in it.
func openApp(appPath string) (*os.Root, error) {
	root, err := os.OpenRoot(appPath)
	if err != nil {
		return nil, fmt.Errorf("open app_path: %w", err)
	}
	return root, nil
}

// switchCurrent points current at release atomically: a new symlink is made
// beside it and renamed over the old one, so that at every instant current
// names either the old release or the new one, never nothing.
func switchCurrent(appPath, release string) error {
	if !isPlainName(release) {
		return fmt.Errorf("switch: bad release name %q", release)
	}
	root, err := openApp(appPath)
	if err != nil {
		return fmt.Errorf("switch to %s: %w", release, err)
	}
	defer root.Close()
	target := releasesDir + "/" + release
	if fi, err := root.Lstat(target); err != nil {
		return fmt.Errorf("switch to %s: %w", release, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("switch to %s: %s is not a directory", release, target)
	}
	tmp := fmt.Sprintf(".%s.%d", currentLink, os.Getpid())
	_ = root.Remove(tmp)
	// Relative, so that the tree can be moved or inspected from a container.
	if err := root.Symlink(target, tmp); err != nil {
		return fmt.Errorf("switch to %s: %w", release, err)
	}
	if err := root.Rename(tmp, currentLink); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("switch to %s: %w", release, err)
	}
	if err := syncDir(root); err != nil {
		return fmt.Errorf("switch to %s: make the switch durable: %w", release, err)
	}
	return nil
}

// removeCurrent undoes a first deployment's switch: there was no current
// before it, and there is none after.
func removeCurrent(appPath string) error {
	root, err := openApp(appPath)
	if err != nil {
		return fmt.Errorf("remove current: %w", err)
	}
	defer root.Close()
	if err := root.Remove(currentLink); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove current: %w", err)
	}
	if err := syncDir(root); err != nil {
		return fmt.Errorf("remove current: make the removal durable: %w", err)
	}
	return nil
}

// syncDir makes a rename in root's directory durable before we report it
// done.
func syncDir(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("open app_path to sync it: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync app_path: %w", err)
	}
	return nil
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
// real one). It works through an os.Root on the release: the commit decides
// what the release contains, and a committed symlink on the way (config ->
// /etc) must not carry the removal and the link outside it.
func linkShared(appPath, releasePath string, shared []string) error {
	root, err := os.OpenRoot(releasePath)
	if err != nil {
		return fmt.Errorf("link shared entries: %w", err)
	}
	defer root.Close()
	for _, s := range shared {
		rel := filepath.Clean(s)
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("link shared %s: escapes the release", s)
		}
		if dir := filepath.Dir(rel); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("link shared %s: make %s in the release (do its own symlinks lead outside it?): %w", s, dir, err)
			}
		}
		if err := root.RemoveAll(rel); err != nil {
			return fmt.Errorf("link shared %s: %w", s, err)
		}
		if err := root.Symlink(filepath.Join(appPath, sharedDir, s), rel); err != nil {
			return fmt.Errorf("link shared %s: %w", s, err)
		}
	}
	return nil
}

// prepareReleaseDir makes app_path and its releases/ when a first
// deployment finds them missing, and clears the way for release: a
// directory of that name left by a deployment that died is removed, and
// leftover says so. git's export then writes into releases/, a real
// directory of fraisier's. checkAppTree checked the tree when the
// deployment began, up to the first name missing; another user who can
// write where that name goes (a sticky /tmp) may have made it since, so
// what is made, or found made, is checked again before anything is
// written in it.
func prepareReleaseDir(appPath, release string) (leftover bool, err error) {
	euid := os.Geteuid()
	if err := os.MkdirAll(appPath, 0o755); err != nil {
		return false, fmt.Errorf("create app_path: %w", err)
	}
	if err := checkAppTree(appPath, euid, config.LayoutReleases); err != nil {
		return false, err
	}
	root, err := openApp(appPath)
	if err != nil {
		return false, err
	}
	defer root.Close()
	if err := root.Mkdir(releasesDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("create releases directory: %w", err)
	}
	dir := filepath.Join(appPath, releasesDir)
	if _, err := checkOwnDir(dir, euid, "releases directory", giveBack(euid, dir)); err != nil {
		return false, err
	}
	name := releasesDir + "/" + release
	if _, err := root.Lstat(name); err != nil {
		return false, nil
	}
	if err := root.RemoveAll(name); err != nil {
		return true, fmt.Errorf("remove leftover release %s: %w", release, err)
	}
	return true, nil
}

// removeRelease removes a release that failed before the switch.
func removeRelease(appPath, release string) error {
	if !isPlainName(release) {
		return fmt.Errorf("remove release: bad name %q", release)
	}
	root, err := openApp(appPath)
	if err != nil {
		return fmt.Errorf("remove release %s: %w", release, err)
	}
	defer root.Close()
	if err := root.RemoveAll(releasesDir + "/" + release); err != nil {
		return fmt.Errorf("remove release %s: %w", release, err)
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
		if e.IsDir() && isPlainName(e.Name()) {
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
	excess := len(names) - keep
	if excess <= 0 {
		return nil, nil
	}
	root, err := openApp(appPath)
	if err != nil {
		return nil, fmt.Errorf("prune releases: %w", err)
	}
	defer root.Close()
	var removed []string
	for _, n := range names {
		if excess <= 0 {
			break
		}
		if keepSet[n] {
			continue
		}
		if err := root.RemoveAll(releasesDir + "/" + n); err != nil {
			return removed, fmt.Errorf("prune release %s: %w", n, err)
		}
		removed = append(removed, n)
		excess--
	}
	return removed, nil
}
