package forge

import "fmt"

// HeadUpdated reports whether a pull request event from forge k means the
// pull request was opened, reopened or given new commits: the events after
// which its head is worth deploying to a preview environment. Closing,
// merging, editing the title or reviewing are not.
func HeadUpdated(k Kind, action string) bool {
	switch k {
	case GitHub:
		return action == "opened" || action == "synchronize" || action == "reopened"
	case Gitea:
		// Gitea says synchronized; Forgejo, like GitHub, synchronize.
		return action == "opened" || action == "synchronized" || action == "synchronize" || action == "reopened"
	case GitLab:
		// update is also sent for a title or label change: the head is
		// then unchanged, and deploying it again is skipped as current.
		return action == "open" || action == "update" || action == "reopen"
	case Bitbucket:
		return action == "created" || action == "updated"
	case BitbucketServer:
		return action == "opened" || action == "from_ref_updated" || action == "reopened"
	}
	return false
}

// PullRequestRef is the ref under which forge k keeps pull request n's head
// in the target repository, which is where a fork's commits can be fetched
// from; "" when the forge keeps none (Bitbucket Cloud).
func PullRequestRef(k Kind, n int64) string {
	// Ten digits at most, as git.PullRequestRefOf accepts: no forge
	// numbers pull requests beyond that.
	if n <= 0 || n > 9_999_999_999 {
		return ""
	}
	switch k {
	case GitHub, Gitea:
		return fmt.Sprintf("refs/pull/%d/head", n)
	case GitLab:
		return fmt.Sprintf("refs/merge-requests/%d/head", n)
	case BitbucketServer:
		return fmt.Sprintf("refs/pull-requests/%d/from", n)
	}
	return ""
}
