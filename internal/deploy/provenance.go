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
// pushed ref's tip after the fetch, or not a descendant of what runs. A
// delivery replayed under a new id, or one that arrives after newer pushes,
// ends this way; a deliberate downgrade is fraisier deploy --ref or
// fraisier rollback.
var ErrRefused = errors.New("refused")

// pushSource is what verifying a push needs of the mirror, besides Source.
type pushSource interface {
	// RefCommit is the commit the full ref name leads to, and only that
	// ref (git.ErrRefNotFound when it is gone).
	RefCommit(ctx context.Context, ref string) (string, error)
	IsAncestor(ctx context.Context, ancestor, descendant string) (bool, error)
}

// queuedRef is the ref a queued request names in its requested ref
// ("refs/heads/main@0123456789ab"), or "" when it names only a commit.
func queuedRef(requested string) string {
	if i := strings.LastIndexByte(requested, '@'); i > 0 {
		return requested[:i]
	}
	return ""
}

// verifyPush runs, for a deployment taken from the queue, the step that
// decides whether the fetched commit may deploy at all. stop is true when
// the flow must end here, with status and err.
func (d *deployment) verifyPush(ctx context.Context, timeout time.Duration) (stop bool, status string, err error) {
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
	case d.switched:
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
// its commit, and only while that commit is the pushed ref's tip and
// descends from the commit that runs: a replayed or late delivery must
// never take the service back.
func (d *deployment) checkPushed(ctx context.Context) (detail, refusal string, err error) {
	src, ok := d.src.(pushSource)
	if !ok {
		return "", "", errors.New("verify push: the source cannot read refs and ancestry")
	}
	var checked []string
	if ref := d.pushedRef; ref != "" {
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
	// A pull request preview may follow one pull request after another:
	// none descends from the last.
	if d.fetchRef == "" && d.oldSHA != "" && d.oldSHA != d.sha {
		ok, err := src.IsAncestor(ctx, d.oldSHA, d.sha)
		switch {
		case errors.Is(err, git.ErrRefNotFound):
			return "", fmt.Sprintf("%s, which runs now, is not in the repository's history any more, so %s cannot be shown to follow it: deploy it deliberately with %s",
				short(d.oldSHA), short(d.sha), d.byHand()), nil
		case err != nil:
			return "", "", err
		case !ok:
			return "", fmt.Sprintf("%s does not descend from %s, which runs now: a replayed delivery, or a ref moved back by a force-push; deploy it deliberately with %s",
				short(d.sha), short(d.oldSHA), d.byHand()), nil
		}
		checked = append(checked, "descends from "+short(d.oldSHA))
	}
	return strings.Join(checked, "; "), "", nil
}

// byHand is how an operator deploys this deployment's commit deliberately.
func (d *deployment) byHand() string {
	return fmt.Sprintf("fraisier deploy %s %s --ref %s, or return with fraisier rollback", d.t.Fraise, d.t.Environment, d.sha)
}
