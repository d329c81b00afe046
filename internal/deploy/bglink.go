package deploy

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

	"github.com/fraiseql/fraisier/internal/config"
)

// linkProxy switches traffic without touching the proxy: the proxy dials
// one unix socket path, blue_green.link, a symlink that fraisier points at
// the serving colour's socket. connect(2) follows the link at every new
// connection, so the switch is the rename of a new link over the old one,
// atomic, and no proxy reloads (a Caddy reload resets a few connections).
type linkProxy struct {
	bg   *config.BlueGreen
	euid int
}

// linkTarget is a colour's address as the link names it: its socket path.
func linkTarget(addr string) string {
	p, _ := strings.CutPrefix(addr, "unix:")
	return p
}

func (p *linkProxy) read(context.Context) (proxyState, error) {
	if err := checkLinkDir(p.bg.Link, p.euid); err != nil {
		return proxyState{}, err
	}
	return readLink(p.bg)
}

// readLink says which colour's socket the link names: none when there is
// no link (nothing served through it yet); anything but a symlink to one
// of the two sockets is refused, since fraisier would not know what it
// replaces.
func readLink(bg *config.BlueGreen) (proxyState, error) {
	fi, err := os.Lstat(bg.Link)
	if errors.Is(err, fs.ErrNotExist) {
		return proxyState{}, nil
	}
	if err != nil {
		return proxyState{}, fmt.Errorf("link: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return proxyState{}, &treeProblem{bg.Link, "(blue_green.link) is not a symlink (" + fi.Mode().Type().String() + ")",
			"fraisier points a symlink there at the serving colour's socket; move it away and deploy"}
	}
	target, err := os.Readlink(bg.Link)
	if err != nil {
		return proxyState{}, fmt.Errorf("link: %w", err)
	}
	s := proxyState{colour: colourOf(bg, target, linkTarget), raw: []byte(target), exists: true}
	if s.colour == "" {
		return proxyState{}, &treeProblem{bg.Link, fmt.Sprintf("(blue_green.link) points at %s, not at blue's socket %s or green's %s", target, linkTarget(bg.Blue), linkTarget(bg.Green)),
			fmt.Sprintf("point it at the colour that serves (ln -sfn %s %s) or remove it", linkTarget(bg.Blue), bg.Link)}
	}
	return s, nil
}

func (p *linkProxy) point(_ context.Context, colour string, out io.Writer) error {
	if err := checkLinkDir(p.bg.Link, p.euid); err != nil {
		return err
	}
	target := linkTarget(p.bg.Address(colour))
	if err := swapLink(p.bg.Link, target); err != nil {
		return err
	}
	fmt.Fprintf(out, "link %s → %s (%s)\n", p.bg.Link, target, colour)
	return nil
}

func (p *linkProxy) restore(_ context.Context, s proxyState, out io.Writer) error {
	if err := checkLinkDir(p.bg.Link, p.euid); err != nil {
		return err
	}
	if now, err := os.Readlink(p.bg.Link); s.exists && err == nil && now == string(s.raw) {
		fmt.Fprintf(out, "link %s is as it was\n", p.bg.Link)
		return nil
	}
	if s.exists {
		if err := swapLink(p.bg.Link, string(s.raw)); err != nil {
			return err
		}
		fmt.Fprintf(out, "link %s put back → %s\n", p.bg.Link, s.raw)
		return nil
	}
	// There was none: remove the one this deployment made, and only a
	// symlink, whatever else now stands there.
	if fi, err := os.Lstat(p.bg.Link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	root, err := os.OpenRoot(filepath.Dir(p.bg.Link))
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	defer root.Close()
	if err := root.Remove(filepath.Base(p.bg.Link)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("link: remove %s: %w", p.bg.Link, err)
	}
	fmt.Fprintf(out, "link %s removed, as there was none\n", p.bg.Link)
	return syncRoot(root, p.bg.Link)
}

// swapLink points link at target atomically: a new symlink beside it under
// a temporary name, renamed over it (rename(2) replaces it whole, so every
// connect sees the old target or the new one, never nothing), and the
// directory synced. It works through the directory opened once, so a
// directory swapped for another on the way is not followed.
func swapLink(link, target string) error {
	root, err := os.OpenRoot(filepath.Dir(link))
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	defer root.Close()
	name := filepath.Base(link)
	tmp := fmt.Sprintf(".%s.%d", name, os.Getpid())
	_ = root.Remove(tmp)
	if err := root.Symlink(target, tmp); err != nil {
		return fmt.Errorf("link: point %s at %s: %w", link, target, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("link: point %s at %s: %w", link, target, err)
	}
	return syncRoot(root, link)
}

// syncRoot makes a link's change in the directory root durable.
func syncRoot(root *os.Root, link string) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("link: open %s to sync it: %w", filepath.Dir(link), err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("link: sync %s: %w", filepath.Dir(link), err)
	}
	return nil
}

// checkLinkDir refuses a link whose directory another user could write:
// whoever can put a symlink there sends the app's traffic wherever it
// likes. The directories above it must be root's or fraisier's and not
// writable by others (checkAncestors); the directory itself must exist,
// be a real directory of fraisier's user, and writable by no one else.
func checkLinkDir(link string, euid int) error {
	dir := filepath.Dir(link)
	me := accountName(uint32(euid))
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &treeProblem{"blue_green.link's directory " + dir, "does not exist",
			fmt.Sprintf("create it, owned by %s and writable by it alone (install -d -o %s -m 0755 %s; under /run, a tmpfiles.d line: d %s 0755 %s - -)", me, ownerName(euid), dir, dir, ownerName(euid))}
	case err != nil:
		return fmt.Errorf("check blue_green.link's directory %s: %w", dir, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return &treeProblem{"blue_green.link's directory " + dir, "is a symlink", "name the real directory in blue_green.link"}
	case !fi.IsDir():
		return &treeProblem{"blue_green.link's directory " + dir, "is not a directory", ""}
	case int(ownerOf(fi)) != euid:
		return &treeProblem{"blue_green.link's directory " + dir, fmt.Sprintf("is owned by %s, not by fraisier's %s", accountName(ownerOf(fi)), me),
			fmt.Sprintf("its owner could plant a link that sends the traffic elsewhere, and fraisier must write it: chown %s %s", ownerName(euid), dir)}
	case writableBy(fi.Mode()) != "":
		return &treeProblem{"blue_green.link's directory " + dir, fmt.Sprintf("is writable by %s (mode %04o)", writableBy(fi.Mode()), fi.Mode().Perm()),
			"they could plant a link that sends the traffic elsewhere: chmod go-w " + dir}
	}
	return checkAncestors(dir, euid, "blue_green.link's directory")
}

// checkLinkOf refuses, before a deployment changes anything, an
// environment whose blue_green.link fraisier could not trust: its
// directory writable by another user, or a link there that is not a
// symlink to one of the colours' sockets.
func checkLinkOf(env *config.Environment, euid int) error {
	if !env.IsBlueGreen() || env.BlueGreen.Link == "" {
		return nil
	}
	if err := checkLinkDir(env.BlueGreen.Link, euid); err != nil {
		return err
	}
	_, err := readLink(env.BlueGreen)
	return err
}

// checkLinkSetup is doctor's look at a link environment, changing nothing:
// fraisier can write the link's directory and the proxy's user can search
// it; each colour's socket is in a directory the proxy can search, and is
// a socket when it exists; the serving colour's socket exists. s is what
// read found. It says what it checked.
func checkLinkSetup(bg *config.BlueGreen, s proxyState) (string, error) {
	dir := filepath.Dir(bg.Link)
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return "", fmt.Errorf("link: cannot write blue_green.link's directory %s: %w", dir, err)
	}
	if err := searchable(dir, "blue_green.link's directory"); err != nil {
		return "", err
	}
	for _, c := range []string{colourBlue, colourGreen} {
		sock := linkTarget(bg.Address(c))
		if err := searchable(filepath.Dir(sock), c+"'s socket directory"); err != nil {
			return "", err
		}
		fi, err := os.Lstat(sock)
		switch {
		case errors.Is(err, fs.ErrNotExist) && c == s.colour:
			return "", fmt.Errorf("link: %s serves but its socket %s does not exist: the proxy fails every request (is %s running?)", c, sock, bg.Instance(c))
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", fmt.Errorf("link: %s's socket: %w", c, err)
		case fi.Mode().Type() != fs.ModeSocket:
			return "", fmt.Errorf("link: %s's socket %s is not a socket (%s)", c, sock, fi.Mode().Type())
		}
	}
	return fmt.Sprintf("link directory %s is fraisier's alone; sockets %s and %s are reachable", dir, linkTarget(bg.Blue), linkTarget(bg.Green)), nil
}

// searchable refuses a directory the proxy, running as another user,
// cannot look names up in (no x for its group or others).
func searchable(dir, role string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("link: %s %s does not exist", role, dir)
	case err != nil:
		return fmt.Errorf("link: %s: %w", role, err)
	case !fi.IsDir():
		return fmt.Errorf("link: %s %s is not a directory", role, dir)
	case fi.Mode().Perm()&0o011 == 0:
		return fmt.Errorf("link: %s %s (mode %04o) cannot be searched by the proxy's user: chmod o+x (or g+x, the proxy in its group) %s", role, dir, fi.Mode().Perm(), dir)
	}
	return nil
}
