package nspawn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBoot boots the tree and checks what the booted tests rely on: the
// machine is its own host with a running system manager, a system bus and
// polkit, commands run in it as root and as another user, binds are seen,
// and the tree is left as it was.
func TestBoot(t *testing.T) {
	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Boot(t, Bind{Host: shared, Path: "/mnt/shared", ReadOnly: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if got := strings.TrimSpace(m.MustRun(t, "hostname")); got != m.Name {
		t.Errorf("hostname = %q, want %q", got, m.Name)
	}
	if got := m.MustRun(t, "cat", "/mnt/shared/hello"); got != "from the host\n" {
		t.Errorf("bind: %q", got)
	}
	if out, err := m.Run(ctx, "touch", "/mnt/shared/x"); err == nil {
		t.Errorf("a read-only bind was written: %s", out)
	}
	if out := m.MustRun(t, "busctl", "--system", "call", "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
		"org.freedesktop.DBus.Properties", "Get", "ss", "org.freedesktop.PolicyKit1.Authority", "BackendName"); !strings.Contains(out, `"js"`) {
		t.Errorf("polkit's backend: %s", out)
	}
	if got := strings.TrimSpace(m.MustRun(t, "runuser", "-u", "nobody", "--", "id", "-un")); got != "nobody" {
		t.Errorf("runuser: %q", got)
	}
	// An unprivileged user may not restart a system unit: polkit refuses.
	if out, err := m.RunAs(ctx, "nobody", "systemctl", "restart", "systemd-logind.service"); err == nil {
		t.Errorf("nobody restarted a system unit: %s", out)
	} else if !strings.Contains(out, "Interactive authentication required") && !strings.Contains(out, "Access denied") {
		t.Errorf("refusal: %v %s", err, out)
	}

	m.MustRun(t, "touch", "/etc/written-by-test")
	root, _ := Root()
	if _, err := os.Stat(filepath.Join(root, "etc", "written-by-test")); err == nil {
		t.Errorf("a write inside the machine reached the tree")
	}
}
