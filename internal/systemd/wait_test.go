package systemd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestWaitActiveLoop scripts the states a unit goes through, one per poll,
// and checks the verdict and how long the wait took in (fake) time.
func TestWaitActiveLoop(t *testing.T) {
	const poll = 100 * time.Millisecond
	up := func(pid, restarts int, inv string) UnitStatus {
		return UnitStatus{Unit: "web.service", LoadState: "loaded", ActiveState: "active", SubState: "running",
			Type: "simple", MainPID: pid, NRestarts: restarts, InvocationID: inv}
	}
	starting := UnitStatus{Unit: "web.service", LoadState: "loaded", ActiveState: "activating", SubState: "start", Type: "notify"}
	tests := []struct {
		name     string
		states   []UnitStatus // the last one repeats
		settle   time.Duration
		deadline time.Duration
		wantErr  string // "" for success
		wantTook time.Duration
	}{
		{name: "steady", states: []UnitStatus{up(10, 0, "a")}, settle: time.Second, wantTook: time.Second},
		{name: "no settle trusts the first running state", states: []UnitStatus{up(10, 0, "a")}, wantTook: 0},
		{name: "activating then steady", states: []UnitStatus{starting, starting, starting, up(10, 0, "a")}, settle: 500 * time.Millisecond,
			wantTook: 3*poll + 500*time.Millisecond},
		{name: "main PID changes between polls", states: []UnitStatus{up(10, 0, "a"), up(10, 0, "a"), up(11, 0, "a")}, settle: time.Second,
			wantErr: "restarted while settling", wantTook: 2 * poll},
		{name: "restart counter moves", states: []UnitStatus{up(10, 0, "a"), up(10, 1, "a")}, settle: time.Second,
			wantErr: "restarted while settling", wantTook: poll},
		{name: "invocation changes", states: []UnitStatus{up(10, 0, "a"), up(10, 0, "b")}, settle: time.Second,
			wantErr: "restarted while settling", wantTook: poll},
		{name: "already restarted once when first seen", states: []UnitStatus{up(10, 0, "a"), up(12, 1, "c")}, settle: time.Second,
			wantErr: "restarted while settling", wantTook: poll},
		{name: "never comes up", states: []UnitStatus{starting}, settle: time.Second, deadline: 2 * time.Second,
			wantErr: "did not come up before the wait ended", wantTook: 2 * time.Second},
		{name: "deadline inside the settle window", states: []UnitStatus{up(10, 0, "a")}, settle: 5 * time.Second, deadline: 2 * time.Second,
			wantErr: "still settling", wantTook: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				calls := 0
				state := func(context.Context, string) (UnitStatus, error) {
					st := tt.states[min(calls, len(tt.states)-1)]
					calls++
					return st, nil
				}
				fail := func(st UnitStatus, reason string, err error) error {
					return &UnitError{Unit: st.Unit, Reason: reason, State: st, Err: err}
				}
				start := time.Now()
				err := waitActive(ctx, "web.service", tt.settle, poll, state, fail)
				took := time.Since(start)
				if tt.wantErr == "" && err != nil {
					t.Fatalf("waitActive = %v, want success", err)
				}
				if tt.wantErr != "" {
					var ue *UnitError
					if !errors.As(err, &ue) || !strings.Contains(ue.Reason, tt.wantErr) {
						t.Fatalf("waitActive = %v, want a *UnitError saying %q", err, tt.wantErr)
					}
					if tt.deadline > 0 && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("error %v does not wrap the deadline", err)
					}
				}
				if took != tt.wantTook {
					t.Errorf("took %s, want %s", took, tt.wantTook)
				}
			})
		})
	}
}
