package forgestatus

import (
	"context"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
)

var gitlabHeaders = map[string]string{"Private-Token": testToken, "Content-Type": "application/json", "User-Agent": "fraisier/test"}

const (
	glProject     = "/api/v4/projects/acme%2Fapi"
	glDeployments = glProject + "/deployments"
	glStatus      = glProject + "/statuses/" + testSHA
)

// TestGitLabDeploymentThenSuccess: the first report records a deployment
// in the GitLab environment and sets the commit status; the next one,
// given the Result, updates that deployment and the status.
func TestGitLabDeploymentThenSuccess(t *testing.T) {
	f := newFakeForge(t,
		answer{status: 200, body: `[]`},
		answer{status: 201, body: `{"id":31,"status":"running"}`},
		answer{status: 201, body: `{"id":1}`},
		answer{status: 200, body: `{"id":31,"status":"success"}`},
		answer{status: 201, body: `{"id":2}`})
	c := testClient(time.Now())
	r := report(f, forge.GitLab, "acme/api", Running)
	r.Ref = "refs/heads/main"
	res, err := c.Send(context.Background(), r)
	if err != nil || res != (Result{ForgeDeploymentID: 31, Via: ViaDeployment}) {
		t.Fatalf("running: %+v, %v", res, err)
	}
	r.Remember(res)
	r.State = Succeeded
	if _, err := c.Send(context.Background(), r); err != nil {
		t.Fatalf("succeeded: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests, want 5: %+v", len(reqs), reqs)
	}
	if reqs[0].Method != "GET" || reqs[0].Path != glDeployments || reqs[0].Query != "environment=production&order_by=id&per_page=20&sort=desc" {
		t.Errorf("lookup %s %s?%s", reqs[0].Method, reqs[0].Path, reqs[0].Query)
	}
	checkRequest(t, reqs[1], "POST", glDeployments, gitlabHeaders, map[string]any{
		"environment": "production", "sha": testSHA, "ref": "main", "tag": false, "status": "running"})
	checkRequest(t, reqs[2], "POST", glStatus, gitlabHeaders, map[string]any{
		"state": "running", "ref": "main", "name": "fraisier/production",
		"target_url": "https://deploy.example/d/7", "description": "deployed 0123456 to production"})
	checkRequest(t, reqs[3], "PUT", glDeployments+"/31", gitlabHeaders, map[string]any{"status": "success"})
	checkRequest(t, reqs[4], "POST", glStatus, gitlabHeaders, map[string]any{
		"state": "success", "ref": "main", "name": "fraisier/production",
		"target_url": "https://deploy.example/d/7", "description": "deployed 0123456 to production"})
}

// TestGitLabFindsItsDeployment: a report without the deployment's id
// updates the newest unfinished deployment of its commit instead of
// creating another; a tag ref is sent as a tag.
func TestGitLabFindsItsDeployment(t *testing.T) {
	list := `[{"id":33,"sha":"ffffffffffffffffffffffffffffffffffffffff","status":"running"},` +
		`{"id":32,"sha":"` + testSHA + `","status":"running"},{"id":30,"sha":"` + testSHA + `","status":"success"}]`
	f := newFakeForge(t, answer{status: 200, body: list}, answer{status: 200, body: `{}`}, answer{status: 201, body: `{}`})
	r := report(f, forge.GitLab, "acme/api", Failed)
	res, err := testClient(time.Now()).Send(context.Background(), r)
	if err != nil || res.ForgeDeploymentID != 32 {
		t.Fatalf("Send = %+v, %v; want deployment 32", res, err)
	}
	reqs := f.requests()
	checkRequest(t, reqs[1], "PUT", glDeployments+"/32", gitlabHeaders, map[string]any{"status": "failed"})

	f = newFakeForge(t, answer{status: 200, body: `[]`}, answer{status: 201, body: `{"id":40}`}, answer{status: 201, body: `{}`})
	r = report(f, forge.GitLab, "acme/api", Running)
	r.Ref = "refs/tags/v1.2.0"
	if _, err := testClient(time.Now()).Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	checkRequest(t, f.requests()[1], "POST", glDeployments, gitlabHeaders, map[string]any{
		"environment": "production", "sha": testSHA, "ref": "v1.2.0", "tag": true, "status": "running"})
}

// TestGitLabRetriedUpdate: an update GitLab refuses because the deployment
// already has that status (the earlier try's answer was lost) succeeds.
func TestGitLabRetriedUpdate(t *testing.T) {
	f := newFakeForge(t,
		answer{status: 400, body: `{"message":"Cannot transition status via :succeed from :success"}`},
		answer{status: 200, body: `{"id":31,"status":"success"}`},
		answer{status: 201, body: `{}`})
	r := report(f, forge.GitLab, "acme/api", Succeeded)
	r.ForgeDeploymentID, r.Via = 31, ViaDeployment
	if _, err := testClient(time.Now()).Send(context.Background(), r); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if reqs := f.requests(); len(reqs) != 3 || reqs[1].Method != "GET" || reqs[1].Path != glDeployments+"/31" {
		t.Fatalf("requests %+v", reqs)
	}
}

// TestGitLabWithoutDeploymentPermission: a token that may set commit
// statuses but not create deployments still sets the status, and later
// reports skip the deployment.
func TestGitLabWithoutDeploymentPermission(t *testing.T) {
	f := newFakeForge(t,
		answer{status: 200, body: `[]`},
		answer{status: 403, body: `{"message":"403 Forbidden"}`},
		answer{status: 201, body: `{}`},
		answer{status: 201, body: `{}`})
	c := testClient(time.Now())
	r := report(f, forge.GitLab, "acme/api", Running)
	res, err := c.Send(context.Background(), r)
	if err != nil || res.Via != ViaCommitStatus {
		t.Fatalf("Send = %+v, %v; want the commit status alone", res, err)
	}
	r.Remember(res)
	r.State = Succeeded
	if _, err := c.Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 4 || reqs[2].Path != glStatus || reqs[3].Path != glStatus {
		t.Fatalf("requests %+v", reqs)
	}
}
