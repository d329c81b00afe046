package deploy

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// FaultEnv names the environment variable the CLI reads a fault from. It is
// for tests only: see Fault.
const FaultEnv = "FRAISIER_FAULT"

// FaultRecord is the fault point between deciding a deployment's outcome
// and writing it with FinishDeployment.
const FaultRecord = "record"

// Fault is a test-only fault-injection point: when the engine reaches it,
// the process sends itself SIGKILL, so that tests can prove what a real
// crash at that exact point leaves and what the next run makes of it. The
// zero Fault never fires; only ParseFault makes one, and the CLI calls it
// only with the value of FRAISIER_FAULT.
type Fault struct {
	// Step is a step's recorded name ("switch", "rollback health") or
	// FaultRecord.
	Step string
	// After fires once the step is recorded finished; otherwise the step
	// has been recorded as running and its work has not begun.
	After bool
}

// ParseFault reads kill:<step>[:before|after] (after by default), or
// kill:record. An empty string is no fault.
func ParseFault(s string) (Fault, error) {
	if s == "" {
		return Fault{}, nil
	}
	rest, ok := strings.CutPrefix(s, "kill:")
	if !ok {
		return Fault{}, fmt.Errorf("%s=%q: want kill:<step>[:before|after]", FaultEnv, s)
	}
	f := Fault{Step: rest, After: true}
	if name, when, ok := strings.Cut(rest, ":"); ok {
		switch when {
		case "before":
			f.After = false
		case "after":
		default:
			return Fault{}, fmt.Errorf("%s=%q: %q is neither before nor after", FaultEnv, s, when)
		}
		f.Step = name
	}
	if strings.TrimSpace(f.Step) == "" {
		return Fault{}, fmt.Errorf("%s=%q: no step named", FaultEnv, s)
	}
	return f, nil
}

func (f Fault) String() string {
	if f.Step == "" {
		return ""
	}
	if f.Step == FaultRecord {
		return "kill:" + FaultRecord
	}
	if f.After {
		return "kill:" + f.Step + ":after"
	}
	return "kill:" + f.Step + ":before"
}

// at kills the process when it is the fault point (step, after). Nothing
// deferred runs and no lock is given back: that is the point.
func (f Fault) at(progress io.Writer, step string, after bool) {
	if f.Step == "" || f.Step != step || (step != FaultRecord && f.After != after) {
		return
	}
	fmt.Fprintf(progress, "\n! %s=%s: fraisier kills itself here (a test's fault injection)\n", FaultEnv, f)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	// SIGKILL to oneself is delivered before kill returns; should it not be
	// (it cannot be blocked), a test must not mistake going on for a crash.
	select {}
}
