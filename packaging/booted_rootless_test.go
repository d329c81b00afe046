package packaging

import (
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv/nspawn"
)

// TestBootedRootless follows the rootless model on a booted Debian with
// the package installed: the app runs under the fraisier user's own user
// manager (linger on), nothing is granted through polkit, and the
// fraisier user's commands by hand (doctor, rollback) work without root
// and without XDG_RUNTIME_DIR.
func TestBootedRootless(t *testing.T) {
	dir := prepareShare(t)
	b := booted{t: t, m: nspawn.Boot(t, nspawn.Bind{Host: dir, Path: share, ReadOnly: true})}
	b.install()
	sha := b.makeOrigin()

	b.run("loginctl", "enable-linger", "fraisier")
	uid := strings.TrimSpace(b.run("id", "-u", "fraisier"))
	b.waitActive("user@" + uid + ".service")

	out := b.run("fraisier", "init", "--forge", "github", "--scope", "user", "--write-unit", "--force",
		"-o", "/etc/fraisier/fraises.yaml", "file:///srv/git/shop.git")
	t.Logf("fraisier init --scope user:\n%s", out)
	b.edit("/etc/fraisier/fraises.yaml", "    forge: github\n", "    forge: github\n    repository: https://github.com/acme/shop.git\n")
	b.edit("/etc/fraisier/fraises.yaml", "unit: true   # better: url: http://127.0.0.1:PORT/health", "url: http://127.0.0.1:8000/health")
	// The app's unit, for every user manager (root writes it, fraisier's
	// manager reads it).
	b.run("install", "-D", "-m", "0644", "/etc/fraisier/shop.service", "/etc/systemd/user/shop.service")
	b.run("install", "-d", "-o", "fraisier", "-g", "fraisier", "/srv/shop")
	b.write("/etc/systemd/system/fraisier.service.d/rootless.conf", "[Service]\nReadWritePaths=/srv/shop\n"+
		"Environment=XDG_RUNTIME_DIR=/run/user/"+uid+"\nProtectHome=tmpfs\nBindPaths=/run/user/"+uid+"\n", 0o644)
	b.run("systemctl", "daemon-reload")
	b.run("runuser", "-u", "fraisier", "--", "env", "XDG_RUNTIME_DIR=/run/user/"+uid, "systemctl", "--user", "daemon-reload")

	b.run("systemctl", "enable", "--now", "fraisier.service")
	b.pushAndWait(sha, "succeeded")
	if got := b.appAnswer(); got != "v2" {
		t.Fatalf("app answers %q, want v2", got)
	}
	if got := strings.TrimSpace(b.run("ps", "-o", "user=", "-C", "httpapp")); got != "fraisier" {
		t.Errorf("the app runs as %q, want fraisier (its user manager)", got)
	}
	b.pushAndWait(b.commit("v3", appFiles("v3")), "succeeded")

	// By hand, as fraisier: no root, no XDG_RUNTIME_DIR, the same state
	// and secrets as serve.
	if out, ok := b.as("fraisier", "fraisier", "rollback", "shop", "production"); !ok {
		t.Fatalf("rollback as fraisier:\n%s", out)
	}
	if got := b.appAnswer(); got != "v2" {
		t.Errorf("app answers %q after the rollback, want v2", got)
	}
	if d := b.latest(); d.Status != "succeeded" || d.NewSHA != sha {
		t.Errorf("the rollback is recorded as %+v in serve's database, want it succeeded to %s", d, sha)
	}
	out, ok := b.as("fraisier", "fraisier", "doctor", "--no-color")
	t.Logf("fraisier doctor as fraisier (rootless):\n%s", out)
	if !ok {
		t.Errorf("doctor as fraisier fails on the working rootless host")
	}
	if out, ok := b.as("fraisier", "systemctl", "restart", "systemd-logind.service"); ok {
		t.Errorf("the fraisier user restarted a system unit with no polkit rule:\n%s", out)
	}
}

// waitActive waits until a unit of the machine's system manager is active.
func (b booted) waitActive(unit string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _ := b.try("systemctl", "is-active", unit)
		if strings.TrimSpace(st) == "active" {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s is %q after 30s\n%s", unit, strings.TrimSpace(st), b.m.Journal(unit))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
