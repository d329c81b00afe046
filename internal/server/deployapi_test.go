package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The deploy API through its HTTP handler, on a real SQLite store and a
// real git origin for the branch it resolves.

const apiConfig = `
server:
  rate_limit: {per_source: %s, global: 0, burst: %s}
  api_token: read-only-token-0123456789
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    forge: github
    webhook: {secret: hello-only-0123456789}
    environments:
      production: {branch: main, git_repo: %s, app_path: /srv/hello}
      staging: {branch: main, auto_deploy: false, git_repo: %s, app_path: /srv/hello-staging}
  inplace:
    type: api
    repository: x/inplace
    forge: github
    webhook: {secret: inplace-only-0123456789}
    environments:
      production: {branch: main, git_repo: %s, app_path: /srv/inplace, layout: inplace}
`

type apiFixture struct {
	*intakeFixture
	origin *testenv.Origin
	head   string
	tokens map[string]string
}

func newAPIFixture(t *testing.T, perSource, burst string) *apiFixture {
	t.Helper()
	o := testenv.NewOrigin(t, t.TempDir())
	o.Write("app.txt", "one")
	head := o.Commit("one")
	f := &apiFixture{intakeFixture: newIntakeWith(t, fmt.Sprintf(apiConfig, perSource, burst, o.Dir, o.Dir, o.Dir)),
		origin: o, head: head, tokens: map[string]string{}}
	for name, scopes := range map[string][]string{
		"deployer": {"deploy:hello/production", "rollback:hello/production", "lock:hello/*"},
		"staging":  {"deploy:hello/staging"},
		"reader":   {"read"},
		"wide":     {"deploy:*/*", "rollback:*/*", "lock:*/*"},
		"revoked":  {"deploy:*/*"},
	} {
		var sc []store.Scope
		for _, s := range scopes {
			p, err := store.ParseScope(s)
			if err != nil {
				t.Fatal(err)
			}
			sc = append(sc, p)
		}
		_, secret, err := f.db.CreateAPIToken(context.Background(), name, sc)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = secret
	}
	if _, err := f.db.RevokeAPIToken(context.Background(), "revoked"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *apiFixture) post(path, token, body string) (int, map[string]any, string) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

// TestDeployAPIAnswers: every answer of the deploy API, from a queued
// deployment to each refusal, and no answer ever carries a token.
func TestDeployAPIAnswers(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	tok := f.tokens
	prod := `{"fraise":"hello","environment":"production"}`
	tests := []struct {
		name, path, token, body string
		status                  int
		says                    string
	}{
		{"deploy the branch head", "/api/deploy", tok["deployer"], prod, 202, f.head},
		{"deploy a branch named", "/api/deploy", tok["deployer"], `{"fraise":"hello","environment":"production","ref":"main"}`, 202, f.head},
		{"deploy a commit", "/api/deploy", tok["deployer"], `{"fraise":"hello","environment":"production","ref":"` + f.head + `"}`, 202, f.head},
		{"a glob scope", "/api/deploy", tok["wide"], `{"fraise":"hello","environment":"staging"}`, 202, "deployment_id"},
		{"no token", "/api/deploy", "", prod, 401, "token is required"},
		{"an unknown token", "/api/deploy", "fraisier_nope", prod, 401, "unknown token"},
		{"a revoked token", "/api/deploy", tok["revoked"], prod, 401, "revoked"},
		{"server.api_token reads only", "/api/deploy", "read-only-token-0123456789", prod, 403, "reads the API only"},
		{"a read token", "/api/deploy", tok["reader"], prod, 403, "deploy:hello/production"},
		{"another environment's token", "/api/deploy", tok["staging"], prod, 403, "needs the scope"},
		{"deploy scope, rollback asked", "/api/rollback", tok["staging"], `{"fraise":"hello","environment":"staging"}`, 403, "rollback:hello/staging"},
		{"not JSON", "/api/deploy", tok["deployer"], `fraise=hello`, 400, "JSON"},
		{"an unknown field", "/api/deploy", tok["deployer"], `{"fraise":"hello","environment":"production","force":true}`, 400, "force"},
		{"no environment", "/api/deploy", tok["deployer"], `{"fraise":"hello"}`, 400, "required"},
		{"a tag", "/api/deploy", tok["deployer"], `{"fraise":"hello","environment":"production","ref":"refs/tags/v1"}`, 400, "full commit SHA"},
		{"a bad ref", "/api/deploy", tok["deployer"], `{"fraise":"hello","environment":"production","ref":"ma..in"}`, 400, "branch or a full commit"},
		{"an unknown branch", "/api/deploy", tok["deployer"], `{"fraise":"hello","environment":"production","ref":"nope"}`, 404, "no branch nope"},
		{"an unknown fraise", "/api/deploy", tok["wide"], `{"fraise":"nope","environment":"production"}`, 404, "no environment nope/production"},
		{"an unknown environment", "/api/deploy", tok["wide"], `{"fraise":"hello","environment":"qa"}`, 404, "no environment hello/qa"},
		{"no release to roll back to", "/api/rollback", tok["deployer"], prod, 404, "no earlier good release"},
		{"rollback of inplace", "/api/rollback", tok["wide"], `{"fraise":"inplace","environment":"production"}`, 409, "inplace"},
		{"lock without a reason", "/api/lock", tok["deployer"], prod, 400, "reason"},
		{"unlock what is not locked", "/api/unlock", tok["deployer"], `{"fraise":"hello","environment":"production","reason":"r"}`, 409, "not locked"},
		{"lock", "/api/lock", tok["deployer"], `{"fraise":"hello","environment":"production","reason":"release freeze"}`, 200, "operator:deployer via api"},
		{"lock again", "/api/lock", tok["wide"], `{"fraise":"hello","environment":"production","reason":"mine"}`, 409, "release freeze"},
		{"deploy while locked", "/api/deploy", tok["deployer"], prod, 409, "release freeze"},
		{"rollback while locked", "/api/rollback", tok["deployer"], prod, 409, "release freeze"},
		{"unlock", "/api/unlock", tok["deployer"], `{"fraise":"hello","environment":"production","reason":"freeze over"}`, 200, "unlocked"},
		{"deploy once unlocked", "/api/deploy", tok["deployer"], prod, 202, "deployment_id"},
	}
	for _, tc := range tests {
		status, _, body := f.post(tc.path, tc.token, tc.body)
		if status != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("%s: POST %s: %d %s, want %d saying %q", tc.name, tc.path, status, body, tc.status, tc.says)
		}
		for _, secret := range f.tokens {
			if strings.Contains(body, strings.TrimPrefix(secret, store.TokenPrefix)) {
				t.Errorf("%s: the answer holds a token", tc.name)
			}
		}
	}

	// What the API queued is recorded with its trigger and the token.
	ds, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Fraise: "hello", Environment: "production"})
	if err != nil || len(ds) == 0 {
		t.Fatalf("deployments: %v %v", ds, err)
	}
	if d := ds[0]; d.Status != store.StatusQueued || d.Trigger != store.TriggerAPI || d.Actor != "deployer" || d.NewSHA != f.head {
		t.Errorf("queued by the API: %+v", d)
	}
	toks, err := f.db.APITokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if used := tk.LastUsedAt != nil; used != (tk.Name != "revoked") {
			t.Errorf("token %s: last used %v", tk.Name, tk.LastUsedAt)
		}
	}
}

// TestDeployAPIRollbackQueues: a rollback is queued to the newest good
// release older than current, or to the one named.
func TestDeployAPIRollbackQueues(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	ctx := context.Background()
	tg := store.Target{Fraise: "hello", Environment: "production"}
	for i, st := range []string{store.ReleaseGood, store.ReleaseGood, store.ReleaseCurrent} {
		sha := strings.Repeat(fmt.Sprint(i+1), 40)
		if _, err := f.db.AddRelease(ctx, store.Release{Target: tg, Name: fmt.Sprintf("r%d", i+1), SHA: sha, Path: "/srv/hello/releases/r" + fmt.Sprint(i+1), State: st}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	status, m, body := f.post("/api/rollback", f.tokens["deployer"], `{"fraise":"hello","environment":"production"}`)
	if status != 202 || m["sha"] != strings.Repeat("2", 40) || m["ref"] != "r2" {
		t.Fatalf("rollback: %d %s", status, body)
	}
	status, m, body = f.post("/api/rollback", f.tokens["deployer"], `{"fraise":"hello","environment":"production","to":"r1"}`)
	if status != 202 || m["sha"] != strings.Repeat("1", 40) || m["superseded"] == nil {
		t.Fatalf("rollback to r1: %d %s", status, body)
	}
	d, err := f.db.Deployment(ctx, int64(m["deployment_id"].(float64)))
	if err != nil || d.Trigger != store.TriggerRollback || d.Actor != "deployer via api" || store.QueuedRef(d.RequestedRef) != "r1" {
		t.Fatalf("queued rollback: %+v %v", d, err)
	}
}

// TestDeployAPIFollowAndRead: a token that may deploy a target follows
// its deployments without the read scope, and reads nothing else; a read
// token reads the API.
func TestDeployAPIFollowAndRead(t *testing.T) {
	f := newAPIFixture(t, "0", "1")
	_, m, body := f.post("/api/deploy", f.tokens["deployer"], `{"fraise":"hello","environment":"production"}`)
	url, _ := m["status_url"].(string)
	if url == "" {
		t.Fatalf("no status_url in %s", body)
	}
	_, ms, _ := f.post("/api/deploy", f.tokens["staging"], `{"fraise":"hello","environment":"staging"}`)
	other := ms["status_url"].(string)
	for _, tc := range []struct {
		name, path, token string
		status            int
	}{
		{"its own deployment", url, f.tokens["deployer"], 200},
		{"another target's deployment", url, f.tokens["staging"], 401},
		{"a target its lock scope covers", other, f.tokens["deployer"], 200},
		{"the list", "/api/deployments", f.tokens["deployer"], 401},
		{"a read token", other, f.tokens["reader"], 200},
		{"a read token lists", "/api/fraises", f.tokens["reader"], 200},
		{"a revoked token", url, f.tokens["revoked"], 401},
		{"server.api_token", url, "read-only-token-0123456789", 200},
	} {
		if status, body := f.get(tc.path, tc.token); status != tc.status {
			t.Errorf("%s: GET %s: %d %s, want %d", tc.name, tc.path, status, body, tc.status)
		}
	}
}

// TestDeployAPIRateLimit: the API shares the intake's per-source limit.
func TestDeployAPIRateLimit(t *testing.T) {
	f := newAPIFixture(t, "0.001", "2")
	var last int
	var hdr string
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/api/lock", bytes.NewBufferString(`{}`))
		req.Header.Set("Authorization", "Bearer "+f.tokens["deployer"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last, hdr = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if last != http.StatusTooManyRequests || hdr == "" {
		t.Fatalf("third request in a burst of 2: %d (Retry-After %q), want 429 with Retry-After", last, hdr)
	}
}
