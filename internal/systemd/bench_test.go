package systemd

import (
	"context"
	"fmt"
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

func BenchmarkUnitState(b *testing.B) {
	benchOp(b, nil, unitStateRunning)
}

// BenchmarkUnitStateCold asks on a new connection each time, as a Manager's
// first question does.
func BenchmarkUnitStateCold(b *testing.B) {
	benchOp(b, nil, func(ctx context.Context, m *Manager, unit string) error {
		defer m.bus.closeIdle()
		return unitStateRunning(ctx, m, unit)
	})
}

// BenchmarkUnitStateSystemctl is the fallback's cost, for comparison.
func BenchmarkUnitStateSystemctl(b *testing.B) {
	benchOp(b, func(m *Manager) { m.bus = nil }, unitStateRunning)
}

func BenchmarkUnitFiles(b *testing.B) {
	benchOp(b, nil, func(ctx context.Context, m *Manager, unit string) error {
		if f, err := m.UnitFiles(ctx, unit); err != nil || f.NeedReload {
			return fmt.Errorf("UnitFiles = %+v, %v", f, err)
		}
		return nil
	})
}

func BenchmarkRestart(b *testing.B) {
	benchOp(b, nil, func(ctx context.Context, m *Manager, unit string) error {
		return m.Restart(ctx, unit)
	})
}

func unitStateRunning(ctx context.Context, m *Manager, unit string) error {
	if st, err := m.UnitState(ctx, unit); err != nil || st.SubState != "running" {
		return fmt.Errorf("UnitState = %+v, %v", st, err)
	}
	return nil
}

// benchOp runs op on a Manager of a private user manager, with a running
// unit to ask about; prepare, if not nil, adjusts the Manager first.
func benchOp(b *testing.B, prepare func(*Manager), op func(context.Context, *Manager, string) error) {
	um := usermgr.UserManager(b)
	m, err := New(Options{Scope: ScopeUser, Env: um.Env(), UnitDir: um.UnitDir})
	if err != nil {
		b.Fatal(err)
	}
	unit := um.Unit("bench.service")
	startUnit(b, m, unit, "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep 600\n")
	cpu := newCPUMeter(b, m)
	if prepare != nil {
		prepare(m)
	}
	ctx := context.Background()
	cpu.start(b)
	for b.Loop() {
		if err := op(ctx, m, unit); err != nil {
			b.Fatal(err)
		}
	}
	cpu.stop(b)
}

// cpuMeter measures the CPU time spent between start and stop.
type cpuMeter struct {
	mgrPID    int
	self, mgr time.Duration
}

// newCPUMeter finds the manager's process: the peer of its private socket.
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
	self, mgr := selfCPU()-c.self, procCPU(b, c.mgrPID)-c.mgr
	n := float64(b.N)
	b.ReportMetric(float64(self.Microseconds())/1000/n, "cpu-ms/op")
	b.ReportMetric(float64(mgr.Microseconds())/1000/n, "systemd-cpu-ms/op")
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
