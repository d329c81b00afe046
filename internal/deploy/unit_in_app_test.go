package deploy

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestUserRefusesUnitFilesInApp: with user: set, the release belongs to
// that user, and so does a unit file or drop-in that systemd reads from
// it: the user adds ExecStartPre=+… and systemd runs it with its own
// rights at the next daemon-reload and restart, which fraisier triggers.
// Such a deployment fails before the switch, while the old release
// serves, and says to install the unit under /etc/systemd/system; the
// line the install (as nobody) appends must never run.
func TestUserRefusesUnitFilesInApp(t *testing.T) {
	if _, err := user.LookupId("65534"); err != nil {
		testenv.Unavailable(t, "no user 65534 on this host")
	}
	for _, tc := range []struct {
		name string
		// link is where the unit directory links to the release, and
		// file the file in the release it links to.
		link func(f *fixture) string
		file string
	}{
		{"unit file", func(f *fixture) string { return filepath.Join(f.mgr.UnitDir, f.unit) }, "hello.service"},
		{"drop-in", func(f *fixture) string { return filepath.Join(f.mgr.UnitDir, f.unit+".d", "50-release.conf") }, "unit.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "")
			root := filepath.Dir(filepath.Dir(f.app))
			// The user must be able to reach its release.
			for _, dir := range []string{filepath.Dir(root), root} {
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(root, "out")
			mkdirOwned(t, out, 0, 0o777)
			marker := filepath.Join(out, "ran-as")
			bin := testenv.BuildHTTPApp(t)
			serve := fmt.Sprintf("ExecStart=%s -addr 127.0.0.1:%d -dir %s\n", bin, f.port, filepath.Join(f.app, currentLink))
			files := map[string]string{
				"hello.service": "[Unit]\nDescription=fraisier test app\n[Service]\n" + serve + "Restart=no\n",
				"unit.conf":     "[Service]\nExecStart=\n" + serve,
			}
			f.push("healthy", files)
			f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
			// Without user:, the unit's files may live in the release: the
			// release is fraisier's own.
			link := tc.link(f)
			os.Remove(link)
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(f.app, currentLink, tc.file), link); err != nil {
				t.Fatal(err)
			}
			f.mgr.MustSystemctl(t, "daemon-reload")
			f.expect(f.deploy(Request{Force: true}), store.StatusSucceeded, "v1")

			// The operator hands the commands to nobody; its install
			// appends to the unit's file in the new release.
			env, err := f.cfg.Lookup("hello", "production")
			if err != nil {
				t.Fatal(err)
			}
			env.User = "nobody"
			env.Install = &config.Command{Argv: []string{"sh", "-c",
				fmt.Sprintf(`printf '\nExecStartPre=/bin/sh -c "id -u > %s"\n' >> %s`, marker, tc.file)}}
			f.push("healthy", files)
			res := f.deploy(Request{})
			if b, err := os.ReadFile(marker); err == nil {
				t.Fatalf("the line nobody wrote in the unit's %s ran as uid %s", tc.file, strings.TrimSpace(string(b)))
			}
			f.expect(res, store.StatusFailed, "v1")
			t.Logf("refused: %v", res.Err)
			for _, want := range []string{f.unit, filepath.Join(f.app, "releases"), "user: nobody", "/etc/systemd/system"} {
				if !strings.Contains(res.Err.Error(), want) {
					t.Errorf("error %q does not say %q", res.Err, want)
				}
			}
		})
	}
}

// TestUnitFilesInAppRefusedBeforeReload: a drop-in linked from the
// release since systemd last reloaded is refused before the reload that
// would load it. Checked after the reload, it would stay loaded, and the
// next restart by anyone (Restart=on-failure included) would run the
// release's line with systemd's rights.
func TestUnitFilesInAppRefusedBeforeReload(t *testing.T) {
	if _, err := user.LookupId("65534"); err != nil {
		testenv.Unavailable(t, "no user 65534 on this host")
	}
	f := newFixture(t, "")
	root := filepath.Dir(filepath.Dir(f.app))
	for _, dir := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"unit.conf": "[Service]\nEnvironment=FROM_RELEASE=1\n"}
	f.push("healthy", files)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")

	link := filepath.Join(f.mgr.UnitDir, f.unit+".d", "50-release.conf")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(f.app, currentLink, "unit.conf"), link); err != nil {
		t.Fatal(err)
	}
	env, err := f.cfg.Lookup("hello", "production")
	if err != nil {
		t.Fatal(err)
	}
	env.User = "nobody"
	f.push("healthy", files)
	res := f.deploy(Request{})
	f.expect(res, store.StatusFailed, "v1")
	if res.Err == nil || !strings.Contains(res.Err.Error(), link) {
		t.Errorf("refusal %v does not name %s", res.Err, link)
	}
	if got := f.mgr.MustSystemctl(t, "show", "-P", "DropInPaths", f.unit); strings.Contains(got, "50-release.conf") {
		t.Fatalf("systemd loaded the release's drop-in before the refusal: DropInPaths=%s", got)
	}
}
