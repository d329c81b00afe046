package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// The rule for a current link the record does not name (doc.go, "After a
// crash"), on real parts. internal/cli's crash tests reach that state by
// killing fraisier at every step; here an operator's hand makes it, which
// the rule covers the same way, and a tree fraisier never made shows the
// limit of the rule.

// TestUnrecordedCurrentIsNotTrusted: current was switched behind the
// record's back. The next deployment says so, and when it fails it returns
// to the recorded release, not to the one current happened to point at, so
// that what serves is what the record names.
func TestUnrecordedCurrentIsNotTrusted(t *testing.T) {
	f := newFixture(t, "")
	f.push("healthy", nil)
	r1 := f.deploy(Request{}).Release
	f.push("healthy", nil)
	res := f.deploy(Request{})
	f.expect(res, store.StatusSucceeded, "v2")
	r2 := res.Release
	// An unfinished switch back to the first release, never restarted or
	// checked, never recorded.
	if err := switchCurrent(f.app, r1); err != nil {
		t.Fatal(err)
	}

	f.push("unhealthy", nil)
	f.log.Reset()
	res = f.deploy(Request{})
	f.expect(res, store.StatusRolledBack, "v2")
	if !strings.Contains(f.log.String(), "! current is "+r1+" but the record says "+r2) {
		t.Fatalf("the deployment did not say current and the record disagree:\n%s", f.log)
	}
	if res.PreviousRelease != r2 {
		t.Fatalf("deployed from %s, want the recorded release %s", res.PreviousRelease, r2)
	}
	f.assertTruthful(r2)

	// Asked for the recorded commit while current points elsewhere: not
	// "already current", a real deployment that verifies what it records.
	if err := switchCurrent(f.app, r1); err != nil {
		t.Fatal(err)
	}
	res = f.deploy(Request{Ref: res.OldSHA})
	f.expect(res, store.StatusSucceeded, "v2")
	f.assertTruthful(res.Release)
}

// TestForeignCurrentIsKept: a current link into a release fraisier never
// made (a tree that ran before fraisier) is adopted as it is: a failed
// first deployment returns to it rather than taking it out.
func TestForeignCurrentIsKept(t *testing.T) {
	f := newFixture(t, "")
	pre := filepath.Join(f.app, releasesDir, "before-fraisier")
	if err := os.MkdirAll(pre, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"VERSION": "v0\n", "behaviour": "healthy\n"} {
		if err := os.WriteFile(filepath.Join(pre, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := switchCurrent(f.app, "before-fraisier"); err != nil {
		t.Fatal(err)
	}
	f.push("unhealthy", nil)
	res := f.deploy(Request{})
	f.expect(res, store.StatusRolledBack, "v0")
	if cur, _ := currentRelease(f.app); cur != "before-fraisier" {
		t.Fatalf("current %q, want the tree that was there before fraisier", cur)
	}
}

// assertTruthful checks that current points at release and that the record
// names it.
func (f *fixture) assertTruthful(release string) {
	f.t.Helper()
	cur, err := currentRelease(f.app)
	if err != nil || cur != release {
		f.t.Fatalf("current %q (%v), want %s", cur, err, release)
	}
	states, err := f.db.FraiseStates(context.Background(), "hello", "production")
	if err != nil || len(states) != 1 || states[0].CurrentRelease != release {
		f.t.Fatalf("recorded state %+v (%v), want current release %s", states, err, release)
	}
}
