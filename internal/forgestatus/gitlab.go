package forgestatus

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The JSON bodies of GitLab's requests (docs/forge-status.md).
type (
	glCommitStatus struct {
		State       string `json:"state"`
		Ref         string `json:"ref,omitempty"`
		Name        string `json:"name"`
		TargetURL   string `json:"target_url,omitempty"`
		Description string `json:"description,omitempty"`
	}
	glDeployment struct {
		Environment string `json:"environment"`
		SHA         string `json:"sha"`
		Ref         string `json:"ref"`
		Tag         bool   `json:"tag"`
		Status      string `json:"status"`
	}
	glDeploymentUpdate struct {
		Status string `json:"status"`
	}
	glDeploymentRef struct {
		ID     int64  `json:"id"`
		SHA    string `json:"sha"`
		Status string `json:"status"`
	}
)

// sendGitLab sets the commit's status (POST /projects/:id/statuses/:sha,
// the project named by its URL-encoded path) and, when the report names
// its ref, records the deployment in the GitLab environment. A token that
// may not create deployments (403, 404) still sets the commit status, and
// the Result says so, so that later reports skip the deployment.
func (c *Client) sendGitLab(ctx context.Context, t target, r Report) (Result, error) {
	var res Result
	if r.Via != ViaCommitStatus && r.Ref != "" {
		id, err := c.gitlabDeployment(ctx, t, r)
		switch {
		case err == nil:
			res = Result{ForgeDeploymentID: id, Via: ViaDeployment}
		case refused(err):
			res = Result{Via: ViaCommitStatus}
		default:
			return Result{ForgeDeploymentID: id}, err
		}
	}
	ref, _ := shortRef(r.Ref)
	err := c.do(ctx, r, call{
		op: "create commit status", method: http.MethodPost,
		url: t.url(nil, "projects", t.project(), "statuses", t.sha),
		body: glCommitStatus{
			State:       ForgeState(r.Forge, "", r.State),
			Ref:         ref,
			Name:        r.context(),
			TargetURL:   r.TargetURL,
			Description: r.description(),
		},
	})
	return res, err
}

// project is GitLab's project id: the full path, one URL segment.
func (t target) project() string { return strings.Join(t.repo, "/") }

// gitlabDeployment brings the report's GitLab deployment to its state: the
// one a Result gave, else the newest unfinished one of the same commit in
// the environment (an earlier report whose answer was lost), else a new one.
func (c *Client) gitlabDeployment(ctx context.Context, t target, r Report) (int64, error) {
	status := ForgeState(r.Forge, ViaDeployment, r.State)
	id := r.ForgeDeploymentID
	if id == 0 {
		var list []glDeploymentRef
		q := url.Values{"environment": {r.Environment}, "order_by": {"id"}, "sort": {"desc"}, "per_page": {"20"}}
		if err := c.do(ctx, r, call{op: "list deployments", method: http.MethodGet,
			url: t.url(q, "projects", t.project(), "deployments"), out: &list}); err != nil {
			return 0, err
		}
		for _, d := range list {
			if d.SHA == t.sha && (d.Status == "created" || d.Status == "running") {
				id = d.ID
				if d.Status == status {
					return id, nil
				}
				break
			}
		}
	}
	if id == 0 {
		ref, tag := shortRef(r.Ref)
		var created glDeploymentRef
		err := c.do(ctx, r, call{op: "create deployment", method: http.MethodPost,
			url:  t.url(nil, "projects", t.project(), "deployments"),
			body: glDeployment{Environment: r.Environment, SHA: t.sha, Ref: ref, Tag: tag, Status: status}, out: &created})
		if err == nil && created.ID == 0 {
			err = &Error{Forge: r.Forge, Op: "create deployment", Message: "GitLab answered without a deployment id"}
		}
		return created.ID, err
	}
	return id, c.updateGitLabDeployment(ctx, t, r, id, status)
}

// updateGitLabDeployment sets a deployment's status. A refused change to
// the status the deployment already has (a retry of a report whose answer
// was lost) is a success.
func (c *Client) updateGitLabDeployment(ctx context.Context, t target, r Report, id int64, status string) error {
	one := t.url(nil, "projects", t.project(), "deployments", strconv.FormatInt(id, 10))
	err := c.do(ctx, r, call{op: "update deployment", method: http.MethodPut, url: one, body: glDeploymentUpdate{Status: status}})
	var e *Error
	if !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusUnprocessableEntity) {
		return err
	}
	var d glDeploymentRef
	if c.do(ctx, r, call{op: "get deployment", method: http.MethodGet, url: one, out: &d}) == nil && d.Status == status {
		return nil
	}
	return err
}

// shortRef is a branch or tag name without refs/heads/ or refs/tags/, and
// whether it names a tag.
func shortRef(ref string) (string, bool) {
	if s, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return s, false
	}
	if s, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return s, true
	}
	return ref, false
}
