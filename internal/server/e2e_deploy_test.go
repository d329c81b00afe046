package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestE2ESignedPushDeploys: a signed GitHub push to POST /webhook is
// answered 202 naming the queued deployment, which then really deploys:
// the commit is fetched from the origin, the release installed, the
// systemd service restarted and health-checked, and the service answers
// with the new version. fraisier history and fraisier webhooks show the
// deployment succeeded and linked to the delivery.
func TestE2ESignedPushDeploys(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	f.serve()

	sha := f.push("main", 1)[0]
	a := f.hook("main", "", sha)
	id := a.Deployments[0].DeploymentID
	if d := a.Deployments[0]; d.Fraise != "hello" || d.Environment != "production" || d.Superseded != 0 {
		t.Fatalf("queued %+v, want hello/production superseding nothing", d)
	}
	f.waitDeployed("production", sha, version("main", 1), 30*time.Second)

	out, code := f.cli("history", "hello", "production", "--json")
	if code != 0 {
		t.Fatalf("history: exit %d", code)
	}
	var h struct {
		Deployments []struct {
			ID             int64         `json:"id"`
			Status         store.Status  `json:"status"`
			Trigger        store.Trigger `json:"trigger"`
			NewSHA         string        `json:"new_sha"`
			Release        string        `json:"release"`
			WebhookEventID *int64        `json:"webhook_event_id"`
		} `json:"deployments"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("history --json: %v", err)
	}
	if len(h.Deployments) != 1 {
		t.Fatalf("history: %d deployments, want 1", len(h.Deployments))
	}
	d := h.Deployments[0]
	if d.ID != id || d.Status != store.StatusSucceeded || d.Trigger != store.TriggerWebhook || d.NewSHA != sha ||
		d.Release == "" || d.WebhookEventID == nil || *d.WebhookEventID != a.WebhookEventID {
		t.Errorf("history: %+v; want deployment %d succeeded at %s by webhook event %d", d, id, sha, a.WebhookEventID)
	}

	out, code = f.cli("webhooks", "--json")
	if code != 0 {
		t.Fatalf("webhooks: exit %d", code)
	}
	var w struct {
		Webhooks []struct {
			ID            int64         `json:"id"`
			Forge         string        `json:"forge"`
			DeliveryID    string        `json:"delivery_id"`
			Event         string        `json:"event"`
			Repository    string        `json:"repository"`
			Ref           string        `json:"ref"`
			SHA           string        `json:"sha"`
			Sender        string        `json:"sender"`
			Outcome       store.Outcome `json:"outcome"`
			RemoteAddr    string        `json:"remote_addr"`
			DeploymentIDs []int64       `json:"deployment_ids"`
		} `json:"webhooks"`
	}
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		t.Fatalf("webhooks --json: %v", err)
	}
	if len(w.Webhooks) != 1 {
		t.Fatalf("webhooks: %d events, want 1", len(w.Webhooks))
	}
	e := w.Webhooks[0]
	if e.ID != a.WebhookEventID || e.Forge != "github" || e.DeliveryID != a.DeliveryID || e.Event != "push" ||
		e.Repository != "acme/hello" || e.Ref != "refs/heads/main" || e.SHA != sha || e.Sender != "alice" ||
		e.Outcome != store.OutcomeAccepted || e.RemoteAddr != "127.0.0.1" || len(e.DeploymentIDs) != 1 || e.DeploymentIDs[0] != id {
		t.Errorf("webhooks: %+v; want the delivery accepted, from 127.0.0.1, linked to deployment %d", e, id)
	}

	// The same delivery again (a forge's redelivery) gets the first answer
	// and deploys nothing new.
	dup := f.delivery("main", "", sha)
	dup.id = a.DeliveryID
	status, again, err := f.send(&httpClient, f.base(), dup)
	if err != nil {
		t.Fatal(err)
	}
	if status != 202 || !again.Duplicate || again.WebhookEventID != a.WebhookEventID ||
		len(again.Deployments) != 1 || again.Deployments[0].DeploymentID != id {
		t.Errorf("redelivery: %d %+v; want 202, duplicate, naming deployment %d", status, again, id)
	}
	if n := len(f.deployments("production")); n != 1 {
		t.Errorf("%d deployments after the redelivery, want 1", n)
	}
	if !strings.Contains(f.serving("production"), version("main", 1)) {
		t.Errorf("service answers %q after the redelivery", f.serving("production"))
	}
}

// TestE2EPullRequestPreview: an environment with pull_requests: main
// deploys the head of a pull request opened against main, fetched through
// the forge's refs/pull/N/head (here the only ref that holds it: its
// branch was deleted after the pull request was opened). A pull request
// from a fork, a closed one and one against another branch are recorded
// and ignored with their reason, and production is untouched.
func TestE2EPullRequestPreview(t *testing.T) {
	f := newE2E(t, e2eOptions{envs: map[string]string{"production": "main", "preview": "preview"}, pullRequests: map[string]string{"preview": "main"}})
	f.serve()
	base := f.push("main", 1)[0]
	f.hook("main", "", base)
	f.waitDeployed("production", base, version("main", 1), 30*time.Second)

	head := f.push("feature", 1)[0]
	testenv.Git(t, f.repo.Dir, "update-ref", "refs/pull/7/head", head)
	testenv.Git(t, f.repo.Dir, "update-ref", "-d", "refs/heads/feature")

	for _, tc := range []struct {
		name, action, target, headRepo, says string
	}{
		{"from a fork", "opened", "main", "mallory/hello", "pull requests from forks never deploy"},
		{"against dev", "opened", "dev", "acme/hello", "no environment deploys pull requests against dev"},
		{"closed", "closed", "main", "acme/hello", "only a pull request opened, reopened or updated deploys"},
	} {
		if status, a := f.pullRequest(tc.action, tc.target, head, tc.headRepo); status != http.StatusOK || a.Outcome != store.OutcomeIgnored ||
			!strings.Contains(a.Reason, tc.says) {
			t.Errorf("pull request %s: %d %+v; want 200 ignored, saying %q", tc.name, status, a, tc.says)
		}
	}
	status, a := f.pullRequest("opened", "main", head, "acme/hello")
	if status != http.StatusAccepted || a.Outcome != store.OutcomeAccepted || len(a.Deployments) != 1 || a.Deployments[0].Environment != "preview" {
		t.Fatalf("pull request opened against main: %d %+v; want 202 queueing hello/preview", status, a)
	}
	f.waitDeployed("preview", head, version("feature", 1), 30*time.Second)
	d := f.deployment(a.Deployments[0].DeploymentID)
	if d.Status != store.StatusSucceeded || d.NewSHA != head || !strings.HasPrefix(d.RequestedRef, "refs/pull/7/head") ||
		d.WebhookID == nil || *d.WebhookID != a.WebhookEventID {
		t.Errorf("preview deployment %+v; want succeeded at %s from refs/pull/7/head, linked to webhook %d", d, head, a.WebhookEventID)
	}
	if st := f.state("production"); st.CurrentSHA != base {
		t.Errorf("production at %s after the pull request, want %s", st.CurrentSHA, base)
	}

	// By hand: the pull request's ref, after new commits.
	next := f.push("feature", 1)[0]
	testenv.Git(t, f.repo.Dir, "update-ref", "refs/pull/7/head", next)
	testenv.Git(t, f.repo.Dir, "update-ref", "-d", "refs/heads/feature")
	if out, code := f.cli("deploy", "hello", "preview", "--ref", "refs/pull/7/head", "--plan", "--json"); code != 0 || !strings.Contains(out, next) {
		t.Errorf("fraisier deploy --plan --ref refs/pull/7/head: exit %d, want the plan to name %s\n%s", code, next, out)
	}
	if out, code := f.cli("deploy", "hello", "preview", "--ref", "refs/pull/7/head"); code != 0 {
		t.Fatalf("fraisier deploy --ref refs/pull/7/head: exit %d\n%s", code, out)
	}
	if st := f.state("preview"); st.CurrentSHA != next || f.serving("preview") != version("feature", 2) {
		t.Errorf("preview at %s serving %q after deploy --ref refs/pull/7/head, want %s serving %s", st.CurrentSHA, f.serving("preview"), next, version("feature", 2))
	}
}

// pullRequest sends a signed GitHub pull_request event: pull request #7,
// head at sha in headRepo, against target in acme/hello.
func (f *e2e) pullRequest(action, target, sha, headRepo string) (int, hookAnswer) {
	f.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"action": action, "number": 7,
		"pull_request": map[string]any{"number": 7, "title": "Preview me",
			"head": map[string]any{"ref": "feature", "sha": sha, "repo": map[string]any{"full_name": headRepo}},
			"base": map[string]any{"ref": target, "repo": map[string]any{"full_name": "acme/hello"}}},
		"repository": map[string]any{"full_name": "acme/hello"},
		"sender":     map[string]any{"login": "bob"},
	})
	status, a, err := f.send(&httpClient, f.base(), f.signed("pull_request", body))
	if err != nil {
		f.t.Fatal(err)
	}
	return status, a
}
