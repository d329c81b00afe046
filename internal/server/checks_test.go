package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

const checksConfig = `
git:
  github: {secret: gh-secret-0123456789}
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    forge: github
    webhook: {secret: hello-only-0123456789}
    environments:
      production: {branch: main, trigger: checks, checks: [CI], git_repo: /srv/git/hello.git, app_path: /srv/hello}
  twin:
    type: api
    repository: Codertocat/Hello-World
    forge: github
    environments:
      production: {branch: main, trigger: checks, checks: [CI], git_repo: /srv/git/hello.git, app_path: /srv/twin}
      staging: {branch: main, auto_deploy: false, git_repo: /srv/git/hello.git, app_path: /srv/twin-staging}
`

func workflowRun(t *testing.T, sha, name, conclusion string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"action": "completed",
		"workflow_run": map[string]any{"name": name, "head_sha": sha, "head_branch": "main", "status": "completed", "conclusion": conclusion},
		"repository":   map[string]any{"full_name": "Codertocat/Hello-World"}, "sender": map[string]any{"login": "ci"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIntakeChecks: a push is held in every environment with trigger:
// checks it routes to; a check result decides only the environments its
// secret covers and whose checks: names it; the others keep waiting until
// their own result.
func TestIntakeChecks(t *testing.T) {
	f := newIntakeWith(t, checksConfig)
	const sha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
	status, a := f.send(githubDelivery("push", "p1", "gh-secret-0123456789", payload(t, "github_push")))
	if status != http.StatusAccepted || len(a.Deployments) != 2 || a.Deployments[0].HeldForChecks == 0 || a.Deployments[1].HeldForChecks == 0 {
		t.Fatalf("push: %d %+v; want both environments held", status, a)
	}
	for _, tc := range []struct {
		name, id, secret, check, conclusion string
		want                                store.Outcome
		released                            []string
	}{
		{"a check still running", "c0", "gh-secret-0123456789", "CI", "", store.OutcomeIgnored, nil},
		{"hello's own secret releases hello only", "c1", "hello-only-0123456789", "CI", "success", store.OutcomeAccepted, []string{"hello"}},
		{"a check not named", "c2", "gh-secret-0123456789", "Lint", "failure", store.OutcomeIgnored, nil},
		{"twin's named check fails", "c3", "gh-secret-0123456789", "CI", "failure", store.OutcomeAccepted, nil},
	} {
		body := workflowRun(t, sha, tc.check, tc.conclusion)
		if tc.conclusion == "" {
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			m["action"] = "in_progress"
			body, _ = json.Marshal(m)
		}
		status, a := f.send(githubDelivery("workflow_run", tc.id, tc.secret, body))
		var released []string
		for _, d := range a.Deployments {
			released = append(released, d.Fraise)
		}
		if status != http.StatusOK || a.Outcome != tc.want || len(released) != len(tc.released) || len(released) > 0 && released[0] != tc.released[0] {
			t.Errorf("%s: %d %s %q %v; want %s, released %v", tc.name, status, a.Outcome, a.Reason, released, tc.want, tc.released)
		}
	}
	held, err := f.db.HeldPushes(context.Background(), false, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range held {
		got[h.Fraise] = h.Status
	}
	if got["hello"] != "released" || got["twin"] != "failed" {
		t.Errorf("holds %v; want hello released, twin failed", got)
	}
}
