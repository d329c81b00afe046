package deploy

import (
	"context"
	"strings"
	"testing"

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
