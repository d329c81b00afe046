package deploy

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
)

// restart: socket. A service started by a systemd socket unit gets its
// listening socket from systemd, which keeps it open while the service
// restarts: new connections wait in the kernel's queue instead of being
// refused. fraisier finds each service's socket unit before the switch
// (a missing one fails the deployment while the old release serves),
// starts a socket that is not listening (a service started without it
// gets no socket), and resets the service's start-limit count before each
// restart: a service that hits its start limit takes its socket down with
// it (systemd fails the socket with service-start-limit-hit), which is the
// one thing this mode must not do. The restart itself is systemd's: SIGTERM,
// then up to TimeoutStopSec for the app to drain, then the new process.

// SocketHandoff is what systemd says of one service's socket hand-off.
type SocketHandoff struct {
	Service string `json:"service"`
	// Sockets are the socket units that start the service.
	Sockets []string `json:"sockets"`
	// Inactive are those of Sockets that are not listening now.
	Inactive []string `json:"inactive,omitempty"`
	// Problem says what is missing for the hand-off, with Fix; "" when
	// the sockets are there (listening or not: a deployment starts them).
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// StopTimeout is the service's TimeoutStopSec; zero: no limit.
	StopTimeout time.Duration `json:"stop_timeout"`
}

// Ready reports whether the hand-off is in place and listening now.
func (h SocketHandoff) Ready() bool { return h.Problem == "" && len(h.Inactive) == 0 }

// Describe is the hand-off in a few words, for doctor and --plan.
func (h SocketHandoff) Describe() string {
	switch {
	case h.Problem != "":
		return "missing: " + h.Problem
	case len(h.Inactive) > 0:
		return fmt.Sprintf("%s found, not listening: the next deployment starts it", strings.Join(h.Inactive, ", "))
	}
	return strings.Join(h.Sockets, ", ") + " listening"
}

// SocketHandoffs asks systemd, changing nothing, about the socket hand-off
// of each of env's services (restart: socket).
func SocketHandoffs(ctx context.Context, c Collaborators, env *config.Environment) ([]SocketHandoff, error) {
	u := c.Units(env.Scope)
	out := make([]SocketHandoff, 0, len(env.Services()))
	for _, svc := range env.Services() {
		h, err := socketHandoff(ctx, u, env.Scope, svc)
		if err != nil {
			return out, err
		}
		out = append(out, h)
	}
	return out, nil
}

// socketHandoff finds the socket units that start service: those systemd
// lists in its TriggeredBy, or else NAME.socket, which asking about loads.
func socketHandoff(ctx context.Context, u Units, scope, service string) (SocketHandoff, error) {
	h := SocketHandoff{Service: service}
	sockets, err := socketsOf(ctx, u, service)
	if err != nil {
		return h, err
	}
	ctl := "systemctl" + scopeFlag(scope)
	if len(sockets) == 0 {
		name := strings.TrimSuffix(service, ".service") + ".socket"
		_, load, _, err := u.UnitFiles(ctx, name)
		if err != nil {
			return h, err
		}
		switch load {
		case "not-found":
			h.Problem = fmt.Sprintf("no socket unit starts %s, and there is no %s", service, name)
			h.Fix = fmt.Sprintf("write %s (ListenStream= the address the app serves, beside %s; see docs/zero-downtime.md), then %s daemon-reload", name, service, ctl)
			return h, nil
		case "loaded":
		default:
			h.Problem = fmt.Sprintf("%s is %s", name, load)
			h.Fix = fmt.Sprintf("%s status %s says why", ctl, name)
			return h, nil
		}
		// Unused, systemd may unload it again at once: ask the socket.
		triggers, err := u.Triggers(ctx, name)
		if err != nil {
			return h, fmt.Errorf("find the socket of %s: %w", service, err)
		}
		if sockets = []string{name}; !slices.Contains(triggers, service) {
			h.Problem = fmt.Sprintf("%s does not start %s", name, service)
			h.Fix = fmt.Sprintf("remove Accept=yes from %s, or set Service=%s in it", name, service)
			return h, nil
		}
	}
	h.Sockets = sockets
	for _, s := range sockets {
		_, load, _, err := u.UnitFiles(ctx, s)
		if err != nil {
			return h, err
		}
		if load != "loaded" {
			h.Problem = fmt.Sprintf("%s, which starts %s, is %s", s, service, load)
			h.Fix = fmt.Sprintf("%s status %s says why", ctl, s)
			return h, nil
		}
		active, err := u.IsActive(ctx, s)
		if err != nil {
			return h, err
		}
		if !active {
			h.Inactive = append(h.Inactive, s)
		}
	}
	if h.StopTimeout, err = u.StopTimeout(ctx, service); err != nil {
		return h, err
	}
	return h, nil
}

// socketsOf lists the socket units systemd knows start service.
func socketsOf(ctx context.Context, u Units, service string) ([]string, error) {
	by, err := u.TriggeredBy(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("find the socket of %s: %w", service, err)
	}
	return slices.DeleteFunc(by, func(s string) bool { return !strings.HasSuffix(s, ".socket") }), nil
}

func scopeFlag(scope string) string {
	if scope == "user" {
		return " --user"
	}
	return ""
}

// prepareSockets runs before the switch with restart: socket: every
// service's socket unit must exist, and one that is not listening is
// started now, while the old release still serves, so that a socket that
// cannot listen (the service itself holds the address) fails the
// deployment before anything changed. It also says when a service's
// TimeoutStopSec would outlast the restart step, which would then give up
// on a drain systemd is still waiting for.
func (d *deployment) prepareSockets(ctx context.Context, out io.Writer) error {
	u := d.c.Units(d.env.Scope)
	restartTimeout := orDefault(d.env.Timeouts.Restart, defaultRestartTimeout)
	for _, svc := range d.env.Services() {
		h, err := ensureSocket(ctx, u, d.env.Scope, svc, out)
		if err != nil {
			return err
		}
		if h.StopTimeout == 0 || h.StopTimeout >= restartTimeout {
			fmt.Fprintf(out, "warning: %s may take %s to stop (TimeoutStopSec), and the restart step gives up after %s: raise timeouts.restart above it, or lower TimeoutStopSec\n",
				svc, stopTimeoutWords(h.StopTimeout), restartTimeout)
		}
	}
	return nil
}

func stopTimeoutWords(d time.Duration) string {
	if d == 0 {
		return "forever"
	}
	return d.String()
}

// ensureSocket finds service's socket units and starts those that are not
// listening; a missing one is an error that says what to write.
func ensureSocket(ctx context.Context, u Units, scope, service string, out io.Writer) (SocketHandoff, error) {
	h, err := socketHandoff(ctx, u, scope, service)
	if err != nil {
		return h, err
	}
	if h.Problem != "" {
		return h, fmt.Errorf("restart: socket: %s (fix: %s)", h.Problem, h.Fix)
	}
	if len(h.Inactive) == 0 {
		return h, nil
	}
	if err := u.Start(ctx, h.Inactive...); err != nil {
		return h, fmt.Errorf("restart: socket: start %s for %s: %w (if %s itself listens on the socket's address, stop it once: systemctl%s stop %s, and deploy again)",
			strings.Join(h.Inactive, ", "), service, err, service, scopeFlag(scope), service)
	}
	fmt.Fprintf(out, "%s was not listening: started\n", strings.Join(h.Inactive, ", "))
	h.Inactive = nil
	return h, nil
}

// socketUnits restarts services as restart: socket does: their sockets
// made sure of, and their start-limit count reset, before each restart.
type socketUnits struct {
	Units
	scope string
	out   io.Writer
}

func (s socketUnits) Restart(ctx context.Context, units ...string) error {
	for _, svc := range units {
		if _, err := ensureSocket(ctx, s.Units, s.scope, svc, s.out); err != nil {
			return err
		}
	}
	// reset-failed also forgets the starts systemd counts against
	// StartLimitBurst, so that quick successive deploys never hit it.
	if err := s.Units.ResetFailed(ctx, units...); err != nil {
		return fmt.Errorf("restart: socket: reset the start limit of %s: %w", strings.Join(units, ", "), err)
	}
	return s.Units.Restart(ctx, units...)
}

// restarter is u as the environment's restart mode restarts with.
func (d *deployment) restarter(u Units, out io.Writer) Units {
	if !d.env.HandsOffSocket() {
		return u
	}
	return socketUnits{Units: u, scope: d.env.Scope, out: out}
}
