package systemd

import (
	"context"
	"testing"

	usermgr "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// The questions a deploy asks systemd around each restart, against a
// private user manager: go test -run '^$' -bench . ./internal/systemd

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

func BenchmarkUnitState(b *testing.B) {
	m, unit := benchManager(b)
	ctx := context.Background()
	for b.Loop() {
		if st, err := m.UnitState(ctx, unit); err != nil || st.SubState != "running" {
			b.Fatalf("UnitState = %+v, %v", st, err)
		}
	}
}

func BenchmarkUnitFiles(b *testing.B) {
	m, unit := benchManager(b)
	ctx := context.Background()
	for b.Loop() {
		if f, err := m.UnitFiles(ctx, unit); err != nil || f.NeedReload {
			b.Fatalf("UnitFiles = %+v, %v", f, err)
		}
	}
}

// BenchmarkUnitStateSystemctl is the fallback's cost, for comparison.
func BenchmarkUnitStateSystemctl(b *testing.B) {
	m, unit := benchManager(b)
	m.noBus = true
	ctx := context.Background()
	for b.Loop() {
		if st, err := m.UnitState(ctx, unit); err != nil || st.SubState != "running" {
			b.Fatalf("UnitState = %+v, %v", st, err)
		}
	}
}

func BenchmarkRestart(b *testing.B) {
	m, unit := benchManager(b)
	ctx := context.Background()
	for b.Loop() {
		if err := m.Restart(ctx, unit); err != nil {
			b.Fatal(err)
		}
	}
}
