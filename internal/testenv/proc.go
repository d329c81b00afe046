package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Run runs cmd to its end and returns how it ended. A command that cannot
// start, fails other than by exiting, or runs past limit (it is killed
// then) ends the test, with what it wrote so far when its Stdout and
// Stderr can say (a fmt.Stringer such as bytes.Buffer or SyncBuffer).
func Run(t testing.TB, cmd *exec.Cmd, limit time.Duration) *os.ProcessState {
	t.Helper()
	name := strings.Join(cmd.Args, " ")
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s: did not finish within %s\n%s", name, limit, written(cmd))
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v\n%s", name, err, written(cmd))
	}
	return cmd.ProcessState
}

// written is what cmd's Stdout and Stderr hold, when they can say.
func written(cmd *exec.Cmd) string {
	var b strings.Builder
	if s, ok := cmd.Stdout.(fmt.Stringer); ok {
		b.WriteString(s.String())
	}
	if s, ok := cmd.Stderr.(fmt.Stringer); ok && cmd.Stderr != cmd.Stdout {
		b.WriteString(s.String())
	}
	return b.String()
}

// Proc is a process running in the background for the length of a test,
// its stdout and stderr in Out. The test's end kills it if it still runs,
// and a failed test logs the end of its output.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Out  *SyncBuffer
	done chan struct{}
	err  error
}

// StartProc starts argv with the environment env.
func StartProc(t testing.TB, name string, env []string, argv ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Out: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd = exec.Command(argv[0], argv[1:]...)
	p.Cmd.Env = env
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.Exited() {
			p.Cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", p.Name, p.Cmd.Process.Pid, Tail(p.Out.String(), 12<<10))
		}
	})
	return p
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended (nil for exit status 0), once Done.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to exit and returns its exit code;
// a process still running then ends the test.
func (p *Proc) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %s", p.Name, d)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode() // -1 when a signal ended it
	}
	t.Fatalf("%s: %v", p.Name, p.err)
	return -1
}

// Signal sends sig to the process.
func (p *Proc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.Name, err)
	}
}

// Tail is the last n bytes of s, marked as cut when they are not all.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
