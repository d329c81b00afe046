package testenv

import (
	"bytes"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	cmd := exec.Command("sh", "-c", "echo hello; exit 3")
	cmd.Stdout = &out
	if ps := Run(t, cmd, 10*time.Second); ps.ExitCode() != 3 || out.String() != "hello\n" {
		t.Errorf("exit %d, output %q; want 3 and hello", ps.ExitCode(), out.String())
	}
}

func TestProc(t *testing.T) {
	p := StartProc(t, "sleeper", nil, "sh", "-c", "echo up; exec sleep 60")
	WaitFor(t, "the process to write", 5*time.Second, func() bool { return p.Out.String() == "up\n" })
	if p.Exited() {
		t.Fatal("exited early")
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 5*time.Second); code != -1 {
		t.Errorf("exit code %d after SIGTERM, want -1 (a signal ended it)", code)
	}
	if p.Err() == nil {
		t.Error("Err is nil for a process a signal ended")
	}
	q := StartProc(t, "exits", nil, "sh", "-c", "exit 5")
	if code := q.Wait(t, 5*time.Second); code != 5 {
		t.Errorf("exit code %d, want 5", code)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	if !Eventually(time.Second, time.Millisecond, func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("Eventually stopped after %d polls, want 3", n)
	}
	if Eventually(30*time.Millisecond, 5*time.Millisecond, func() bool { return false }) {
		t.Error("Eventually held for a condition that never holds")
	}
}
