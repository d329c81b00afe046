package forgestatus

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
)

// The JSON bodies of GitHub's requests (docs/forge-status.md).
type (
	ghDeployment struct {
		Ref                  string         `json:"ref"`
		Task                 string         `json:"task"`
		AutoMerge            bool           `json:"auto_merge"`
		RequiredContexts     []string       `json:"required_contexts"`
		Payload              map[string]any `json:"payload,omitempty"`
		Environment          string         `json:"environment"`
		Description          string         `json:"description,omitempty"`
		TransientEnvironment bool           `json:"transient_environment,omitempty"`
	}
	ghDeploymentStatus struct {
		State          string `json:"state"`
		LogURL         string `json:"log_url,omitempty"`
		EnvironmentURL string `json:"environment_url,omitempty"`
		Description    string `json:"description,omitempty"`
	}
	ghCommitStatus struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url,omitempty"`
		Description string `json:"description,omitempty"`
		Context     string `json:"context"`
	}
	ghDeploymentRef struct {
		ID      int64           `json:"id"`
		Payload json.RawMessage `json:"payload"`
	}
)

// payloadKey names fraisier's deployment id in a GitHub deployment's
// payload, where a later report finds it.
const payloadKey = "fraisier_deployment_id"

// sendGitHub reports through a deployment and its statuses, or through a
// commit status once GitHub refuses deployments to the token (403 or 404
// on the deployments API). The Result carries the deployment's id even
// when the status that follows fails, so that a retry does not create a
// second deployment.
func (c *Client) sendGitHub(ctx context.Context, t target, r Report) (Result, error) {
	if r.Via != ViaCommitStatus {
		id, err := c.githubDeployment(ctx, t, r)
		if err == nil {
			err = c.do(ctx, r, call{
				op: "create deployment status", method: http.MethodPost,
				url: t.url(nil, "repos", t.repo[0], t.repo[1], "deployments", strconv.FormatInt(id, 10), "statuses"),
				body: ghDeploymentStatus{
					State:          ForgeState(r.Forge, ViaDeployment, r.State),
					LogURL:         r.TargetURL,
					EnvironmentURL: r.EnvironmentURL,
					Description:    r.description(),
				},
			})
			if err == nil {
				return Result{ForgeDeploymentID: id, Via: ViaDeployment}, nil
			}
		}
		if !refused(err) {
			return Result{ForgeDeploymentID: id}, err
		}
	}
	err := c.do(ctx, r, call{
		op: "create commit status", method: http.MethodPost,
		url: t.url(nil, "repos", t.repo[0], t.repo[1], "statuses", t.sha),
		body: ghCommitStatus{
			State:       ForgeState(r.Forge, ViaCommitStatus, r.State),
			TargetURL:   r.TargetURL,
			Description: r.description(),
			Context:     r.context(),
		},
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Via: ViaCommitStatus}, nil
}

// refused reports whether GitHub refused the deployments API to the
// token: 403 (not a rate limit) or 404, as GitHub answers for a resource
// a token may not see.
func refused(err error) bool {
	var e *Error
	return errors.As(err, &e) && !e.Retryable && (e.Status == http.StatusForbidden || e.Status == http.StatusNotFound)
}

// githubDeployment returns the id of the GitHub deployment the report
// belongs to: the one a Result gave, else the one an earlier report made
// for the same fraisier deployment (found by its payload), else a new one.
func (c *Client) githubDeployment(ctx context.Context, t target, r Report) (int64, error) {
	if r.ForgeDeploymentID != 0 {
		return r.ForgeDeploymentID, nil
	}
	deployments := t.url(nil, "repos", t.repo[0], t.repo[1], "deployments")
	if r.DeploymentID != 0 {
		var list []ghDeploymentRef
		q := url.Values{"sha": {t.sha}, "environment": {r.Environment}, "per_page": {"100"}}
		err := c.do(ctx, r, call{op: "list deployments", method: http.MethodGet,
			url: t.url(q, "repos", t.repo[0], t.repo[1], "deployments"), out: &list})
		if err != nil {
			return 0, err
		}
		for _, d := range list {
			if payloadID(d.Payload) == r.DeploymentID && d.ID != 0 {
				return d.ID, nil
			}
		}
	}
	body := ghDeployment{
		Ref: t.sha, Task: "deploy", AutoMerge: false, RequiredContexts: []string{},
		Environment: r.Environment, Description: r.description(), TransientEnvironment: r.Transient,
	}
	if r.DeploymentID != 0 {
		body.Payload = map[string]any{payloadKey: r.DeploymentID}
	}
	var created ghDeploymentRef
	if err := c.do(ctx, r, call{op: "create deployment", method: http.MethodPost, url: deployments, body: body, out: &created}); err != nil {
		return 0, err
	}
	if created.ID == 0 {
		return 0, &Error{Forge: r.Forge, Op: "create deployment", Message: "GitHub answered without a deployment id"}
	}
	return created.ID, nil
}

// payloadID reads fraisier's deployment id from a deployment's payload,
// an object or (as older deployments hold it) a string of JSON.
func payloadID(raw json.RawMessage) int64 {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	var p map[string]json.RawMessage
	var n int64
	if json.Unmarshal(raw, &p) != nil || json.Unmarshal(p[payloadKey], &n) != nil {
		return 0
	}
	return n
}
