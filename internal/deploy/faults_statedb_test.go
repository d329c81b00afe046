package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestFaultStateDBLocked: another process holds the SQLite state database
// in an exclusive transaction past the busy timeout (5 s). The deployment
// refuses before it starts: an error saying the database is locked while
// taking the target's lock, nothing recorded, nothing on disk changed.
// Once the lock is released the deployment succeeds and the
// record is whole.
func TestFaultStateDBLocked(t *testing.T) {
	f := newFixture(t, "")
	f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	f.push("healthy", nil)
	statePath := f.db.Options().Path
	before := f.snapshot()
	ctx := context.Background()
	history, err := f.db.Deployments(ctx, store.DeploymentFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}

	locker := testenv.LockSQLite(t, statePath)
	env, _ := f.cfg.Lookup("hello", "production")
	start := time.Now()
	res, err := f.engine.Deploy(ctx, f.collab, Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
	took := time.Since(start)
	if err == nil {
		t.Fatalf("deployed with the state database locked: %s %v", res.Status, res.Err)
	}
	t.Logf("refused after %s: %v", took.Round(time.Millisecond), err)
	if msg := err.Error(); !strings.Contains(msg, "acquire lock on hello/production") || !strings.Contains(msg, "database is locked") {
		t.Fatalf("error %q does not say the state database is locked", err)
	}
	if errors.Is(err, ErrLocked) {
		t.Fatalf("error %q taken for another deployment holding the target", err)
	}
	if took < 4*time.Second || took > 15*time.Second {
		t.Fatalf("refused after %s, want after the 5 s busy timeout", took)
	}
	f.assertUnchanged(before, store.StatusFailed)

	locker.Release(t)
	after, err := f.db.Deployments(ctx, store.DeploymentFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(history) {
		t.Fatalf("%d deployments recorded while the database was locked, want none", len(after)-len(history))
	}
	res = f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v2")
	f.assertRecorded(res)
	f.assertTruthful(res.Release)
}

// writeConfig writes the fixture's fraises.yaml (releases layout, no
// extra keys) for the real CLI, with the state database left to --state.
func (f *fixture) writeConfig(t *testing.T) string {
	t.Helper()
	return f.writeConfigWith(t, "")
}

// writeConfigWith is writeConfig with extra keys in the environment.
func (f *fixture) writeConfigWith(t *testing.T, extraEnvYAML string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fraises.yaml")
	writeFile(t, p, f.yaml("releases", extraEnvYAML))
	return p
}

// runCLI runs fraisier with the manager's environment and returns its
// combined output and exit code.
func runCLI(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "FRAISIER_")
	}), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ps := testenv.Run(t, cmd, 2*time.Minute)
	return out.String(), ps.ExitCode()
}

// TestReliabilityStateDBLocked: the state database locked by another
// process, through the real CLI (exit code and message), and locked in the
// middle of a deployment, past the busy timeout.
func TestReliabilityStateDBLocked(t *testing.T) {
	testenv.Reliability(t)
	f := newFixture(t, "")
	f.push("healthy", nil)
	f.expect(f.deploy(Request{}), store.StatusSucceeded, "v1")
	f.push("healthy", nil)
	statePath := f.db.Options().Path
	before := f.snapshot()

	t.Run("real CLI refuses", func(t *testing.T) {
		bin := testenv.BuildFraisier(t)
		cfgPath := f.writeConfig(t)
		locker := testenv.LockSQLite(t, statePath)
		defer locker.Release(t)
		out, code := runCLI(t, bin, f.mgr.Env(), "--config", cfgPath, "--state", statePath, "deploy", "hello", "production")
		t.Logf("exit %d:\n%s", code, out)
		if !strings.Contains(out, "state database is unavailable") || !strings.Contains(out, "acquire lock on hello/production") ||
			!strings.Contains(out, "database is locked") {
			t.Fatalf("output does not say the state database is locked:\n%s", out)
		}
		// docs/exit-codes.md: 4 when the state database cannot be used.
		if code != 4 {
			t.Errorf("exit %d, want 4 (state database unusable)", code)
		}
		f.assertUnchanged(before, store.StatusFailed)
	})

	t.Run("locked during the install step", func(t *testing.T) {
		gate := t.TempDir()
		env := f.envWith(func(e *config.Environment) {
			e.Install = &config.Command{Argv: []string{"sh", "-c",
				fmt.Sprintf("touch %[1]s/installing; while [ ! -e %[1]s/go ]; do sleep 0.05; done; echo installed", gate)}}
		})
		type outcome struct {
			res Result
			err error
		}
		done := make(chan outcome, 1)
		start := time.Now()
		go func() {
			res, err := f.engine.Deploy(context.Background(), f.collab, Request{Env: env, Trigger: store.TriggerCLI, Actor: "test"})
			done <- outcome{res, err}
		}()
		testenv.WaitForFile(t, filepath.Join(gate, "installing"), 30*time.Second)
		locker := testenv.LockSQLite(t, statePath)
		writeFile(t, filepath.Join(gate, "go"), "")
		const hold = 12 * time.Second
		time.Sleep(hold)
		locker.Release(t)
		o := <-done
		if o.err != nil {
			t.Fatalf("Deploy: %v", o.err)
		}
		res := o.res
		t.Logf("after %s: %s %v", time.Since(start).Round(time.Millisecond), res.Status, res.Err)
		// The install ran, but its end could not be recorded within the
		// busy timeout: the deployment stops there and says why, rather
		// than go on unrecorded. Its outcome is recorded once the lock is
		// gone (the outcome's write is retried).
		if res.Status != store.StatusFailed {
			t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
		}
		if want := "install: record step install: "; !strings.HasPrefix(res.Err.Error(), want) || !strings.Contains(res.Err.Error(), "database is locked") {
			t.Fatalf("message %q, want it to start %q and say the database is locked", res.Err, want)
		}
		if got, want := f.stepNames(res.DeploymentID), "fetch:succeeded release:succeeded install:failed"; got != want {
			t.Fatalf("steps %s, want %s", got, want)
		}
		f.assertRecorded(res)
		f.assertUnchanged(before, res.Status)
		assertReleaseState(t, f, res, store.ReleaseBad)

		res = f.deploy(Request{})
		f.expect(res, store.StatusSucceeded, "v2")
		f.assertTruthful(res.Release)
	})
}
