package systemd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestUnitPath(t *testing.T) {
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

func TestSigNext(t *testing.T) {
	tests := []struct {
		sig     string
		want    int
		wantErr bool
	}{
		{sig: "s", want: 1},
		{sig: "sv", want: 1},
		{sig: "a{sv}u", want: 5},
		{sig: "a(sasbttttuii)", want: 14},
		{sig: "aay", want: 3},
		{sig: "(a(yv))", want: 7},
		{sig: "", wantErr: true},
		{sig: "a", wantErr: true},
		{sig: "(s", wantErr: true},
		{sig: "()", wantErr: true},
		{sig: "z", wantErr: true},
	}
	for _, tt := range tests {
		got, err := sigNext(tt.sig)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("sigNext(%q) = %d, %v; want %d, error %v", tt.sig, got, err, tt.want, tt.wantErr)
		}
	}
}

// replyEncoder builds a method return the way a server would, to check
// the decoder on every type a manager's reply may hold.
func encodeReply(t *testing.T, order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}, endian byte, replySerial uint32, sig string, body func(e *testEncoder)) []byte {
	t.Helper()
	be := &testEncoder{order: order}
	body(be)
	h := &testEncoder{order: order}
	h.buf = append(h.buf, endian, msgMethodReturn, 0, 1)
	h.u32(uint32(len(be.buf)))
	h.u32(7)
	lenAt := len(h.buf)
	h.u32(0)
	start := len(h.buf)
	h.align(8)
	h.buf = append(h.buf, fieldReplySerial, 1, 'u', 0)
	h.u32(replySerial)
	h.align(8)
	h.buf = append(h.buf, fieldSignature, 1, 'g', 0, byte(len(sig)))
	h.buf = append(append(h.buf, sig...), 0)
	order.PutUint32(h.buf[lenAt:], uint32(len(h.buf)-start))
	h.align(8)
	// The body was encoded from offset 0, and the header is 8-aligned, so
	// its alignment holds.
	return append(h.buf, be.buf...)
}

type testEncoder struct {
	buf   []byte
	order interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
}

func (e *testEncoder) align(n int) {
	for len(e.buf)%n != 0 {
		e.buf = append(e.buf, 0)
	}
}
func (e *testEncoder) u32(v uint32) {
	e.align(4)
	e.buf = e.order.AppendUint32(e.buf, v)
}
func (e *testEncoder) u64(v uint64) {
	e.align(8)
	e.buf = e.order.AppendUint64(e.buf, v)
}
func (e *testEncoder) str(s string) {
	e.u32(uint32(len(s)))
	e.buf = append(append(e.buf, s...), 0)
}
func (e *testEncoder) sig(s string) { e.buf = append(append(append(e.buf, byte(len(s))), s...), 0) }

// array writes an array whose elements align to elemAlign.
func (e *testEncoder) array(elemAlign int, elems func()) {
	e.u32(0)
	at := len(e.buf) - 4
	e.align(elemAlign)
	start := len(e.buf)
	elems()
	e.order.PutUint32(e.buf[at:], uint32(len(e.buf)-start))
}

func TestDecodeReply(t *testing.T) {
	for _, tt := range []struct {
		name  string
		order interface {
			binary.ByteOrder
			binary.AppendByteOrder
		}
		endian byte
	}{
		{"little endian", binary.LittleEndian, 'l'},
		{"big endian", binary.BigEndian, 'B'},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// a{sv} holding s, b, u, t, ay, as, an empty a(sasbttttuii), and i.
			msg := encodeReply(t, tt.order, tt.endian, 3, "a{sv}", func(e *testEncoder) {
				e.array(8, func() {
					entry := func(k, sig string, v func()) {
						e.align(8)
						e.str(k)
						e.sig(sig)
						v()
					}
					entry("ActiveState", "s", func() { e.str("active") })
					entry("NeedDaemonReload", "b", func() { e.u32(1) })
					entry("MainPID", "u", func() { e.u32(4242) })
					entry("ActiveEnterTimestamp", "t", func() { e.u64(1_700_000_000_123_456) })
					entry("InvocationID", "ay", func() {
						e.array(1, func() { e.buf = append(e.buf, 0xab, 0xcd) })
					})
					entry("DropInPaths", "as", func() {
						e.array(4, func() { e.str("/a.conf"); e.str("/b.conf") })
					})
					entry("ExecStart", "a(sasbttttuii)", func() { e.array(8, func() {}) })
					entry("ExecMainStatus", "i", func() { e.u32(uint32(0xffffffff)) })
				})
			})
			// A signal before the reply must be skipped.
			sig := append([]byte(nil), msg...)
			sig[1] = msgSignal
			r := bufio.NewReader(bytes.NewReader(append(sig, msg...)))
			m, err := readMessage(r)
			if err != nil || m.typ != msgSignal || m.body != nil {
				t.Fatalf("signal: %+v, %v", m, err)
			}
			m, err = readMessage(r)
			if err != nil {
				t.Fatal(err)
			}
			if m.typ != msgMethodReturn || m.replySerial != 3 || len(m.body) != 1 {
				t.Fatalf("reply %+v", m)
			}
			got := map[string]any{}
			for _, e := range m.body[0].([]any) {
				kv := e.([]any)
				got[kv[0].(string)] = kv[1].(variant).value
			}
			want := map[string]any{
				"ActiveState": "active", "NeedDaemonReload": true, "MainPID": uint32(4242),
				"ActiveEnterTimestamp": uint64(1_700_000_000_123_456), "InvocationID": []byte{0xab, 0xcd},
				"DropInPaths": []any{"/a.conf", "/b.conf"}, "ExecStart": []any(nil), "ExecMainStatus": int32(-1),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decoded properties (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRejectsTruncated(t *testing.T) {
	msg := encodeReply(t, binary.LittleEndian, 'l', 1, "s", func(e *testEncoder) { e.str("hello") })
	for cut := 1; cut < len(msg); cut++ {
		if _, err := readMessage(bufio.NewReader(bytes.NewReader(msg[:cut]))); err == nil {
			t.Fatalf("a message cut at %d of %d bytes decoded", cut, len(msg))
		}
	}
	// A string longer than the body it sits in.
	bad := append([]byte(nil), msg...)
	binary.LittleEndian.PutUint32(bad[len(bad)-10:], 1000)
	if _, err := readMessage(bufio.NewReader(bytes.NewReader(bad))); err == nil {
		t.Fatal("an overlong string decoded")
	}
}

// TestEncodeCall decodes our own method call with the reply decoder's
// header code and checks the fields a server routes on.
func TestEncodeCall(t *testing.T) {
	msg := encodeCall(9, "/org/freedesktop/systemd1/unit/web_2eservice", "org.freedesktop.DBus.Properties", "GetAll", []string{"org.freedesktop.systemd1.Unit"})
	d := &decoder{buf: msg, order: binary.LittleEndian, pos: 12}
	fields, err := d.value("a(yv)", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[byte]any{}
	for _, f := range fields.([]any) {
		st := f.([]any)
		got[st[0].(byte)] = st[1].(variant).value
	}
	want := map[byte]any{
		fieldPath: "/org/freedesktop/systemd1/unit/web_2eservice", fieldInterface: "org.freedesktop.DBus.Properties",
		fieldMember: "GetAll", fieldDestination: "org.freedesktop.systemd1", fieldSignature: "s",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("header fields (-want +got):\n%s", diff)
	}
	d.pos = (d.pos + 7) &^ 7
	bodyStart := d.pos
	if body, err := d.value("s", 0); err != nil || body != "org.freedesktop.systemd1.Unit" {
		t.Errorf("body %v, %v", body, err)
	}
	if d.pos != len(msg) || binary.LittleEndian.Uint32(msg[4:]) != uint32(len(msg)-bodyStart) {
		t.Errorf("body length field %d, body %d bytes", binary.LittleEndian.Uint32(msg[4:]), len(msg)-bodyStart)
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
	viaSystemctl.noBus = true
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
	if _, err := m.WriteUnit(unit, []byte("[Service]\nExecStart=/bin/sleep 600\n")); err != nil {
		t.Fatal(err)
	}
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, unit); err != nil {
		t.Fatal(err)
	}
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
			mm.busSocket = tt.socket
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
