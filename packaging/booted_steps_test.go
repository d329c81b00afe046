package packaging

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// configure follows the guide: fraisier init, the app's unit, app_path
// writable by serve, the polkit rule.
func (b booted) configure() {
	b.t.Helper()
	out := b.run("fraisier", "init", "--forge", "github", "--write-unit", "--force",
		"-o", "/etc/fraisier/fraises.yaml", "file:///srv/git/shop.git")
	b.t.Logf("fraisier init:\n%s", out)
	if strings.Contains(out, strings.TrimSpace(b.run("cat", "/etc/fraisier/credentials/shop"))) {
		b.t.Fatalf("init printed the secret")
	}
	// A forge names the repository by its https URL; this origin is a
	// path on the machine, so the fraise says which repository it is.
	b.edit("/etc/fraisier/fraises.yaml", "    forge: github\n", "    forge: github\n    repository: https://github.com/acme/shop.git\n")
	b.edit("/etc/fraisier/fraises.yaml", "unit: true   # better: url: http://127.0.0.1:PORT/health", "url: http://127.0.0.1:8000/health")
	if out, ok := b.try("fraisier", "config", "validate", "/etc/fraisier/fraises.yaml"); !ok {
		b.t.Fatalf("config validate as root:\n%s", out)
	}

	// Before the steps below, doctor says what is missing, each with its
	// fix.
	broken := b.doctor(false)
	b.t.Logf("fraisier doctor on the host not set up yet (exit 14 expected):\n%s", broken)
	for _, want := range []string{"fail    unit", "fail    sandbox", "ReadWritePaths=/srv/shop"} {
		if !strings.Contains(broken, want) {
			b.t.Errorf("doctor on the host not set up does not say %q", want)
		}
	}

	b.edit("/etc/fraisier/shop.service", "# User=shop", "User=nobody")
	b.run("cp", "/etc/fraisier/shop.service", "/etc/systemd/system/shop.service")
	b.run("install", "-d", "-o", "fraisier", "-g", "fraisier", "/srv/shop")
	b.write("/etc/systemd/system/fraisier.service.d/app-paths.conf", "[Service]\nReadWritePaths=/srv/shop\n", 0o644)
	b.run("systemctl", "daemon-reload")

	out = b.run("fraisier", "install", "polkit")
	b.t.Logf("fraisier install polkit:\n%s", out)
	b.run("systemctl", "enable", "--now", "fraisier-polkit.path")
	b.t.Logf("the rule:\n%s", b.run("cat", "/etc/polkit-1/rules.d/50-fraisier.rules"))
}

// doctor runs fraisier doctor as serve's user, as the guide says, and
// checks its exit code.
func (b booted) doctor(healthy bool) string {
	b.t.Helper()
	out, ok := b.as("fraisier", "fraisier", "doctor", "--no-color")
	if ok != healthy {
		b.t.Errorf("fraisier doctor succeeded=%v, want %v:\n%s", ok, healthy, out)
	}
	return out
}

type deployment struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	NewSHA string `json:"new_sha"`
	Error  string `json:"error"`
}

// latest is the newest deployment, or a zero one.
func (b booted) latest() deployment {
	b.t.Helper()
	var h struct {
		Deployments []deployment `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(b.run("fraisier", "history", "--json", "--limit", "1")), &h); err != nil {
		b.t.Fatal(err)
	}
	if len(h.Deployments) == 0 {
		return deployment{}
	}
	return h.Deployments[0]
}

// pushAndWait posts the signed push of sha to fraisier.socket and waits
// for its deployment to end in status.
func (b booted) pushAndWait(sha, status string) deployment {
	b.t.Helper()
	before := b.latest().ID
	out, _ := b.try(share+"/pushsign", "push", "http://127.0.0.1:8080/webhook/github", "/etc/fraisier/credentials/shop",
		"https://github.com/acme/shop.git", "main", strings.Repeat("0", 40), sha)
	if !strings.HasPrefix(out, "202 ") {
		ls, _ := b.try("ls", "-la", "/var/lib/fraisier")
		b.t.Fatalf("webhook: %s\n%s\n%s", out, ls, testenv.Tail(b.m.Journal("fraisier.service"), 10))
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		d := b.latest()
		if d.ID > before && d.Status != "running" && d.Status != "queued" {
			if d.Status != status || d.NewSHA != sha {
				b.t.Fatalf("deployment %d of %s: %s %s (%s), want %s\n%s", d.ID, sha, d.Status, d.NewSHA, d.Error, status,
					b.run("fraisier", "show", fmt.Sprint(d.ID)))
			}
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("no deployment of %s ended in 2 minutes\n%s", sha, b.m.Journal("fraisier.service"))
	return deployment{}
}

func (b booted) appAnswer() string {
	b.t.Helper()
	out, ok := b.try(share+"/pushsign", "get", "http://127.0.0.1:8000/")
	if !ok || !strings.HasPrefix(out, "200 ") {
		return "no answer: " + out
	}
	return strings.TrimSpace(strings.TrimPrefix(out, "200 "))
}

// polkitBoundary: the rule lets fraisier restart the app's unit and no
// other, and a user it does not name restart nothing.
func (b booted) polkitBoundary() {
	b.t.Helper()
	if out, ok := b.as("fraisier", "systemctl", "--no-ask-password", "restart", "shop.service"); !ok {
		b.t.Errorf("fraisier may not restart shop.service:\n%s", out)
	}
	for _, c := range []struct{ user, unit string }{{"fraisier", "systemd-logind.service"}, {"fraisier", "fraisier.service"}, {"nobody", "shop.service"}} {
		out, ok := b.as(c.user, "systemctl", "--no-ask-password", "restart", c.unit)
		if ok || !strings.Contains(out, "Interactive authentication required") && !strings.Contains(out, "Access denied") {
			b.t.Errorf("%s restarting %s: succeeded=%v\n%s", c.user, c.unit, ok, out)
		}
	}
}

// rollsBack: a commit whose app never answers is rolled back, and the
// previous release serves again.
func (b booted) rollsBack() {
	b.t.Helper()
	files := appFiles("v3")
	files["run"] = "#!/bin/sh\necho v3 cannot start >&2\nexit 1\n"
	sha := b.commit("v3 broken", files)
	d := b.pushAndWait(sha, "rolled_back")
	if got := b.appAnswer(); got != "v2" {
		b.t.Fatalf("app answers %q after rollback %d, want v2", got, d.ID)
	}
}

// refusesUnitInRelease: a drop-in of the app's unit linked from the
// release would let a repository make systemd run its line as root; the
// deployment is refused and v2 keeps serving.
func (b booted) refusesUnitInRelease() {
	b.t.Helper()
	files := appFiles("v4")
	files["unit.conf"] = "[Service]\nExecStartPre=+/usr/bin/touch /root/owned\n"
	sha := b.commit("v4 with a drop-in", files)
	b.run("mkdir", "-p", "/etc/systemd/system/shop.service.d")
	b.run("ln", "-s", "/srv/shop/current/unit.conf", "/etc/systemd/system/shop.service.d/release.conf")
	d := b.pushAndWait(sha, "failed")
	if !strings.Contains(d.Error, "ExecStartPre=+") || !strings.Contains(d.Error, "/etc/systemd/system") {
		b.t.Errorf("refusal does not say why: %s", d.Error)
	}
	if b.exists("/root/owned") {
		b.t.Fatalf("the release's drop-in ran as root")
	}
	if got := b.appAnswer(); got != "v2" {
		b.t.Fatalf("app answers %q after the refusal, want v2", got)
	}
	b.run("rm", "-r", "/etc/systemd/system/shop.service.d")
	b.run("systemctl", "daemon-reload")
}

// removeAndPurge: dpkg -r stops serve and keeps the configuration and the
// state; dpkg --purge removes both; the system user stays (Debian policy).
func (b booted) removeAndPurge() {
	b.t.Helper()
	b.t.Logf("dpkg -r:\n%s", b.run("dpkg", "-r", "fraisier"))
	for _, p := range []string{"/usr/bin/fraisier", "/usr/lib/systemd/system/fraisier.service", "/etc/polkit-1/rules.d/50-fraisier.rules"} {
		if b.exists(p) {
			b.t.Errorf("%s is left after dpkg -r", p)
		}
	}
	for _, p := range []string{"/etc/fraisier/fraises.yaml", "/var/lib/fraisier/fraisier.db", "/etc/fraisier/credentials/shop"} {
		if !b.exists(p) {
			b.t.Errorf("%s is gone after dpkg -r", p)
		}
	}
	for _, unit := range []string{"fraisier.service", "fraisier.socket"} {
		if st, _ := b.try("systemctl", "is-active", unit); strings.TrimSpace(st) == "active" {
			b.t.Errorf("%s is still active after dpkg -r", unit)
		}
	}
	b.t.Logf("dpkg --purge:\n%s", b.run("dpkg", "--purge", "fraisier"))
	for _, p := range []string{"/etc/fraisier", "/var/lib/fraisier"} {
		if b.exists(p) {
			b.t.Errorf("%s is left after dpkg --purge", p)
		}
	}
	if _, ok := b.try("id", "fraisier"); !ok {
		b.t.Errorf("the user fraisier was removed; Debian policy keeps system users")
	}
}
