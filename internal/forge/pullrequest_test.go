package forge

import "testing"

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
	} {
		if got := PullRequestRef(tc.k, tc.n); got != tc.want {
			t.Errorf("PullRequestRef(%s, %d) = %q, want %q", tc.k, tc.n, got, tc.want)
		}
	}
}
