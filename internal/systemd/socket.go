package systemd

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// TriggeredBy lists the units that start unit when they fire: the socket
// units that hand it their sockets, timers, paths. systemd knows of a
// socket unit's triggers only while it is loaded (started, enabled, or
// just asked about, until it unloads an unused unit again), so a
// NAME.socket nobody uses is not listed here: ask it Triggers.
func (m *Manager) TriggeredBy(ctx context.Context, unit string) ([]string, error) {
	return m.unitList(ctx, unit, "TriggeredBy")
}

// Triggers lists the units unit starts when it fires: a socket unit's
// service.
func (m *Manager) Triggers(ctx context.Context, unit string) ([]string, error) {
	return m.unitList(ctx, unit, "Triggers")
}

// unitList reads a property of unit that lists units, over D-Bus, and
// with systemctl where that fails.
func (m *Manager) unitList(ctx context.Context, unit, prop string) ([]string, error) {
	if err := ValidateUnitName(unit); err != nil {
		return nil, fmt.Errorf("%s: %w", prop, err)
	}
	var list []string
	err := m.bus.do(ctx, func(c *busConn) error {
		p, err := c.GetUnitPropertyContext(ctx, unit, prop)
		if err != nil {
			return err
		}
		v, ok := p.Value.Value().([]string)
		if !ok {
			return fmt.Errorf("%s is %T, want []string", prop, p.Value.Value())
		}
		list = v
		return nil
	})
	if err == nil {
		return list, nil
	}
	p, err := m.Show(ctx, unit, prop)
	if err != nil {
		return nil, err
	}
	return strings.Fields(p[prop]), nil
}

// ResetStartLimit does what ResetFailed does (the failed state and the
// start-limit count of units cleared), over D-Bus where it can, without
// starting systemctl: a deploy with restart: socket asks it before every
// restart.
func (m *Manager) ResetStartLimit(ctx context.Context, units ...string) error {
	if err := validateUnitNames(units); err != nil {
		return fmt.Errorf("reset-failed: %w", err)
	}
	err := m.bus.do(ctx, func(c *busConn) error {
		for _, u := range units {
			if err := c.ResetFailedUnitContext(ctx, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	return m.ResetFailed(ctx, units...)
}

// ServiceTimeouts are how long systemd lets a service start and stop
// (TimeoutStartSec=, TimeoutStopSec=) before it gives up, and on a stop
// sends SIGKILL; zero means no limit.
type ServiceTimeouts struct {
	Start, Stop time.Duration
}

// ServiceTimeouts reads a service's start and stop timeouts.
func (m *Manager) ServiceTimeouts(ctx context.Context, unit string) (ServiceTimeouts, error) {
	if !strings.HasSuffix(unit, ".service") {
		return ServiceTimeouts{}, fmt.Errorf("service timeouts: %w %q: not a .service", ErrInvalidUnitName, unit)
	}
	if err := ValidateUnitName(unit); err != nil {
		return ServiceTimeouts{}, fmt.Errorf("service timeouts: %w", err)
	}
	var t ServiceTimeouts
	err := m.bus.do(ctx, func(c *busConn) error {
		for _, p := range []struct {
			name string
			to   *time.Duration
		}{{"TimeoutStartUSec", &t.Start}, {"TimeoutStopUSec", &t.Stop}} {
			v, err := c.GetUnitTypePropertyContext(ctx, unit, "Service", p.name)
			if err != nil {
				return err
			}
			us, ok := v.Value.Value().(uint64)
			if !ok {
				return fmt.Errorf("%s is %T, want uint64", p.name, v.Value.Value())
			}
			*p.to = usecDuration(us)
		}
		return nil
	})
	if err == nil {
		return t, nil
	}
	props, err := m.Show(ctx, unit, "TimeoutStartUSec", "TimeoutStopUSec")
	if err != nil {
		return t, err
	}
	if t.Start, err = parseTimespan(props["TimeoutStartUSec"]); err == nil {
		t.Stop, err = parseTimespan(props["TimeoutStopUSec"])
	}
	if err != nil {
		return t, fmt.Errorf("service timeouts of %s: %w", unit, err)
	}
	return t, nil
}

// usecDuration converts systemd's microseconds, where the largest value
// is infinity, into a Duration where zero is.
func usecDuration(us uint64) time.Duration {
	if us == math.MaxUint64 || us > math.MaxInt64/1000 {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// timespanUnits are the units systemctl show prints a timespan in.
var timespanUnits = map[string]time.Duration{
	"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "min": time.Minute,
	"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
	"month": 2629800 * time.Second, "y": 31557600 * time.Second,
}

// parseTimespan reads a timespan as systemctl show prints one: "1min 30s",
// "500ms", "infinity" (zero here, as for usecDuration).
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" || s == "" {
		return 0, nil
	}
	var total time.Duration
	for _, f := range strings.Fields(s) {
		i := strings.IndexFunc(f, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return 0, fmt.Errorf("timespan %q: %q has no number and unit", s, f)
		}
		n, err := strconv.ParseFloat(f[:i], 64)
		unit, ok := timespanUnits[f[i:]]
		if err != nil || !ok {
			return 0, fmt.Errorf("timespan %q: cannot read %q", s, f)
		}
		total += time.Duration(n * float64(unit))
	}
	return total, nil
}
