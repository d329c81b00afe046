//go:build fraisier_faults

package deploy

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// FaultInjection says whether this binary can kill itself at a Fault.
const FaultInjection = true

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
