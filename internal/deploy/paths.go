package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fraiseql/fraisier/internal/config"
)

// fraisier runs as root more often than not, and whoever can write a
// directory it works in can steer it: a git config it obeys, a symlink it
// follows when it writes a release or prunes old ones. So the directories
// of a deployment must be fraisier's own, in a path no other user can
// change, and each deployment checks it again before it changes anything:
// ownership is not a configuration, it can change between two deploys.

// mirrorsDir is the directory under the state directory that holds one git
// directory per environment (mirrorsDir/<fraise>/<environment>).
const mirrorsDir = "mirrors"

// treeProblem is a path a deployment refuses to work in; its message says
// which, why, and what to do about it.
type treeProblem struct {
	path string
	what string
	fix  string
}

func (p *treeProblem) Error() string {
	msg := p.path + " " + p.what
	if p.fix != "" {
		msg += ": " + p.fix
	}
	return msg
}

// accountName names a uid for messages: "uid 1001 (deploy)".
func accountName(uid uint32) string {
	s := "uid " + strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		s += " (" + u.Username + ")"
	}
	return s
}

// ownerOf is the uid that owns fi.
func ownerOf(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return ^uint32(0)
}

// writableBy says who besides the owner may write a directory of mode m:
// "its group", "others", or "" for no one.
func writableBy(m fs.FileMode) string {
	switch {
	case m.Perm()&0o002 != 0:
		return "others"
	case m.Perm()&0o020 != 0:
		return "its group"
	}
	return ""
}

// checkAncestors checks every directory that resolving path looks a name
// up in, symlinks followed: each must be owned by root or euid and not be
// writable by its group or others unless it is sticky (/tmp), since whoever
// can rename entries in one can put another tree in path's place. A
// symlink on the way is as trustworthy as the directory that holds it,
// which is checked; its target is walked in turn. The walk stops at the
// first name that does not exist: fraisier makes the rest itself.
func checkAncestors(path string, euid int, role string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s %s: not an absolute path", role, path)
	}
	check := func(dir string, fi fs.FileInfo) error {
		if uid := ownerOf(fi); uid != 0 && int(uid) != euid {
			return &treeProblem{dir, fmt.Sprintf("(above %s %s) is owned by %s", role, path, accountName(uid)),
				fmt.Sprintf("that user could put another directory in its place; chown root %s", dir)}
		}
		if who := writableBy(fi.Mode()); who != "" && fi.Mode()&fs.ModeSticky == 0 {
			return &treeProblem{dir, fmt.Sprintf("(above %s %s) is writable by %s (mode %04o)", role, path, who, fi.Mode().Perm()),
				fmt.Sprintf("they could put another directory in its place; chmod go-w %s", dir)}
		}
		return nil
	}
	fi, err := os.Lstat("/")
	if err != nil {
		return fmt.Errorf("check %s: %w", role, err)
	}
	if err := check("/", fi); err != nil {
		return err
	}
	dir := "/"
	rest := splitPath(filepath.Dir(filepath.Clean(path)))
	for links := 0; len(rest) > 0; {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			dir = filepath.Dir(dir)
			continue
		}
		next := filepath.Join(dir, name)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check %s %s: %w", role, path, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > 40 {
				return fmt.Errorf("check %s %s: too many levels of symbolic links", role, path)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("check %s %s: %w", role, path, err)
			}
			if filepath.IsAbs(target) {
				dir = "/"
			}
			rest = append(splitPath(target), rest...)
			continue
		}
		if !fi.IsDir() {
			return &treeProblem{next, fmt.Sprintf("(above %s %s) is not a directory", role, path), ""}
		}
		if err := check(next, fi); err != nil {
			return err
		}
		dir = next
	}
	return nil
}

// splitPath is p's names, "." and empty ones dropped.
func splitPath(p string) []string {
	var names []string
	for _, n := range strings.Split(p, "/") {
		if n != "" && n != "." {
			names = append(names, n)
		}
	}
	return names
}

// checkOwnDir checks that dir, if it exists, is a directory (not a
// symlink) owned by euid and writable by no one else. role names it in
// messages ("app_path", "releases directory"); fix says what to do when
// another user owns it. It says whether dir exists.
func checkOwnDir(dir string, euid int, role string, fix func(owner string) string) (bool, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s %s: %w", role, dir, err)
	}
	me := accountName(uint32(euid))
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(dir)
		return true, &treeProblem{role + " " + dir, "is a symlink (to " + target + ")",
			"fraisier follows no symlink there; give it the real directory, owned by " + me}
	case !fi.IsDir():
		return true, &treeProblem{role + " " + dir, "is not a directory", ""}
	case int(ownerOf(fi)) != euid:
		owner := ownerOf(fi)
		return true, &treeProblem{role + " " + dir, fmt.Sprintf("is owned by %s, not by fraisier's %s", accountName(owner), me),
			fmt.Sprintf("whoever owns it can make fraisier run their code as %s; %s", me, fix(ownerName(int(owner))))}
	case writableBy(fi.Mode()) != "":
		return true, &treeProblem{role + " " + dir, fmt.Sprintf("is writable by %s (mode %04o)", writableBy(fi.Mode()), fi.Mode().Perm()),
			"chmod go-w " + dir}
	}
	return true, nil
}

// removeIt is the fix for a git directory of someone else's: fraisier
// makes and fetches its mirrors again by itself.
func removeIt(dir string) func(string) string {
	return func(string) string { return "remove it (rm -r " + dir + "); fraisier clones it again" }
}

// ownerName is how chown is told euid: its name, else the number.
func ownerName(euid int) string {
	if u, err := user.LookupId(strconv.Itoa(euid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(euid)
}

// isPlainName says whether name is one directory entry of fraisier's own
// naming: no separator, not . or .., not hidden.
func isPlainName(name string) bool {
	return name != "" && !strings.ContainsRune(name, '/') && !strings.HasPrefix(name, ".")
}

// checkAppTree checks, before a deployment changes anything, the tree it
// works in: every ancestor of app_path (checkAncestors), app_path,
// releases/ and shared/ (checkOwnDir: they need not exist yet), and
// current, which must be a symlink to releases/<name>. The releases/
// entries themselves may belong to the environment's user: fraisier only
// switches to them and removes them, through os.Root.
func checkAppTree(appPath string, euid int, layout config.Layout) error {
	if err := checkAncestors(appPath, euid, "app_path"); err != nil {
		return err
	}
	if _, err := checkOwnDir(appPath, euid, "app_path", giveBack(euid, appPath)); err != nil {
		return err
	}
	if layout == config.LayoutInplace {
		return nil
	}
	for _, sub := range []string{releasesDir, sharedDir} {
		if _, err := checkOwnDir(filepath.Join(appPath, sub), euid, sub+" directory", giveBack(euid, filepath.Join(appPath, sub))); err != nil {
			return err
		}
	}
	_, err := readCurrent(appPath)
	return err
}

// giveBack is the fix for a directory of app_path's tree that another user
// owns. The usual cause is a deploy user given app_path so that it could
// run the install: user: runs the install as that user without handing it
// the tree.
func giveBack(euid int, dir string) func(string) string {
	return func(owner string) string {
		return fmt.Sprintf("chown -R %s %s, and set user: %s in the environment so that the commands of the code it deploys run as %s", ownerName(euid), dir, owner, owner)
	}
}

// readCurrent is the release current names, "" when there is no current
// link; anything but a symlink to releases/<plain name> is refused.
func readCurrent(appPath string) (string, error) {
	link := filepath.Join(appPath, currentLink)
	fi, err := os.Lstat(link)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current release: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return "", &treeProblem{link, "is not a symlink", "fraisier switches releases by pointing current at releases/<name>; move it away"}
	}
	target, err := os.Readlink(link)
	if err != nil {
		return "", fmt.Errorf("read current release: %w", err)
	}
	name, ok := strings.CutPrefix(target, releasesDir+"/")
	if !ok || !isPlainName(name) {
		return "", &treeProblem{link, "points at " + target + ", not at releases/<name>",
			"point it at a release in " + filepath.Join(appPath, releasesDir) + " (ln -sfn releases/<name> current) or remove it"}
	}
	return name, nil
}

// mirrorPath is fraisier's git directory for env: a bare mirror of its
// repository for the releases layout, the git directory of the checkout
// for inplace, both at <state dir>/mirrors/<fraise>/<environment>, never
// under app_path, where another user may write. create makes the
// directories on the way (0700); every one that exists is checked: the
// state directory's ancestors as app_path's are, the rest as fraisier's
// own, unreadable by others.
func mirrorPath(env *config.Environment, euid int, create bool) (string, error) {
	fraise, name := env.Target()
	if env.Fraise == nil || env.Fraise.Config == nil || env.Fraise.Config.State.Dir == "" {
		return "", fmt.Errorf("no state directory to keep the git mirror of %s/%s in (state.dir)", fraise, name)
	}
	state := env.Fraise.Config.State.Dir
	if !isPlainName(fraise) || !isPlainName(name) {
		return "", fmt.Errorf("git mirror of %s/%s: names must be plain directory names", fraise, name)
	}
	dir := filepath.Join(state, mirrorsDir, fraise, name)
	if err := checkAncestors(filepath.Join(state, mirrorsDir), euid, "the state directory's mirrors"); err != nil {
		return "", err
	}
	if create {
		if err := os.MkdirAll(state, 0o700); err != nil {
			return "", fmt.Errorf("create state directory: %w", err)
		}
	}
	for _, p := range []string{filepath.Join(state, mirrorsDir), filepath.Join(state, mirrorsDir, fraise), dir} {
		exists, err := checkOwnDir(p, euid, "git mirror directory", removeIt(p))
		if err != nil {
			return "", err
		}
		if exists || !create {
			continue
		}
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create git mirror directory: %w", err)
		}
		if _, err := checkOwnDir(p, euid, "git mirror directory", removeIt(p)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// checkTree is what every deployment and rollback starts with, before it
// reads anything under app_path: who the environment's commands run as
// (resolveAccount; for an environment sharing another's code, the account
// that code's environment runs as), blue_green.link (checkLinkOf), the tree it works in (checkAppTree;
// for an etl sharing another's code, that code's tree) and fraisier's git directory
// (mirrorPath, made if missing). An error refuses the deployment with
// nothing changed.
func (d *deployment) checkTree() error {
	euid := os.Geteuid()
	var err error
	if d.as, err = resolveAccount(d.env, euid, os.Getegid()); err != nil {
		return err
	}
	if err := d.as.supports(d.env); err != nil {
		return err
	}
	if err := checkLinkOf(d.env, euid); err != nil {
		return err
	}
	if d.env.SharesCodeWith != "" {
		if err := d.as.sameAs(d.env.Code, euid, os.Getegid()); err != nil {
			return err
		}
		return checkAppTree(d.appPath, euid, config.LayoutReleases)
	}
	if err := checkAppTree(d.appPath, euid, d.env.Layout); err != nil {
		return err
	}
	d.gitDir, err = mirrorPath(d.env, euid, true)
	return err
}
