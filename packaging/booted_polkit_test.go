package packaging

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/polkit"
	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/fraiseql/fraisier/internal/testenv/nspawn"
)

// polkitShare is where the machine sees the binary and the polkit units.
const polkitShare = "/mnt/polkit"

// TestBootedPolkit runs the system-units model on a booted Debian (its
// system manager, system bus and the real polkitd): the polkit units
// installed and enabled, a change to fraises.yaml writes the rule; the
// user fraisier then restarts the unit fraises.yaml names and is refused
// one it does not name, another verb and daemon-reload; doctor, run as
// fraisier, says which units it may restart without restarting them; an
// invalid fraises.yaml fails fraisier-polkit.service and keeps the rule.
func TestBootedPolkit(t *testing.T) {
	share := t.TempDir()
	copyFile(t, testenv.BuildFraisier(t), filepath.Join(share, "fraisier"))
	for _, f := range []string{polkitService, polkitPath} {
		copyFile(t, f, filepath.Join(share, filepath.Base(f)))
	}
	b := booted{t: t, m: nspawn.Boot(t, nspawn.Bind{Host: share, Path: polkitShare, ReadOnly: true})}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := b.try("systemctl", "status", "--no-pager", "fraisier-polkit.path", "fraisier-polkit.service")
			t.Logf("systemctl status:\n%s\njournal:\n%s", out, b.m.Journal("fraisier-polkit.service"))
		}
	})
	b.run("install", "-m", "0755", polkitShare+"/fraisier", "/usr/bin/fraisier")
	// What the package's tmpfiles.d makes: the credentials directory
	// LoadCredential= reads (a missing one fails the unit, 243/CREDENTIALS).
	b.run("install", "-d", "-m", "0700", "/etc/fraisier/credentials")
	b.run("useradd", "--system", "--user-group", "--create-home", "--home-dir", "/var/lib/fraisier", "--shell", "/usr/sbin/nologin", "fraisier")
	for _, app := range []string{"hello", "other"} {
		b.write("/etc/systemd/system/"+app+".service", "[Service]\nUser=nobody\nExecStart=/bin/sleep infinity\n", 0o644)
	}
	for _, f := range []string{"fraisier-polkit.service", "fraisier-polkit.path"} {
		b.run("install", "-m", "0644", polkitShare+"/"+f, "/etc/systemd/system/"+f)
	}
	b.run("systemctl", "daemon-reload")
	b.run("systemctl", "start", "hello.service", "other.service")
	b.writeFraises("hello")
	b.run("systemctl", "enable", "--now", "fraisier-polkit.path")

	// PathChanged= fires on a change: the first edit writes the rule.
	b.writeFraises("hello", "hello-worker@1")
	b.waitRule(`"hello-worker@1.service"`)
	rule := b.run("cat", polkit.DefaultPath)
	t.Logf("%s:\n%s", polkit.DefaultPath, rule)

	pid := b.mainPID("hello.service")
	if out, ok := b.as("fraisier", "systemctl", "--no-ask-password", "restart", "hello.service"); !ok {
		t.Errorf("fraisier could not restart hello.service:\n%s", out)
	} else if after := b.mainPID("hello.service"); after == pid {
		t.Errorf("hello.service MainPID still %s after the restart", after)
	}
	for _, argv := range [][]string{
		{"restart", "other.service"},
		{"stop", "other.service"},
		{"start", "other.service"},
		{"reload", "other.service"},
		{"kill", "hello.service"},
		{"daemon-reload"},
		{"enable", "other.service"},
	} {
		out, ok := b.as("fraisier", append([]string{"systemctl", "--no-ask-password"}, argv...)...)
		if ok || !(strings.Contains(out, "Interactive authentication required") || strings.Contains(out, "Access denied")) {
			t.Errorf("fraisier: systemctl %s: ok %v, want refused by polkit:\n%s", strings.Join(argv, " "), ok, out)
		}
	}

	// Doctor asks, restarting nothing: with the path unit stopped, the
	// configuration names other.service, which the rule does not.
	b.run("systemctl", "stop", "fraisier-polkit.path")
	b.writeFraises("hello", "other")
	pid = b.mainPID("hello.service")
	units := b.doctorUnits("fraisier")
	if after := b.mainPID("hello.service"); after != pid {
		t.Errorf("doctor restarted hello.service: MainPID %s → %s", pid, after)
	}
	if c := units["hello.service"]; c.Result != "ok" || !strings.Contains(c.Detail, "polkit lets fraisier restart it") {
		t.Errorf("doctor as fraisier, hello.service: %+v", c)
	}
	if c := units["other.service"]; c.Result != "fail" || !strings.Contains(c.Detail, "polkit does not let fraisier restart it") || !strings.Contains(c.Fix, "fraisier install polkit") {
		t.Errorf("doctor as fraisier, other.service: %+v", c)
	}
	if c := b.doctorUnits("root")["other.service"]; c.Result != "ok" || !strings.Contains(c.Detail, "root may restart it") {
		t.Errorf("doctor as root, other.service: %+v", c)
	}

	// An invalid configuration: the service fails, the rule stays.
	b.run("systemctl", "start", "fraisier-polkit.path")
	b.writeFraises("hello", "bad unit")
	testenv.WaitFor(t, "fraisier-polkit.service to fail", time.Minute, func() bool {
		out, _ := b.try("systemctl", "show", "--property=ActiveState,ExecMainStatus", "fraisier-polkit.service")
		return strings.Contains(out, "ActiveState=failed") && strings.Contains(out, "ExecMainStatus=3")
	})
	if now := b.run("cat", polkit.DefaultPath); now != rule {
		t.Errorf("an invalid configuration changed the rule:\n%s", now)
	}
	t.Logf("journal of fraisier-polkit.service:\n%s", b.m.Journal("fraisier-polkit.service"))
}

// writeFraises writes /etc/fraisier/fraises.yaml with one system-scope
// environment restarting units.
func (b booted) writeFraises(units ...string) {
	b.t.Helper()
	yaml := "fraises:\n  hello:\n    type: api\n    environments:\n      production:\n        branch: main\n" +
		"        git_repo: /srv/git/hello\n        app_path: /srv/hello\n        systemd_service: [\"" + strings.Join(units, `", "`) + "\"]\n"
	b.write("/etc/fraisier/fraises.yaml", yaml, 0o644)
}

// waitRule waits until the installed rule holds want.
func (b booted) waitRule(want string) {
	b.t.Helper()
	testenv.WaitFor(b.t, "the rule to hold "+want, time.Minute, func() bool {
		out, ok := b.try("cat", polkit.DefaultPath)
		return ok && strings.Contains(out, want)
	})
}

func (b booted) mainPID(unit string) string {
	b.t.Helper()
	return strings.TrimSpace(b.run("systemctl", "show", "--property=MainPID", "--value", unit))
}

// doctorCheck is a line of doctor --json.
type doctorLine struct {
	Check, Subject, Result, Detail, Fix string
}

// doctorUnits runs fraisier doctor as user and returns its unit lines by
// unit name (its other checks fail in this machine: no remote, no app).
func (b booted) doctorUnits(user string) map[string]doctorLine {
	b.t.Helper()
	out, _ := b.as(user, "env", "FRAISIER_CONFIG=/etc/fraisier/fraises.yaml", "fraisier", "doctor", "--json")
	var got struct{ Checks []doctorLine }
	if i := strings.Index(out, "{"); i >= 0 {
		out = out[i:]
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		b.t.Fatalf("doctor --json as %s: %v\n%s", user, err, out)
	}
	units := map[string]doctorLine{}
	for _, c := range got.Checks {
		if c.Check == "unit" {
			units[strings.Fields(c.Subject)[0]] = c
		}
	}
	b.t.Logf("doctor as %s: %+v", user, units)
	return units
}
