package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// faultMarks are strings only the fault injection's code holds: its
// message when it kills and its parser's complaint.
var faultMarks = []string{"fraisier kills itself here", "want kill:<step>[:before|after]"}

// TestShippedBinaryIgnoresFault builds fraisier with make build, as it
// ships, and deploys with FRAISIER_FAULT set to kill it in the middle of
// the switch: the deployment runs to its end, and the binary holds none
// of the fault injection's code. This test binary, built with
// -tags fraisier_faults, shows that the search would find it.
func TestShippedBinaryIgnoresFault(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Unavailable(t, "make not installed")
	}
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Unavailable(t, "go not on PATH")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "fraisier")
	build := exec.Command("make", "--no-print-directory", "-C", root, "build", "BIN="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}

	shipped, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, mark := range faultMarks {
		if bytes.Contains(shipped, []byte(mark)) {
			t.Errorf("the shipped binary holds the fault injection's %q", mark)
		}
	}
	if deploy.FaultInjection {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		for _, mark := range faultMarks {
			if !bytes.Contains(b, []byte(mark)) {
				t.Errorf("this test binary, built with fault injection, lacks %q: the search proves nothing", mark)
			}
		}
	}

	f := newFixture(t, bin)
	f.push("healthy")
	f.mustDeploy(0)
	v2 := f.push("healthy")
	out, ps := f.run("kill:switch:after", "deploy", "hello", "production")
	if ps.ExitCode() != 0 || strings.Contains(out, "kills itself") {
		t.Fatalf("FRAISIER_FAULT=kill:switch:after fraisier deploy: exit %d, want 0 and no fault\n%s", ps.ExitCode(), out)
	}
	if last := f.lastDeployment(); last.Status != store.StatusSucceeded || last.NewSHA != v2 {
		t.Fatalf("deployment under FRAISIER_FAULT: %s at %s, want succeeded at %s", last.Status, last.NewSHA, v2)
	}
	f.checkTruthful("v2", 2)
}
