package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// queuePush queues sha as a push to ref would (what the intake records),
// and runs it as the queue's worker would.
func (f *fixture) queuePush(ref, sha string) Result {
	f.t.Helper()
	q, err := f.db.Enqueue(context.Background(), store.QueueRequest{
		Target: store.Target{Fraise: "hello", Environment: "production"},
		SHA:    sha, Ref: ref, Trigger: store.TriggerWebhook, Actor: "mallory via github",
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return f.deploy(Request{Ref: sha, Trigger: store.TriggerWebhook, Actor: "mallory via github", Queued: q.DeploymentID})
}

// expectRefused checks that res deployed nothing, for the reason given,
// and that the service still serves version.
func (f *fixture) expectRefused(res Result, reason, version string) {
	f.t.Helper()
	if res.Status != store.StatusSkipped || !errors.Is(res.Err, ErrRefused) || !strings.Contains(res.Err.Error(), reason) {
		f.t.Fatalf("got %s (%v), want skipped: refused: …%s…", res.Status, res.Err, reason)
	}
	if got := f.serving(); !strings.Contains(got, version) {
		f.t.Fatalf("service answers %q, want %s still", got, version)
	}
	ctx := context.Background()
	d, err := f.db.Deployment(ctx, res.DeploymentID)
	if err != nil {
		f.t.Fatal(err)
	}
	if d.Status != store.StatusSkipped || !strings.Contains(d.Error, reason) {
		f.t.Errorf("recorded %s %q, want skipped with the reason", d.Status, d.Error)
	}
	steps, err := f.db.Steps(ctx, res.DeploymentID)
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name+"="+s.Status)
	}
	if got := strings.Join(names, " "); got != "fetch=succeeded verify push=skipped" {
		f.t.Errorf("steps %s, want fetch, then verify push skipped and nothing else", got)
	}
	rels, err := f.db.Releases(ctx, "hello", "production")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range rels {
		if r.DeploymentID == res.DeploymentID {
			f.t.Errorf("a refused deployment made release %s", r.Name)
		}
	}
}

// TestQueuedPushDeploysItsCommit: a branch and a tag named like the pushed
// commit's SHA, pointing at another commit, must not decide what a genuine
// push of that commit deploys: the pushed commit goes live, never the
// planted one.
func TestQueuedPushDeploysItsCommit(t *testing.T) {
	f := newFixture(t, "")
	v1 := f.push("healthy", nil)
	f.expect(f.queuePush("refs/heads/main", v1), store.StatusSucceeded, "v1")

	v2 := f.push("healthy", nil)
	// Planted from the same parent, so it even descends from what runs.
	f.repo.Git("checkout", "-q", "-b", "planted", v1)
	f.repo.Write("VERSION", "planted\n")
	f.repo.Git("commit", "-q", "-am", "planted")
	planted := f.repo.Git("rev-parse", "HEAD")
	f.repo.Git("push", "-q", "origin", planted+":refs/heads/"+v2, planted+":refs/tags/"+v2)

	res := f.queuePush("refs/heads/main", v2)
	f.expect(res, store.StatusSucceeded, "v2")
	if res.NewSHA != v2 {
		t.Fatalf("deployed %s, want the pushed %s (planted %s)", res.NewSHA, v2, planted)
	}
}

// TestQueuedPushRefusals: a queued push deploys only the pushed ref's tip,
// and only when it descends from what runs. A captured delivery replayed
// under a new id (the store sees a new request) took production back to
// v1; here it deploys nothing, and says why.
func TestQueuedPushRefusals(t *testing.T) {
	f := newFixture(t, "")
	v1 := f.push("healthy", nil)
	f.expect(f.queuePush("refs/heads/main", v1), store.StatusSucceeded, "v1")
	v2 := f.push("healthy", nil)
	f.expect(f.queuePush("refs/heads/main", v2), store.StatusSucceeded, "v2")

	// The old push of v1 again: not the tip, and behind what runs.
	f.expectRefused(f.queuePush("refs/heads/main", v1), "is not the tip of refs/heads/main", "v2")

	// A late delivery: v3 was pushed, then v4, and v3's delivery runs last.
	v3 := f.push("healthy", nil)
	v4 := f.push("healthy", nil)
	f.expect(f.queuePush("refs/heads/main", v4), store.StatusSucceeded, "v4")
	f.expectRefused(f.queuePush("refs/heads/main", v3), "is not the tip of refs/heads/main", "v4")

	// main force-pushed back to v2: the tip, but a step back from v4.
	f.repo.Git("push", "-q", "--force", "origin", v2+":refs/heads/main")
	f.expectRefused(f.queuePush("refs/heads/main", v2), "does not descend from "+short(v4), "v4")

	// A branch deleted after the push.
	f.repo.Git("push", "-q", "origin", v4+":refs/heads/gone")
	f.repo.Git("push", "-q", "origin", ":refs/heads/gone")
	f.expectRefused(f.queuePush("refs/heads/gone", v4), "refs/heads/gone no longer exists", "v4")

	// A deliberate downgrade is the operator's: deploy --ref.
	f.expect(f.deploy(Request{Ref: v2}), store.StatusSucceeded, "v2")

	// From v2, with main at v2, a push of v2 is current; the next push
	// deploys again. v2 was deployed by its SHA, so the records do not
	// say which ref runs: the push must be main's tip, and need not
	// descend from v2 (TestQueuedPushOfAnotherRef).
	f.repo.Git("checkout", "-q", "-B", "main", v2)
	f.version = 4
	v5 := f.push("healthy", nil)
	res := f.queuePush("refs/heads/main", v5)
	f.expect(res, store.StatusSucceeded, "v5")
	steps, err := f.db.Steps(context.Background(), res.DeploymentID)
	if err != nil || len(steps) < 2 || steps[1].Name != "verify push" || steps[1].Detail != "tip of refs/heads/main" {
		t.Errorf("steps %+v (%v): want verify push saying what it checked", steps, err)
	}
}

// TestRolloutStepTipVerifiedEarlier: a later host of a rollout deploys the
// rollout's commit after a newer push moved the ref (its first host found
// the commit at the tip), but never one that does not descend from what
// runs.
func TestRolloutStepTipVerifiedEarlier(t *testing.T) {
	f := newFixture(t, "")
	v1 := f.push("healthy", nil)
	f.expect(f.queuePush("refs/heads/main", v1), store.StatusSucceeded, "v1")
	v2 := f.push("healthy", nil)
	f.push("healthy", nil) // v3: a newer push while the rollout of v2 runs

	queue := func(sha string) int64 {
		q, err := f.db.Enqueue(context.Background(), store.QueueRequest{
			Target: store.Target{Fraise: "hello", Environment: "production"},
			SHA:    sha, Ref: "refs/heads/main", Trigger: store.TriggerWebhook, Actor: "alice via github",
		})
		if err != nil {
			t.Fatal(err)
		}
		return q.DeploymentID
	}
	by := "rollout 7's first host"
	f.expect(f.deploy(Request{Ref: v2, Trigger: store.TriggerWebhook, Queued: queue(v2), TipVerifiedBy: by}), store.StatusSucceeded, "v2")
	steps, err := f.db.Steps(context.Background(), mustLatest(t, f))
	if err != nil {
		t.Fatal(err)
	}
	var detail string
	for _, s := range steps {
		if s.Name == "verify push" {
			detail = s.Detail
		}
	}
	if !strings.Contains(detail, "when "+by+" deployed it") {
		t.Errorf("verify push detail %q, want it to name %q", detail, by)
	}
	// Back to v1 is still refused: the tip rule is skipped, not ancestry.
	f.expectRefused(f.deploy(Request{Ref: v1, Trigger: store.TriggerWebhook, Queued: queue(v1), TipVerifiedBy: by}), "does not descend from", "v2")
}

func mustLatest(t *testing.T, f *fixture) int64 {
	t.Helper()
	ds, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Fraise: "hello", Environment: "production", Status: store.StatusSucceeded, Limit: 1})
	if err != nil || len(ds) == 0 {
		t.Fatalf("latest deployment: %v (%d)", err, len(ds))
	}
	return ds[0].ID
}
