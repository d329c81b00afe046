package systemd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
)

// ErrInvalidCalendar is wrapped when systemd rejects a calendar expression.
var ErrInvalidCalendar = errors.New("invalid calendar expression")

// VerifyError lists what systemd-analyze verify found wrong with units.
type VerifyError struct {
	Paths  []string
	Output string // the lines about these units, or all output on failure
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verify %s: %s", strings.Join(e.Paths, " "), strings.TrimSpace(e.Output))
}

func (m *Manager) analyze(ctx context.Context, args ...string) (string, error) {
	return execx.Output(ctx, execx.Cmd{
		Argv:    append([]string{"systemd-analyze"}, args...),
		Env:     m.env,
		PassEnv: passEnv(),
		Timeout: queryTimeout,
	})
}

// VerifyUnits runs systemd-analyze verify on unit files (give a timer's
// service alongside it). It works offline, without a running manager. A
// non-zero exit fails, and so does any warning that names one of the
// files, such as an unknown key, which systemd would ignore at load time
// but which means the rendering is wrong. Warnings about other units (on a
// real host, verify also loads their dependencies) are not ours to fail
// on. Note that verify checks that ExecStart binaries exist.
func (m *Manager) VerifyUnits(ctx context.Context, paths ...string) error {
	if len(paths) == 0 {
		return errors.New("verify: no unit file given")
	}
	args := []string{"verify"}
	if m.scope == ScopeUser {
		args = append(args, "--user")
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			// verify reads a bare name as a unit to look up, not a file.
			return fmt.Errorf("verify: %q is not an absolute path", p)
		}
		if err := ValidateUnitName(filepath.Base(p)); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	out, err := m.analyze(ctx, append(append(args, "--"), paths...)...)
	if err != nil {
		var ee *execx.ExitError
		if errors.As(err, &ee) {
			return &VerifyError{Paths: paths, Output: out}
		}
		return fmt.Errorf("verify %s: %w", strings.Join(paths, " "), err)
	}
	var ours []string
	for _, line := range strings.Split(out, "\n") {
		for _, p := range paths {
			if strings.Contains(line, p) || strings.Contains(line, filepath.Base(p)+":") {
				ours = append(ours, line)
				break
			}
		}
	}
	if len(ours) > 0 {
		return &VerifyError{Paths: paths, Output: strings.Join(ours, "\n")}
	}
	return nil
}

// ValidateCalendar checks a calendar expression (OnCalendar=) with
// systemd-analyze calendar, offline, and returns systemd's normalized form
// and the next time it elapses in UTC. A valid expression that never
// elapses again (a date in the past) returns a zero time and no error;
// whether that is acceptable is the caller's call.
func (m *Manager) ValidateCalendar(ctx context.Context, expr string) (normalized string, next time.Time, err error) {
	if strings.TrimSpace(expr) == "" {
		return "", time.Time{}, fmt.Errorf("%w: empty", ErrInvalidCalendar)
	}
	if err := checkValue(expr); err != nil {
		return "", time.Time{}, fmt.Errorf("%w %q: %w", ErrInvalidCalendar, expr, err)
	}
	out, err := m.analyze(ctx, "calendar", "--", expr)
	if err != nil {
		var ee *execx.ExitError
		if errors.As(err, &ee) {
			return "", time.Time{}, fmt.Errorf("%w %q: %s", ErrInvalidCalendar, expr, lastLine(out))
		}
		return "", time.Time{}, fmt.Errorf("validate calendar %q: %w", expr, err)
	}
	return parseCalendar(out)
}

// parseCalendar reads systemd-analyze calendar's report:
//
//	  Original form: daily
//	Normalized form: *-*-* 00:00:00
//	    Next elapse: Thu 2026-11-26 00:00:00 CET
//	       (in UTC): Wed 2026-11-25 23:00:00 UTC
//	       From now: 2h 47min left
//
// "(in UTC)" is printed only when the local zone is not UTC, and a zone
// abbreviation such as CET cannot be parsed reliably, so the UTC line is
// preferred and the local one accepted only when it is itself in UTC.
func parseCalendar(out string) (string, time.Time, error) {
	fields := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			k = strings.TrimSpace(k)
			if _, seen := fields[k]; !seen {
				fields[k] = strings.TrimSpace(v)
			}
		}
	}
	normalized := fields["Normalized form"]
	if normalized == "" {
		return "", time.Time{}, fmt.Errorf("systemd-analyze calendar: no normalized form in %q", out)
	}
	nextStr := fields["(in UTC)"]
	if nextStr == "" {
		nextStr = fields["Next elapse"]
	}
	if nextStr == "never" || nextStr == "" {
		return normalized, time.Time{}, nil
	}
	next, err := parseTimestamp(nextStr)
	if err != nil {
		return normalized, time.Time{}, fmt.Errorf("systemd-analyze calendar: %w", err)
	}
	return normalized, next, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
