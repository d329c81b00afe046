package systemd

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	usermgr "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// The questions a deploy asks systemd around each restart, against a
// private user manager: go test -run '^$' -bench . ./internal/systemd
//
// Besides wall time, each reports the CPU time an operation costs this
// process and its children (cpu-ms/op) and the manager (systemd-cpu-ms/op):
// on a shared machine wall time mostly measures the others' load.

// benchManager returns a Manager on a private user manager and a running
// unit to ask about.
func benchManager(b *testing.B) (*Manager, string) {
	b.Helper()
	um := usermgr.UserManager(b)
	m, err := New(Options{Scope: ScopeUser, Env: um.Env(), UnitDir: um.UnitDir})
	if err != nil {
		b.Fatal(err)
	}
	unit := um.Unit("bench.service")
	if _, err := m.WriteUnit(unit, []byte("[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep 600\n")); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := m.DaemonReload(ctx); err != nil {
		b.Fatal(err)
	}
	if err := m.Start(ctx, unit); err != nil {
		b.Fatal(err)
	}
	return m, unit
}

// cpuMeter measures the CPU time spent between start and stop.
type cpuMeter struct {
	mgrPID          int
	self, mgr       time.Duration
	selfCPU, mgrCPU time.Duration
}

func newCPUMeter(b *testing.B, m *Manager) *cpuMeter {
	b.Helper()
	c, err := net.Dial("unix", m.busPath())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var cred *syscall.Ucred
	if err := raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cred == nil {
		b.Fatalf("manager's pid: %v", err)
	}
	return &cpuMeter{mgrPID: int(cred.Pid)}
}

func (c *cpuMeter) start(b *testing.B) {
	c.self, c.mgr = selfCPU(), procCPU(b, c.mgrPID)
}

func (c *cpuMeter) stop(b *testing.B) {
	c.selfCPU, c.mgrCPU = selfCPU()-c.self, procCPU(b, c.mgrPID)-c.mgr
	n := float64(b.N)
	b.ReportMetric(float64(c.selfCPU.Microseconds())/1000/n, "cpu-ms/op")
	b.ReportMetric(float64(c.mgrCPU.Microseconds())/1000/n, "systemd-cpu-ms/op")
}

// selfCPU is the user and system time of this process and its waited-for
// children (systemctl).
func selfCPU() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// procCPU is the user and system time of process pid, from /proc (in clock
// ticks, 100 a second on Linux).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses: state is
	// the first, utime the 12th and stime the 13th.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func BenchmarkUnitState(b *testing.B) {
	m, unit := benchManager(b)
	ctx := context.Background()
	cpu := newCPUMeter(b, m)
	cpu.start(b)
	for b.Loop() {
		if st, err := m.UnitState(ctx, unit); err != nil || st.SubState != "running" {
			b.Fatalf("UnitState = %+v, %v", st, err)
		}
	}
	cpu.stop(b)
}

// BenchmarkUnitStateCold asks on a new connection each time, as a Manager's
// first question does.
func BenchmarkUnitStateCold(b *testing.B) {
	m, unit := benchManager(b)
	ctx := context.Background()
	cpu := newCPUMeter(b, m)
	cpu.start(b)
	for b.Loop() {
		if st, err := m.UnitState(ctx, unit); err != nil || st.SubState != "running" {
			b.Fatalf("UnitState = %+v, %v", st, err)
		}
		m.bus.closeIdle()
	}
	cpu.stop(b)
}

func BenchmarkUnitFiles(b *testing.B) {
	m, unit := benchManager(b)
	ctx := context.Background()
	cpu := newCPUMeter(b, m)
	cpu.start(b)
	for b.Loop() {
		if f, err := m.UnitFiles(ctx, unit); err != nil || f.NeedReload {
			b.Fatalf("UnitFiles = %+v, %v", f, err)
		}
	}
	cpu.stop(b)
}

// BenchmarkUnitStateSystemctl is the fallback's cost, for comparison.
func BenchmarkUnitStateSystemctl(b *testing.B) {
	m, unit := benchManager(b)
	cpu := newCPUMeter(b, m)
	m.bus = nil
	ctx := context.Background()
	cpu.start(b)
	for b.Loop() {
		if st, err := m.UnitState(ctx, unit); err != nil || st.SubState != "running" {
			b.Fatalf("UnitState = %+v, %v", st, err)
		}
	}
	cpu.stop(b)
}

func BenchmarkRestart(b *testing.B) {
	m, unit := benchManager(b)
	ctx := context.Background()
	cpu := newCPUMeter(b, m)
	cpu.start(b)
	for b.Loop() {
		if err := m.Restart(ctx, unit); err != nil {
			b.Fatal(err)
		}
	}
	cpu.stop(b)
}
