package forgestatus

import (
	"context"
	"net/http"
)

// gtCommitStatus is the body of Gitea's and Forgejo's commit status request.
type gtCommitStatus struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context"`
}

// sendGitea sets the commit's status: POST /repos/{owner}/{repo}/statuses/{sha}.
func (c *Client) sendGitea(ctx context.Context, t target, r Report) error {
	return c.do(ctx, r, call{
		op: "create commit status", method: http.MethodPost,
		url: t.url(nil, "repos", t.repo[0], t.repo[1], "statuses", t.sha),
		body: gtCommitStatus{
			State:       ForgeState(r.Forge, "", r.State),
			TargetURL:   r.TargetURL,
			Description: r.description(),
			Context:     r.context(),
		},
	})
}
