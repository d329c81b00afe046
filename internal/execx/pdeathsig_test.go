package execx

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// parentEnv makes the test binary the parent of TestCommandDiesWithFraisier.
const parentEnv = "FRAISIER_EXECX_PARENT"

// TestMain runs the parent when asked: a fraisier that starts a long
// command through Run, says its pid, and waits to be killed.
func TestMain(m *testing.M) {
	if pidFile := os.Getenv(parentEnv); pidFile != "" {
		_, _ = Run(context.Background(), Cmd{
			Argv:    []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 600"},
			Timeout: 10 * time.Minute,
		})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestCommandDiesWithFraisier: when fraisier is killed (SIGKILL: no
// deferred cleanup runs), the command it was running dies too.
func TestCommandDiesWithFraisier(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), parentEnv+"="+pidFile)
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	var child int
	deadline := time.Now().Add(10 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == 0 {
		parent.Process.Kill()
		t.Fatal("the command never started")
	}
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	parent.Process.Kill()
	parent.Wait()
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		if syscall.Kill(child, 0) == syscall.ESRCH || zombie(child) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("command %d still runs after fraisier was killed", child)
}

// zombie reports whether pid has exited and waits to be reaped by
// whoever adopted it.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}
