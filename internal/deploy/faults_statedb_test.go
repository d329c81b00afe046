package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// sqliteLocker is another process (Debian's sqlite3 shell) holding an
// exclusive transaction on a SQLite file: what a backup tool, an operator's
// sqlite3 session or a second fraisier stuck mid-write does to fraisier.
type sqliteLocker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// lockSQLite starts sqlite3 on path and returns once it holds BEGIN
// EXCLUSIVE; release ends its transaction and waits for it to exit.
func lockSQLite(t *testing.T, path string) *sqliteLocker {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		testenv.Unavailable(t, "sqlite3 not installed (apt-get install sqlite3): %v", err)
	}
	cmd := exec.Command(bin, path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &sqliteLocker{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	t.Cleanup(func() { l.release(t) })
	// The shell answers the SELECT only once BEGIN EXCLUSIVE has the lock
	// (a write to a table makes sure even a lazy shell took it).
	fmt.Fprint(stdin, ".timeout 10000\nBEGIN EXCLUSIVE;\nUPDATE tb_schema_migrations SET version = version WHERE 0;\nSELECT 'locked';\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		cmd.Process.Kill()
		t.Fatalf("sqlite3 did not take the lock: %q %v %s", line, err, stderr.String())
	}
	go func() {
		io.Copy(io.Discard, stdout)
		l.done <- cmd.Wait()
	}()
	return l
}

func (l *sqliteLocker) release(t *testing.T) {
	if l.stdin == nil {
		return
	}
	fmt.Fprint(l.stdin, "COMMIT;\n.quit\n")
	l.stdin.Close()
	l.stdin = nil
	select {
	case err := <-l.done:
		if err != nil {
			t.Errorf("sqlite3: %v", err)
		}
	case <-time.After(10 * time.Second):
		l.cmd.Process.Kill()
		t.Errorf("sqlite3 did not end")
	}
}

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

	locker := lockSQLite(t, statePath)
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

	locker.release(t)
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
		locker := lockSQLite(t, statePath)
		defer locker.release(t)
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
		locker := lockSQLite(t, statePath)
		writeFile(t, filepath.Join(gate, "go"), "")
		const hold = 12 * time.Second
		time.Sleep(hold)
		locker.release(t)
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
