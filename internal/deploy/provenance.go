package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/store"
)

// ErrRefused reports (wrapped, with the reason) a queued deployment that
// deployed nothing because its commit is not one a push may deploy: not the
// pushed ref's tip after the fetch, or not a descendant of what runs when
// that was deployed from the same ref. A delivery replayed under a new id,
// or one that arrives after newer pushes, ends this way; a deliberate
// downgrade is fraisier deploy --ref or fraisier rollback.
var ErrRefused = errors.New("refused")

// pushSource is what verifying a push needs of the mirror, besides Source.
type pushSource interface {
	// RefCommit is the commit the full ref name leads to, and only that
	// ref (git.ErrRefNotFound when it is gone).
	RefCommit(ctx context.Context, ref string) (string, error)
	IsAncestor(ctx context.Context, ancestor, descendant string) (bool, error)
}

// verifyPush runs, for a deployment taken from the queue, the step that
// decides whether the fetched commit may deploy at all. stop is true when
// the flow must end here, with status and err.
func (d *deployment) verifyPush(ctx context.Context, timeout time.Duration) (stop bool, status store.Status, err error) {
	if !d.queued {
		return false, "", nil
	}
	var refusal error
	stepErr := d.rec.step(ctx, "verify push", timeout, func(ctx context.Context, out io.Writer) (string, error) {
		detail, why, err := d.checkPushed(ctx)
		if why != "" {
			refusal = fmt.Errorf("%w: %s", ErrRefused, why)
			return "", skipStep(refusal.Error())
		}
		return detail, err
	})
	cause := stepErr
	if cause == nil {
		cause = refusal
	}
	switch {
	case cause == nil:
		return false, "", nil
	case d.done.current:
		// An unfinished switch taken over (adoptUnrecorded) is undone
		// whatever stops this deployment.
		status, err := d.compensate(cause)
		return true, status, err
	case stepErr != nil:
		return true, store.StatusFailed, stepErr
	}
	return true, store.StatusSkipped, refusal
}

// checkPushed says why the commit a queued deployment fetched may not
// deploy ("" when it may), or what it verified. A push deploys exactly
// its commit, and only while that commit is the pushed ref's tip and,
// when what runs was deployed from that same ref, descends from it: a
// replayed or late delivery must never take the service back.
func (d *deployment) checkPushed(ctx context.Context) (detail, refusal string, err error) {
	src, ok := d.src.(pushSource)
	if !ok {
		return "", "", errors.New("verify push: the source cannot read refs and ancestry")
	}
	var checked []string
	if by := d.req.TipVerifiedBy; by != "" && d.pushedRef != "" {
		checked = append(checked, "tip of "+d.pushedRef+" when "+by+" deployed it")
	} else if ref := d.pushedRef; ref != "" {
		tip, err := src.RefCommit(ctx, ref)
		switch {
		case errors.Is(err, git.ErrRefNotFound):
			return "", fmt.Sprintf("%s no longer exists after the fetch: it was deleted after the push of %s", ref, short(d.sha)), nil
		case err != nil:
			return "", "", err
		case tip != d.sha:
			return "", fmt.Sprintf("%s is not the tip of %s after the fetch (the tip is %s): a newer push deploys that one, or this delivery is a replay",
				short(d.sha), ref, short(tip)), nil
		}
		checked = append(checked, "tip of "+ref)
	}
	if d.fetchRef != "" || d.oldSHA == "" || d.oldSHA == d.sha {
		// A pull request preview may follow one pull request after
		// another, or the same one rebased: none descends from the last.
		return strings.Join(checked, "; "), "", nil
	}
	// What runs was deployed from another ref (a pull request, another
	// branch of a glob, a commit named by hand): a push of this ref need
	// not descend from it, and the tip rule alone applies. A push that
	// names no ref has only this rule.
	ran, err := d.ranFrom(ctx)
	if err != nil {
		return "", "", err
	}
	if d.pushedRef != "" && ran != d.pushedRef {
		return strings.Join(checked, "; "), "", nil
	}
	descends, err := src.IsAncestor(ctx, d.oldSHA, d.sha)
	switch {
	case errors.Is(err, git.ErrRefNotFound):
		return "", fmt.Sprintf("%s, which runs now, is not in the repository's history any more, so %s cannot be shown to follow it: deploy it deliberately with %s",
			short(d.oldSHA), short(d.sha), d.byHand()), nil
	case err != nil:
		return "", "", err
	case !descends && d.pushedRef == "":
		return "", fmt.Sprintf("%s does not descend from %s, which runs now: a replayed delivery, or a ref moved back by a force-push; deploy it deliberately with %s",
			short(d.sha), short(d.oldSHA), d.byHand()), nil
	case !descends:
		return "", fmt.Sprintf("%s does not descend from %s, which runs now and was deployed from %s too: a replayed delivery, or %s moved back by a force-push; deploy it deliberately with %s",
			short(d.sha), short(d.oldSHA), ran, ran, d.byHand()), nil
	}
	checked = append(checked, "descends from "+short(d.oldSHA))
	return strings.Join(checked, "; "), "", nil
}

// ranFrom is the ref the commit that runs was deployed from, as the
// records tell it, or "" when they do not: the deployment that made the
// current release (for an inplace checkout, the last deployment that
// succeeded, when it left the commit that runs).
func (d *deployment) ranFrom(ctx context.Context) (string, error) {
	if d.inplace() {
		ds, err := d.e.Store.Deployments(ctx, store.DeploymentFilter{Fraise: d.t.Fraise, Environment: d.t.Environment, Status: store.StatusSucceeded, Limit: 1})
		if err != nil {
			return "", fmt.Errorf("find the deployment of %s: %w", short(d.oldSHA), err)
		}
		if len(ds) == 0 || ds[0].NewSHA != d.oldSHA {
			return "", nil
		}
		return requestedRefOf(ds[0], d.env.Branch), nil
	}
	rel, err := d.e.Store.Release(ctx, d.t, d.prevRelease)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("find the deployment of release %s: %w", d.prevRelease, err)
	}
	made := rel.DeploymentID
	if made == 0 {
		return "", nil
	}
	dep, err := d.e.Store.Deployment(ctx, made)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("find the deployment of release %s: %w", d.prevRelease, err)
	}
	return requestedRefOf(dep, d.env.Branch), nil
}

// requestedRefOf is the full ref a deployment was asked for, or "" when it
// named none: a queued push or deploy API request names its ref
// ("refs/heads/main@0123456789ab"), a deployment by hand of the
// environment's branch (the default) counts as that branch, and one of a
// refs/ name as that ref; a commit, a tag's short name or another
// branch's leave it unknown.
func requestedRefOf(dep store.Deployment, branch string) string {
	switch {
	case dep.Trigger == store.TriggerWebhook || dep.Trigger == store.TriggerRequeue || dep.Trigger == store.TriggerAPI:
		return store.QueuedRef(dep.RequestedRef)
	case strings.HasPrefix(dep.RequestedRef, "refs/"):
		return dep.RequestedRef
	case dep.RequestedRef == branch && branch != "" && !strings.ContainsAny(branch, `*?[\`):
		return "refs/heads/" + branch
	}
	return ""
}

// byHand is how an operator deploys this deployment's commit deliberately.
func (d *deployment) byHand() string {
	return fmt.Sprintf("fraisier deploy %s %s --ref %s, or return with fraisier rollback", d.t.Fraise, d.t.Environment, d.sha)
}
