package execx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultMaxOutput bounds captured output when Cmd.MaxOutput is zero.
const DefaultMaxOutput = 64 << 10

// DefaultGrace is how long a process group has between SIGTERM and SIGKILL.
const DefaultGrace = 5 * time.Second

// ErrTimeout reports that a command outlived its Timeout and was killed.
var ErrTimeout = errors.New("timed out")

// Cmd describes one child process.
type Cmd struct {
	Argv []string
	Dir  string
	// Env is added to what the child inherits (see environ); its entries
	// win, and later ones win over earlier ones.
	Env []string
	// PassEnv names variables of fraisier's own environment the child
	// inherits beyond the allowlist, when they are set: what a tool needs
	// to do its job (git's SSH_AUTH_SOCK, systemctl's XDG_RUNTIME_DIR).
	PassEnv []string
	// Stdin is the child's standard input; nil means /dev/null.
	Stdin io.Reader
	// Timeout bounds the run; zero means only ctx bounds it.
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL; zero means DefaultGrace.
	Grace time.Duration
	// Output, when set, receives stdout and stderr as they are written.
	Output io.Writer
	// MaxOutput caps the captured output; the tail is kept.
	MaxOutput int
	// Credential, when set, is the user and groups the child runs as
	// (fraisier must be privileged enough to switch to them).
	Credential *syscall.Credential
}

// Result is what a finished command left behind.
type Result struct {
	ExitCode  int
	Output    []byte // stdout and stderr interleaved, at most MaxOutput bytes
	Truncated bool   // the beginning of Output was dropped
	Duration  time.Duration
}

// ExitError is a command that ran and exited non-zero (or was killed by a
// signal it did not get from us).
type ExitError struct {
	Argv   []string
	Code   int
	Output string // the captured tail
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", QuoteArgv(e.Argv), e.Code)
	if tail := LastLine(e.Output); tail != "" {
		msg += ": " + tail
	}
	return msg
}

// Run runs c and waits for it and for its whole process group. The error is
// nil on exit status 0; an *ExitError on another status; wraps ErrTimeout
// when c.Timeout killed it and ctx.Err() when ctx was cancelled.
func Run(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return Result{ExitCode: -1}, errors.New("run: empty argv")
	}
	runCtx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, c.Timeout, ErrTimeout)
		defer cancel()
	}
	grace := c.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	capture := newTail(c.MaxOutput)
	var sink io.Writer = capture
	if c.Output != nil {
		sink = io.MultiWriter(capture, &lockedWriter{w: c.Output})
	}

	cmd := exec.CommandContext(runCtx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = environ(os.Environ(), c.Dir, c.PassEnv, c.Env)
	cmd.Stdin = c.Stdin
	cmd.Stdout = sink
	cmd.Stderr = sink
	// Its own process group, so that a timeout kills what the command
	// started too (npm, pip and friends fork freely). Pdeathsig: should
	// fraisier die, the command dies with it rather than go on writing
	// beside the deployment that recovery starts (a git init a crash left
	// running emptied the mirror's directory again under the retry). Go
	// sets it after switching users, and it fires when the thread that
	// started the command ends, which Go's threads do not while fraisier
	// runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Credential, Pdeathsig: syscall.SIGKILL}
	var killTimer *time.Timer
	var mu sync.Mutex
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		err := syscall.Kill(-pgid, syscall.SIGTERM)
		mu.Lock()
		killTimer = time.AfterFunc(grace, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
		mu.Unlock()
		return err
	}
	// A grandchild that keeps our pipes open must not hold Wait forever.
	cmd.WaitDelay = grace + time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("start %s: %w", QuoteArgv(c.Argv), err)
	}
	waitErr := cmd.Wait()
	// Whatever the leader did, nothing of its group may outlive the step.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	mu.Lock()
	if killTimer != nil {
		killTimer.Stop()
	}
	mu.Unlock()

	res := Result{Duration: time.Since(start), ExitCode: cmd.ProcessState.ExitCode()}
	res.Output, res.Truncated = capture.bytes()
	return res, runError(ctx, runCtx, c, res, waitErr)
}

// runError is what Run reports for a command that was started: the
// timeout or the caller's cancellation first, then the exit status.
func runError(ctx, runCtx context.Context, c Cmd, res Result, waitErr error) error {
	if runCtx.Err() != nil {
		if errors.Is(context.Cause(runCtx), ErrTimeout) && ctx.Err() == nil {
			return fmt.Errorf("%s: %w after %s", QuoteArgv(c.Argv), ErrTimeout, c.Timeout)
		}
		return fmt.Errorf("%s: %w", QuoteArgv(c.Argv), context.Cause(ctx))
	}
	if waitErr != nil {
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			return &ExitError{Argv: c.Argv, Code: res.ExitCode, Output: string(res.Output)}
		}
		if errors.Is(waitErr, exec.ErrWaitDelay) {
			// The command exited; only a straggler held the output open.
			return nil
		}
		return fmt.Errorf("wait %s: %w", QuoteArgv(c.Argv), waitErr)
	}
	return nil
}

// inherited returns the variables of fraisier's environment every child
// gets: where to find programs, the home directory, and how to speak
// (language, character set, time zone). Nothing else is passed unasked,
// because fraisier's environment holds its own secrets (webhook secrets
// given as ${VAR}, database URLs, CREDENTIALS_DIRECTORY) and the code it
// runs is whatever was pushed.
func inherited() []string { return []string{"PATH", "HOME", "LANG", "LANGUAGE", "TZ"} }

// environ is the environment a child starts with: from parent (fraisier's
// own, os.Environ()), the variables of the allowlist (those above and
// every LC_*) and those named in pass; then PWD when dir is set; then env,
// whose entries win.
func environ(parent []string, dir string, pass []string, env []string) []string {
	keep := inherited()
	out := make([]string, 0, len(keep)+len(pass)+len(env)+4)
	for _, kv := range parent {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		if slices.Contains(keep, name) || strings.HasPrefix(name, "LC_") || slices.Contains(pass, name) {
			out = append(out, kv)
		}
	}
	if dir != "" {
		// As os/exec does for an inherited environment: PWD names the
		// directory the child starts in.
		if abs, err := filepath.Abs(dir); err == nil {
			out = append(out, "PWD="+abs)
		}
	}
	return append(out, env...)
}

// Output runs c and returns its captured output, trimmed of trailing
// whitespace, for commands that answer a question (git rev-parse).
func Output(ctx context.Context, c Cmd) (string, error) {
	res, err := Run(ctx, c)
	return strings.TrimRight(string(res.Output), " \t\r\n"), err
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
}

func newTail(max int) *tail {
	if max <= 0 {
		max = DefaultMaxOutput
	}
	return &tail{max: max}
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		t.truncated = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.truncated = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) bytes() ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...), t.truncated
}

// lockedWriter serialises writes from the stdout and stderr copiers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// QuoteArgv renders an argv for messages, quoting each argument a reader
// could misread (spaces, quotes, shell syntax, the empty string), so that
// it is plain where one argument ends.
func QuoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`;&|<>*?()[]{}") {
			parts[i] = fmt.Sprintf("%q", a)
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

// LastLine is the last line of a command's output, cut to its last 200
// bytes (whole characters), for a one-line message: where a failing
// command usually says why.
func LastLine(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = "…" + strings.ToValidUTF8(s[len(s)-200:], "")
	}
	return s
}
