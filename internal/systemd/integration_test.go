package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
	usermgr "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// Each integration test gets its own private user manager and runs in
// parallel with the others: starting one costs a few hundred milliseconds,
// and the timer test's wait then bounds the package's run time.

func newTestManager(t *testing.T) (*Manager, *usermgr.Manager) {
	t.Helper()
	um := usermgr.UserManager(t)
	m, err := New(Options{Scope: ScopeUser, Env: um.Env(), UnitDir: um.UnitDir, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return m, um
}

// startUnit writes unit with text, reloads the manager and starts it.
func startUnit(tb testing.TB, m *Manager, unit, text string) {
	tb.Helper()
	ctx := context.Background()
	if _, err := m.WriteUnit(unit, []byte(text)); err != nil {
		tb.Fatal(err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(ctx, unit); err != nil {
		tb.Fatal(err)
	}
}

// app is a release of the test HTTP app in its own directory.
type app struct {
	dir  string
	port int
}

func newApp(t *testing.T, version, behaviour string) app {
	t.Helper()
	a := app{dir: t.TempDir(), port: testenv.FreePort(t)}
	files := map[string]string{"VERSION": version, "behaviour": behaviour}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(a.dir, name), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// unit renders a service running the app; extra lines go into [Service].
func (a app) unit(bin string, extra ...string) []byte {
	return []byte(fmt.Sprintf("[Service]\nWorkingDirectory=%s\nExecStart=%s -addr 127.0.0.1:%d -dir %s\n%s\n",
		a.dir, bin, a.port, a.dir, strings.Join(extra, "\n")))
}

func (a app) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", a.port, path), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitHealthy polls /health until it answers 200: readiness, which systemd
// does not know about for Type=simple.
func (a app) waitHealthy(t *testing.T, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		code, body, err := a.get(ctx, "/health")
		if err == nil && code == http.StatusOK {
			return body
		}
		select {
		case <-ctx.Done():
			t.Fatalf("app on port %d not healthy within %s: %d %q %v", a.port, within, code, body, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	bin := testenv.BuildHTTPApp(t)
	m, um := newTestManager(t)
	ctx := context.Background()
	unit := um.Unit("web.service")
	a := newApp(t, "v1", "healthy")

	changed, err := m.WriteUnit(unit, a.unit(bin))
	if err != nil || !changed {
		t.Fatalf("WriteUnit = %v, %v; want changed", changed, err)
	}
	if changed, err := m.WriteUnit(unit, a.unit(bin)); err != nil || changed {
		t.Fatalf("rewriting the same content: changed=%v, %v", changed, err)
	}
	if fi, err := os.Stat(filepath.Join(um.UnitDir, unit)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("unit file: %v, %v; want mode 0644", fi, err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitActive(ctx, unit, 500*time.Millisecond); err != nil {
		t.Fatalf("WaitActive: %v", err)
	}
	if body := a.waitHealthy(t, 5*time.Second); !strings.Contains(body, "v1") {
		t.Errorf("/health = %q, want v1", body)
	}
	before, err := m.UnitState(ctx, unit)
	if err != nil {
		t.Fatal(err)
	}
	if before.MainPID == 0 || before.ActiveEnterTimestamp.IsZero() || before.FragmentPath != filepath.Join(um.UnitDir, unit) {
		t.Errorf("state after start: %+v", before)
	}

	// Restart latency: the systemctl call, and until the new process answers.
	// One start and four restarts stay within the default start limit of
	// five starts in ten seconds (see TestStartLimit).
	const rounds = 4
	var calls, ready []time.Duration
	pid := before.MainPID
	for range rounds {
		start := time.Now()
		if err := m.Restart(ctx, unit); err != nil {
			t.Fatal(err)
		}
		calls = append(calls, time.Since(start))
		a.waitHealthy(t, 5*time.Second)
		ready = append(ready, time.Since(start))
		st, err := m.UnitState(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		if st.MainPID == pid || st.MainPID == 0 || st.NRestarts != 0 {
			t.Errorf("after restart: MainPID %d (was %d), NRestarts %d", st.MainPID, pid, st.NRestarts)
		}
		pid = st.MainPID
	}
	slices.Sort(calls)
	slices.Sort(ready)
	t.Logf("restart: systemctl call median %s (max %s); until healthy median %s (max %s)",
		calls[rounds/2], calls[rounds-1], ready[rounds/2], ready[rounds-1])

	if active, err := m.IsActive(ctx, unit); err != nil || !active {
		t.Errorf("IsActive = %v, %v", active, err)
	}
	if err := m.Stop(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if active, err := m.IsActive(ctx, unit); err != nil || active {
		t.Errorf("IsActive after Stop = %v, %v", active, err)
	}
	if _, _, err := a.get(ctx, "/health"); err == nil {
		t.Errorf("app still answers after Stop")
	}
	if removed, err := m.RemoveUnit(unit); err != nil || !removed {
		t.Errorf("RemoveUnit = %v, %v", removed, err)
	}
	if removed, err := m.RemoveUnit(unit); err != nil || removed {
		t.Errorf("RemoveUnit again = %v, %v", removed, err)
	}
	if _, err := m.ReadUnit(unit); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadUnit after remove = %v, want not exist", err)
	}
}

func TestWaitActive(t *testing.T) {
	t.Parallel()
	bin := testenv.BuildHTTPApp(t)
	m, um := newTestManager(t)
	tests := []struct {
		name      string
		behaviour string
		extra     []string
		settle    time.Duration
		// wantErr: WaitActive must return a *UnitError within maxWait.
		wantErr bool
		maxWait time.Duration
	}{
		{name: "healthy", behaviour: "healthy", settle: time.Second, maxWait: 3 * time.Second},
		{name: "crash at start", behaviour: "crash", settle: time.Second, wantErr: true, maxWait: 2 * time.Second},
		{name: "crash at start with restarts", behaviour: "crash", extra: []string{"Restart=on-failure", "RestartSec=100ms"},
			settle: time.Second, wantErr: true, maxWait: 2 * time.Second},
		{name: "crash at start, restarted faster than polled", behaviour: "crash", extra: []string{"Restart=always", "RestartSec=1ms", "StartLimitBurst=1000"},
			settle: time.Second, wantErr: true, maxWait: 2 * time.Second},
		{name: "crash while settling", behaviour: "crash-after:300ms", settle: 1500 * time.Millisecond, wantErr: true, maxWait: 2500 * time.Millisecond},
		{name: "crash while settling, restarted", behaviour: "crash-after:300ms", extra: []string{"Restart=always", "RestartSec=50ms"},
			settle: 1500 * time.Millisecond, wantErr: true, maxWait: 2500 * time.Millisecond},
		// Type=simple is running once forked: a slow listener is "active".
		// Readiness is the health check's question, not systemd's.
		{name: "slow to listen is still active", behaviour: "slow:3s", settle: 500 * time.Millisecond, maxWait: 2 * time.Second},
		// Type=exec only waits for execve; a crash after it is the same story.
		{name: "exec type crash", behaviour: "crash", extra: []string{"Type=exec"}, settle: time.Second, wantErr: true, maxWait: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			unit := um.Unit(strings.ReplaceAll(tt.name, " ", "-") + ".service")
			unit = strings.NewReplacer(",", "").Replace(unit)
			a := newApp(t, "v1", tt.behaviour)
			if _, err := m.WriteUnit(unit, a.unit(bin, tt.extra...)); err != nil {
				t.Fatal(err)
			}
			if err := m.DaemonReload(ctx); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := m.Restart(ctx, unit)
			if err == nil {
				err = m.WaitActive(ctx, unit, tt.settle)
			} else if !tt.wantErr {
				t.Fatalf("Restart: %v", err)
			}
			// else: the start job itself may see the crash (Type=exec when
			// the process dies before systemd notes the exec), which is the
			// same verdict, from Restart.
			took := time.Since(start)
			t.Logf("WaitActive after %s: %v", took.Round(time.Millisecond), err)
			if took > tt.maxWait {
				t.Errorf("took %s, want at most %s", took, tt.maxWait)
			}
			var ue *UnitError
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("WaitActive = %v, want nil", err)
				}
				if took < tt.settle {
					t.Errorf("returned after %s, before the %s settle window", took, tt.settle)
				}
				return
			}
			if !errors.As(err, &ue) {
				t.Fatalf("WaitActive = %v, want a *UnitError", err)
			}
			if ue.Unit != unit || ue.Log == "" || !strings.Contains(ue.Error(), unit) {
				t.Errorf("UnitError lacks detail: %+v", ue)
			}
			// It must not be reported running right now.
			if running(ue.State) && ue.State.NRestarts == 0 && ue.State.InvocationID == "" {
				t.Errorf("UnitError carries a running state: %+v", ue.State)
			}
		})
	}
}

func TestStartFailureIsUnitError(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	unit := um.Unit("fails.service")
	if _, err := m.WriteUnit(unit, []byte("[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 7'\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	err := m.Start(ctx, unit)
	var ue *UnitError
	if !errors.As(err, &ue) || ue.State.Result != "exit-code" || ue.State.ExecMainStatus != 7 {
		t.Fatalf("Start = %v (%+v), want a *UnitError with exit status 7", err, ue)
	}
	if err := m.ResetFailed(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if st, err := m.UnitState(ctx, unit); err != nil || st.ActiveState != "inactive" {
		t.Errorf("after ResetFailed: %+v, %v", st, err)
	}

	if err := m.Restart(ctx, um.Unit("absent.service")); !errors.Is(err, ErrUnitNotFound) {
		t.Errorf("Restart of an absent unit = %v, want ErrUnitNotFound", err)
	}
	err = m.WaitActive(ctx, um.Unit("absent.service"), 0)
	if !errors.As(err, &ue) || ue.State.LoadState != "not-found" {
		t.Errorf("WaitActive of an absent unit = %v, want a not-found *UnitError", err)
	}
	for _, bad := range []string{"-x.service", "a b.service", "../x.service"} {
		if err := m.Restart(ctx, bad); !errors.Is(err, ErrInvalidUnitName) {
			t.Errorf("Restart(%q) = %v, want ErrInvalidUnitName", bad, err)
		}
	}
	if err := m.Restart(ctx); err == nil {
		t.Error("Restart with no unit succeeded")
	}
}

// TestStartLimit: a unit (re)started more than StartLimitBurst times within
// StartLimitIntervalSec refuses the next start until ResetFailed. A deploy
// that follows a crash loop (or several quick deploys) meets exactly this.
func TestStartLimit(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	unit := um.Unit("limited.service")
	if _, err := m.WriteUnit(unit, []byte("[Unit]\nStartLimitBurst=2\nStartLimitIntervalSec=60\n[Service]\nExecStart=/bin/sleep 600\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Restart(ctx, unit); err != nil {
			t.Fatal(err)
		}
	}
	err := m.Restart(ctx, unit)
	var ue *UnitError
	if !errors.As(err, &ue) || ue.State.Result != "start-limit-hit" {
		t.Fatalf("third restart = %v, want a *UnitError with result start-limit-hit", err)
	}
	if err := m.ResetFailed(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if err := m.Restart(ctx, unit); err != nil {
		t.Fatalf("restart after ResetFailed: %v", err)
	}
	if err := m.WaitActive(ctx, unit, 0); err != nil {
		t.Fatal(err)
	}
}

func TestDaemonReloadPicksUpChanges(t *testing.T) {
	t.Parallel()
	// No UnitDir option: the user scope's default must be where the
	// manager looks, given the same XDG_CONFIG_HOME.
	um := usermgr.UserManager(t)
	m, err := New(Options{Scope: ScopeUser, Env: um.Env()})
	if err != nil {
		t.Fatal(err)
	}
	if um.Private && m.UnitDir() != um.UnitDir {
		t.Fatalf("default user unit dir %s, manager scans %s", m.UnitDir(), um.UnitDir)
	}
	m.unitDir = um.UnitDir
	ctx := context.Background()
	unit := um.Unit("reload.service")
	write := func(desc string) {
		t.Helper()
		if changed, err := m.WriteUnit(unit, []byte("[Unit]\nDescription="+desc+"\n[Service]\nExecStart=/bin/sleep 600\n")); err != nil || !changed {
			t.Fatalf("WriteUnit: %v, %v", changed, err)
		}
	}
	write("one")
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, unit); err != nil {
		t.Fatal(err)
	}
	write("two")
	st, err := m.UnitState(ctx, unit)
	if err != nil || !st.NeedDaemonReload {
		t.Fatalf("after rewrite: NeedDaemonReload=%v, %v", st.NeedDaemonReload, err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := m.Show(ctx, unit, "Description", "NeedDaemonReload")
	if err != nil || p["Description"] != "two" || p["NeedDaemonReload"] != "no" {
		t.Errorf("after reload: %v, %v", p, err)
	}
	if got, err := m.ReadUnit(unit); err != nil || !strings.Contains(string(got), "two") {
		t.Errorf("ReadUnit = %q, %v", got, err)
	}
	if _, err := m.Show(ctx, unit, "A,B"); err == nil {
		t.Error("Show accepted a property list in one name")
	}
}

func TestTimerFires(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "fired")
	job := JobUnit{
		Name:        strings.TrimSuffix(um.Unit("tick"), "."),
		Description: "tick every 5s",
		ExecStart:   []string{"/bin/sh", "-c", `date +%s >> "$1"`, "sh", out},
		OnCalendar:  "*:*:0/5",
		AccuracySec: time.Second,
	}
	svc, timer := job.Name+".service", job.Name+".timer"
	for name, render := range map[string]func(JobUnit) ([]byte, error){svc: RenderService, timer: RenderTimer} {
		content, err := render(job)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.WriteUnit(name, content); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.VerifyUnits(ctx, filepath.Join(m.UnitDir(), svc), filepath.Join(m.UnitDir(), timer)); err != nil {
		t.Fatalf("VerifyUnits: %v", err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Enable(ctx, true, timer); err != nil {
		t.Fatal(err)
	}
	// The manager's own verdict: the client put the symlink where it looks.
	if st, err := m.UnitState(ctx, timer); err != nil || st.UnitFileState != "enabled" {
		t.Errorf("unit file state after Enable: %q, %v", st.UnitFileState, err)
	}
	ts, err := m.TimerStatus(ctx, timer)
	if err != nil {
		t.Fatal(err)
	}
	if !ts.Active || ts.Unit != svc || ts.NextElapse.IsZero() || time.Until(ts.NextElapse) > 6*time.Second {
		t.Fatalf("armed timer: %+v", ts)
	}

	deadline := time.Now().Add(12 * time.Second)
	// While the service runs, and a moment after, the timer has no next
	// elapse: systemd computes it when the timer goes back to waiting.
	for ts.LastTrigger.IsZero() || ts.Running || ts.LastResult == "" || ts.NextElapse.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("timer did not fire and finish within 12s: %+v\nmanager log:\n%s", ts, um.LogTail(4<<10))
		}
		time.Sleep(200 * time.Millisecond)
		if ts, err = m.TimerStatus(ctx, timer); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("timer status after firing: %+v", ts)
	if ts.LastResult != "success" || ts.LastExitStatus != 0 {
		t.Errorf("last run: %s, status %d", ts.LastResult, ts.LastExitStatus)
	}
	if !ts.NextElapse.After(ts.LastTrigger) {
		t.Errorf("next elapse %s not after last trigger %s", ts.NextElapse, ts.LastTrigger)
	}
	if b, err := os.ReadFile(out); err != nil || len(b) == 0 {
		t.Errorf("the job left no trace: %q, %v", b, err)
	}

	if err := m.Disable(ctx, true, timer); err != nil {
		t.Fatal(err)
	}
	if ts, err = m.TimerStatus(ctx, timer); err != nil || ts.Active {
		t.Errorf("after Disable --now: %+v, %v", ts, err)
	}
	if st, err := m.UnitState(ctx, timer); err != nil || st.UnitFileState != "disabled" {
		t.Errorf("unit file state after Disable: %q, %v", st.UnitFileState, err)
	}
	if _, err := m.TimerStatus(ctx, svc); !errors.Is(err, ErrInvalidUnitName) {
		t.Errorf("TimerStatus of a service = %v, want ErrInvalidUnitName", err)
	}
}

// TestRenderedCommandReachesProgram runs a rendered job and checks that the
// program got exactly the argv and environment it was given.
func TestRenderedCommandReachesProgram(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	dir := t.TempDir()
	args := []string{"plain", "a b", `say "hi"`, "it's", `back\slash`, `end\`, "100%", "%n", "$HOME", "${X}", "$$", ";", "x;y", "", "héllo", "--flag=1"}
	env := map[string]string{"GREETING": `say "hi" 50% $HOME \n`, "EMPTY": ""}
	job := JobUnit{
		Name:             strings.TrimSuffix(um.Unit("argv"), "."),
		WorkingDirectory: dir,
		// The script itself is one of the arguments under test.
		ExecStart:   append([]string{"/bin/sh", "-c", `printf '%s\0' "$@" > argv; printf '%s' "$GREETING" > env; pwd > pwd`, "sh"}, args...),
		Environment: env,
		OnCalendar:  "daily",
	}
	content, err := RenderService(job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WriteUnit(job.Name+".service", content); err != nil {
		t.Fatal(err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, job.Name+".service"); err != nil {
		t.Fatalf("Start: %v\n%s", err, content)
	}
	got, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		t.Fatal(err)
	}
	gotArgs := strings.Split(strings.TrimSuffix(string(got), "\x00"), "\x00")
	if !slices.Equal(gotArgs, args) {
		t.Errorf("program got argv\n%q\nwant\n%q\nunit:\n%s", gotArgs, args, content)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "env")); string(b) != env["GREETING"] {
		t.Errorf("GREETING = %q, want %q", b, env["GREETING"])
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "pwd")); strings.TrimSpace(string(b)) != dir {
		t.Errorf("working directory %q, want %q", b, dir)
	}
}
