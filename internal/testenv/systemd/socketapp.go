package systemd

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// SocketApp is the test HTTP service behind a systemd socket unit.
type SocketApp struct {
	Service, Socket string
}

// SocketAppUnits writes the unit pair of a socket-activated test HTTP
// service (testenv.BuildHTTPApp): m.Unit(name).socket listening on
// 127.0.0.1:port, and m.Unit(name).service running httpapp -systemd-socket
// -drain drain from dir, with serviceExtra added to its [Service] section
// (TimeoutStopSec=, StartLimitBurst= in [Unit] needs unitExtra). It
// reloads the manager and starts neither: deployments do.
func (m *Manager) SocketAppUnits(t testing.TB, name string, port int, dir string, drain time.Duration, unitExtra, serviceExtra string) SocketApp {
	t.Helper()
	app := SocketApp{Service: m.Unit(name + ".service"), Socket: m.Unit(name + ".socket")}
	sock := fmt.Sprintf("[Unit]\nDescription=fraisier test app socket\n[Socket]\nListenStream=127.0.0.1:%d\n", port)
	if err := os.WriteFile(filepath.Join(m.UnitDir, app.Socket), []byte(sock), 0o644); err != nil {
		t.Fatal(err)
	}
	// WriteUnit reloads the manager, which reads both.
	m.WriteUnit(t, app.Service, fmt.Sprintf("[Unit]\nDescription=fraisier test app, socket-activated\n%s[Service]\nExecStart=%s -systemd-socket -drain %s -dir %s\nRestart=no\n%s",
		unitExtra, testenv.BuildHTTPApp(t), drain, dir, serviceExtra))
	return app
}
