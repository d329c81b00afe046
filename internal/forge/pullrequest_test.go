package forge

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestHeadUpdated(t *testing.T) {
	for _, tc := range []struct {
		k      Kind
		action string
		want   bool
	}{
		{GitHub, "opened", true}, {GitHub, "synchronize", true}, {GitHub, "reopened", true},
		{GitHub, "closed", false}, {GitHub, "edited", false}, {GitHub, "labeled", false},
		{Gitea, "synchronized", true}, {Gitea, "opened", true}, {Gitea, "closed", false},
		{GitLab, "open", true}, {GitLab, "update", true}, {GitLab, "reopen", true}, {GitLab, "merge", false}, {GitLab, "close", false},
		{Bitbucket, "created", true}, {Bitbucket, "updated", true}, {Bitbucket, "fulfilled", false}, {Bitbucket, "rejected", false},
		{BitbucketServer, "opened", true}, {BitbucketServer, "from_ref_updated", true}, {BitbucketServer, "merged", false},
		{BitbucketServer, "declined", false},
	} {
		if got := HeadUpdated(tc.k, tc.action); got != tc.want {
			t.Errorf("HeadUpdated(%s, %q) = %v, want %v", tc.k, tc.action, got, tc.want)
		}
	}
}

func TestPullRequestRef(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		n    int64
		want string
	}{
		{GitHub, 7, "refs/pull/7/head"}, {Gitea, 12, "refs/pull/12/head"}, {GitLab, 3, "refs/merge-requests/3/head"},
		{BitbucketServer, 9, "refs/pull-requests/9/from"}, {Bitbucket, 4, ""}, {GitHub, 0, ""}, {GitHub, -1, ""},
		{GitHub, 9_999_999_999, "refs/pull/9999999999/head"}, {GitHub, 10_000_000_000, ""},
	} {
		if got := PullRequestRef(tc.k, tc.n); got != tc.want {
			t.Errorf("PullRequestRef(%s, %d) = %q, want %q", tc.k, tc.n, got, tc.want)
		}
	}
}

// TestPullRequestFromFork: a pull request is from the target repository
// itself only when the forge says so; a fork's, or one whose head
// repository is not given, is not.
func TestPullRequestFromFork(t *testing.T) {
	edit := func(name string, change func(map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(readTestdata(t, name), &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	obj := func(m map[string]any, path ...string) map[string]any {
		for _, k := range path {
			m = m[k].(map[string]any)
		}
		return m
	}
	for _, tc := range []struct {
		name string
		k    Kind
		h    http.Header
		body []byte
		want bool
	}{
		{"github, same repository", GitHub, githubHeaders("pull_request"), readTestdata(t, "github_pull_request.json"), true},
		{"github, fork", GitHub, githubHeaders("pull_request"), edit("github_pull_request.json", func(m map[string]any) {
			obj(m, "pull_request", "head", "repo")["full_name"] = "mallory/Hello-World"
		}), false},
		{"github, head repository not given", GitHub, githubHeaders("pull_request"), edit("github_pull_request.json", func(m map[string]any) {
			delete(obj(m, "pull_request", "head"), "repo")
		}), false},
		{"gitlab, fork", GitLab, fuzzHeaders(GitLab, "Merge Request Hook"), edit("gitlab_merge_request.json", func(m map[string]any) {
			obj(m, "object_attributes")["source_project_id"] = 99
		}), false},
		{"gitlab, project ids not given", GitLab, fuzzHeaders(GitLab, "Merge Request Hook"), edit("gitlab_merge_request.json", func(m map[string]any) {
			delete(obj(m, "object_attributes"), "source_project_id")
			delete(obj(m, "object_attributes"), "target_project_id")
		}), false},
		{"bitbucket data center, fork", BitbucketServer, fuzzHeaders(BitbucketServer, "pr:opened"), edit("bitbucket_server_pr_opened.json", func(m map[string]any) {
			obj(m, "pullRequest", "fromRef", "repository", "project")["key"] = "~MALLORY"
		}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Parse(tc.k, tc.h, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if ev.PullRequest == nil || ev.PullRequest.SameRepository != tc.want {
				t.Errorf("pull request %+v; want SameRepository %v", ev.PullRequest, tc.want)
			}
		})
	}
}
