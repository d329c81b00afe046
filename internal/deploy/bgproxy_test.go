package deploy

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
)

// A pid file that names a process other than nginx's master (left behind
// after nginx stopped, or planted by whoever can write it) is refused:
// fraisier signals nothing.
func TestNginxReloadSignalsOnlyNginxsMaster(t *testing.T) {
	victim := exec.Command("sleep", "60")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	pidFile := filepath.Join(t.TempDir(), "nginx.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(victim.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &nginxProxy{n: &config.Nginx{PIDFile: pidFile}}
	err := p.reload(context.Background(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is not nginx's master") || !strings.Contains(err.Error(), "sleep 60") {
		t.Fatalf("reload with a pid file naming sleep = %v, want a refusal naming what runs there", err)
	}
	// Not reaped yet, a killed child stays as a zombie: its state says.
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(victim.Process.Pid), "stat"))
	if _, after, _ := strings.Cut(string(stat), ") "); err != nil || strings.HasPrefix(after, "Z") {
		t.Fatalf("the process the pid file named was signalled: %q, %v", stat, err)
	}
}
