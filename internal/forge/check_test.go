package forge

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParseCheck parses each forge's check result, as its documentation
// shows it (see docs/webhooks.md, "Deploy when CI says so").
func TestParseCheck(t *testing.T) {
	const giteaSHA = "bffeb74224043ba2feb48d137756c8a9331c449a"
	tests := []struct {
		name string
		kind Kind
		h    http.Header
		file string
		repo Repository
		sndr string
		want CheckInfo
	}{
		{"github check suite", GitHub, githubHeaders("check_suite"), "github_check_suite.json", ghRepository, "Codertocat",
			CheckInfo{SHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", Branch: "changes", Name: "GitHub Actions", Conclusion: "success", Verdict: CheckPassed}},
		{"github workflow run failed", GitHub, githubHeaders("workflow_run"), "github_workflow_run.json", ghRepository, "Codertocat",
			CheckInfo{SHA: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", Branch: "main", Name: "Build", Conclusion: "failure", Verdict: CheckFailed}},
		{"github commit status pending", GitHub, githubHeaders("status"), "github_status.json", ghRepository, "Codertocat",
			CheckInfo{SHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", Name: "ci/jenkins", Conclusion: "pending", Verdict: CheckNone}},
		{"gitea commit status", Gitea, giteaHeaders("status"), "gitea_status.json", giteaRepository, "gitea",
			CheckInfo{SHA: giteaSHA, Name: "ci/woodpecker", Conclusion: "failure", Verdict: CheckFailed}},
		{"gitea workflow run", Gitea, giteaHeaders("workflow_run"), "gitea_workflow_run.json", giteaRepository, "gitea",
			CheckInfo{SHA: giteaSHA, Branch: "develop", Name: "CI", Conclusion: "success", Verdict: CheckPassed}},
		{"forgejo actions run failure", Gitea, forgejoHeaders("action_run_failure"), "forgejo_action_run_failure.json", giteaRepository, "gitea",
			CheckInfo{SHA: giteaSHA, Branch: "develop", Name: "test.yml", Conclusion: "failure", Verdict: CheckFailed}},
		{"gitlab pipeline", GitLab, gitlabHeaders("Pipeline Hook"), "gitlab_pipeline.json",
			Repository{FullName: "gitlab-org/gitlab-test", CloneURLs: []string{"http://192.168.64.1:3005/gitlab-org/gitlab-test.git", "git@192.168.64.1:gitlab-org/gitlab-test.git"}, WebURL: "http://192.168.64.1:3005/gitlab-org/gitlab-test"},
			"root", CheckInfo{SHA: "bcbb5ec396a2c0f828686f14fac9b80b780504f2", Branch: "master", Name: "pipeline", Conclusion: "success", Verdict: CheckPassed}},
		{"bitbucket build status", Bitbucket, bitbucketHeaders("repo:commit_status_updated"), "bitbucket_commit_status.json", bbRepository, "emmasmith",
			CheckInfo{SHA: "709d658dc5b6d6afcd46049c2f332ee3f515a67d", Branch: "main", Name: "mybuildtool", Conclusion: "SUCCESSFUL", Verdict: CheckPassed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse(tt.kind, tt.h, readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.Type != Check || ev.Check == nil {
				t.Fatalf("type %s, check %v; want a check", ev.Type, ev.Check)
			}
			if diff := cmp.Diff(tt.want, *ev.Check); diff != "" {
				t.Errorf("check (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.repo, ev.Repository); diff != "" {
				t.Errorf("repository (-want +got):\n%s", diff)
			}
			if ev.Sender != tt.sndr {
				t.Errorf("sender %q, want %q", ev.Sender, tt.sndr)
			}
			if err := checkInvariants(ev); err != nil {
				t.Errorf("invariant: %v", err)
			}
		})
	}
}

// TestCheckVerdicts maps each forge's words to a verdict: only an explicit
// success passes; a result still running, neutral or skipped decides nothing.
func TestCheckVerdicts(t *testing.T) {
	ghSuite := string(readTestdata(t, "github_check_suite.json"))
	glPipe := string(readTestdata(t, "gitlab_pipeline.json"))
	bbStatus := string(readTestdata(t, "bitbucket_commit_status.json"))
	forgejo := string(readTestdata(t, "forgejo_action_run_failure.json"))
	tests := []struct {
		name string
		kind Kind
		h    http.Header
		body string
		want Verdict
	}{
		{"check suite cancelled", GitHub, githubHeaders("check_suite"), strings.Replace(ghSuite, `"conclusion": "success"`, `"conclusion": "cancelled"`, 1), CheckFailed},
		{"check suite timed out", GitHub, githubHeaders("check_suite"), strings.Replace(ghSuite, `"conclusion": "success"`, `"conclusion": "timed_out"`, 1), CheckFailed},
		{"check suite neutral", GitHub, githubHeaders("check_suite"), strings.Replace(ghSuite, `"conclusion": "success"`, `"conclusion": "neutral"`, 1), CheckNone},
		{"check suite skipped", GitHub, githubHeaders("check_suite"), strings.Replace(ghSuite, `"conclusion": "success"`, `"conclusion": "skipped"`, 1), CheckNone},
		{"check suite requested", GitHub, githubHeaders("check_suite"), strings.Replace(strings.Replace(ghSuite, `"conclusion": "success"`, `"conclusion": null`, 1), `"action": "completed"`, `"action": "requested"`, 1), CheckNone},
		{"check suite success not completed", GitHub, githubHeaders("check_suite"), strings.Replace(ghSuite, `"action": "completed"`, `"action": "rerequested"`, 1), CheckNone},
		{"pipeline failed", GitLab, gitlabHeaders("Pipeline Hook"), strings.Replace(glPipe, `"status": "success"`, `"status": "failed"`, 1), CheckFailed},
		{"pipeline canceled", GitLab, gitlabHeaders("Pipeline Hook"), strings.Replace(glPipe, `"status": "success"`, `"status": "canceled"`, 1), CheckFailed},
		{"pipeline running", GitLab, gitlabHeaders("Pipeline Hook"), strings.Replace(glPipe, `"status": "success"`, `"status": "running"`, 1), CheckNone},
		{"bitbucket stopped", Bitbucket, bitbucketHeaders("repo:commit_status_updated"), strings.Replace(bbStatus, `"state": "SUCCESSFUL"`, `"state": "STOPPED"`, 1), CheckFailed},
		{"bitbucket in progress", Bitbucket, bitbucketHeaders("repo:commit_status_created"), strings.Replace(bbStatus, `"state": "SUCCESSFUL"`, `"state": "INPROGRESS"`, 1), CheckNone},
		{"forgejo success", Gitea, forgejoHeaders("action_run_success"), strings.Replace(forgejo, `"action": "failure"`, `"action": "success"`, 1), CheckPassed},
		{"forgejo recover", Gitea, forgejoHeaders("action_run_recover"), strings.Replace(forgejo, `"action": "failure"`, `"action": "recover"`, 1), CheckPassed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse(tt.kind, tt.h, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if ev.Check.Verdict != tt.want {
				t.Errorf("verdict %s, want %s (%+v)", ev.Check.Verdict, tt.want, ev.Check)
			}
		})
	}
}

// TestParseCheckMalformed: a check may release a deployment, so its
// commit and repository are validated like a push's.
func TestParseCheckMalformed(t *testing.T) {
	ghSuite := string(readTestdata(t, "github_check_suite.json"))
	bbStatus := string(readTestdata(t, "bitbucket_commit_status.json"))
	glPipe := string(readTestdata(t, "gitlab_pipeline.json"))
	sub := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("testdata lacks %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	tests := []struct {
		name string
		kind Kind
		h    http.Header
		body string
	}{
		{"abbreviated SHA", GitHub, githubHeaders("check_suite"), sub(ghSuite, `"head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821"`, `"head_sha": "ec26c3e"`)},
		{"SHA with metacharacters", GitHub, githubHeaders("check_suite"), sub(ghSuite, `"head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821"`, `"head_sha": "$(id)"`)},
		{"no check_suite", GitHub, githubHeaders("check_suite"), `{"action":"completed","repository":{"full_name":"a/b"}}`},
		{"no repository", GitHub, githubHeaders("check_suite"), sub(ghSuite, `"full_name": "Codertocat/Hello-World"`, `"full_name": ""`)},
		{"conclusion with a space", GitHub, githubHeaders("check_suite"), sub(ghSuite, `"conclusion": "success"`, `"conclusion": "suc cess"`)},
		{"check_suite of wrong type", GitHub, githubHeaders("check_suite"), sub(ghSuite, `"check_suite": {`, `"check_suite": [], "x": {`)},
		{"status without sha", GitHub, githubHeaders("status"), `{"state":"success","context":"ci","repository":{"full_name":"a/b"}}`},
		{"gitlab object_kind disagrees", GitLab, gitlabHeaders("Pipeline Hook"), sub(glPipe, `"object_kind": "pipeline"`, `"object_kind": "push"`)},
		{"gitlab sha invalid", GitLab, gitlabHeaders("Pipeline Hook"), sub(glPipe, `"sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2"`, `"sha": "HEAD"`)},
		{"bitbucket no commit", Bitbucket, bitbucketHeaders("repo:commit_status_updated"), sub(bbStatus, `"href": "https://api.bitbucket.org/2.0/repositories/team_name/project-x/commit/709d658dc5b6d6afcd46049c2f332ee3f515a67d"`, `"href": ""`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse(tt.kind, tt.h, []byte(tt.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", ev, err)
			}
		})
	}
}

// TestBitbucketServerHasNoCheckEvent: Data Center documents no build status
// webhook; anything it sends besides pushes, pings and pull requests is
// Other.
func TestBitbucketServerHasNoCheckEvent(t *testing.T) {
	ev, err := Parse(BitbucketServer, bitbucketServerHeaders("repo:commit_status_updated"), readTestdata(t, "bitbucket_commit_status.json"))
	if err != nil || ev.Type != Other {
		t.Fatalf("Parse = %+v, %v; want Other", ev, err)
	}
}
