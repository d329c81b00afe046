package server

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fraiseql/fraisier/internal/store"
)

// orderIntakeConfig is the example's shape (hello and hello-etl, which
// runs hello's code), a worker ordered after hello, and docs, ordered
// after hello too but deployed from another branch.
const orderIntakeConfig = `
git:
  github: {secret: gh-secret-0123456789}
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    environments:
      production: {branch: main, git_repo: /srv/git/hello.git, app_path: /srv/hello}
  hello-etl:
    type: etl
    repository: Codertocat/Hello-World
    environments:
      production:
        branch: main
        shares_code_with: hello/production
        run_after_deploy: {command: [load]}
  worker:
    type: api
    repository: Codertocat/Hello-World
    environments:
      production: {branch: main, git_repo: /srv/git/hello.git, app_path: /srv/worker, after: [hello/production]}
  docs:
    type: api
    repository: Codertocat/Hello-World
    environments:
      production: {branch: docs, git_repo: /srv/git/hello.git, app_path: /srv/docs, after: [hello/production]}
`

// TestIntakeOrdersAPush: a push queues each environment it routes to
// waiting for the requests of the same push that its after: list and its
// shares_code_with name; a push that queues nothing for those leaves it
// nothing to wait for.
func TestIntakeOrdersAPush(t *testing.T) {
	ghPush := payload(t, "github_push")
	tests := []struct {
		name   string
		branch string
		// waits maps each target queued to the targets it waits for.
		waits map[string][]string
	}{
		{"main", "main", map[string][]string{
			"hello/production": nil, "hello-etl/production": {"hello/production"}, "worker/production": {"hello/production"}}},
		{"docs", "docs", map[string][]string{"docs/production": nil}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newIntakeWith(t, orderIntakeConfig)
			body := bytes.Replace(pushing(ghPush, i+1), []byte(`"refs/heads/main"`), []byte(`"refs/heads/`+tc.branch+`"`), 1)
			status, a := f.send(githubDelivery("push", "gh-"+tc.name, "gh-secret-0123456789", body))
			if status != 202 {
				t.Fatalf("push: %d %+v", status, a)
			}
			o, err := f.db.SettleQueue(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			target := map[int64]string{}
			for _, q := range a.Deployments {
				target[q.DeploymentID] = q.Fraise + "/" + q.Environment
			}
			got := map[string][]string{}
			for id, name := range target {
				got[name] = nil
				for _, w := range o.Waiting[id] {
					if w.Status != store.StatusQueued || target[w.ID] != w.Target.String() {
						t.Errorf("%s waits for %+v; want a request of the same push", name, w)
					}
					got[name] = append(got[name], w.Target.String())
				}
			}
			if diff := cmp.Diff(tc.waits, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("what each request waits for (-want +got):\n%s", diff)
			}
		})
	}
}
