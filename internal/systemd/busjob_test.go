package systemd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestJobsOverBus runs start, restart and stop jobs over the private
// socket and checks what they did, how a failing job and an unknown unit
// are reported, and that a socket that is not a manager sends the job to
// systemctl instead, with the same outcome.
func TestJobsOverBus(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	unit, fails := um.Unit("busjob.service"), um.Unit("busjob-fails.service")
	for u, text := range map[string]string{
		unit:  "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep 600\n",
		fails: "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'exit 3'\n",
	} {
		if _, err := m.WriteUnit(u, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	ran, err := m.jobBus(ctx, "start", []string{unit})
	if !ran || err != nil {
		t.Fatalf("start over D-Bus: ran %v, %v", ran, err)
	}
	st, err := m.UnitState(ctx, unit)
	if err != nil || st.SubState != "running" {
		t.Fatalf("after start: %+v, %v", st, err)
	}
	var calls []time.Duration
	for range 3 {
		start := time.Now()
		if ran, err := m.jobBus(ctx, "restart", []string{unit}); !ran || err != nil {
			t.Fatalf("restart over D-Bus: ran %v, %v", ran, err)
		}
		calls = append(calls, time.Since(start))
		after, err := m.UnitState(ctx, unit)
		if err != nil || after.SubState != "running" || after.MainPID == st.MainPID {
			t.Fatalf("after restart: %+v (MainPID was %d), %v", after, st.MainPID, err)
		}
		st = after
	}
	slices.Sort(calls)
	t.Logf("restart over D-Bus: median %s", calls[1])

	if ran, err := m.jobBus(ctx, "restart", []string{fails}); !ran || !errors.Is(err, errJobFailed) {
		t.Errorf("restart of a failing unit over D-Bus: ran %v, %v; want errJobFailed", ran, err)
	}
	var ue *UnitError
	if err := m.Restart(ctx, fails); !errors.As(err, &ue) || ue.State.ExecMainStatus != 3 {
		t.Errorf("Restart of a failing unit = %v, want a *UnitError with exit status 3", err)
	}
	if ran, err := m.jobBus(ctx, "restart", []string{um.Unit("busjob-absent.service")}); !ran || !errors.Is(err, ErrUnitNotFound) {
		t.Errorf("restart of an absent unit over D-Bus: ran %v, %v; want ErrUnitNotFound", ran, err)
	}
	if ran, _ := m.jobBus(ctx, "reset-failed", []string{fails}); ran {
		t.Error("reset-failed went over D-Bus; only start, restart and stop do")
	}

	// A socket where no manager answers: systemctl runs the job.
	dir, err := os.MkdirTemp("", "fsj-") // short: sun_path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	mm := *m
	mm.bus = &sharedBus{path: filepath.Join(dir, "absent")}
	if ran, _ := mm.jobBus(ctx, "restart", []string{unit}); ran {
		t.Fatal("a restart went to a socket where no manager answers")
	}
	if err := mm.Restart(ctx, unit); err != nil {
		t.Fatalf("Restart through systemctl: %v", err)
	}
	if after, err := m.UnitState(ctx, unit); err != nil || after.SubState != "running" || after.MainPID == st.MainPID {
		t.Fatalf("after the restart through systemctl: %+v (MainPID was %d), %v", after, st.MainPID, err)
	}
	if err := mm.Restart(ctx, um.Unit("busjob-absent.service")); !errors.Is(err, ErrUnitNotFound) {
		t.Errorf("Restart of an absent unit through systemctl = %v, want ErrUnitNotFound", err)
	}

	if err := m.Stop(ctx, unit); err != nil {
		t.Fatal(err)
	}
	if st, err := m.UnitState(ctx, unit); err != nil || st.ActiveState != "inactive" {
		t.Errorf("after stop: %+v, %v", st, err)
	}
}
