package systemd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// busPath is the manager's private socket, or "" where systemctl would not
// use it either: the system manager's answers only root (systemctl as
// another user goes through the system bus and polkit).
func (m *Manager) busPath() string {
	switch {
	case m.noBus:
		return ""
	case m.busSocket != "":
		return m.busSocket
	}
	if m.scope == ScopeSystem {
		if os.Geteuid() != 0 {
			return ""
		}
		return "/run/systemd/private"
	}
	rt := m.getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(rt) {
		return ""
	}
	return filepath.Join(rt, "systemd", "private")
}

// unitStateBus is UnitState over the private socket: the Unit interface's
// properties and the unit kind's own (Service for a .service), read on one
// connection. Any error means "ask systemctl instead".
func (m *Manager) unitStateBus(ctx context.Context, unit string) (UnitStatus, error) {
	b, err := dialBus(ctx, m.busPath(), queryTimeout)
	if err != nil {
		return UnitStatus{}, err
	}
	defer b.Close()
	path := unitPath(unit)
	cs := []busCall{{path, "org.freedesktop.DBus.Properties", "GetAll", []string{"org.freedesktop.systemd1.Unit"}}}
	iface := kindInterface(unit)
	if iface != "" {
		cs = append(cs, busCall{path, "org.freedesktop.DBus.Properties", "GetAll", []string{iface}})
	}
	bodies, err := b.calls(cs...)
	if err != nil {
		return UnitStatus{}, err
	}
	up, err := propsFromBody(cs[0].args[0], bodies[0])
	if err != nil {
		return UnitStatus{}, err
	}
	var kp map[string]any
	if iface != "" {
		if kp, err = propsFromBody(iface, bodies[1]); err != nil {
			return UnitStatus{}, err
		}
	}
	return statusFromProps(unit, up, kp)
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

// statusFromProps builds a UnitStatus from the two property sets as
// UnitState does from systemctl show's text. A property of the wrong type
// is an error (this client misreads something); an absent one is zero,
// as in systemctl's output for a unit kind without it.
func statusFromProps(unit string, up, kp map[string]any) (UnitStatus, error) {
	st := UnitStatus{Unit: unit}
	var errs []error
	str := func(p map[string]any, k string) string {
		v, ok := p[k]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, fmt.Errorf("property %s is %T, want string", k, v))
		}
		return s
	}
	num := func(p map[string]any, k string) int {
		switch v := p[k].(type) {
		case nil:
			return 0
		case uint32:
			return int(v)
		case int32:
			return int(v)
		default:
			errs = append(errs, fmt.Errorf("property %s is %T, want a 32-bit integer", k, v))
			return 0
		}
	}
	st.LoadState = str(up, "LoadState")
	st.ActiveState = str(up, "ActiveState")
	st.SubState = str(up, "SubState")
	st.FragmentPath = str(up, "FragmentPath")
	st.UnitFileState = str(up, "UnitFileState")
	st.Result = str(kp, "Result")
	st.Type = str(kp, "Type")
	st.MainPID = num(kp, "MainPID")
	st.NRestarts = num(kp, "NRestarts")
	st.ExecMainStatus = num(kp, "ExecMainStatus")
	switch v := up["NeedDaemonReload"].(type) {
	case bool:
		st.NeedDaemonReload = v
	default:
		errs = append(errs, fmt.Errorf("property NeedDaemonReload is %T, want bool", v))
	}
	// systemctl prints the 128-bit id as 32 hex digits, nothing when unset.
	switch v := up["InvocationID"].(type) {
	case []byte:
		if len(v) > 0 {
			st.InvocationID = hex.EncodeToString(v)
		}
	case nil:
	default:
		errs = append(errs, fmt.Errorf("property InvocationID is %T, want ay", v))
	}
	switch v := up["ActiveEnterTimestamp"].(type) {
	case uint64:
		if v != 0 && v != 1<<64-1 {
			st.ActiveEnterTimestamp = time.UnixMicro(int64(v)).UTC()
		}
	case nil:
	default:
		errs = append(errs, fmt.Errorf("property ActiveEnterTimestamp is %T, want t", v))
	}
	if st.ActiveState == "" {
		errs = append(errs, errors.New("no ActiveState"))
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("state of %s over D-Bus: %w", unit, errors.Join(errs...))
	}
	return st, nil
}
