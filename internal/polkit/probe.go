package polkit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/fraiseql/fraisier/internal/systemd"
)

// ErrUnreachable is wrapped when polkit cannot be asked: no system bus, or
// no polkitd on it (neither running nor activatable).
var ErrUnreachable = errors.New("polkit unreachable")

// The names MayRestart meets on the system bus.
const (
	polkitName    = "org.freedesktop.PolicyKit1"
	systemdName   = "org.freedesktop.systemd1"
	systemdPath   = "/org/freedesktop/systemd1"
	restartMethod = "org.freedesktop.systemd1.Manager.RestartUnit"
	// isolateRefused is what systemd answers when it has authorized a
	// restart in job mode "isolate" and then refuses the mode.
	isolateRefused = "Isolate is only valid for start"
)

// MayRestart reports whether this process may restart the system unit,
// as polkit decides for systemd, without restarting it.
//
// polkitd answers CheckAuthorization with details (the unit, the verb)
// only to root and the action's owner, so the question goes to systemd:
// RestartUnit(unit, "isolate") over the system bus, without interactive
// authorization. systemd asks polkit first (action manage-units, the
// unit, verb "restart") and only then looks at the job mode, which it
// refuses for anything but start: "Isolate is only valid for start" means
// polkit allowed the restart and nothing was queued; AccessDenied or
// InteractiveAuthorizationRequired means it did not. Root needs no polkit
// (systemd lets CAP_SYS_ADMIN through): callers answer that themselves.
//
// The system bus is $DBUS_SYSTEM_BUS_ADDRESS, else the standard socket.
// No bus, or no polkitd on it, is ErrUnreachable.
func MayRestart(ctx context.Context, unit string) (bool, error) {
	if err := systemd.ValidateUnitName(unit); err != nil {
		return false, fmt.Errorf("may restart: %w", err)
	}
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("%w: connect to the system bus: %v", ErrUnreachable, err)
	}
	defer conn.Close()
	if err := polkitPresent(ctx, conn); err != nil {
		return false, err
	}
	var job dbus.ObjectPath
	err = conn.Object(systemdName, systemdPath).CallWithContext(ctx, restartMethod, 0, unit, "isolate").Store(&job)
	var de dbus.Error
	switch {
	case err == nil:
		return true, fmt.Errorf("may restart %s: systemd queued job %s in mode isolate, which it refuses for a restart: report this", unit, job)
	case errors.As(err, &de) && de.Name == "org.freedesktop.DBus.Error.InvalidArgs" && strings.Contains(errorText(de), isolateRefused):
		return true, nil
	case errors.As(err, &de) && (de.Name == "org.freedesktop.DBus.Error.AccessDenied" || de.Name == "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"):
		return false, nil
	}
	return false, fmt.Errorf("may restart %s: ask systemd on the system bus: %w", unit, err)
}

// polkitPresent reports ErrUnreachable unless polkitd holds its bus name
// or the bus can start it: without it systemd refuses every request of an
// unprivileged caller, allowed by a rule or not.
func polkitPresent(ctx context.Context, conn *dbus.Conn) error {
	bus := conn.BusObject()
	var has bool
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, polkitName).Store(&has); err != nil {
		return fmt.Errorf("%w: ask the system bus for %s: %v", ErrUnreachable, polkitName, err)
	}
	if has {
		return nil
	}
	var names []string
	if err := bus.CallWithContext(ctx, "org.freedesktop.DBus.ListActivatableNames", 0).Store(&names); err != nil {
		return fmt.Errorf("%w: ask the system bus for %s: %v", ErrUnreachable, polkitName, err)
	}
	if !slices.Contains(names, polkitName) {
		return fmt.Errorf("%w: polkitd is not on the system bus and cannot be started there", ErrUnreachable)
	}
	return nil
}

// errorText is the message a D-Bus error carries.
func errorText(e dbus.Error) string {
	var parts []string
	for _, b := range e.Body {
		if s, ok := b.(string); ok {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}
