//go:build fraisier_faults

package deploy

import (
	"bytes"
	"testing"
)

func TestParseFault(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Fault
		err  bool
	}{
		{in: "", want: Fault{}},
		{in: "kill:switch", want: Fault{Step: "switch", After: true}},
		{in: "kill:switch:after", want: Fault{Step: "switch", After: true}},
		{in: "kill:fetch:before", want: Fault{Step: "fetch"}},
		{in: "kill:rollback health:before", want: Fault{Step: "rollback health"}},
		{in: "kill:record", want: Fault{Step: FaultRecord, After: true}},
		{in: "switch", err: true},
		{in: "kill:", err: true},
		{in: "kill:switch:during", err: true},
		{in: "crash:switch", err: true},
	} {
		got, err := ParseFault(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.err)
		}
		if err == nil && c.in != "" {
			// String gives back a value ParseFault reads as the same point.
			again, err := ParseFault(got.String())
			if err != nil || again != got {
				t.Errorf("ParseFault(%q.String() = %q) = %+v, %v", c.in, got.String(), again, err)
			}
		}
	}
}

// TestFaultElsewhere: a fault point fires only at its own step and side;
// reaching it here would kill the test binary, so passing is the proof.
// (internal/cli's crash tests prove that it does kill, at every point.)
func TestFaultElsewhere(t *testing.T) {
	var out bytes.Buffer
	var zero Fault
	zero.at(&out, "switch", true)
	zero.at(&out, FaultRecord, true)
	f := Fault{Step: "switch", After: true}
	f.at(&out, "switch", false)
	f.at(&out, "rollback switch", true)
	f.at(&out, FaultRecord, true)
	g := Fault{Step: FaultRecord, After: true}
	g.at(&out, "health", true)
	if out.Len() != 0 {
		t.Fatalf("a fault that did not fire said %q", out.String())
	}
}
