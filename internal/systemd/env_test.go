package systemd

import (
	"context"
	"strings"
	"testing"

	usermgr "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// TestSystemctlFromProcessEnvironment: a Manager given no Env reaches a
// user manager the way a rootless install does, through fraisier's own
// XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS, which systemctl must still
// inherit now that children get an allowlist of the environment.
func TestSystemctlFromProcessEnvironment(t *testing.T) {
	um := usermgr.UserManager(t)
	for _, kv := range um.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	m, err := New(Options{Scope: ScopeUser, UnitDir: um.UnitDir})
	if err != nil {
		t.Fatal(err)
	}
	m.bus = nil // every question through systemctl
	ctx := context.Background()
	if err := m.DaemonReload(ctx); err != nil {
		t.Fatalf("daemon-reload: %v", err)
	}
	st, err := m.UnitState(ctx, um.Unit("absent.service"))
	if err != nil {
		t.Fatalf("unit state through systemctl: %v", err)
	}
	if st.LoadState != "not-found" {
		t.Errorf("absent unit: load state %q, want not-found", st.LoadState)
	}
}
