//go:build !fraisier_faults

package deploy

import (
	"bytes"
	"testing"
)

// TestFaultIgnored: built without fault injection, FRAISIER_FAULT's every
// value is no fault, and a fault point reached does nothing (were it to
// kill, this test binary would die).
func TestFaultIgnored(t *testing.T) {
	for _, in := range []string{"", "kill:switch", "kill:fetch:before", "kill:record", "garbage"} {
		if f, err := ParseFault(in); err != nil || f != (Fault{}) {
			t.Errorf("ParseFault(%q) = %+v, %v; want no fault and no error", in, f, err)
		}
	}
	var out bytes.Buffer
	for _, f := range []Fault{{Step: "switch", After: true}, {Step: "fetch"}, {Step: FaultRecord, After: true}} {
		f.at(&out, f.Step, f.After)
	}
	if out.Len() != 0 {
		t.Errorf("a fault point said %q", out.String())
	}
}
