package packaging

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/polkit"
	"github.com/fraiseql/fraisier/internal/testenv"
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

var polkitExposureLine = regexp.MustCompile(`Overall exposure level for fraisier-polkit\.service: ([0-9]+\.[0-9]+)`)

// TestPolkitServiceExposure: systemd-analyze security rates
// fraisier-polkit.service at most maxPolkitExposure.
func TestPolkitServiceExposure(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	code, out := run(t, analyze, "security", "--offline=yes", "--no-pager", polkitService)
	m := polkitExposureLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security (exit %d) gave no overall exposure level:\n%s", code, out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: fraisier-polkit.service exposure %.1f (threshold %.1f)", score, maxPolkitExposure)
	if score > maxPolkitExposure {
		t.Errorf("fraisier-polkit.service exposure %.1f, above %.1f:\n%s", score, maxPolkitExposure, out)
	}
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
			"ExecStart":             {"/usr/bin/fraisier install polkit"},
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
