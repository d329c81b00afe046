package systemd

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestUnitPath checks that the object paths go-systemd builds are the ones
// systemd's bus_label_escape makes of the unit names fraisier uses.
func TestUnitPath(t *testing.T) {
	unitPath := func(unit string) string { return "/org/freedesktop/systemd1/unit/" + sdbus.PathBusEscape(unit) }
	tests := []struct{ unit, want string }{
		{"web.service", "/org/freedesktop/systemd1/unit/web_2eservice"},
		{"ft-0a1b2c-hello.service", "/org/freedesktop/systemd1/unit/ft_2d0a1b2c_2dhello_2eservice"},
		{"getty@tty1.service", "/org/freedesktop/systemd1/unit/getty_40tty1_2eservice"},
		{"a_b\\x2d.timer", "/org/freedesktop/systemd1/unit/a_5fb_5cx2d_2etimer"},
		{"", "/org/freedesktop/systemd1/unit/_"},
	}
	for _, tt := range tests {
		if got := unitPath(tt.unit); got != tt.want {
			t.Errorf("unitPath(%q) = %q, want %q", tt.unit, got, tt.want)
		}
	}
}

func TestKindInterface(t *testing.T) {
	tests := []struct{ unit, want string }{
		{"web.service", "org.freedesktop.systemd1.Service"},
		{"job.timer", "org.freedesktop.systemd1.Timer"},
		{"app.socket", "org.freedesktop.systemd1.Socket"},
		{"noext", ""},
		{"trailing.", ""},
	}
	for _, tt := range tests {
		if got := kindInterface(tt.unit); got != tt.want {
			t.Errorf("kindInterface(%q) = %q, want %q", tt.unit, got, tt.want)
		}
	}
}

// TestUnitStateOverBus asks a real manager about units in every state a
// deploy meets, over the private socket and with systemctl, and wants the
// same answers.
func TestUnitStateOverBus(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	if _, err := os.Stat(m.busPath()); err != nil {
		t.Fatalf("private socket: %v", err)
	}
	write := func(name, text string) {
		t.Helper()
		if _, err := m.WriteUnit(name, []byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	running, failed, stopped := um.Unit("run.service"), um.Unit("fail.service"), um.Unit("stopped.service")
	oneshot, timer := um.Unit("once.service"), um.Unit("tick.timer")
	write(running, "[Service]\nExecStart=/bin/sleep 600\n")
	write(failed, "[Service]\nExecStart=/bin/false\n")
	write(stopped, "[Service]\nExecStart=/bin/sleep 600\n")
	write(oneshot, "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
	write(um.Unit("tick.service"), "[Service]\nType=oneshot\nExecStart=/bin/true\n")
	write(timer, "[Timer]\nOnCalendar=2099-01-01\n")
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{running, oneshot, timer} {
		if err := m.Start(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	_ = m.Start(ctx, failed) // Type=simple: the start job succeeds, the process fails
	time.Sleep(200 * time.Millisecond)
	// Changed on disk after loading: NeedDaemonReload, for a unit file and
	// for a drop-in directory that did not exist.
	changed, dropin := um.Unit("changed.service"), um.Unit("dropin.service")
	write(changed, "[Service]\nExecStart=/bin/sleep 600\n")
	write(dropin, "[Service]\nExecStart=/bin/sleep 600\n")
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	// Running, so that they stay loaded: an unloaded unit is read afresh
	// when asked about, and then it needs no reload.
	if err := m.Start(ctx, changed, dropin); err != nil {
		t.Fatal(err)
	}
	write(changed, "[Service]\nExecStart=/bin/sleep 601\n")
	if err := os.MkdirAll(filepath.Join(um.UnitDir, dropin+".d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(um.UnitDir, dropin+".d", "x.conf"), []byte("[Service]\nEnvironment=X=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	viaSystemctl := *m
	viaSystemctl.bus = nil
	tests := []struct {
		unit  string
		check func(UnitStatus) bool
	}{
		{running, func(s UnitStatus) bool { return s.SubState == "running" && s.MainPID > 0 && s.InvocationID != "" }},
		{failed, func(s UnitStatus) bool {
			return s.ActiveState == "failed" && s.Result == "exit-code" && s.ExecMainStatus == 1
		}},
		{stopped, func(s UnitStatus) bool { return s.ActiveState == "inactive" && s.LoadState == "loaded" }},
		{oneshot, func(s UnitStatus) bool { return s.SubState == "exited" && s.Type == "oneshot" }},
		{timer, func(s UnitStatus) bool { return s.ActiveState == "active" && s.SubState == "waiting" }},
		{um.Unit("absent.service"), func(s UnitStatus) bool { return s.LoadState == "not-found" }},
		{changed, func(s UnitStatus) bool { return s.NeedDaemonReload }},
		{dropin, func(s UnitStatus) bool { return s.NeedDaemonReload }},
	}
	for _, tt := range tests {
		t.Run(tt.unit, func(t *testing.T) {
			bus, err := m.unitStateBus(ctx, tt.unit)
			if err != nil {
				t.Fatalf("over the bus: %v", err)
			}
			sc, err := viaSystemctl.UnitState(ctx, tt.unit)
			if err != nil {
				t.Fatalf("with systemctl: %v", err)
			}
			if !tt.check(bus) {
				t.Errorf("over the bus: unexpected state %+v", bus)
			}
			if diff := cmp.Diff(sc, bus); diff != "" {
				t.Errorf("systemctl and the bus disagree (-systemctl +bus):\n%s", diff)
			}
			fb, err := m.reloadFactsBus(ctx, tt.unit)
			if err != nil {
				t.Fatalf("reload facts over the bus: %v", err)
			}
			fs, err := viaSystemctl.reloadFactsSystemctl(ctx, tt.unit)
			if err != nil {
				t.Fatalf("reload facts with systemctl: %v", err)
			}
			if diff := cmp.Diff(fs, fb, cmp.AllowUnexported(reloadFacts{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("reload facts disagree (-systemctl +bus):\n%s", diff)
			}
			if fb.need != sc.NeedDaemonReload || len(fb.unitPath) == 0 {
				t.Errorf("reload facts %+v; UnitState says NeedDaemonReload %v", fb, sc.NeedDaemonReload)
			}
			n1, err1 := m.NeedDaemonReload(ctx, tt.unit)
			n2, err2 := viaSystemctl.NeedDaemonReload(ctx, tt.unit)
			if err1 != nil || err2 != nil || n1 != n2 {
				t.Errorf("NeedDaemonReload: bus %v, %v; systemctl %v, %v", n1, err1, n2, err2)
			}
		})
	}
}

// TestUnitStateFallsBack points the private socket at things that are not
// a manager; UnitState must still answer, through systemctl.
func TestUnitStateFallsBack(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	unit := um.Unit("fb.service")
	startUnit(t, m, unit, "[Service]\nExecStart=/bin/sleep 600\n")
	dir, err := os.MkdirTemp("", "fsb-") // short: sun_path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	listen := func(name string, serve func(net.Conn)) string {
		p := filepath.Join(dir, name)
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); serve(c) }()
			}
		}()
		return p
	}
	tests := []struct{ name, socket string }{
		{"no socket", filepath.Join(dir, "absent")},
		{"closes at once", listen("close", func(net.Conn) {})},
		{"refuses authentication", listen("reject", func(c net.Conn) {
			bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("REJECTED EXTERNAL\r\n"))
		})},
		{"answers garbage", listen("garbage", func(c net.Conn) {
			r := bufio.NewReader(c)
			r.ReadString('\n')
			c.Write([]byte("OK 0123456789abcdef0123456789abcdef\r\n"))
			r.ReadString('\n')
			c.Write(bytes.Repeat([]byte{'x'}, 64))
		})},
		{"claims a huge message", listen("huge", func(c net.Conn) {
			r := bufio.NewReader(c)
			r.ReadString('\n')
			c.Write([]byte("OK 0123456789abcdef0123456789abcdef\r\n"))
			r.ReadString('\n')
			c.Write([]byte{'l', 2, 0, 1, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0})
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mm := *m
			mm.bus = &sharedBus{path: tt.socket}
			if _, err := mm.unitStateBus(ctx, unit); err == nil {
				t.Fatal("the bus answered from a socket that is not a manager")
			}
			st, err := mm.UnitState(ctx, unit)
			if err != nil || st.SubState != "running" {
				t.Fatalf("UnitState = %+v, %v; want running through systemctl", st, err)
			}
			if need, err := mm.NeedDaemonReload(ctx, unit); err != nil || need {
				t.Fatalf("NeedDaemonReload = %v, %v; want false through systemctl", need, err)
			}
		})
	}
}

// TestSharedBus checks the connection a Manager keeps: shared by
// concurrent questions, replaced when the manager drops it, and reopened
// after it was closed for being idle.
func TestSharedBus(t *testing.T) {
	t.Parallel()
	m, um := newTestManager(t)
	ctx := context.Background()
	unit := um.Unit("shared.service")
	startUnit(t, m, unit, "[Service]\nExecStart=/bin/sleep 600\n")
	ask := func() {
		t.Helper()
		if st, err := m.unitStateBus(ctx, unit); err != nil || st.SubState != "running" {
			t.Fatalf("over the bus: %+v, %v", st, err)
		}
	}
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			var err error
			for range 5 {
				if _, err = m.unitStateBus(ctx, unit); err != nil {
					break
				}
			}
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent question: %v", err)
		}
	}
	first := m.bus.conn
	if first == nil || m.bus.users != 0 {
		t.Fatalf("after the questions: connection %v, %d users", first, m.bus.users)
	}
	first.Conn.Close() // as when the manager goes away
	ask()
	if m.bus.conn == first || !m.bus.conn.Connected() {
		t.Fatal("a dropped connection was not replaced")
	}
	m.bus.closeIdle()
	if m.bus.conn != nil {
		t.Fatal("closeIdle left the connection open")
	}
	ask()
}
