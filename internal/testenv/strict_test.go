package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recordingTB notes how Unavailable ended the test instead of ending it.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                        {}
func (r *recordingTB) Skip(args ...any)               { r.skipped = fmt.Sprint(args...) }
func (r *recordingTB) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestUnavailable(t *testing.T) {
	tests := []struct {
		strict             string
		wantSkip, wantFail bool
	}{
		{strict: "", wantSkip: true},
		{strict: "0", wantSkip: true},
		{strict: "1", wantFail: true},
	}
	for _, tt := range tests {
		t.Run("strict="+tt.strict, func(t *testing.T) {
			t.Setenv(StrictEnv, tt.strict)
			r := &recordingTB{TB: t}
			Unavailable(r, "no %s here", "systemd")
			if (r.skipped != "") != tt.wantSkip || (r.failed != "") != tt.wantFail {
				t.Errorf("skipped %q, failed %q; want skip %v, fail %v", r.skipped, r.failed, tt.wantSkip, tt.wantFail)
			}
			if got := r.skipped + r.failed; got == "" || !strings.Contains(got, "no systemd here") {
				t.Errorf("message %q lacks the reason", got)
			}
		})
	}
}
