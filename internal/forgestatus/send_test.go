package forgestatus

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/google/go-cmp/cmp"
)

// TestSendMakesTheDocumentedRequest checks, per forge, the method, path,
// headers and JSON body of a report against the forge's documented
// request (docs/forge-status.md), and that a 200 or 201 answer succeeds.
func TestSendMakesTheDocumentedRequest(t *testing.T) {
	cases := []struct {
		name    string
		forge   forge.Kind
		repo    string
		state   State
		token   string
		via     string
		answer  answer
		path    string
		headers map[string]string
		body    map[string]any
	}{{
		name: "gitlab commit status", forge: forge.GitLab, repo: "acme/backend/api", state: Running, via: ViaCommitStatus,
		answer: answer{status: 201, body: `{"id":1,"status":"running"}`},
		path:   "/api/v4/projects/acme%2Fbackend%2Fapi/statuses/" + testSHA,
		headers: map[string]string{"Private-Token": testToken, "Content-Type": "application/json",
			"Accept": "application/json", "User-Agent": "fraisier/test"},
		body: map[string]any{"state": "running", "ref": "main", "name": "fraisier/production",
			"target_url": "https://deploy.example/d/7", "description": "deployed 0123456 to production"},
	}, {
		name: "gitea commit status", forge: forge.Gitea, repo: "acme/api", state: Succeeded,
		answer:  answer{status: 201, body: `{"id":1,"status":"success"}`},
		path:    "/api/v1/repos/acme/api/statuses/" + testSHA,
		headers: map[string]string{"Authorization": "token " + testToken, "Content-Type": "application/json", "User-Agent": "fraisier/test"},
		body: map[string]any{"state": "success", "context": "fraisier/production",
			"target_url": "https://deploy.example/d/7", "description": "deployed 0123456 to production"},
	}, {
		name: "bitbucket cloud build status, bearer", forge: forge.Bitbucket, repo: "acme/api", state: RolledBack,
		answer:  answer{status: 201, body: `{"key":"fraisier/production","state":"FAILED"}`},
		path:    "/2.0/repositories/acme/api/commit/" + testSHA + "/statuses/build",
		headers: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"},
		body: map[string]any{"key": "fraisier/production", "state": "FAILED", "name": "fraisier/production",
			"url": "https://deploy.example/d/7", "description": "deployed 0123456 to production", "refname": "main"},
	}, {
		name: "bitbucket cloud build status, app password", forge: forge.Bitbucket, repo: "acme/api", state: Running,
		token:   "jdoe:app-password-0123456789",
		answer:  answer{status: 200, body: `{}`},
		path:    "/2.0/repositories/acme/api/commit/" + testSHA + "/statuses/build",
		headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("jdoe:app-password-0123456789"))},
		body: map[string]any{"key": "fraisier/production", "state": "INPROGRESS", "name": "fraisier/production",
			"url": "https://deploy.example/d/7", "description": "deployed 0123456 to production", "refname": "main"},
	}, {
		name: "bitbucket data center build status", forge: forge.BitbucketServer, repo: "PROJ/api", state: Succeeded,
		answer:  answer{status: 204},
		path:    "/rest/api/latest/projects/PROJ/repos/api/commits/" + testSHA + "/builds",
		headers: map[string]string{"Authorization": "Bearer " + testToken, "Content-Type": "application/json"},
		body: map[string]any{"key": "fraisier/production", "state": "SUCCESSFUL", "name": "fraisier/production",
			"url": "https://deploy.example/d/7", "description": "deployed 0123456 to production", "ref": "refs/heads/main"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeForge(t, tc.answer)
			r := report(f, tc.forge, tc.repo, tc.state)
			if tc.token != "" {
				r.Token = tc.token
			}
			r.Via = tc.via
			if _, err := testClient(time.Now()).Send(context.Background(), r); err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			checkRequest(t, reqs[0], http.MethodPost, tc.path, tc.headers, tc.body)
		})
	}
}

func checkRequest(t *testing.T, got seen, method, path string, headers map[string]string, body map[string]any) {
	t.Helper()
	if got.Method != method || got.Path != path {
		t.Errorf("request %s %s, want %s %s", got.Method, got.Path, method, path)
	}
	for k, v := range headers {
		if h := got.Header.Get(k); h != v {
			t.Errorf("header %s = %q, want %q", k, h, v)
		}
	}
	if body != nil {
		if d := cmp.Diff(body, got.Body); d != "" {
			t.Errorf("body (-want +got):\n%s", d)
		}
	}
}

var githubHeaders = map[string]string{
	"Authorization":        "Bearer " + testToken,
	"Accept":               "application/vnd.github+json",
	"X-Github-Api-Version": "2022-11-28",
	"User-Agent":           "fraisier/test",
}

// TestGitHubPendingThenSuccess follows one deployment: the first report
// creates a GitHub deployment and its in_progress status, the Result's id
// goes into the next report, which only adds the success status.
func TestGitHubPendingThenSuccess(t *testing.T) {
	for _, final := range []struct {
		state State
		want  string
	}{{Succeeded, "success"}, {Failed, "failure"}, {RolledBack, "failure"}, {RollbackFailed, "error"}} {
		t.Run(string(final.state), func(t *testing.T) {
			f := newFakeForge(t,
				answer{status: 201, body: `{"id":4242,"sha":"` + testSHA + `"}`},
				answer{status: 201, body: `{"id":1,"state":"in_progress"}`},
				answer{status: 201, body: `{"id":2}`})
			c := testClient(time.Now())
			r := report(f, forge.GitHub, "acme/api", Running)
			r.EnvironmentURL = "https://api.example"
			res, err := c.Send(context.Background(), r)
			if err != nil {
				t.Fatalf("running: %v", err)
			}
			if res != (Result{ForgeDeploymentID: 4242, Via: ViaDeployment}) {
				t.Fatalf("result %+v", res)
			}
			next := r
			next.State, next.Description = final.state, ""
			next.Remember(res)
			if _, err := c.Send(context.Background(), next); err != nil {
				t.Fatalf("%s: %v", final.state, err)
			}
			reqs := f.requests()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			checkRequest(t, reqs[0], "POST", "/repos/acme/api/deployments", githubHeaders, map[string]any{
				"ref": testSHA, "task": "deploy", "auto_merge": false, "required_contexts": []any{},
				"environment": "production", "description": "deployed 0123456 to production",
			})
			checkRequest(t, reqs[1], "POST", "/repos/acme/api/deployments/4242/statuses", githubHeaders, map[string]any{
				"state": "in_progress", "log_url": "https://deploy.example/d/7", "environment_url": "https://api.example",
				"description": "deployed 0123456 to production",
			})
			checkRequest(t, reqs[2], "POST", "/repos/acme/api/deployments/4242/statuses", githubHeaders, map[string]any{
				"state": final.want, "log_url": "https://deploy.example/d/7", "environment_url": "https://api.example",
				"description": defaultDescription(final.state, "production"),
			})
		})
	}
}

// TestGitHubFindsItsDeployment: a report that carries fraisier's
// deployment id but no GitHub id (a retry, or a row written before the
// first answer) finds the deployment by its payload instead of creating a
// second one; without a match it creates one carrying the id.
func TestGitHubFindsItsDeployment(t *testing.T) {
	list := `[{"id":5,"payload":{"fraisier_deployment_id":6}},{"id":9,"payload":"{\"fraisier_deployment_id\":7}"}]`
	f := newFakeForge(t, answer{status: 200, body: list}, answer{status: 201, body: `{"id":1}`})
	r := report(f, forge.GitHub, "acme/api", Succeeded)
	r.DeploymentID = 7
	res, err := testClient(time.Now()).Send(context.Background(), r)
	if err != nil || res.ForgeDeploymentID != 9 {
		t.Fatalf("Send = %+v, %v; want deployment 9", res, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Method != "GET" || reqs[0].Path != "/repos/acme/api/deployments" ||
		reqs[0].Query != "environment=production&per_page=100&sha="+testSHA || reqs[1].Path != "/repos/acme/api/deployments/9/statuses" {
		t.Fatalf("requests %+v", reqs)
	}

	f = newFakeForge(t, answer{status: 200, body: `[]`}, answer{status: 201, body: `{"id":77}`}, answer{status: 201, body: `{}`})
	r = report(f, forge.GitHub, "acme/api", Running)
	r.DeploymentID = 8
	if res, err := testClient(time.Now()).Send(context.Background(), r); err != nil || res.ForgeDeploymentID != 77 {
		t.Fatalf("Send = %+v, %v; want deployment 77", res, err)
	}
	reqs = f.requests()
	if len(reqs) != 3 || reqs[1].Body["payload"].(map[string]any)[payloadKey] != float64(8) {
		t.Fatalf("the created deployment does not carry fraisier's id: %+v", reqs)
	}
}

// TestGitHubFallsBackToCommitStatus: a token that may not create
// deployments (403 or 404 on the deployments API) reports through a commit
// status, and the Result says so, so that the next report goes there
// directly.
func TestGitHubFallsBackToCommitStatus(t *testing.T) {
	for _, refusal := range []answer{
		{status: 403, body: `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest"}`},
		{status: 404, body: `{"message":"Not Found"}`},
	} {
		f := newFakeForge(t, refusal, answer{status: 201, body: `{"id":1}`}, answer{status: 201, body: `{"id":2}`})
		c := testClient(time.Now())
		r := report(f, forge.GitHub, "acme/api", Running)
		res, err := c.Send(context.Background(), r)
		if err != nil || res.Via != ViaCommitStatus {
			t.Fatalf("HTTP %d: Send = %+v, %v; want a commit status", refusal.status, res, err)
		}
		r.Remember(res)
		r.State, r.Description = Succeeded, ""
		if _, err := c.Send(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests, want 3 (refused deployment, pending status, success status)", len(reqs))
		}
		checkRequest(t, reqs[1], "POST", "/repos/acme/api/statuses/"+testSHA, githubHeaders, map[string]any{
			"state": "pending", "target_url": "https://deploy.example/d/7", "description": "deployed 0123456 to production",
			"context": "fraisier/production",
		})
		checkRequest(t, reqs[2], "POST", "/repos/acme/api/statuses/"+testSHA, githubHeaders, map[string]any{
			"state": "success", "target_url": "https://deploy.example/d/7", "description": "deployed to production",
			"context": "fraisier/production",
		})
	}
}

// TestGitHubRateLimitIsNotARefusal: a 403 that is GitHub's rate limit is
// retried later, not taken for a missing permission.
func TestGitHubRateLimitIsNotARefusal(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	f := newFakeForge(t, answer{status: 403,
		header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1796612700"},
		body:   `{"message":"API rate limit exceeded for installation ID 1."}`})
	_, err := testClient(now).Send(context.Background(), report(f, forge.GitHub, "acme/api", Running))
	retry, after := Retry(err)
	if !retry || after != time.Unix(1796612700, 0).Sub(now) {
		t.Fatalf("Retry(%v) = %v, %v", err, retry, after)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests: a rate limit fell back to commit statuses", n)
	}
}

// TestPendingThenFinalInOrder: on every forge, the running report and the
// final one arrive in that order with the forge's states for them.
func TestPendingThenFinalInOrder(t *testing.T) {
	want := map[forge.Kind][2][]any{
		forge.GitLab:          {{"running", "success"}, {"running", "failed"}},
		forge.Gitea:           {{"pending", "success"}, {"pending", "failure"}},
		forge.Bitbucket:       {{"INPROGRESS", "SUCCESSFUL"}, {"INPROGRESS", "FAILED"}},
		forge.BitbucketServer: {{"INPROGRESS", "SUCCESSFUL"}, {"INPROGRESS", "FAILED"}},
	}
	for k, outcomes := range want {
		for i, final := range []State{Succeeded, RolledBack} {
			f := newFakeForge(t)
			c := testClient(time.Now())
			r := report(f, k, repoOf(k), Running)
			r.Via = ViaCommitStatus // GitLab: the commit status alone
			for _, s := range []State{Running, final} {
				r.State = s
				if _, err := c.Send(context.Background(), r); err != nil {
					t.Fatalf("%s %s: %v", k, s, err)
				}
			}
			var got []any
			for _, req := range f.requests() {
				got = append(got, req.Body["state"])
			}
			if d := cmp.Diff(outcomes[i], got); d != "" {
				t.Errorf("%s, ending %s: states (-want +got):\n%s", k, final, d)
			}
		}
	}
}
