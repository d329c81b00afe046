package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
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
			ID             int64  `json:"id"`
			Status         string `json:"status"`
			Trigger        string `json:"trigger"`
			NewSHA         string `json:"new_sha"`
			Release        string `json:"release"`
			WebhookEventID *int64 `json:"webhook_event_id"`
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
			ID            int64   `json:"id"`
			Forge         string  `json:"forge"`
			DeliveryID    string  `json:"delivery_id"`
			Event         string  `json:"event"`
			Repository    string  `json:"repository"`
			Ref           string  `json:"ref"`
			SHA           string  `json:"sha"`
			Sender        string  `json:"sender"`
			Outcome       string  `json:"outcome"`
			RemoteAddr    string  `json:"remote_addr"`
			DeploymentIDs []int64 `json:"deployment_ids"`
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
