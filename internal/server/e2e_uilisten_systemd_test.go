package server_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// TestE2EDashboardSocketUnits: docs/dashboard.md's recipe in a real
// systemd user manager. The packaged fraisier.socket (its address moved
// to a free port) and a second socket unit, FileDescriptorName=ui, both
// start fraisier serve --listen systemd with server.ui_listen: systemd.
// Started by a connection to the dashboard's socket, serve answers the
// dashboard there only and the webhook side on the packaged socket only.
// Stopping the service stops serve.
func TestE2EDashboardSocketUnits(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	mgr := tsystemd.UserManager(t)
	dir := shortTempDir(t)
	env, _ := uiConfig(t, dir, "ui_listen: systemd\n")
	mainAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	uiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))

	packaged, err := os.ReadFile(filepath.Join("..", "..", "packaging", "systemd", "fraisier.socket"))
	if err != nil {
		t.Fatal(err)
	}
	mainSocket := strings.Replace(string(packaged), "ListenStream=127.0.0.1:8080", "ListenStream="+mainAddr, 1)
	if mainSocket == string(packaged) {
		t.Fatal("packaging/systemd/fraisier.socket no longer listens on ListenStream=127.0.0.1:8080: update this test")
	}
	socket, uiSocket, service := mgr.Unit("fraisier.socket"), mgr.Unit("fraisier-ui.socket"), mgr.Unit("fraisier.service")
	mgr.WriteUnit(t, socket, mainSocket)
	mgr.WriteUnit(t, uiSocket, fmt.Sprintf("[Socket]\nListenStream=%s\nFileDescriptorName=ui\nService=%s\n", uiAddr, service))
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nRequires=%s\nAfter=%s\n[Service]\nType=notify\nExecStart=%s serve --listen systemd\nSockets=%s %s\n",
		socket, socket, bin, socket, uiSocket)
	for _, kv := range env {
		if strings.HasPrefix(kv, "FRAISIER_") || strings.HasPrefix(kv, "E2E_") {
			fmt.Fprintf(&b, "Environment=%q\n", kv)
		}
	}
	mgr.WriteUnit(t, service, b.String())
	mgr.MustSystemctl(t, "start", socket, uiSocket)
	t.Cleanup(func() { mgr.Systemctl(t.Context(), "stop", service, socket, uiSocket) })

	// The dashboard's socket first: it starts the service.
	c := &http.Client{Timeout: 10 * time.Second}
	a := do(t, c, "GET", "http://"+uiAddr+"/ui/login", nil, nil)
	if a.code != http.StatusOK || !strings.Contains(a.body, `action="/ui/login"`) {
		t.Fatalf("GET /ui/login on %s: %d %.200s, want the sign-in form\n%s", uiSocket, a.code, a.body, mgr.LogTail(4<<10))
	}
	testenv.WaitFor(t, "/ready on "+socket, 20*time.Second, func() bool {
		return do(t, c, "GET", "http://"+mainAddr+"/ready", nil, nil).code == http.StatusOK
	})
	if a := do(t, c, "GET", "http://"+mainAddr+"/ui/login", nil, nil); a.code != http.StatusNotFound {
		t.Errorf("GET /ui/login on %s: %d, want 404", socket, a.code)
	}
	if a := do(t, c, "GET", "http://"+uiAddr+"/ready", nil, nil); a.code != http.StatusNotFound {
		t.Errorf("GET /ready on %s: %d, want 404", uiSocket, a.code)
	}
	// READY=1 follows the workers' start, which /ready reports: it may
	// reach the manager a moment after /ready answers.
	activeState := func() string {
		return strings.TrimSpace(mgr.MustSystemctl(t, "show", "--property=ActiveState", "--value", service))
	}
	testenv.WaitFor(t, service+" to be active (READY=1)", 10*time.Second, func() bool { return activeState() == "active" })
	mgr.MustSystemctl(t, "stop", service)
	if state := activeState(); state != "inactive" {
		t.Errorf("%s after stop is %s, want inactive", service, state)
	}
}
