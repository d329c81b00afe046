package forgestatus

import (
	"context"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/fraiseql/fraisier/internal/forge"
)

// State is a fraisier deployment status, as the store names it, that a
// report carries to the forge.
type State string

// The states a report may carry: the deployment's life, queued to terminal.
const (
	Queued         State = "queued"
	Running        State = "running"
	Succeeded      State = "succeeded"
	Failed         State = "failed"
	RolledBack     State = "rolled_back"
	RollbackFailed State = "rollback_failed"
	Interrupted    State = "interrupted"
	Skipped        State = "skipped"
	Superseded     State = "superseded"
)

// States returns every state a report may carry, queued first.
func States() []State {
	return []State{Queued, Running, Succeeded, Failed, RolledBack, RollbackFailed, Interrupted, Skipped, Superseded}
}

// Final reports whether s ends a deployment: no report follows it.
func (s State) Final() bool { return s != Queued && s != Running }

// Via values: how a GitHub or GitLab report was made.
const (
	ViaDeployment   = "deployment"
	ViaCommitStatus = "commit_status"
)

// MaxDescription bounds a description, in characters: GitHub's limit for
// deployment statuses, and short enough for every forge's list view.
const MaxDescription = 140

// Report is one state of one deployment of a commit, to be shown on the
// forge. Its JSON form is what an outbox stores: it leaves out APIURL and
// Token, which the sender takes from the configuration when it sends.
type Report struct {
	Forge forge.Kind `json:"forge"`
	// Repository names the repository on its forge: owner/name (GitHub,
	// Gitea, Bitbucket Cloud's workspace/slug), group/.../project (GitLab),
	// PROJECT/slug (Bitbucket Data Center). A clone URL is accepted too.
	Repository string `json:"repository"`
	// SHA is the commit deployed (for a pull request preview, the head).
	SHA string `json:"sha"`
	// Ref is the branch or tag deployed (main, refs/heads/main or
	// refs/tags/v1): GitLab records a deployment in its environment only
	// with a ref; Bitbucket shows it beside the build status.
	Ref         string `json:"ref,omitempty"`
	Environment string `json:"environment"`
	// Context names the status on the forge; default "fraisier/<environment>".
	// Reports of one deployment must share it: the forge replaces a status
	// of the same context.
	Context string `json:"context,omitempty"`
	State   State  `json:"state"`
	// TargetURL links to the deployment's log or page. Bitbucket requires a
	// URL: without one, the commit's own page on the forge is sent.
	TargetURL string `json:"target_url,omitempty"`
	// EnvironmentURL is where the deployed environment answers (GitHub only).
	EnvironmentURL string `json:"environment_url,omitempty"`
	// Description is shown beside the state; default a sentence per state.
	// It is cut to MaxDescription characters.
	Description string `json:"description,omitempty"`
	// Transient marks a pull request preview's environment (GitHub).
	Transient bool `json:"transient,omitempty"`
	// DeploymentID is fraisier's id of the deployment. GitHub's deployment
	// carries it, so that a report without ForgeDeploymentID finds the
	// deployment an earlier report created instead of making another.
	DeploymentID int64 `json:"deployment_id,omitempty"`
	// ForgeDeploymentID is GitHub's or GitLab's id of the deployment, from
	// a Result.
	ForgeDeploymentID int64 `json:"forge_deployment_id,omitempty"`
	// Via is ViaCommitStatus once GitHub or GitLab refused deployments to
	// the token, so that later reports go straight to commit statuses.
	Via string `json:"via,omitempty"`

	// APIURL is the forge's API base (see DefaultAPIURL); empty for the
	// default. Never stored.
	APIURL string `json:"-"`
	// Token authenticates the report. Never stored, logged or put in an
	// error. For Bitbucket, "user:secret" is sent as basic authentication.
	Token string `json:"-"`
}

// String describes the report without its token.
func (r Report) String() string {
	return fmt.Sprintf("%s %s@%.12s %s=%s", r.Forge, shownRepository(r.Repository), r.SHA, r.Environment, r.State)
}

// Result is what a report left on the forge that the next report of the
// same deployment needs.
type Result struct {
	// ForgeDeploymentID is GitHub's or GitLab's deployment id (0
	// elsewhere).
	ForgeDeploymentID int64 `json:"forge_deployment_id,omitempty"`
	// Via says how a GitHub or GitLab report was made (ViaDeployment or
	// ViaCommitStatus); empty elsewhere.
	Via string `json:"via,omitempty"`
}

// Remember copies into r what res says the next report needs.
func (r *Report) Remember(res Result) {
	if res.ForgeDeploymentID != 0 {
		r.ForgeDeploymentID = res.ForgeDeploymentID
	}
	if res.Via != "" {
		r.Via = res.Via
	}
}

// DefaultAPIURL is the API base a forge uses when api_url is not set:
// the public service's, or "" for a forge that has none (Gitea, Bitbucket
// Data Center), which then requires api_url.
func DefaultAPIURL(k forge.Kind) string {
	switch k {
	case forge.GitHub:
		return "https://api.github.com"
	case forge.GitLab:
		return "https://gitlab.com"
	case forge.Bitbucket:
		return "https://api.bitbucket.org"
	}
	return ""
}

// Client sends reports. The zero value is not usable: use New.
type Client struct {
	http      *http.Client
	userAgent string
	now       func() time.Time
}

// DefaultTimeout bounds each request of a report.
const DefaultTimeout = 30 * time.Second

// New returns a client identified by userAgent (fraisier/<version>). It
// never follows a redirect: a token sent in a header would follow it to
// another host.
func New(userAgent string) *Client {
	hc := &http.Client{
		Timeout: DefaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	if userAgent == "" {
		userAgent = "fraisier"
	}
	return &Client{http: hc, userAgent: userAgent, now: time.Now}
}

// Send reports r on its forge. On success the Result holds what the next
// report of the same deployment needs (see Report.Remember). Every error is
// an *Error.
func (c *Client) Send(ctx context.Context, r Report) (Result, error) {
	t, err := c.target(r)
	if err != nil {
		return Result{}, err
	}
	switch r.Forge {
	case forge.GitHub:
		return c.sendGitHub(ctx, t, r)
	case forge.GitLab:
		return c.sendGitLab(ctx, t, r)
	case forge.Gitea:
		return Result{}, c.sendGitea(ctx, t, r)
	case forge.Bitbucket:
		return Result{}, c.sendBitbucket(ctx, t, r)
	default: // BitbucketServer; target refused any other forge
		return Result{}, c.sendBitbucketServer(ctx, t, r)
	}
}

// context is the status's name on the forge.
func (r Report) context() string {
	if r.Context != "" {
		return r.Context
	}
	return "fraisier/" + r.Environment
}

// description is the report's description, or the default for its state,
// cut to MaxDescription characters.
func (r Report) description() string {
	d := r.Description
	if d == "" {
		d = defaultDescription(r.State, r.Environment)
	}
	return truncate(d, MaxDescription)
}

func defaultDescription(s State, env string) string {
	switch s {
	case Queued:
		return "queued for " + env
	case Running:
		return "deploying to " + env
	case Succeeded:
		return "deployed to " + env
	case Failed:
		return "deploy failed; " + env + " still runs the previous release"
	case RolledBack:
		return "rolled back; " + env + " runs the previous release"
	case RollbackFailed:
		return "rollback failed; " + env + " needs an operator"
	case Interrupted:
		return "deploy interrupted; check " + env
	case Skipped:
		return env + " already runs this commit"
	case Superseded:
		return "superseded by a newer commit"
	}
	return string(s)
}

// truncate cuts s to at most n characters, on a character boundary, and
// drops control characters.
func truncate(s string, n int) string {
	out := make([]rune, 0, min(len(s), n))
	for _, c := range s {
		if len(out) == n {
			break
		}
		if c == utf8.RuneError || c < 0x20 || c == 0x7f {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}
