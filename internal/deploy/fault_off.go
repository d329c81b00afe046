//go:build !fraisier_faults

package deploy

import "io"

// FaultInjection says whether this binary can kill itself at a Fault: not
// this one, built without the fraisier_faults tag.
const FaultInjection = false

// ParseFault makes no fault of anything in a binary built without fault
// injection: FRAISIER_FAULT, whatever it says, changes nothing.
func ParseFault(string) (Fault, error) { return Fault{}, nil }

// at never fires without fault injection.
func (Fault) at(io.Writer, string, bool) {}
