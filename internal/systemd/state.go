package systemd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Show returns the named properties of unit (all of them when props is
// empty) as systemctl show prints them, timestamps in UTC with
// microseconds. A unit systemd does not know is not an error here: its
// LoadState is "not-found".
func (m *Manager) Show(ctx context.Context, unit string, props ...string) (map[string]string, error) {
	if err := ValidateUnitName(unit); err != nil {
		return nil, fmt.Errorf("show: %w", err)
	}
	args := []string{"show", "--timestamp=us+utc"}
	if len(props) > 0 {
		for _, p := range props {
			// A property name with "," or "=" would be read as several.
			if p == "" || strings.ContainsAny(p, ",= \t\n") {
				return nil, fmt.Errorf("show %s: bad property name %q", unit, p)
			}
		}
		args = append(args, "--property="+strings.Join(props, ","))
	}
	out, err := m.systemctl(ctx, queryTimeout, append(args, "--", unit)...)
	if err != nil {
		return nil, fmt.Errorf("show %s: %w", unit, err)
	}
	return parseShow(out), nil
}

func parseShow(out string) map[string]string {
	props := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	return props
}

// UnitStatus is what UnitState reports of a unit.
type UnitStatus struct {
	Unit        string
	LoadState   string // loaded, not-found, bad-setting, masked...
	ActiveState string // active, activating, deactivating, inactive, failed, reloading
	SubState    string // running, exited, dead, auto-restart, waiting...
	// Result is how the last run ended: success, exit-code, signal,
	// timeout, core-dump, start-limit-hit...
	Result string
	// Type is a service's Type= (simple, exec, notify, oneshot...); empty
	// for other unit kinds.
	Type string
	// MainPID is 0 when no main process runs.
	MainPID int
	// NRestarts counts automatic restarts since the last manual start or
	// restart, which reset it.
	NRestarts int
	// ExecMainStatus is the exit status (or, for Result "signal", the
	// signal number) of the last main process.
	ExecMainStatus int
	// InvocationID changes on every start, automatic restarts included.
	InvocationID         string
	ActiveEnterTimestamp time.Time
	FragmentPath         string
	UnitFileState        string // enabled, disabled, static...
	NeedDaemonReload     bool
}

var statusProps = []string{
	"Id", "LoadState", "ActiveState", "SubState", "Result", "Type", "MainPID",
	"NRestarts", "ExecMainStatus", "InvocationID", "ActiveEnterTimestamp",
	"FragmentPath", "UnitFileState", "NeedDaemonReload",
}

// UnitState returns the state of unit. It asks over D-Bus (see bus.go),
// and asks systemctl where that fails: the private socket is absent or
// not ours (the system manager's, for a user other than root), what
// answers there is not a manager, or the connection dropped mid-question.
func (m *Manager) UnitState(ctx context.Context, unit string) (UnitStatus, error) {
	if err := ValidateUnitName(unit); err != nil {
		return UnitStatus{Unit: unit}, fmt.Errorf("state: %w", err)
	}
	if st, err := m.unitStateBus(ctx, unit); err == nil {
		return st, nil
	}
	return m.unitStateSystemctl(ctx, unit)
}

func (m *Manager) unitStateSystemctl(ctx context.Context, unit string) (UnitStatus, error) {
	p, err := m.Show(ctx, unit, statusProps...)
	if err != nil {
		return UnitStatus{Unit: unit}, err
	}
	st := UnitStatus{
		Unit:             unit,
		LoadState:        p["LoadState"],
		ActiveState:      p["ActiveState"],
		SubState:         p["SubState"],
		Result:           p["Result"],
		Type:             p["Type"],
		InvocationID:     p["InvocationID"],
		FragmentPath:     p["FragmentPath"],
		UnitFileState:    p["UnitFileState"],
		NeedDaemonReload: p["NeedDaemonReload"] == "yes",
	}
	if st.ActiveState == "" {
		return st, fmt.Errorf("state of %s: systemctl show printed no ActiveState", unit)
	}
	var errs []error
	st.MainPID, errs = atoi(p, "MainPID", errs)
	st.NRestarts, errs = atoi(p, "NRestarts", errs)
	st.ExecMainStatus, errs = atoi(p, "ExecMainStatus", errs)
	t, err := parseTimestamp(p["ActiveEnterTimestamp"])
	if err != nil {
		errs = append(errs, err)
	}
	st.ActiveEnterTimestamp = t
	if len(errs) > 0 {
		return st, fmt.Errorf("state of %s: %w", unit, errs[0])
	}
	return st, nil
}

// atoi parses an integer property; absent (a unit kind without it) is 0.
func atoi(p map[string]string, key string, errs []error) (int, []error) {
	v, ok := p[key]
	if !ok || v == "" || v == "[not set]" {
		return 0, errs
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, append(errs, fmt.Errorf("property %s=%q: %w", key, v, err))
	}
	return n, errs
}

// parseTimestamp reads a timestamp printed with --timestamp=us+utc, as in
// "Wed 2026-11-25 20:11:55.303992 UTC" (the fraction may be absent). The
// weekday is skipped rather than parsed, so its language cannot matter.
func parseTimestamp(v string) (time.Time, error) {
	if v == "" || v == "n/a" || v == "0" {
		return time.Time{}, nil
	}
	_, rest, ok := strings.Cut(v, " ")
	rest, utc := strings.CutSuffix(rest, " UTC")
	if !ok || !utc {
		return time.Time{}, fmt.Errorf("timestamp %q: not in the expected UTC form", v)
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05", rest, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", v, err)
	}
	return t, nil
}

// IsActive reports whether unit's ActiveState is active. For a service
// just (re)started, prefer WaitActive: active is also what a process that
// is about to crash looks like.
func (m *Manager) IsActive(ctx context.Context, unit string) (bool, error) {
	st, err := m.UnitState(ctx, unit)
	if err != nil {
		return false, err
	}
	return st.ActiveState == "active", nil
}

// UnitError says that a unit is not running as it should, with what
// systemd reported.
type UnitError struct {
	Unit   string
	Reason string     // what was seen, e.g. "restarted while settling"
	State  UnitStatus // the state that decided it
	// Log is the tail of `systemctl status`, which includes the unit's
	// journal lines where there is a journal.
	Log string
	// Err is the underlying error (the context's, or systemctl's), if any.
	Err error
}

func (e *UnitError) Error() string {
	s := e.State
	msg := fmt.Sprintf("unit %s %s", e.Unit, e.Reason)
	if s.ActiveState != "" {
		msg += fmt.Sprintf(" (%s/%s", s.ActiveState, s.SubState)
		if s.Result != "" && s.Result != "success" {
			msg += ", result " + s.Result
			if s.Result == "signal" || s.Result == "core-dump" {
				msg += fmt.Sprintf(", signal %d", s.ExecMainStatus)
			} else if s.ExecMainStatus != 0 {
				msg += fmt.Sprintf(", exit status %d", s.ExecMainStatus)
			}
		}
		msg += ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *UnitError) Unwrap() error { return e.Err }

// unitError builds a UnitError with the status tail, which it fetches even
// when ctx has already ended: that is when it is most wanted.
func (m *Manager) unitError(ctx context.Context, st UnitStatus, reason string, err error) *UnitError {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// status exits 3 for a unit that is not active; its output is the point.
	out, _ := m.systemctl(sctx, 0, "status", "--full", "--lines=20", "--", st.Unit)
	return &UnitError{Unit: st.Unit, Reason: reason, State: st, Log: out, Err: err}
}

// WaitActive waits until unit runs and has kept running for settle, and
// returns a *UnitError if it does not. It is meant to follow Start or
// Restart (which reset NRestarts), and answers the question a deploy asks:
// did the new process come up and stay up?
//
// A service that crashes right after a restart looks active for a moment:
// Type=simple is "active (running)" as soon as it is forked. So within the
// settle window any sign of a crash fails the wait: a failed or
// auto-restart state, or a changed MainPID, NRestarts or InvocationID,
// which catch a crash and automatic restart that happened between two
// polls. Units that are activating (Type=notify before READY=1, or
// ExecStartPre) are waited for until ctx ends. A service counts as running
// in SubState "running" (or "exited" for Type=oneshot); other unit kinds
// when their ActiveState is active.
//
// settle zero checks the state once it is active and trusts it; a deploy
// should pass a second or two and leave readiness to its health checks
// (a Type=simple service is "running" before it listens).
func (m *Manager) WaitActive(ctx context.Context, unit string, settle time.Duration) error {
	if err := ValidateUnitName(unit); err != nil {
		return fmt.Errorf("wait for %s: %w", unit, err)
	}
	fail := func(st UnitStatus, reason string, err error) error { return m.unitError(ctx, st, reason, err) }
	return waitActive(ctx, unit, settle, m.poll, m.UnitState, fail)
}

// waitActive is WaitActive's loop, with the systemd queries passed in so
// that tests can script the states a unit goes through.
func waitActive(ctx context.Context, unit string, settle, poll time.Duration,
	state func(context.Context, string) (UnitStatus, error),
	fail func(st UnitStatus, reason string, err error) error,
) error {
	var (
		base        *UnitStatus // first state seen running
		settleUntil time.Time
		last        = UnitStatus{Unit: unit}
	)
	for {
		st, err := state(ctx, unit)
		if err != nil {
			if ctx.Err() != nil {
				return fail(last, "did not come up before the wait ended", ctx.Err())
			}
			return fmt.Errorf("wait for %s: %w", unit, err)
		}
		last = st
		if reason := notRunning(st, base != nil); reason != "" {
			return fail(st, reason, nil)
		}
		if running(st) {
			if base == nil {
				b := st
				base, settleUntil = &b, time.Now().Add(settle)
			} else if st.MainPID != base.MainPID || st.NRestarts != base.NRestarts || st.InvocationID != base.InvocationID {
				return fail(st, fmt.Sprintf("restarted while settling (main PID %d, now %d)", base.MainPID, st.MainPID), nil)
			}
			if !time.Now().Before(settleUntil) {
				return nil
			}
		}
		wait := poll
		if base != nil {
			wait = min(wait, time.Until(settleUntil))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			reason := "did not come up before the wait ended"
			if base != nil {
				reason = "was still settling when the wait ended"
			}
			return fail(last, reason, ctx.Err())
		case <-timer.C:
		}
	}
}

// running reports whether st is the steady state WaitActive waits for.
func running(st UnitStatus) bool {
	if st.ActiveState != "active" {
		return false
	}
	if !strings.HasSuffix(st.Unit, ".service") {
		return true
	}
	return st.SubState == "running" || (st.Type == "oneshot" && st.SubState == "exited")
}

// notRunning names a state from which the unit will not come up by itself,
// or "" while it still may. Once the unit has been seen running
// (seenRunning), going back to activating means it was restarted.
func notRunning(st UnitStatus, seenRunning bool) string {
	switch {
	case st.LoadState != "loaded":
		return "is not loaded (" + st.LoadState + ")"
	case st.ActiveState == "failed":
		return "failed"
	case st.SubState == "auto-restart":
		return "crashed and is waiting to be restarted"
	case st.ActiveState == "inactive":
		return "is not running"
	case st.ActiveState == "deactivating":
		return "is stopping"
	case st.ActiveState == "active" && !running(st):
		// Type=simple with RemainAfterExit=yes, say: active, no process.
		return "is active but its process is gone (" + st.SubState + ")"
	case st.ActiveState == "reloading":
		return ""
	case seenRunning && st.ActiveState != "active":
		return "restarted while settling"
	}
	return ""
}

// TimerStatus is what TimerStatus reports of a timer and its service.
type TimerStatus struct {
	Timer string
	// Unit is the service the timer triggers.
	Unit string
	// Active is true while the timer is armed (ActiveState active).
	Active bool
	// NextElapse is the next calendar elapse; zero when none is scheduled:
	// the timer is inactive, has monotonic triggers only, or its service is
	// running (systemd computes the next elapse when it finishes).
	NextElapse time.Time
	// LastTrigger is zero if the timer never fired.
	LastTrigger time.Time
	// Running is true while the service is activating or active.
	Running bool
	// LastResult is the service's Result after its last run ("success",
	// "exit-code", ...), empty if the timer never fired.
	LastResult     string
	LastExitStatus int
}

// TimerStatus returns the state of timer and of the service it triggers.
func (m *Manager) TimerStatus(ctx context.Context, timer string) (TimerStatus, error) {
	ts := TimerStatus{Timer: timer}
	if !strings.HasSuffix(timer, ".timer") {
		return ts, fmt.Errorf("timer status: %w %q: not a .timer", ErrInvalidUnitName, timer)
	}
	p, err := m.Show(ctx, timer, "LoadState", "ActiveState", "Unit", "NextElapseUSecRealtime", "LastTriggerUSec")
	if err != nil {
		return ts, err
	}
	if p["LoadState"] != "loaded" {
		return ts, fmt.Errorf("timer status %s: %w (%s)", timer, ErrUnitNotFound, p["LoadState"])
	}
	ts.Unit, ts.Active = p["Unit"], p["ActiveState"] == "active"
	if ts.NextElapse, err = parseTimestamp(p["NextElapseUSecRealtime"]); err != nil {
		return ts, fmt.Errorf("timer status %s: %w", timer, err)
	}
	if ts.LastTrigger, err = parseTimestamp(p["LastTriggerUSec"]); err != nil {
		return ts, fmt.Errorf("timer status %s: %w", timer, err)
	}
	if ts.Unit == "" {
		return ts, nil
	}
	svc, err := m.UnitState(ctx, ts.Unit)
	if err != nil {
		return ts, fmt.Errorf("timer status %s: %w", timer, err)
	}
	ts.Running = svc.ActiveState == "active" || svc.ActiveState == "activating"
	if !ts.LastTrigger.IsZero() {
		ts.LastResult, ts.LastExitStatus = svc.Result, svc.ExecMainStatus
	}
	return ts, nil
}
