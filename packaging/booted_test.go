package packaging

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/fraiseql/fraisier/internal/testenv/nspawn"
)

// share is where the machine sees the package, the test app and the
// signer (read-only).
const share = "/mnt/fraisier"

// booted is a test's view of the machine: every step fails the test
// with the command's output.
type booted struct {
	t *testing.T
	m *nspawn.Machine
}

func (b booted) run(argv ...string) string {
	b.t.Helper()
	return b.m.MustRun(b.t, argv...)
}

// try runs argv and returns its output and whether it succeeded.
func (b booted) try(argv ...string) (string, bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := b.m.Run(ctx, argv...)
	return out, err == nil
}

func (b booted) as(user string, argv ...string) (string, bool) {
	b.t.Helper()
	return b.try(append([]string{"runuser", "-u", user, "--"}, argv...)...)
}

// write puts content at path in the machine, with mode.
func (b booted) write(path, content string, mode os.FileMode) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := b.m.RunInput(ctx, []byte(content), "install", "-D", "-m", fmt.Sprintf("%04o", mode), "/dev/stdin", path); err != nil {
		b.t.Fatalf("write %s: %v\n%s", path, err, out)
	}
}

// edit replaces old, which must be there, by new in the machine's file.
func (b booted) edit(path, old, new string) {
	b.t.Helper()
	text := b.run("cat", path)
	if !strings.Contains(text, old) {
		b.t.Fatalf("%s does not hold %q:\n%s", path, old, text)
	}
	b.write(path, strings.Replace(text, old, new, 1), 0o644)
}

func (b booted) exists(path string) bool {
	_, ok := b.try("test", "-e", path)
	return ok
}

// prepareShare builds what the machine runs besides its own tree.
func prepareShare(t *testing.T) string {
	dir := t.TempDir()
	deb := builtDeb(t)
	copyFile(t, deb, filepath.Join(dir, "fraisier.deb"))
	copyFile(t, testenv.BuildHTTPApp(t), filepath.Join(dir, "httpapp"))
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "pushsign"), "./testdata/pushsign")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pushsign: %v\n%s", err, out)
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestBootedInstall installs the package on a booted Debian system and
// deploys with it as a team would, in the system-units model: fraisier
// init writes the configuration and the secret, fraisier install polkit
// lets the unprivileged fraisier user restart only the app's unit, a
// signed push reaching fraisier.socket deploys, a failing commit rolls
// back, a unit file in the release is refused, and the package removes
// and purges cleanly.
func TestBootedInstall(t *testing.T) {
	dir := prepareShare(t)
	b := booted{t: t, m: nspawn.Boot(t, nspawn.Bind{Host: dir, Path: share, ReadOnly: true})}

	b.install()
	sha := b.makeOrigin()
	b.configure()

	t.Logf("fraisier doctor before the first deployment (exit 14 expected):\n%s", b.doctor(false))
	b.run("systemctl", "enable", "--now", "fraisier.service")
	if st := b.run("systemctl", "is-enabled", "fraisier.socket"); strings.TrimSpace(st) != "enabled" {
		t.Errorf("fraisier.socket is %q after enabling fraisier.service, want enabled (Also=)", strings.TrimSpace(st))
	}
	d := b.pushAndWait(sha, "succeeded")
	if got := b.appAnswer(); got != "v2" {
		t.Fatalf("app answers %q after deployment %d, want v2", got, d.ID)
	}
	if out := b.run("ps", "-o", "user=", "-C", "fraisier"); strings.TrimSpace(out) != "fraisier" {
		t.Errorf("serve runs as %q, want fraisier", out)
	}

	// Root's commands beside serve leave the state database serve's.
	b.run("fraisier", "status")
	if owners := b.run("sh", "-c", "stat -c '%n %U' /var/lib/fraisier/fraisier.db*"); strings.Contains(owners, " root") {
		t.Errorf("root's fraisier status left files serve cannot write:\n%s", owners)
	}

	b.polkitBoundary()
	b.rollsBack()
	b.refusesUnitInRelease()

	// Reload (ExecReload) keeps serve and reads the file again.
	pid := b.run("systemctl", "show", "-P", "MainPID", "fraisier.service")
	b.run("systemctl", "reload", "fraisier.service")
	if again := b.run("systemctl", "show", "-P", "MainPID", "fraisier.service"); again != pid {
		t.Errorf("reload restarted serve: main pid %s, then %s", pid, again)
	}
	t.Logf("fraisier doctor on the healthy host:\n%s", b.doctor(true))
	b.removeAndPurge()
}

// install installs the package and checks what it set up, and what it
// left for the administrator: nothing is enabled or started.
func (b booted) install() {
	b.t.Helper()
	out := b.run("dpkg", "-i", share+"/fraisier.deb")
	b.t.Logf("dpkg -i:\n%s", out)
	if got := b.run("id", "-un", "fraisier"); strings.TrimSpace(got) != "fraisier" {
		b.t.Fatalf("no user fraisier: %s", got)
	}
	for _, p := range []string{"/usr/bin/fraisier", "/usr/lib/systemd/system/fraisier.service", "/usr/lib/systemd/system/fraisier.socket", "/etc/fraisier/fraises.yaml", "/etc/fraisier/credentials"} {
		if !b.exists(p) {
			b.t.Errorf("%s is not installed", p)
		}
	}
	if st, _ := b.try("systemctl", "is-enabled", "fraisier.socket"); strings.TrimSpace(st) != "disabled" {
		b.t.Errorf("fraisier.socket is %q after install, want disabled until configured", strings.TrimSpace(st))
	}
	for dir, want := range map[string]string{"/etc/fraisier/credentials": "root fraisier 750", "/var/lib/fraisier": "fraisier fraisier 750"} {
		if got := b.run("stat", "-c", "%U %G %a", dir); strings.TrimSpace(got) != want {
			b.t.Errorf("%s is %q, want %s", dir, strings.TrimSpace(got), want)
		}
	}
}

// appFiles is a release of the app: the test HTTP service serving VERSION,
// started by the repository's own run script.
func appFiles(version string) map[string]string {
	return map[string]string{
		"VERSION": version + "\n",
		"run":     "#!/bin/sh\nexec " + share + "/httpapp -addr 127.0.0.1:8000 -dir .\n",
	}
}

// commit writes files in root's checkout, commits, pushes to the origin
// and returns the commit.
func (b booted) commit(msg string, files map[string]string) string {
	b.t.Helper()
	for name, content := range files {
		b.write("/root/shop/"+name, content, 0o755)
	}
	git := []string{"git", "-C", "/root/shop", "-c", "user.name=Dev", "-c", "user.email=dev@example.com"}
	b.run(append(git, "add", "-A")...)
	b.run(append(git, "commit", "-q", "-m", msg)...)
	b.run(append(git, "push", "-q", "/srv/git/shop.git", "HEAD:main")...)
	return strings.TrimSpace(b.run(append(git, "rev-parse", "HEAD")...))
}

// makeOrigin makes the forge's repository, a bare one on this machine
// owned by fraisier (git refuses a repository another user owns), and
// pushes v1, then v2, which the webhook will deploy.
func (b booted) makeOrigin() string {
	b.t.Helper()
	b.run("git", "init", "-q", "--bare", "-b", "main", "/srv/git/shop.git")
	// Root pushes to fraisier's repository (see commit).
	b.run("git", "config", "--global", "--add", "safe.directory", "/srv/git/shop.git")
	b.run("git", "init", "-q", "-b", "main", "/root/shop")
	b.commit("v1", appFiles("v1"))
	sha := b.commit("v2", appFiles("v2"))
	b.run("chown", "-R", "fraisier:fraisier", "/srv/git/shop.git")
	return sha
}
