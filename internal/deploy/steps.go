package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/execx"
	"github.com/fraiseql/fraisier/internal/store"
)

// StepRecorder is what the engine needs of the state database to record
// steps while they run.
type StepRecorder interface {
	StartStep(ctx context.Context, deploymentID int64, name string) (int64, error)
	AppendStepOutput(ctx context.Context, stepID int64, chunk []byte) error
	FinishStep(ctx context.Context, stepID int64, status string, exitCode *int, detail string) error
}

// recorder runs the steps of one deployment: each is recorded before it
// starts and when it ends, its output is appended while it runs (so that
// fraisier logs -f can follow it), and one progress line is printed for it.
type recorder struct {
	db           StepRecorder
	deploymentID int64
	progress     io.Writer
	now          func() time.Time
	// record is a context for the bookkeeping writes that must happen even
	// when the deployment's own context has been cancelled.
	record context.Context
	// fault is the engine's test-only fault point (see Fault).
	fault Fault
	// scrub replaces the configuration's secrets in what is recorded and
	// printed: output, details, errors. Nil scrubs nothing.
	scrub *Scrubber
}

// stepFunc does the work of one step. It writes its output to out and
// returns a short detail for the record ("main → 1a2b3c4d").
type stepFunc func(ctx context.Context, out io.Writer) (detail string, err error)

// step runs fn as the named step, bounded by timeout when it is positive.
func (r *recorder) step(ctx context.Context, name string, timeout time.Duration, fn stepFunc) error {
	id, err := r.db.StartStep(r.record, r.deploymentID, name)
	if err != nil {
		return fmt.Errorf("record step %s: %w", name, err)
	}
	r.fault.at(r.progress, name, false)
	// Every way out below has recorded the step's end: that is "after".
	defer r.fault.at(r.progress, name, true)
	r.say("→ %s … ", name)
	start := r.now()
	stepCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %s", execx.ErrTimeout, timeout))
		defer cancel()
	}
	out := newStepOutput(r.record, r.db, id)
	scrubbed := r.scrub.Writer(out)
	detail, runErr := fn(stepCtx, scrubbed)
	var skipped *stepSkipped
	if errors.As(runErr, &skipped) {
		scrubbed.Close()
		out.Close()
		why := r.scrub.String(skipped.why)
		r.say("skipped (%s)\n", oneLine(why))
		return r.db.FinishStep(r.record, id, store.StepSkipped, nil, why)
	}
	if stepCtx.Err() != nil && ctx.Err() == nil {
		// The step's own timeout fired: say so rather than "context
		// canceled", once.
		cause := context.Cause(stepCtx)
		switch {
		case runErr == nil:
			runErr = cause
		case !errors.Is(runErr, execx.ErrTimeout):
			runErr = fmt.Errorf("%w (%v)", cause, runErr)
		}
	}
	scrubbed.Close()
	out.Close()
	elapsed := r.now().Sub(start)

	status := store.StepSucceeded
	var code *int
	var ee *execx.ExitError
	if errors.As(runErr, &ee) {
		c := ee.Code
		code = &c
	}
	detail = r.scrub.String(detail)
	runErr = r.scrub.Error(runErr)
	if runErr != nil {
		status = store.StepFailed
		if detail == "" {
			detail = runErr.Error()
		} else {
			detail += ": " + runErr.Error()
		}
	}
	if err := r.db.FinishStep(r.record, id, status, code, detail); err != nil && runErr == nil {
		runErr = fmt.Errorf("record step %s: %w", name, err)
	}
	if runErr != nil {
		r.say("failed %s\n  %s\n", fmtElapsed(elapsed), oneLine(runErr.Error()))
		var named *stepError
		if errors.As(runErr, &named) && named.step == name {
			return runErr
		}
		return &stepError{step: name, err: runErr}
	}
	if detail != "" {
		r.say("ok %s (%s)\n", fmtElapsed(elapsed), oneLine(detail))
	} else {
		r.say("ok %s\n", fmtElapsed(elapsed))
	}
	return nil
}

// stepSkipped is what a stepFunc returns when it finds, once running, that
// it has nothing to do (a rollback that must leave the database as it is):
// the step is recorded as skipped with why, not as succeeded or failed.
type stepSkipped struct{ why string }

func (s *stepSkipped) Error() string { return "skipped: " + s.why }

func skipStep(why string) error { return &stepSkipped{why: why} }

// skip records a step that did not need to run, with why.
func (r *recorder) skip(name, why string) error {
	id, err := r.db.StartStep(r.record, r.deploymentID, name)
	if err != nil {
		return fmt.Errorf("record step %s: %w", name, err)
	}
	r.fault.at(r.progress, name, false)
	defer r.fault.at(r.progress, name, true)
	why = r.scrub.String(why)
	r.say("→ %s … skipped (%s)\n", name, oneLine(why))
	return r.db.FinishStep(r.record, id, store.StepSkipped, nil, why)
}

// oneLine keeps a detail or an error, which can quote what a tool printed,
// on its progress line: a line break in it would start a line that reads
// as fraisier's own.
var oneLine = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace

// say prints a progress line (or the start of one), scrubbed.
func (r *recorder) say(format string, args ...any) {
	io.WriteString(r.progress, r.scrub.String(fmt.Sprintf(format, args...)))
}

func fmtElapsed(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// stepOutput appends a step's output to the state database in batches:
// the first output after a quiet spell is written at once, so that a live
// log shows it without delay, and what follows within outputFlushAfter is
// gathered into one write, as a write per line of npm install would be a
// transaction per line.
type stepOutput struct {
	ctx    context.Context
	db     StepRecorder
	stepID int64

	mu        sync.Mutex
	buf       []byte
	pending   bool // a timed flush is scheduled
	closed    bool
	lastFlush time.Time
}

const (
	outputFlushAfter = 50 * time.Millisecond
	outputFlushSize  = 16 << 10
)

func newStepOutput(ctx context.Context, db StepRecorder, stepID int64) *stepOutput {
	return &stepOutput{ctx: ctx, db: db, stepID: stepID}
}

func (o *stepOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return len(p), nil
	}
	o.buf = append(o.buf, p...)
	switch since := time.Since(o.lastFlush); {
	case len(o.buf) >= outputFlushSize, !o.pending && since >= outputFlushAfter:
		o.flushLocked()
	case !o.pending:
		o.pending = true
		time.AfterFunc(outputFlushAfter-since, func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.pending = false
			if !o.closed {
				o.flushLocked()
			}
		})
	}
	return len(p), nil
}

func (o *stepOutput) flushLocked() {
	if len(o.buf) > 0 {
		// Output is best effort: losing a chunk of log must not fail the
		// deployment it describes.
		_ = o.db.AppendStepOutput(o.ctx, o.stepID, o.buf)
		o.buf = o.buf[:0]
		o.lastFlush = time.Now()
	}
}

// Close flushes what is left; later writes are dropped.
func (o *stepOutput) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.flushLocked()
	o.closed = true
}

// stepError names the step that failed. Packages below (health) start
// their messages with their own name, so the step's name is added only
// when the message does not already begin with it.
type stepError struct {
	step string
	err  error
}

func (e *stepError) Error() string {
	msg := e.err.Error()
	if len(msg) > len(e.step) && msg[:len(e.step)] == e.step && msg[len(e.step)] == ':' {
		return msg
	}
	return e.step + ": " + msg
}

func (e *stepError) Unwrap() error { return e.err }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}
