package forgestatus

import (
	"context"
	"net/http"
	"strings"
)

// glCommitStatus is the body of GitLab's commit status request.
type glCommitStatus struct {
	State       string `json:"state"`
	Ref         string `json:"ref,omitempty"`
	Name        string `json:"name"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
}

// sendGitLab sets the commit's status: POST /projects/:id/statuses/:sha,
// the project named by its URL-encoded path.
func (c *Client) sendGitLab(ctx context.Context, t target, r Report) error {
	return c.do(ctx, r, call{
		op: "create commit status", method: http.MethodPost,
		url: t.url(nil, "projects", strings.Join(t.repo, "/"), "statuses", t.sha),
		body: glCommitStatus{
			State:       ForgeState(r.Forge, "", r.State),
			Ref:         shortRef(r.Ref),
			Name:        r.context(),
			TargetURL:   r.TargetURL,
			Description: r.description(),
		},
	})
}

// shortRef is a branch or tag name without refs/heads/ or refs/tags/.
func shortRef(ref string) string {
	if s, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return s
	}
	return strings.TrimPrefix(ref, "refs/tags/")
}
