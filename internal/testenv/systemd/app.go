package systemd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// AppUnit writes the unit m.Unit(name), which runs the test HTTP service
// (testenv.BuildHTTPApp) on 127.0.0.1:port serving dir, reloads the
// manager and returns the unit's name. The unit is not started: the
// deployments under test start it.
func (m *Manager) AppUnit(t testing.TB, name string, port int, dir string) string {
	t.Helper()
	unit := m.Unit(name)
	m.WriteUnit(t, unit, fmt.Sprintf("[Unit]\nDescription=fraisier test app\n[Service]\nExecStart=%s -addr 127.0.0.1:%d -dir %s\nRestart=no\n",
		testenv.BuildHTTPApp(t), port, dir))
	return unit
}

// WriteUnit writes a unit file named unit in UnitDir and reloads the
// manager.
func (m *Manager) WriteUnit(t testing.TB, unit, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(m.UnitDir, unit), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	m.MustSystemctl(t, "daemon-reload")
}

// MustSystemctl is Systemctl for a test: a failure ends it.
func (m *Manager) MustSystemctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := m.Systemctl(context.Background(), args...)
	if err != nil {
		t.Fatalf("systemctl %s: %v %s", strings.Join(args, " "), err, out)
	}
	return out
}
