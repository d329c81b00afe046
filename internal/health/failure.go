package health

import (
	"fmt"
	"strings"
	"time"
)

// Reason says why Run gave up.
type Reason string

// Why Run gave up.
const (
	ReasonRetriesExhausted Reason = "retries exhausted" // every allowed try failed
	ReasonDeadline         Reason = "deadline"          // the check's own Deadline passed
	ReasonCanceled         Reason = "canceled"          // the caller's ctx was done
)

// Failure is the error Run returns when the check never passed. When Reason
// is ReasonCanceled it wraps the caller's ctx.Err(); the check's own Deadline
// does not wrap context.DeadlineExceeded, so a caller can tell its own
// timeout from the check's.
type Failure struct {
	Kind     Kind
	Target   string // what was probed, as in "GET http://127.0.0.1:8081/health"
	Attempts int
	Last     string // why the last try failed
	Reason   Reason
	Elapsed  time.Duration // from the call to Run, StartDelay included

	ctxErr error
}

func (f *Failure) Error() string {
	var b strings.Builder
	b.WriteString("health: ")
	b.WriteString(f.Target)
	b.WriteString(": ")
	if f.Attempts == 0 {
		b.WriteString("canceled before the first try")
		if f.ctxErr != nil {
			b.WriteString(": ")
			b.WriteString(f.ctxErr.Error())
		}
		return b.String()
	}
	b.WriteString(f.Last)
	tries := "tries"
	if f.Attempts == 1 {
		tries = "try"
	}
	fmt.Fprintf(&b, " (%d %s in %s", f.Attempts, tries, roundDuration(f.Elapsed))
	switch f.Reason {
	case ReasonDeadline:
		b.WriteString(", deadline passed")
	case ReasonCanceled:
		b.WriteString(", canceled")
		if f.ctxErr != nil {
			b.WriteString(": ")
			b.WriteString(f.ctxErr.Error())
		}
	}
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the caller's ctx.Err() for a canceled check, nil otherwise.
func (f *Failure) Unwrap() error { return f.ctxErr }

// roundDuration keeps messages readable: "10.2s", "150ms".
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
