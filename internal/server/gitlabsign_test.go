package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// GitLab's signing keys and tokens are kept apart: once a signing key is
// configured (for the forge or for a GitLab fraise), a delivery must be
// signed, and its plain X-Gitlab-Token is not accepted instead; a signed
// delivery is known by its signed webhook-id, not by the unsigned
// Idempotency-Key. Sent through the real handler to a real SQLite store.

// glSigningRaw is the key of glSigningKey, GitLab's signing token.
const glSigningRaw = "gitlab-signing-key-0123456789abc"

var glSigningKey = "whsec_" + base64.StdEncoding.EncodeToString([]byte(glSigningRaw))

const glToken = "gitlab-token-0123456789"

const glSignConfig = `
git:
  gitlab: {secrets: [%s]}
server:
  rate_limit: {per_source: 0, global: 0, burst: 1}
fraises:
  diaspora:
    type: api
    repository: mike/diaspora
%s    environments:
      production: {branch: master, git_repo: /srv/git/diaspora.git, app_path: /srv/diaspora}
`

func gitlabTokenDelivery(idem, token string, body []byte) delivery {
	return delivery{path: "/webhook/gitlab", headers: map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
		"Idempotency-Key": idem, "X-Gitlab-Token": token}, body: body}
}

// gitlabSignedDelivery is a Standard Webhooks delivery as GitLab signs it:
// webhook-id (GitLab sends the Idempotency-Key's value) is covered by the
// signature, Idempotency-Key is not.
func gitlabSignedDelivery(idem, webhookID string, body []byte) delivery {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(glSigningRaw))
	fmt.Fprintf(m, "%s.%s.", webhookID, ts)
	m.Write(body)
	return delivery{path: "/webhook/gitlab", headers: map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
		"Idempotency-Key": idem, "Webhook-Id": webhookID, "Webhook-Timestamp": ts,
		"Webhook-Signature": "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))}, body: body}
}

func TestGitLabSigningKeyRefusesTokens(t *testing.T) {
	push := payload(t, "gitlab_push")
	tests := []struct {
		name          string
		forge, fraise string // git.gitlab.secrets, and the fraise's own webhook section
		d             delivery
		status        int
		outcome       store.Outcome
		quote         string
	}{
		{"the token while the forge has a signing key", glToken + ", " + glSigningKey, "",
			gitlabTokenDelivery("gl-1", glToken, push), 401, "rejected", "must be signed"},
		{"the token while the fraise has a signing key", glToken, "    webhook: {secret: " + glSigningKey + "}\n",
			gitlabTokenDelivery("gl-2", glToken, push), 401, "rejected", "must be signed"},
		{"the signing key sent as the token", glSigningKey, "",
			gitlabTokenDelivery("gl-3", glSigningKey, push), 401, "rejected", "must be signed"},
		{"a signed delivery", glToken + ", " + glSigningKey, "",
			gitlabSignedDelivery("gl-4", "gl-4", push), 202, "accepted", ""},
		{"the token alone still works without a signing key", glToken, "",
			gitlabTokenDelivery("gl-5", glToken, push), 202, "accepted", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newIntakeWith(t, fmt.Sprintf(glSignConfig, tc.forge, tc.fraise))
			status, a := f.send(tc.d)
			if status != tc.status || a.Outcome != tc.outcome {
				t.Fatalf("got %d %s (%q), want %d %s", status, a.Outcome, a.Reason, tc.status, tc.outcome)
			}
			if !strings.Contains(a.Reason, tc.quote) {
				t.Errorf("reason %q does not say %q", a.Reason, tc.quote)
			}
			if status == 401 && len(a.Deployments) != 0 {
				t.Errorf("a refused delivery queued %+v", a.Deployments)
			}
		})
	}
}

// TestGitLabSignedDeliveryID: a captured signed delivery sent again with a
// new (unsigned) Idempotency-Key is recognised as the same delivery by its
// signed webhook-id, and answered as a duplicate.
func TestGitLabSignedDeliveryID(t *testing.T) {
	f := newIntakeWith(t, fmt.Sprintf(glSignConfig, glSigningKey, ""))
	push := payload(t, "gitlab_push")
	d := gitlabSignedDelivery("idem-1", "msg-1", push)
	status, first := f.send(d)
	if status != 202 || first.DeliveryID != "msg-1" {
		t.Fatalf("first delivery: %d %+v; want 202 with delivery id msg-1", status, first)
	}
	d.headers["Idempotency-Key"] = "idem-replayed"
	status, again := f.send(d)
	if !again.Duplicate || again.DeliveryID != "msg-1" || again.WebhookEventID != first.WebhookEventID {
		t.Errorf("replay under a new Idempotency-Key: %d %+v; want the duplicate of webhook event %d (msg-1)", status, again, first.WebhookEventID)
	}
	if n := len(f.events()); n != 1 {
		t.Errorf("%d webhook events recorded, want 1", n)
	}
}
