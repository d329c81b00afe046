package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// UnitChecker answers whether a systemd unit is active; the systemd package's
// manager satisfies it.
type UnitChecker interface {
	IsActive(ctx context.Context, unit string) (bool, error)
}

// Options are what Run needs besides the Check itself.
type Options struct {
	// Observer, when set, is called after each try, before the pause that
	// follows it, for live progress lines. It runs on Run's goroutine and
	// its time counts against the Deadline.
	Observer func(Attempt)
	// HTTPClient replaces the default client for KindURL. Run uses a copy
	// with redirects and cookies turned off, so whatever the caller set
	// there, no redirect is followed and no cookie is sent. Its transport
	// may reuse connections; the default one does not.
	HTTPClient *http.Client
	// Units answers for KindUnit; required for that kind.
	Units UnitChecker
}

// Attempt is one try.
type Attempt struct {
	N        int // 1 for the first try
	Start    time.Time
	Duration time.Duration
	OK       bool
	Status   int    // the HTTP status for KindURL, 0 for other kinds or without a response
	Err      string // why the try failed; empty when OK
}

// Report is every try Run made.
type Report struct {
	Attempts []Attempt
	OK       bool
	Elapsed  time.Duration // from the call to Run, StartDelay included
}

// errTryTimeout is the cause of a try's context when its Timeout (or what
// was left of the Deadline) ran out, telling a slow probe from a caller's
// cancellation.
var errTryTimeout = errors.New("try timed out")

// probe makes one try. It returns the HTTP status when it has one and a nil
// error only when the try passed; it must give up when ctx is done.
type probe func(ctx context.Context) (status int, err error)

// Run probes until c passes, its retries are spent, its Deadline passes or
// ctx is done, whichever comes first. Each try is bounded by c.Timeout,
// shortened to what remains of the Deadline. The Report holds every try
// even when the error is not nil. The error is nil when a try passed, a
// *Failure when none did, or another error when c is invalid (then no try
// was made).
func Run(ctx context.Context, c Check, opts Options) (Report, error) {
	if err := c.Validate(); err != nil {
		return Report{}, err
	}
	c = c.withDefaults()
	var p probe
	switch c.Kind {
	case KindURL:
		p = urlProbe(c, opts.HTTPClient)
	case KindTCP:
		p = tcpProbe(c)
	case KindCommand:
		p = commandProbe(c)
	case KindUnit:
		if opts.Units == nil {
			return Report{}, errors.New("health: invalid unit check: no UnitChecker in Options")
		}
		p = unitProbe(c, opts.Units)
	}
	return schedule(ctx, c, p, opts.Observer)
}

// schedule runs p on c's retry schedule; c has its defaults filled in. It
// owns all the timing so that it can be tested without sockets.
func schedule(ctx context.Context, c Check, p probe, observe func(Attempt)) (Report, error) {
	var rep Report
	begin := time.Now()
	fail := func(reason Reason) (Report, error) {
		rep.Elapsed = time.Since(begin)
		f := &Failure{Kind: c.Kind, Target: c.target(), Attempts: len(rep.Attempts), Reason: reason, Elapsed: rep.Elapsed}
		if n := len(rep.Attempts); n > 0 {
			f.Last = rep.Attempts[n-1].Err
		}
		if reason == ReasonCanceled {
			f.ctxErr = ctx.Err()
		}
		return rep, f
	}

	if !sleep(ctx, c.StartDelay) {
		return fail(ReasonCanceled)
	}
	deadline := time.Now().Add(c.Deadline)
	for n := 1; ; n++ {
		start := time.Now()
		left := deadline.Sub(start)
		if left <= 0 && n > 1 {
			// The pause overslept the deadline.
			return fail(ReasonDeadline)
		}
		timeout, cut := c.Timeout, ""
		if left < timeout {
			timeout, cut = left, " (cut to fit the deadline)"
		}
		tryCtx, cancel := context.WithTimeoutCause(ctx, timeout, errTryTimeout)
		status, err := p(tryCtx)
		timedOut := errors.Is(context.Cause(tryCtx), errTryTimeout)
		cancel()

		a := Attempt{N: n, Start: start, Duration: time.Since(start), OK: err == nil, Status: status}
		if err != nil {
			a.Err = err.Error()
			// Whatever a probe says about its cut-off context, the same
			// words serve every kind and name the limit that cut it.
			if timedOut && ctx.Err() == nil {
				a.Err = fmt.Sprintf("no answer within %s%s", roundDuration(timeout), cut)
			}
		}
		rep.Attempts = append(rep.Attempts, a)
		if observe != nil {
			observe(a)
		}
		if a.OK {
			rep.OK = true
			rep.Elapsed = time.Since(begin)
			return rep, nil
		}
		if ctx.Err() != nil {
			return fail(ReasonCanceled)
		}
		if n > c.Retries {
			return fail(ReasonRetriesExhausted)
		}
		// A try that could only start at or after the deadline would have
		// no time at all; say so now rather than wait for nothing.
		if !time.Now().Add(c.Interval).Before(deadline) {
			return fail(ReasonDeadline)
		}
		if !sleep(ctx, c.Interval) {
			return fail(ReasonCanceled)
		}
	}
}

// sleep waits d and reports whether ctx let it finish.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
