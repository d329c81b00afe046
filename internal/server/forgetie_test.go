package server

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Each fraise is tied to one forge: a delivery from another forge never
// deploys it, whatever repository its body names, and a forge's
// allow_unsigned covers only the fraises and addresses it names. The
// attacks are sent through the real handler to a real SQLite store.

// tieConfig has a fraise on GitHub (api) and two on Gitea (mirror, docs)
// built from a repository of the same owner/name, so that a delivery's
// repository alone would route to all three. %s is gitea's allow_unsigned.
const tieConfig = `
git:
  github: {secret: github-secret-0123456789}
  gitlab: {secret: gitlab-token-0123456789}
  gitea:
    secret: gitea-secret-0123456789
    allow_unsigned: %s
server:
  rate_limit: {per_source: 0, global: 0, burst: 1}
  trusted_proxies: [127.0.0.1/32]
fraises:
  api:
    type: api
    repository: https://github.com/acme/api.git
    environments:
      production: {branch: main, app_path: /srv/api}
  mirror:
    type: api
    forge: gitea
    repository: acme/api
    environments:
      production: {branch: main, git_repo: /srv/git/api.git, app_path: /srv/mirror}
  docs:
    type: api
    forge: gitea
    repository: acme/api
    environments:
      production: {branch: main, git_repo: /srv/git/api.git, app_path: /srv/docs}
`

// giteaPushOf is a Gitea push of main to acme/api whose clone URLs are
// GitHub's: what a forger writes to reach the GitHub fraise.
func giteaPushOf(t *testing.T) []byte {
	t.Helper()
	b := payload(t, "gitea_push")
	b = bytes.ReplaceAll(b, []byte("refs/heads/develop"), []byte("refs/heads/main"))
	b = bytes.ReplaceAll(b, []byte("gitea/webhooks"), []byte("acme/api"))
	b = bytes.ReplaceAll(b, []byte("localhost:3000"), []byte("github.com"))
	b = bytes.ReplaceAll(b, []byte("gitea@localhost:2222"), []byte("git@github.com"))
	return b
}

// gitlabPushOf is a GitLab push of main to acme/api on github.com.
func gitlabPushOf(t *testing.T) []byte {
	t.Helper()
	b := payload(t, "gitlab_push")
	b = bytes.ReplaceAll(b, []byte("refs/heads/master"), []byte("refs/heads/main"))
	b = bytes.ReplaceAll(b, []byte("mike/diaspora"), []byte("acme/api"))
	b = bytes.ReplaceAll(b, []byte("example.com"), []byte("github.com"))
	return b
}

func unsignedGitea(id string, body []byte, from string) delivery {
	h := map[string]string{"Content-Type": "application/json", "X-Gitea-Event": "push", "X-Gitea-Delivery": id}
	if from != "" {
		h["X-Forwarded-For"] = from
	}
	return delivery{path: "/webhook/gitea", headers: h, body: body}
}

func TestForgeTie(t *testing.T) {
	gitea := giteaPushOf(t)
	gitlab := gitlabPushOf(t)
	github := bytes.ReplaceAll(payload(t, "github_push"), []byte("Codertocat/Hello-World"), []byte("acme/api"))
	signedGitea := unsignedGitea("gt-signed", gitea, "")
	signedGitea.headers["X-Gitea-Signature"] = hexHMAC("gitea-secret-0123456789", gitea)

	tests := []struct {
		name     string
		unsigned string // gitea's allow_unsigned
		d        delivery
		status   int
		deploys  []string
		reason   string
	}{
		{"an unsigned Gitea delivery from an allowed address does not deploy the GitHub fraise", "{from: [10.0.0.0/8]}",
			unsignedGitea("gt-1", gitea, "10.1.2.3"), 202, []string{"docs/production", "mirror/production"}, ""},
		{"an unsigned Gitea delivery for an allowed fraise deploys that fraise only", "{fraises: [mirror]}",
			unsignedGitea("gt-2", gitea, ""), 202, []string{"mirror/production"}, "allow_unsigned of gitea does not name docs"},
		{"an unsigned Gitea delivery from an address not allowed is refused", "{from: [10.0.0.0/8]}",
			unsignedGitea("gt-3", gitea, "192.0.2.7"), 401, nil, "missing signature"},
		{"both given: the address must be allowed", "{fraises: [mirror], from: [10.0.0.0/8]}",
			unsignedGitea("gt-4", gitea, "192.0.2.7"), 401, nil, "missing signature"},
		{"both given: the fraise must be named", "{fraises: [mirror], from: [10.0.0.0/8]}",
			unsignedGitea("gt-5", gitea, "10.1.2.3"), 202, []string{"mirror/production"}, "allow_unsigned of gitea does not name docs"},
		{"an unsigned delivery that routes to no named fraise deploys nothing", "{fraises: [mirror]}",
			unsignedGitea("gt-6", bytes.ReplaceAll(gitea, []byte("acme/api"), []byte("acme/other")), ""), 200, nil, "no environment deploys branch main"},
		{"a signed Gitea delivery deploys Gitea's fraises only", "{fraises: [mirror]}",
			signedGitea, 202, []string{"docs/production", "mirror/production"}, ""},
		{"a GitLab token delivery does not deploy the GitHub fraise", "{fraises: [mirror]}",
			delivery{path: "/webhook/gitlab", headers: map[string]string{"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
				"Idempotency-Key": "gl-1", "X-Gitlab-Token": "gitlab-token-0123456789"}, body: gitlab}, 200, nil, "no environment deploys branch main"},
		{"a signed GitHub delivery deploys the GitHub fraise only", "{fraises: [mirror]}",
			githubDelivery("push", "gh-1", "github-secret-0123456789", github), 202, []string{"api/production"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newIntakeWith(t, fmt.Sprintf(tieConfig, tc.unsigned))
			status, a := f.send(tc.d)
			var got []string
			for _, d := range a.Deployments {
				got = append(got, d.Fraise+"/"+d.Environment)
			}
			if status != tc.status {
				t.Errorf("status %d (%s %q), want %d", status, a.Outcome, a.Reason, tc.status)
			}
			if diff := cmp.Diff(tc.deploys, got); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
			if !strings.Contains(a.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", a.Reason, tc.reason)
			}
			evs := f.events()
			if len(evs) != 1 {
				t.Fatalf("%d events recorded, want 1", len(evs))
			}
			if evs[0].Reason != a.Reason {
				t.Errorf("recorded reason %q, answered %q", evs[0].Reason, a.Reason)
			}
		})
	}
}
