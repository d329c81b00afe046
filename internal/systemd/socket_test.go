package systemd

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestSocketProperties: TriggeredBy, Triggers and ServiceTimeouts say the
// same over D-Bus and through systemctl, for a socket unit and its
// service, and for a service with TimeoutStopSec=infinity.
func TestSocketProperties(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	svc, sock, forever := um.Unit("web.service"), um.Unit("web.socket"), um.Unit("forever.service")
	for name, text := range map[string]string{
		svc:     "[Service]\nExecStart=/bin/sleep 600\nTimeoutStartSec=7s\nTimeoutStopSec=1min 30s 500ms\n",
		sock:    "[Socket]\nListenStream=%t/" + sock + "\n",
		forever: "[Service]\nExecStart=/bin/sleep 600\nTimeoutStopSec=infinity\n",
	} {
		if _, err := m.WriteUnit(name, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	// Started, the socket stays loaded and its service knows it.
	if err := m.Start(ctx, sock); err != nil {
		t.Fatal(err)
	}
	viaSystemctl := *m
	viaSystemctl.bus = nil
	for name, mm := range map[string]*Manager{"D-Bus": m, "systemctl": &viaSystemctl} {
		by, err := mm.TriggeredBy(ctx, svc)
		if err != nil || !slices.Equal(by, []string{sock}) {
			t.Errorf("%s: %s triggered by %v (%v), want [%s]", name, svc, by, err, sock)
		}
		tr, err := mm.Triggers(ctx, sock)
		if err != nil || !slices.Equal(tr, []string{svc}) {
			t.Errorf("%s: %s triggers %v (%v), want [%s]", name, sock, tr, err, svc)
		}
		to, err := mm.ServiceTimeouts(ctx, svc)
		if want := (ServiceTimeouts{Start: 7 * time.Second, Stop: 90500 * time.Millisecond}); err != nil || to != want {
			t.Errorf("%s: %s timeouts %+v (%v), want %+v", name, svc, to, err, want)
		}
		if to, err := mm.ServiceTimeouts(ctx, forever); err != nil || to.Stop != 0 {
			t.Errorf("%s: %s stop timeout %s (%v), want 0 (none)", name, forever, to.Stop, err)
		}
	}
	if _, err := m.ServiceTimeouts(ctx, sock); err == nil {
		t.Error("ServiceTimeouts of a .socket: no error")
	}
}

func TestParseTimespan(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1min 30s": 90 * time.Second, "500ms": 500 * time.Millisecond, "infinity": 0, "": 0,
		"2h 1us": 2*time.Hour + time.Microsecond, "1d": 24 * time.Hour, "1.5s": 1500 * time.Millisecond,
	} {
		if got, err := parseTimespan(in); err != nil || got != want {
			t.Errorf("parseTimespan(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"5", "s", "5 parsecs", "1min x"} {
		if _, err := parseTimespan(in); err == nil {
			t.Errorf("parseTimespan(%q): no error", in)
		}
	}
}

// TestResetStartLimit: a service that hit its start limit starts again
// after ResetStartLimit, over D-Bus and through systemctl alike.
func TestResetStartLimit(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	viaSystemctl := *m
	viaSystemctl.bus = nil
	for name, mm := range map[string]*Manager{"dbus": m, "systemctl": &viaSystemctl} {
		unit := um.Unit("limited-" + name + ".service")
		if _, err := m.WriteUnit(unit, []byte("[Unit]\nStartLimitBurst=1\nStartLimitIntervalSec=1h\n[Service]\nExecStart=/bin/sleep 600\n")); err != nil {
			t.Fatal(err)
		}
		if err := m.DaemonReload(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.Restart(ctx, unit); err != nil {
			t.Fatal(err)
		}
		var ue *UnitError
		if err := m.Restart(ctx, unit); !errors.As(err, &ue) || ue.State.Result != "start-limit-hit" {
			t.Fatalf("%s: second restart = %v, want start-limit-hit", name, err)
		}
		if err := mm.ResetStartLimit(ctx, unit); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := m.Restart(ctx, unit); err != nil {
			t.Fatalf("%s: restart after ResetStartLimit: %v", name, err)
		}
	}
	if err := m.ResetStartLimit(ctx, "bad name"); err == nil {
		t.Error("ResetStartLimit of an invalid name: no error")
	}
}
