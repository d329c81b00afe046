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
	// Warning says when StopTimeout outlasts the restart step's timeout.
	Warning string `json:"warning,omitempty"`
}

// Ready reports whether the hand-off is in place and listening now.
func (h SocketHandoff) Ready() bool { return h.Problem == "" && len(h.Inactive) == 0 }

// Describe is the hand-off in a few words, for doctor and --plan.
func (h SocketHandoff) Describe() string {
	switch {
	case h.Problem != "":
		return h.Problem
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
		h.Warning = stopTimeoutWarning(env, h)
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
	if len(h.Inactive) > 0 {
		// systemd refuses to start a socket whose service runs.
		running, err := u.IsActive(ctx, service)
		if err != nil {
			return h, err
		}
		if running {
			h.Problem = fmt.Sprintf("%s runs without %s, and systemd starts no socket whose service runs", service, strings.Join(h.Inactive, ", "))
			h.Fix = fmt.Sprintf("once: %s stop %s && %s start %s (the service starts again at the first connection)", ctl, service, ctl, strings.Join(h.Inactive, " "))
			return h, nil
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
	for _, svc := range d.env.Services() {
		h, err := ensureSocket(ctx, u, d.env.Scope, svc, out)
		if err != nil {
			return err
		}
		if w := stopTimeoutWarning(d.env, h); w != "" {
			fmt.Fprintln(out, "warning:", w)
		}
	}
	return nil
}

// stopTimeoutWarning says when h's service may take longer to stop than
// env's restart step waits: the step would then fail while systemd still
// lets the app drain (it never kills it before TimeoutStopSec).
func stopTimeoutWarning(env *config.Environment, h SocketHandoff) string {
	restart := orDefault(env.Timeouts.Restart, defaultRestartTimeout)
	if h.StopTimeout > 0 && h.StopTimeout < restart {
		return ""
	}
	stop := "forever (TimeoutStopSec=infinity)"
	if h.StopTimeout > 0 {
		stop = fmt.Sprintf("up to %s (TimeoutStopSec)", h.StopTimeout)
	}
	return fmt.Sprintf("%s may drain for %s, and the restart step gives up after %s: set timeouts.restart above it, or lower TimeoutStopSec",
		h.Service, stop, restart)
}

// socketPlan is the hand-off as --plan shows it: each service's sockets,
// or what is missing.
func socketPlan(ctx context.Context, c Collaborators, env *config.Environment) string {
	hs, err := SocketHandoffs(ctx, c, env)
	if err != nil {
		return "cannot tell: " + err.Error()
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Service + ": " + h.Describe()
		if h.Problem != "" {
			parts[i] += " (fix: " + h.Fix + ")"
		}
		if h.Warning != "" {
			parts[i] += "; warning: " + h.Warning
		}
	}
	return strings.Join(parts, "; ")
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
		return h, fmt.Errorf("restart: socket: start %s for %s: %w (systemctl%s status %s says why)",
			strings.Join(h.Inactive, ", "), service, err, scopeFlag(scope), strings.Join(h.Inactive, " "))
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
