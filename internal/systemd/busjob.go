package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/godbus/dbus/v5"
)

// errJobFailed wraps the result of a job that did not end "done".
var errJobFailed = errors.New("job failed")

// jobBus runs verb's job (start, restart or stop) for each unit over the
// private socket, in mode "replace" as systemctl does, every job queued
// before any is waited for. It saves the systemctl process a deploy would
// otherwise start for its restart. ran is false when no job reached the
// manager (no socket, a connection that fails, another verb): the caller
// asks systemctl instead. A unit systemd does not know gives
// ErrUnitNotFound, a job that ends other than "done" errJobFailed.
func (m *Manager) jobBus(ctx context.Context, verb string, units []string) (ran bool, err error) {
	if verb != "start" && verb != "restart" && verb != "stop" {
		return false, nil
	}
	c, err := m.bus.acquire(ctx)
	if err != nil {
		return false, nil
	}
	defer m.bus.release()
	call := map[string]func(context.Context, string, string, chan<- string) (int, error){
		"start": c.StartUnitContext, "restart": c.RestartUnitContext, "stop": c.StopUnitContext,
	}[verb]
	results := make([]chan string, len(units))
	for i, u := range units {
		results[i] = make(chan string, 1)
		if _, err := call(ctx, u, "replace", results[i]); err != nil {
			var de dbus.Error
			switch {
			case errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.NoSuchUnit":
				return true, fmt.Errorf("%w: %w", ErrUnitNotFound, err)
			case i == 0 && !errors.As(err, &de):
				// The connection failed before any job was queued.
				return false, nil
			}
			return true, fmt.Errorf("%s %s over D-Bus: %w", verb, u, err)
		}
	}
	var failed []string
	for i, u := range units {
		select {
		case r := <-results[i]:
			if r != "done" {
				failed = append(failed, u+": "+r)
			}
		case <-c.raw.Context().Done():
			return true, fmt.Errorf("%s %s: the connection to systemd closed before the job ended", verb, u)
		case <-ctx.Done():
			return true, fmt.Errorf("%s %s: %w", verb, u, ctx.Err())
		}
	}
	if failed != nil {
		return true, fmt.Errorf("%w (%s)", errJobFailed, strings.Join(failed, ", "))
	}
	return true, nil
}
