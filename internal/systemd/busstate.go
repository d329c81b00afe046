package systemd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// unitStateBus is UnitState over D-Bus: the Unit interface's properties,
// and those UnitState reports of the unit kind's own (Service for a
// .service). Any error means "ask systemctl instead".
func (m *Manager) unitStateBus(ctx context.Context, unit string) (UnitStatus, error) {
	var st UnitStatus
	err := m.bus.do(ctx, func(c *busConn) error {
		up, err := c.GetUnitPropertiesContext(ctx, unit)
		if err != nil {
			return fmt.Errorf("state of %s over D-Bus: %w", unit, err)
		}
		kp, err := kindProps(ctx, c, unit)
		if err != nil {
			return fmt.Errorf("state of %s over D-Bus: %w", unit, err)
		}
		st, err = statusFromProps(unit, up, kp)
		return err
	})
	return st, err
}

// kindProps reads Result, Type, MainPID, NRestarts and ExecMainStatus from
// the unit kind's interface, leaving out those the kind does not have (a
// timer has no MainPID). Asking for these alone costs both sides much less
// than all of a service's properties.
func kindProps(ctx context.Context, c *busConn, unit string) (map[string]any, error) {
	kind, ok := strings.CutPrefix(kindInterface(unit), "org.freedesktop.systemd1.")
	if !ok {
		return nil, nil
	}
	names := []string{"Result", "Type", "MainPID", "NRestarts", "ExecMainStatus"}
	kp := make(map[string]any, len(names))
	for _, name := range names {
		p, err := c.GetUnitTypePropertyContext(ctx, unit, kind, name)
		var de dbus.Error
		switch {
		case err == nil:
			kp[name] = p.Value.Value()
		case errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.UnknownProperty":
		default:
			return nil, err
		}
	}
	return kp, nil
}

// kindInterface is the D-Bus interface of a unit's kind, which holds
// Result, Type, MainPID and the like: org.freedesktop.systemd1.Service for
// x.service. The kinds' interface names are their suffixes capitalised.
func kindInterface(unit string) string {
	i := strings.LastIndexByte(unit, '.')
	if i < 0 || i == len(unit)-1 {
		return ""
	}
	kind := unit[i+1:]
	return "org.freedesktop.systemd1." + strings.ToUpper(kind[:1]) + kind[1:]
}

// props reads typed values from a GetAll reply. A property of the wrong
// type is an error (this client misreads something); an absent one is
// zero, as in systemctl's output for a unit kind without it.
type props struct {
	p    map[string]any
	errs []error
}

func prop[T any](ps *props, name string) T {
	var t T
	v, ok := ps.p[name]
	if !ok {
		return t
	}
	if t, ok = v.(T); !ok {
		ps.errs = append(ps.errs, fmt.Errorf("property %s is %T, want %T", name, v, t))
	}
	return t
}

// statusFromProps builds a UnitStatus from the two property sets as
// UnitState does from systemctl show's text.
func statusFromProps(unit string, up, kp map[string]any) (UnitStatus, error) {
	u, k := &props{p: up}, &props{p: kp}
	st := UnitStatus{
		Unit:             unit,
		LoadState:        prop[string](u, "LoadState"),
		ActiveState:      prop[string](u, "ActiveState"),
		SubState:         prop[string](u, "SubState"),
		FragmentPath:     prop[string](u, "FragmentPath"),
		UnitFileState:    prop[string](u, "UnitFileState"),
		NeedDaemonReload: prop[bool](u, "NeedDaemonReload"),
		Result:           prop[string](k, "Result"),
		Type:             prop[string](k, "Type"),
		MainPID:          int(prop[uint32](k, "MainPID")),
		NRestarts:        int(prop[uint32](k, "NRestarts")),
		ExecMainStatus:   int(prop[int32](k, "ExecMainStatus")),
	}
	// systemctl prints the 128-bit id as 32 hex digits, nothing when unset.
	if id := prop[[]byte](u, "InvocationID"); len(id) > 0 {
		st.InvocationID = hex.EncodeToString(id)
	}
	// Zero and the maximum both mean "never".
	if t := prop[uint64](u, "ActiveEnterTimestamp"); t != 0 && t != 1<<64-1 {
		st.ActiveEnterTimestamp = time.UnixMicro(int64(t)).UTC()
	}
	errs := append(u.errs, k.errs...)
	if st.ActiveState == "" {
		errs = append(errs, errors.New("no ActiveState"))
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("state of %s over D-Bus: %w", unit, errors.Join(errs...))
	}
	return st, nil
}
