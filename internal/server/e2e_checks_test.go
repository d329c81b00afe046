package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// checkSuite is a signed GitHub check_suite delivery: a completed suite of
// GitHub Actions for sha, with conclusion.
func (f *e2e) checkSuite(sha, conclusion string) delivery {
	body, err := json.Marshal(map[string]any{
		"action": "completed",
		"check_suite": map[string]any{"head_sha": sha, "head_branch": "main", "status": "completed", "conclusion": conclusion,
			"app": map[string]any{"name": "GitHub Actions", "slug": "github-actions"}},
		"repository": map[string]any{"full_name": "acme/hello", "clone_url": "https://git.example.invalid/acme/hello.git"},
		"sender":     map[string]any{"login": "github-actions[bot]"},
	})
	if err != nil {
		panic(err)
	}
	d := f.signed("check_suite", body)
	d.sha = sha
	return d
}

// held pushes sha to main and insists on 202 holding it for its checks,
// queueing nothing.
func (f *e2e) held(before, after string) hookAnswer {
	f.t.Helper()
	d := f.delivery("main", before, after)
	status, a, err := f.send(&httpClient, f.base(), d)
	if err != nil {
		f.t.Fatal(err)
	}
	if status != http.StatusAccepted || a.Outcome != store.OutcomeAccepted || len(a.Deployments) != 1 ||
		a.Deployments[0].HeldForChecks == 0 || a.Deployments[0].DeploymentID != 0 {
		f.t.Fatalf("push of %s: %d %+v; want 202 accepted, held for its checks", after, status, a)
	}
	return a
}

// check sends the check_suite delivery and returns the answer, insisting
// on 200.
func (f *e2e) check(sha, conclusion string) hookAnswer {
	f.t.Helper()
	status, a, err := f.send(&httpClient, f.base(), f.checkSuite(sha, conclusion))
	if err != nil || status != http.StatusOK {
		f.t.Fatalf("check_suite %s of %s: %d %+v %v; want 200", conclusion, sha, status, a, err)
	}
	return a
}

// webhooksJSON runs fraisier webhooks --json and returns each event's
// outcome and reason by webhook event id.
func (f *e2e) webhooksJSON() map[int64][2]string {
	f.t.Helper()
	out, code := f.cli("webhooks", "--json", "--limit", "50")
	if code != 0 {
		f.t.Fatalf("fraisier webhooks --json: exit %d", code)
	}
	var got struct {
		Webhooks []struct {
			ID      int64  `json:"id"`
			Outcome string `json:"outcome"`
			Reason  string `json:"reason"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		f.t.Fatalf("fraisier webhooks --json: %v", err)
	}
	m := map[int64][2]string{}
	for _, e := range got.Webhooks {
		m[e.ID] = [2]string{e.Outcome, e.Reason}
	}
	return m
}

// nothingQueued insists that no deployment of production was made.
func (f *e2e) nothingDeployed(when string) {
	f.t.Helper()
	q, err := f.store().QueuedDeployments(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	if ds := f.deployments("production"); len(ds) != 0 || len(q) != 0 {
		f.t.Fatalf("%s: deployments %+v, queued %+v; want none", when, ds, q)
	}
}

// TestE2EChecksHoldPushUntilTheyPass: with trigger: checks, a signed push
// deploys nothing and fraisier webhooks says it waits for checks; a
// check_suite success for another commit changes nothing; the success for
// the pushed commit deploys it, with the push and the check linked to the
// deployment.
func TestE2EChecksHoldPushUntilTheyPass(t *testing.T) {
	f := newE2E(t, e2eOptions{checks: map[string]string{"production": ""}})
	f.serve()
	shas := f.push("main", 1)
	push := f.held("", shas[0])

	// The queue has nothing to run: what a push would have deployed by
	// now is still not there.
	time.Sleep(500 * time.Millisecond)
	f.nothingDeployed("after the push")
	if e := f.webhooksJSON()[push.WebhookEventID]; e[0] != "accepted" || !strings.Contains(e[1], "waiting for checks") {
		t.Errorf("webhooks --json says %q %q of the held push; want accepted, waiting for checks", e[0], e[1])
	}
	out, _ := f.cli("webhooks")
	if !strings.Contains(out, "waiting for checks") {
		t.Errorf("fraisier webhooks does not say the push waits for checks:\n%s", out)
	}

	other := f.check(strings.Repeat("ab", 20), "success")
	if other.Outcome != store.OutcomeIgnored || len(other.Deployments) != 0 {
		t.Errorf("a success for another commit: %+v; want ignored, nothing queued", other)
	}
	time.Sleep(300 * time.Millisecond)
	f.nothingDeployed("after a success for another commit")

	ok := f.check(shas[0], "success")
	if ok.Outcome != store.OutcomeAccepted || len(ok.Deployments) != 1 || ok.Deployments[0].DeploymentID == 0 ||
		!strings.Contains(ok.Reason, "checks passed") {
		t.Fatalf("the success for the pushed commit: %+v; want accepted, one deployment", ok)
	}
	f.waitDeployed("production", shas[0], version("main", 1), 60*time.Second)
	dep := ok.Deployments[0].DeploymentID
	if d := f.deployment(dep); d.Status != store.StatusSucceeded || d.NewSHA != shas[0] {
		t.Errorf("deployment %d: %s of %s", dep, d.Status, d.NewSHA)
	}
	evs := f.webhooks()
	for _, id := range []string{ok.DeliveryID, push.DeliveryID} {
		if e := evs[id]; len(e.DeploymentIDs) != 1 || e.DeploymentIDs[0] != dep {
			t.Errorf("webhook event of delivery %s linked to %v, want deployment %d", id, e.DeploymentIDs, dep)
		}
	}
	if e := f.webhooksJSON()[push.WebhookEventID]; !strings.Contains(e[1], "checks passed") || strings.Contains(e[1], "waiting") {
		t.Errorf("webhooks --json says %q of the released push; want checks passed", e[1])
	}
}

// TestE2EChecksFailOrSuperseded: a newer push while the first waits
// supersedes it; a failed check of the newer one ends it with the reason,
// and the success of the superseded commit that arrives after deploys
// nothing either.
func TestE2EChecksFailOrSuperseded(t *testing.T) {
	f := newE2E(t, e2eOptions{checks: map[string]string{"production": "[GitHub Actions]"}})
	f.serve()
	shas := f.push("main", 2)
	first := f.held("", shas[0])
	second := f.held(shas[0], shas[1])
	evs := f.webhooksJSON()
	if e := evs[first.WebhookEventID]; e[0] != "superseded" || !strings.Contains(e[1], "replaced while it waited for checks") {
		t.Errorf("the first push: %q %q; want superseded while it waited for checks", e[0], e[1])
	}
	if e := evs[second.WebhookEventID]; e[0] != "accepted" || !strings.Contains(e[1], "waiting for checks") {
		t.Errorf("the second push: %q %q; want accepted, waiting for checks", e[0], e[1])
	}

	failed := f.check(shas[1], "failure")
	if failed.Outcome != store.OutcomeAccepted || len(failed.Deployments) != 0 ||
		!strings.Contains(failed.Reason, "checks failed: GitHub Actions failure") {
		t.Errorf("the failure of the second commit: %+v; want accepted, the reason, nothing queued", failed)
	}
	late := f.check(shas[0], "success")
	if late.Outcome != store.OutcomeIgnored || len(late.Deployments) != 0 {
		t.Errorf("the success of the superseded commit: %+v; want ignored", late)
	}
	time.Sleep(500 * time.Millisecond)
	f.nothingDeployed("after the checks")
	if e := f.webhooksJSON()[second.WebhookEventID]; !strings.Contains(e[1], "checks failed: GitHub Actions failure") {
		t.Errorf("webhooks --json says %q of the failed push; want the reason", e[1])
	}
	out, _ := f.cli("webhooks")
	if !strings.Contains(out, "checks failed") {
		t.Errorf("fraisier webhooks does not show why nothing deployed:\n%s", out)
	}
}
