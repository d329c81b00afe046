package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestDeployReloadsChangedUnits proves the promise "daemon-reload first
// when unit files changed": between deploys the unit's definition changes
// on disk (its file, a drop-in added, edited, removed) with nobody running
// daemon-reload, and the new release must run under the new definition.
// Each definition serves a different directory of the release, so what the
// service answers says which definition systemd started it with: without
// the reload it would keep serving the previous one's.
func TestDeployReloadsChangedUnits(t *testing.T) {
	f := newFixture(t, "")
	bin := testenv.BuildHTTPApp(t)
	unitPath := filepath.Join(f.mgr.UnitDir, f.unit)
	dropinDir := unitPath + ".d"
	dropin := filepath.Join(dropinDir, "50-test.conf")
	// serveFrom is a unit (or drop-in) body whose service answers with
	// dir/VERSION of the current release.
	execStart := func(dir string) string {
		return fmt.Sprintf("ExecStart=%s -addr 127.0.0.1:%d -dir %s\n", bin, f.port, filepath.Join(f.app, "current", dir))
	}

	steps := []struct {
		name   string
		change func()
		// serves is the release directory the new definition serves from.
		serves     string
		wantReload bool
	}{
		{name: "first deploy", change: func() {}, serves: "."},
		{name: "unit file edited", serves: "unit", wantReload: true, change: func() {
			writeFile(t, unitPath, "[Service]\n"+execStart("unit")+"Restart=no\n")
		}},
		{name: "drop-in added", serves: "dropin", wantReload: true, change: func() {
			// ExecStart= first clears the unit's own, as an override must.
			writeFile(t, dropin, "[Service]\nExecStart=\n"+execStart("dropin"))
		}},
		{name: "drop-in edited", serves: "dropin2", wantReload: true, change: func() {
			writeFile(t, dropin, "[Service]\nExecStart=\n"+execStart("dropin2"))
		}},
		{name: "second drop-in added beside it", serves: "dropin3", wantReload: true, change: func() {
			// Sorted after 50-test.conf, so its ExecStart wins.
			writeFile(t, filepath.Join(dropinDir, "60-test.conf"), "[Service]\nExecStart=\n"+execStart("dropin3"))
		}},
		{name: "drop-ins removed", serves: "unit", wantReload: true, change: func() {
			if err := os.RemoveAll(dropinDir); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "nothing changed", change: func() {}, serves: "unit", wantReload: false},
	}
	for i, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			st.change()
			version := fmt.Sprintf("v%d", i+1)
			// Every directory any definition may serve, so that a service
			// started from a stale definition answers rather than fails.
			files := map[string]string{}
			for _, d := range []string{"unit", "dropin", "dropin2", "dropin3"} {
				files[d+"/VERSION"] = d + "-" + version + "\n"
			}
			f.push("healthy", files)
			res := f.deploy(Request{})
			want := version
			if st.serves != "." {
				want = st.serves + "-" + version
			}
			f.expect(res, store.StatusSucceeded, want)
			if got := f.serving(); got != want {
				t.Fatalf("service answers %q, want %q: it runs an old definition of the unit", got, want)
			}
			out := restartOutput(t, f, res)
			if reloaded := strings.Contains(out, "daemon-reload"); reloaded != st.wantReload {
				t.Errorf("restart step output %q: daemon-reload %v, want %v", out, reloaded, st.wantReload)
			}
		})
		if !ok {
			break // each step builds on the one before
		}
	}
}

// restartOutput is what the deployment printed about its units: the
// switch step reloads systemd before switching when a unit's files
// changed, and the restart step restarts.
func restartOutput(t *testing.T, f *fixture, res Result) string {
	t.Helper()
	steps, err := f.db.Steps(context.Background(), res.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	out, restarted := "", false
	for _, s := range steps {
		switch s.Name {
		case "switch":
			out += s.Output
		case "restart":
			out += s.Output
			restarted = true
		}
	}
	if !restarted {
		t.Fatalf("no restart step in %+v", steps)
	}
	return out
}

// TestDeployReloadsUnitFromRelease: a drop-in that lives in the release
// (linked from the unit's .d directory through current) changes with the
// switch itself, after the check before it; the restart must see it and
// reload, or the new release runs under the previous release's drop-in.
func TestDeployReloadsUnitFromRelease(t *testing.T) {
	f := newFixture(t, "")
	bin := testenv.BuildHTTPApp(t)
	dropinDir := filepath.Join(f.mgr.UnitDir, f.unit+".d")
	if err := os.MkdirAll(dropinDir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dropinDir, "50-release.conf")
	if err := os.Symlink(filepath.Join(f.app, "current", "unit.conf"), link); err != nil {
		t.Fatal(err)
	}
	// Each release's drop-in serves a directory named after its version.
	dropin := func(dir string) string {
		return fmt.Sprintf("[Service]\nExecStart=\nExecStart=%s -addr 127.0.0.1:%d -dir %s\n", bin, f.port, filepath.Join(f.app, "current", dir))
	}
	for i := 1; i <= 3; i++ {
		dir := fmt.Sprintf("d%d", i)
		f.push("healthy", map[string]string{"unit.conf": dropin(dir), dir + "/VERSION": fmt.Sprintf("%s-v%d\n", dir, i)})
		res := f.deploy(Request{})
		want := fmt.Sprintf("%s-v%d", dir, i)
		f.expect(res, store.StatusSucceeded, want)
		if got := f.serving(); got != want {
			t.Fatalf("deploy %d: service answers %q, want %q: it runs under the previous release's drop-in", i, got, want)
		}
	}
}
