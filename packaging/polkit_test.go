package packaging

import (
	"bytes"
	"context"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/polkit"
	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// maxPolkitExposure is the highest `systemd-analyze security` exposure
// fraisier-polkit.service may have. It scores 0.9: root with
// CAP_DAC_OVERRIDE (polkitd owns the rules directory) and no user
// namespace (the capability would not reach it from one).
const maxPolkitExposure = 1.0

const (
	polkitService = "systemd/fraisier-polkit.service"
	polkitPath    = "systemd/fraisier-polkit.path"
)

// TestPolkitUnitsVerify: systemd-analyze verify has nothing to say about
// the polkit path and service units, ExecStart pointing at a fraisier
// built from this tree.
func TestPolkitUnitsVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	bin := testenv.BuildFraisier(t)
	dir := t.TempDir()
	for _, f := range []string{polkitService, polkitPath} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("/usr/bin/fraisier "), []byte(bin+" "))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out := run(t, analyze, "verify", "--man=no",
		filepath.Join(dir, "fraisier-polkit.path"), filepath.Join(dir, "fraisier-polkit.service"))
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: exit %d\n%s", code, out)
	}
}

// TestPolkitServiceExposure: systemd-analyze security rates
// fraisier-polkit.service at most maxPolkitExposure.
func TestPolkitServiceExposure(t *testing.T) {
	checkExposure(t, polkitService, maxPolkitExposure)
}

// TestPolkitUnitsSettings holds what the units promise: the path unit
// watches the configuration serve reads and starts the service; the
// service writes the rule where install polkit writes it by default, and
// only there, from the configuration and credentials serve uses.
func TestPolkitUnitsSettings(t *testing.T) {
	serveConfig := ""
	for _, kv := range directives(t, serviceFile, "Service", "Environment") {
		if v, ok := strings.CutPrefix(kv, "FRAISIER_CONFIG="); ok {
			serveConfig = v
		}
	}
	want := map[string]map[string][]string{
		polkitPath: {
			"PathChanged": {serveConfig},
			"Unit":        {"fraisier-polkit.service"},
		},
		polkitService: {
			"Type":                  {"oneshot"},
			"ExecStart":             {"/usr/bin/fraisier install polkit --output " + polkit.DefaultPath},
			"Environment":           {"FRAISIER_CONFIG=" + serveConfig},
			"LoadCredential":        directives(t, serviceFile, "Service", "LoadCredential"),
			"ReadWritePaths":        {"-" + filepath.Dir(polkit.DefaultPath)},
			"ProtectSystem":         {"strict"},
			"CapabilityBoundingSet": {"CAP_DAC_OVERRIDE"},
			"NoNewPrivileges":       {"yes"},
			"User":                  nil, // root: see the unit's comment
		},
	}
	for file, keys := range want {
		section := "Service"
		if file == polkitPath {
			section = "Path"
		}
		for key, vals := range keys {
			if got := directives(t, file, section, key); !slices.Equal(got, vals) {
				t.Errorf("%s: %s=%q, want %q", file, key, got, vals)
			}
		}
	}
	for _, f := range []string{polkitPath, polkitService} {
		if got := directives(t, f, "Unit", "ConditionPathIsDirectory"); !slices.Equal(got, []string{filepath.Dir(polkit.DefaultPath)}) {
			t.Errorf("%s: ConditionPathIsDirectory=%q, want %s: without polkit there is nothing to do", f, got, filepath.Dir(polkit.DefaultPath))
		}
	}
}

// TestPolkitUnitsRefreshTheRule runs the two units for real, in a systemd
// user manager running as root (the sandboxing applies there as under the
// system manager), with their paths moved into a temporary root and the
// rules directory owned by polkitd, mode 0700, as Debian ships it: a
// change to the configuration rewrites the rule; an invalid configuration
// fails the service (exit 3) and leaves the rule as it was; fixed, the
// next change is picked up again.
func TestPolkitUnitsRefreshTheRule(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "the service writes a directory only root may, as root")
	}
	mgr := tsystemd.UserManager(t)
	// The binary, the configuration and the rules live in the test's
	// directory, which is under /tmp: the test's copy of the service sets
	// PrivateTmp=no (below), or the service would see a /tmp of its own.
	root := t.TempDir()
	bin := filepath.Join(root, "fraisier")
	built, err := os.ReadFile(testenv.BuildFraisier(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, built, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, rules, creds := filepath.Join(root, "fraises.yaml"), filepath.Join(root, "rules.d"), filepath.Join(root, "credentials")
	for _, d := range []string{rules, creds} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if u, err := user.Lookup("polkitd"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown(rules, uid, 0); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig := func(units string) {
		t.Helper()
		yaml := "fraises:\n  hello:\n    type: api\n    environments:\n      production:\n        branch: main\n" +
			"        git_repo: /srv/git/hello\n        app_path: /srv/hello\n        systemd_service: " + units + "\n"
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("[hello]")
	service, path := mgr.Unit("fraisier-polkit.service"), mgr.Unit("fraisier-polkit.path")
	// ProtectHome=tmpfs for yes: this user manager cannot make a path
	// inaccessible (any InaccessiblePaths=, ProtectHome=yes: 226/NAMESPACE,
	// its runtime directory lacks systemd's inaccessible nodes); tmpfs
	// hides /home, /root and /run/user as well.
	moved := strings.NewReplacer("/usr/bin/fraisier ", bin+" ", "/etc/fraisier/fraises.yaml", cfg,
		"/etc/polkit-1/rules.d", rules, "/etc/fraisier/credentials", creds, "fraisier-polkit.service", service,
		"\nProtectHome=yes\n", "\nProtectHome=tmpfs\n", "PrivateTmp=yes\n", "PrivateTmp=no\n",
		"[Service]\n", "[Service]\nStandardOutput=append:"+filepath.Join(root, "out.log")+"\nStandardError=append:"+filepath.Join(root, "out.log")+"\n")
	for file, unit := range map[string]string{polkitService: service, polkitPath: path} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		mgr.WriteUnit(t, unit, moved.Replace(string(data)))
	}
	mgr.MustSystemctl(t, "start", path)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := mgr.Systemctl(context.Background(), "status", "--no-pager", "--lines=30", path, service)
			log, _ := os.ReadFile(filepath.Join(root, "out.log"))
			t.Logf("systemctl status:\n%s\nthe service wrote:\n%s", out, log)
		}
	})
	rule := filepath.Join(rules, filepath.Base(polkit.DefaultPath))
	// A change that lands while the service still runs starts no second
	// run (systemd merges the start into the running one), so each write
	// waits for the service to be done with the one before.
	idle := func() {
		t.Helper()
		testenv.WaitFor(t, "the service to finish", 30*time.Second, func() bool {
			out, err := mgr.Systemctl(context.Background(), "show", "--property=ActiveState", service)
			return err == nil && (strings.Contains(out, "=inactive") || strings.Contains(out, "=failed"))
		})
	}
	ruleHas := func(what string, units ...string) {
		t.Helper()
		testenv.WaitFor(t, what, 30*time.Second, func() bool {
			data, err := os.ReadFile(rule)
			if err != nil {
				return false
			}
			for _, u := range units {
				if !bytes.Contains(data, []byte(`"`+u+`"`)) {
					return false
				}
			}
			return true
		})
	}
	// PathChanged= fires on a change, not on start: the first write.
	writeConfig("[hello, web]")
	ruleHas("the rule to grant hello and web", "hello.service", "web.service")
	before, err := os.ReadFile(rule)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(rule); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("rule mode %v (%v), want 0644", st.Mode(), err)
	}

	idle()
	writeConfig("[hello, web, \"bad unit\"]")
	testenv.WaitFor(t, "the service to fail", 30*time.Second, func() bool {
		out, err := mgr.Systemctl(context.Background(), "show", "--property=ActiveState,ExecMainStatus", service)
		return err == nil && strings.Contains(out, "ActiveState=failed") && strings.Contains(out, "ExecMainStatus=3")
	})
	if after, err := os.ReadFile(rule); err != nil || !bytes.Equal(after, before) {
		t.Errorf("an invalid configuration changed the rule (%v)", err)
	}

	idle()
	writeConfig("[web]")
	testenv.WaitFor(t, "the rule to grant web alone", 30*time.Second, func() bool {
		data, err := os.ReadFile(rule)
		return err == nil && bytes.Contains(data, []byte(`"web.service"`)) && !bytes.Contains(data, []byte(`"hello.service"`))
	})
}
