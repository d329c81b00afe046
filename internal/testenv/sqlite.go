package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// SQLiteLock is another process (Debian's sqlite3 shell) holding an
// exclusive transaction on a fraisier state database: what a backup tool,
// an operator's sqlite3 session or a second fraisier stuck mid-write does
// to fraisier.
type SQLiteLock struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// LockSQLite starts sqlite3 on the state database at path and returns once
// it holds BEGIN EXCLUSIVE; Release, or the test's end, gives it back. A
// machine without sqlite3 ends the test as Unavailable says.
func LockSQLite(t testing.TB, path string) *SQLiteLock {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		Unavailable(t, "sqlite3 not installed (apt-get install sqlite3): %v", err)
	}
	cmd := exec.Command(bin, path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &SQLiteLock{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	t.Cleanup(func() { l.Release(t) })
	// The shell answers the SELECT only once BEGIN EXCLUSIVE has the lock
	// (a write to a table makes sure even a lazy shell took it).
	fmt.Fprint(stdin, ".timeout 10000\nBEGIN EXCLUSIVE;\nUPDATE tb_schema_migrations SET version = version WHERE 0;\nSELECT 'locked';\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		cmd.Process.Kill()
		t.Fatalf("sqlite3 did not take the lock: %q %v %s", line, err, stderr.String())
	}
	go func() {
		io.Copy(io.Discard, stdout)
		l.done <- cmd.Wait()
	}()
	return l
}

// Release ends the transaction and waits for sqlite3 to exit; a second
// call does nothing.
func (l *SQLiteLock) Release(t testing.TB) {
	if l.stdin == nil {
		return
	}
	fmt.Fprint(l.stdin, "COMMIT;\n.quit\n")
	l.stdin.Close()
	l.stdin = nil
	select {
	case err := <-l.done:
		if err != nil {
			t.Errorf("sqlite3: %v", err)
		}
	case <-time.After(10 * time.Second):
		l.cmd.Process.Kill()
		t.Errorf("sqlite3 did not end")
	}
}
