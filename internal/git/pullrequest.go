package git

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// pullRequestRefRE matches the refs under which forges keep the head of a
// pull request in the target repository: GitHub's and Gitea's
// refs/pull/N/head, GitLab's refs/merge-requests/N/head and Bitbucket Data
// Center's refs/pull-requests/N/from.
var pullRequestRefRE = regexp.MustCompile(`^refs/(pull/[1-9][0-9]{0,9}/head|merge-requests/[1-9][0-9]{0,9}/head|pull-requests/[1-9][0-9]{0,9}/from)$`)

// PullRequestRefOf returns the pull request head ref that s names, or "".
// s may be followed by "@<commit>", as a queued deployment's requested
// ref is.
func PullRequestRefOf(s string) string {
	ref, _, _ := strings.Cut(s, "@")
	if pullRequestRefRE.MatchString(ref) {
		return ref
	}
	return ""
}

// mirrorName is where the mirror keeps a fetched pull request head: apart
// from the branches and tags that Fetch mirrors (and prunes).
func mirrorName(prRef string) string {
	return "refs/fraisier/" + strings.TrimPrefix(prRef, "refs/")
}

// FetchRef brings one pull request head (see PullRequestRefOf) into the
// mirror, beside the branches and tags Fetch brings: a fork's commits are
// reachable in the target repository only through it.
func (r *Repo) FetchRef(ctx context.Context, ref string) error {
	if ref == "" || PullRequestRefOf(ref) != ref {
		return fmt.Errorf("fetch %q: not a pull request head ref: %w", clip(ref), ErrInvalid)
	}
	unlock, err := lockDir(ctx, r.dir, true)
	if err != nil {
		return fmt.Errorf("fetch %s from %s: %w", ref, redact(r.remote), err)
	}
	defer unlock()
	if err := fetch(ctx, r.git(), r.remote, []string{"+" + ref + ":" + mirrorName(ref)}); err != nil {
		return fmt.Errorf("fetch %s from %s: %w", ref, redact(r.remote), err)
	}
	return nil
}
