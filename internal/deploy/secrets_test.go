package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestStepOutputScrubbed: what a step prints is stored and shown with the
// configuration's secrets replaced, whatever the deployed code does: the
// engine gives every deployment's recorder the scrubber of its
// configuration.
func TestStepOutputScrubbed(t *testing.T) {
	const secret = "s3cret-webhook-0123456789"
	f := newTreeFixture(t)
	f.top = "git:\n  github:\n    secret: " + secret + "\n"
	res := f.deploy(f.env("", `        install:
          command: [sh, -c, 'echo the secret is `+secret+`; exit 3']
`))
	if res.Status != store.StatusFailed {
		t.Fatalf("status %s (%v), want failed", res.Status, res.Err)
	}
	steps, err := f.db.Steps(context.Background(), res.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.db.Deployment(context.Background(), res.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	seen := []string{res.Err.Error(), d.Error, f.log.String()}
	for _, s := range steps {
		seen = append(seen, s.Output, s.Detail)
	}
	for _, text := range seen {
		if strings.Contains(text, secret) {
			t.Errorf("the secret was recorded or printed: %q", text)
		}
	}
	if !strings.Contains(strings.Join(seen, "\n"), "the secret is "+Redacted) {
		t.Errorf("the install's output is not there, redacted:\n%s", strings.Join(seen, "\n"))
	}
}

// TestInspectScrubbed: what fraisier status shows of an environment (its
// health check's error above all, which ends with what the command
// printed) is scrubbed of the configuration's secrets, as step output is.
func TestInspectScrubbed(t *testing.T) {
	const secret = "s3cret-webhook-0123456789"
	f := newTreeFixture(t)
	f.top = "git:\n  github:\n    secret: " + secret + "\n"
	if res := f.deploy(f.env("", "")); res.Status != store.StatusSucceeded {
		t.Fatalf("status %s (%v)", res.Status, res.Err)
	}
	env := f.env("", `        health_check:
          command: [sh, -c, 'echo the secret is `+secret+`; exit 1']
          retries: 0
`)
	l := Inspect(context.Background(), RealCollaborators(nil), env, 10*time.Second)
	if l.Healthy == nil || *l.Healthy {
		t.Fatalf("healthy %v, want the check to fail", l.Healthy)
	}
	for _, text := range []string{l.HealthError, l.BranchError, l.UnitsError} {
		if strings.Contains(text, secret) {
			t.Errorf("status shows the secret: %q", text)
		}
	}
	if !strings.Contains(l.HealthError, "the secret is "+Redacted) {
		t.Errorf("health error %q: want the command's output, redacted", l.HealthError)
	}
}
