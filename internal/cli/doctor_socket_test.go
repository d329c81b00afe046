package cli_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/cli"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestDoctorSocket: with restart: socket, doctor says whether each
// service's socket unit is there and listening: missing (fail, with what
// to write), found and not listening (warn: the next deployment starts
// it), listening (ok). It starts nothing.
func TestDoctorSocket(t *testing.T) {
	h := newDoctorHost(t)
	yaml, err := os.ReadFile(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	withSocket := strings.Replace(string(yaml), "        systemd_service:", "        restart: socket\n        systemd_service:", 1)
	if err := os.WriteFile(h.cfg, []byte(withSocket), 0o644); err != nil {
		t.Fatal(err)
	}
	socket := strings.TrimSuffix(h.unit, ".service") + ".socket"

	h.wantFail(t, `socket +hello/production +`+h.unit+` \(user\) +no socket unit starts `+h.unit+`, and there is no `+socket)

	// The app listens on its own port: the socket takes another. systemd
	// starts no socket whose service runs: the fix says to stop it first.
	h.mgr.WriteUnit(t, socket, fmt.Sprintf("[Socket]\nListenStream=127.0.0.1:%d\n", testenv.FreePort(t)))
	h.wantFail(t, `socket +hello/production +.* `+h.unit+` runs without `+socket+`.*→ fix: once: systemctl --user stop `+h.unit+` && systemctl --user start `+socket)

	h.mgr.MustSystemctl(t, "stop", h.unit)
	code, out := h.doctor(t)
	if code != cli.ExitCheckFailed {
		t.Errorf("exit %d, want %d: the health check fails, the app stopped", code, cli.ExitCheckFailed)
	}
	wantLine(t, out, `^warn +socket +.*`+socket+` found, not listening: the next deployment starts it`)
	if state := h.mgr.MustSystemctl(t, "show", "--property=ActiveState", "--value", socket); state != "inactive" {
		t.Fatalf("%s is %s after doctor, want inactive", socket, state)
	}

	h.mgr.MustSystemctl(t, "start", socket)
	_, out = h.doctor(t)
	wantLine(t, out, `^ok +socket +.*`+socket+` listening`)
	h.mgr.MustSystemctl(t, "stop", socket)
	h.mgr.MustSystemctl(t, "start", h.unit)
}
