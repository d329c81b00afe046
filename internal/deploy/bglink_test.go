package deploy

import (
	"bytes"
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// linkBG is a blue_green block switching by a link in dir/live, its
// colours' sockets in dir.
func linkBG(dir string) *config.BlueGreen {
	return &config.BlueGreen{Unit: "app@.service", Blue: "unix:" + filepath.Join(dir, "blue.sock"),
		Green: "unix:" + filepath.Join(dir, "green.sock"), Link: filepath.Join(dir, "live", "live.sock")}
}

// TestLinkSwitch points the link at each colour and back on a real
// directory: read names the colour, restore puts back exactly what was
// there (removing a link there was none of), and no temporary link is left.
func TestLinkSwitch(t *testing.T) {
	dir := t.TempDir()
	bg := linkBG(dir)
	if err := os.Mkdir(filepath.Dir(bg.Link), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := newProxy(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out bytes.Buffer
	none, err := p.read(ctx)
	if err != nil || none.exists || none.colour != "" {
		t.Fatalf("read with no link: %+v, %v; want nothing serving", none, err)
	}
	for _, step := range []struct {
		do   func() error
		want string // the colour read after it; "" for no link
	}{
		{func() error { return p.point(ctx, colourBlue, &out) }, colourBlue},
		{func() error { return p.point(ctx, colourGreen, &out) }, colourGreen},
		{func() error {
			return p.restore(ctx, proxyState{colour: colourBlue, raw: []byte(linkTarget(bg.Blue)), exists: true}, &out)
		}, colourBlue},
		{func() error { return p.restore(ctx, none, &out) }, ""},
		{func() error { return p.restore(ctx, none, &out) }, ""},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		s, err := p.read(ctx)
		if err != nil || s.colour != step.want {
			t.Fatalf("read: %+v, %v; want %q\n%s", s, err, step.want, out.String())
		}
		if target, err := os.Readlink(bg.Link); step.want != "" && (err != nil || target != linkTarget(bg.Address(step.want))) {
			t.Fatalf("link → %q, %v; want %s", target, err, linkTarget(bg.Address(step.want)))
		}
		entries, _ := os.ReadDir(filepath.Dir(bg.Link))
		if len(entries) > 1 {
			t.Fatalf("left in the link's directory: %v", entries)
		}
	}
}

// TestLinkRefused checks every link fraisier must not trust or replace:
// whoever could write its directory could plant one that sends the traffic
// elsewhere. Each is refused by read, point and the deployment's check
// before anything changes, with the path and the fix in the message, and
// point changes nothing.
func TestLinkRefused(t *testing.T) {
	dirCase := func(name string, setup func(t *testing.T, bg *config.BlueGreen), want ...string) linkCase {
		return linkCase{name, setup, true, want}
	}
	cases := []linkCase{
		dirCase("no directory", func(t *testing.T, bg *config.BlueGreen) {}, "does not exist", "install -d"),
		dirCase("directory group-writable", func(t *testing.T, bg *config.BlueGreen) { mkdirMode(t, filepath.Dir(bg.Link), 0o775) },
			"is writable by its group (mode 0775)", "plant a link", "chmod go-w"),
		dirCase("directory sticky and world-writable", func(t *testing.T, bg *config.BlueGreen) { mkdirMode(t, filepath.Dir(bg.Link), 0o777|os.ModeSticky) },
			"is writable by others", "plant a link"),
		dirCase("directory another user's", func(t *testing.T, bg *config.BlueGreen) {
			mkdirMode(t, filepath.Dir(bg.Link), 0o755)
			chownNobody(t, filepath.Dir(bg.Link))
		}, "is owned by uid", "chown"),
		dirCase("parent group-writable", func(t *testing.T, bg *config.BlueGreen) {
			if err := os.Chmod(filepath.Dir(filepath.Dir(bg.Link)), 0o775); err != nil {
				t.Fatal(err)
			}
			mkdirMode(t, filepath.Dir(bg.Link), 0o755)
		}, "is writable by its group", "put another directory in its place"),
		dirCase("directory a symlink", func(t *testing.T, bg *config.BlueGreen) {
			real := filepath.Join(filepath.Dir(filepath.Dir(bg.Link)), "real")
			mkdirMode(t, real, 0o755)
			if err := os.Symlink(real, filepath.Dir(bg.Link)); err != nil {
				t.Fatal(err)
			}
		}, "is a symlink"),
		// point would replace these; read, and the deployment's check
		// before anything changes, refuse them first.
		{"link elsewhere", func(t *testing.T, bg *config.BlueGreen) {
			mkdirMode(t, filepath.Dir(bg.Link), 0o755)
			if err := os.Symlink("/tmp/evil.sock", bg.Link); err != nil {
				t.Fatal(err)
			}
		}, false, []string{"points at /tmp/evil.sock, not at blue's socket", "ln -sfn"}},
		{"link a file", func(t *testing.T, bg *config.BlueGreen) {
			mkdirMode(t, filepath.Dir(bg.Link), 0o755)
			writeFile(t, bg.Link, "x")
		}, false, []string{"is not a symlink", "move it away"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bg := linkBG(t.TempDir())
			tc.setup(t, bg)
			before := lsLink(bg.Link)
			p, err := newProxy(bg, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, rerr := p.read(ctx)
			errs := map[string]error{"read": rerr, "check": checkLinkOf(&config.Environment{Restart: config.RestartBlueGreen, BlueGreen: bg}, os.Geteuid())}
			if tc.pointRefuses {
				var out bytes.Buffer
				errs["point"] = p.point(ctx, colourGreen, &out)
			}
			for what, err := range errs {
				if err == nil {
					t.Fatalf("%s accepted it", what)
				}
				for _, w := range append(tc.want, filepath.Dir(bg.Link)) {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %q does not say %q", what, err, w)
					}
				}
			}
			if after := lsLink(bg.Link); after != before {
				t.Fatalf("link changed: %s → %s", before, after)
			}
		})
	}
}

// linkCase is a link, or its directory, that fraisier refuses.
type linkCase struct {
	name  string
	setup func(t *testing.T, bg *config.BlueGreen)
	// pointRefuses: point refuses it too (the directory's problems).
	pointRefuses bool
	want         []string
}

// mkdirMode makes dir with exactly mode (whatever the umask).
func mkdirMode(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// chownNobody gives path to nobody: only root can, so another user's
// directory is tested only as root.
func chownNobody(t *testing.T, path string) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if os.Geteuid() != 0 || err != nil {
		testenv.Unavailable(t, "giving a directory to another user needs root and a user nobody")
	}
	uid, _ := strconv.Atoi(u.Uid)
	if err := os.Chown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
}

// lsLink is what stands at path: its type and, for a symlink, its target.
func lsLink(path string) string {
	fi, err := os.Lstat(path)
	if err != nil {
		return "nothing"
	}
	target, _ := os.Readlink(path)
	return fi.Mode().Type().String() + " " + target
}
