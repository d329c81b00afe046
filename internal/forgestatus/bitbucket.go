package forgestatus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
)

// bbBuildStatus is the body of both Bitbucket products' build status
// request: Cloud reads refname, Data Center ref.
type bbBuildStatus struct {
	Key         string `json:"key"`
	State       string `json:"state"`
	Name        string `json:"name"`
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
	Refname     string `json:"refname,omitempty"`
	Ref         string `json:"ref,omitempty"`
}

// maxKey bounds a build status key: Bitbucket Cloud answers 400 "key:
// Ensure this value has at most 40 characters" to a longer one.
const maxKey = 40

// maxName bounds a build status name (255 characters on both products).
const maxName = 255

// buildKey is the report's context as a Bitbucket key: a later status with
// the same key replaces the earlier one. A long context is shortened with a
// hash of itself, so that two environments never share a key.
func buildKey(ctx string) string {
	if len(ctx) <= maxKey {
		return ctx
	}
	sum := sha256.Sum256([]byte(ctx))
	return ctx[:maxKey-13] + "-" + hex.EncodeToString(sum[:6])
}

// sendBitbucket sets a Bitbucket Cloud build status:
// POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build.
func (c *Client) sendBitbucket(ctx context.Context, t target, r Report) error {
	link := r.TargetURL
	if link == "" {
		link = "https://bitbucket.org/" + url.PathEscape(t.repo[0]) + "/" + url.PathEscape(t.repo[1]) + "/commits/" + t.sha
	}
	return c.do(ctx, r, call{
		op: "create build status", method: http.MethodPost,
		url: t.url(nil, "repositories", t.repo[0], t.repo[1], "commit", t.sha, "statuses", "build"),
		body: bbBuildStatus{
			Key: buildKey(r.context()), State: ForgeState(r.Forge, "", r.State), Name: truncate(r.context(), maxName),
			URL: link, Description: r.description(), Refname: branchName(r.Ref),
		},
	})
}

// sendBitbucketServer sets a Bitbucket Data Center build status:
// POST /rest/api/latest/projects/{projectKey}/repos/{repositorySlug}/commits/{commitId}/builds.
func (c *Client) sendBitbucketServer(ctx context.Context, t target, r Report) error {
	link := r.TargetURL
	if link == "" {
		web := *t.base
		web.Path = strings.TrimSuffix(strings.TrimSuffix(web.Path, "/rest/api/latest"), "/rest/api/1.0")
		web.RawPath = ""
		link = (&target{base: &web}).url(nil, "projects", t.repo[0], "repos", t.repo[1], "commits", t.sha)
	}
	ref := r.Ref
	if ref != "" && !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	return c.do(ctx, r, call{
		op: "create build status", method: http.MethodPost,
		url: t.url(nil, "projects", t.repo[0], "repos", t.repo[1], "commits", t.sha, "builds"),
		body: bbBuildStatus{
			Key: buildKey(r.context()), State: ForgeState(r.Forge, "", r.State), Name: truncate(r.context(), maxName),
			URL: link, Description: r.description(), Ref: ref,
		},
	})
}

// branchName is a ref without refs/heads/ or refs/tags/.
func branchName(ref string) string {
	s, _ := shortRef(ref)
	return s
}
