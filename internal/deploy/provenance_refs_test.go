package deploy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/store"
)

// pushStep is one event of TestQueuedPushOfAnotherRef.
type pushStep struct {
	// name is the commit: a new one made on parent ("" the first commit,
	// on main) and pushed to ref, unless move says otherwise.
	name, ref, parent string
	// move is "" (a new commit pushed), "replay" (name's push delivered
	// again, ref untouched) or "force" (ref force-pushed back to name).
	move string
	// byHand, when set, deploys with fraisier deploy --ref byHand
	// instead of a push ("sha": the commit's SHA).
	byHand string
	// refused is the reason the push is refused; "" means it deploys, and
	// then detail is what verify push says it checked.
	refused, detail string
}

// TestQueuedPushOfAnotherRef: a push must descend from what runs only when
// what runs was deployed from the same ref: after a pull request preview,
// or in an environment whose branch is a glob, a push of another ref
// deploys. A replay or a force-push back on the ref that runs is refused.
func TestQueuedPushOfAnotherRef(t *testing.T) {
	const main, pr = "refs/heads/main", "refs/pull/1/head"
	for _, tc := range []struct {
		name, branch string
		steps        []pushStep
		layout       string // "" for releases
	}{
		{"a push of the branch after a pull request preview", "main", []pushStep{
			{name: "m1", ref: main, detail: "tip of " + main},
			{name: "p1", ref: pr, parent: "m1", detail: "tip of " + pr},
			{name: "m2", ref: main, parent: "m1", detail: "tip of " + main},
			{name: "m3", ref: main, parent: "m2", detail: "tip of " + main + "; descends from m2"},
		}, ""},
		{"a glob's branches in turn", "feature/*", []pushStep{
			{name: "a1", ref: "refs/heads/feature/a", detail: "tip of refs/heads/feature/a"},
			{name: "b1", ref: "refs/heads/feature/b", detail: "tip of refs/heads/feature/b"},
			{name: "a2", ref: "refs/heads/feature/a", parent: "a1", detail: "tip of refs/heads/feature/a"},
			{name: "a3", ref: "refs/heads/feature/a", parent: "a2", detail: "tip of refs/heads/feature/a; descends from a2"},
			{name: "a2", ref: "refs/heads/feature/a", move: "force", refused: "does not descend from a3, which runs now and was deployed from refs/heads/feature/a too"},
		}, ""},
		{"a replay of the ref that runs", "main", []pushStep{
			{name: "m1", ref: main, detail: "tip of " + main},
			{name: "p1", ref: pr, parent: "m1", detail: "tip of " + pr},
			{name: "m2", ref: main, parent: "m1", detail: "tip of " + main},
			{name: "m3", ref: main, parent: "m2", detail: "tip of " + main + "; descends from m2"},
			{name: "m2", ref: main, move: "replay", refused: "is not the tip of " + main},
			{name: "m2", ref: main, move: "force", refused: "does not descend from m3, which runs now and was deployed from " + main + " too"},
		}, ""},
		{"a deployment by hand of the branch's name", "main", []pushStep{
			{name: "m1", ref: main, detail: "tip of " + main},
			{name: "m2", ref: main, parent: "m1", byHand: "main"},
			{name: "m1", ref: main, move: "force", refused: "does not descend from m2, which runs now and was deployed from " + main + " too"},
		}, ""},
		{"a deployment by hand of the full ref", "main", []pushStep{
			{name: "m1", ref: main, detail: "tip of " + main},
			{name: "m2", ref: main, parent: "m1", byHand: main},
			{name: "m1", ref: main, move: "force", refused: "does not descend from m2, which runs now and was deployed from " + main + " too"},
		}, ""},
		{"an inplace checkout: a glob's branches in turn", "feature/*", []pushStep{
			{name: "a1", ref: "refs/heads/feature/a", detail: "tip of refs/heads/feature/a"},
			{name: "b1", ref: "refs/heads/feature/b", detail: "tip of refs/heads/feature/b"},
			{name: "b2", ref: "refs/heads/feature/b", parent: "b1", detail: "tip of refs/heads/feature/b; descends from b1"},
			{name: "b1", ref: "refs/heads/feature/b", move: "force", refused: "does not descend from b2, which runs now and was deployed from refs/heads/feature/b too"},
		}, "inplace"},
		// The records do not say which ref a commit deployed by hand came
		// from: the tip rule alone.
		{"a deployment by hand of a commit", "main", []pushStep{
			{name: "m1", ref: main, detail: "tip of " + main},
			{name: "m2", ref: main, parent: "m1", byHand: "sha"},
			{name: "m1", ref: main, move: "force", detail: "tip of " + main},
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLayoutFixture(t, orDefaultString(tc.layout, "releases"), "")
			env, err := f.cfg.Lookup("hello", "production")
			if err != nil {
				t.Fatal(err)
			}
			env.Branch = tc.branch
			base := f.push("healthy", nil)
			commits := map[string]string{}
			versions := map[string]string{}
			serving := ""
			for _, st := range tc.steps {
				switch st.move {
				case "":
					parent := base
					if st.parent != "" {
						parent = commits[st.parent]
					}
					commits[st.name], versions[st.name] = f.commitOn(parent, st.ref)
				case "force":
					f.repo.Git("push", "-q", "--force", "origin", commits[st.name]+":"+st.ref)
				}
				step := fmt.Sprintf("%s %s of %s", orDefaultString(st.move, "push"), st.name, st.ref)
				if st.byHand != "" {
					ref := st.byHand
					if ref == "sha" {
						ref = commits[st.name]
					}
					res := f.deploy(Request{Ref: ref})
					f.expect(res, store.StatusSucceeded, versions[st.name])
					serving = versions[st.name]
					continue
				}
				res := f.queuePush(st.ref, commits[st.name])
				if st.refused != "" {
					refused := st.refused
					for name, sha := range commits {
						refused = strings.ReplaceAll(refused, "from "+name, "from "+short(sha))
					}
					f.expectRefused(res, refused, serving)
					continue
				}
				if res.Status != store.StatusSucceeded {
					t.Fatalf("%s: %s (%v), want it deployed", step, res.Status, res.Err)
				}
				f.expect(res, store.StatusSucceeded, versions[st.name])
				serving = versions[st.name]
				detail := st.detail
				for name, sha := range commits {
					detail = strings.ReplaceAll(detail, "from "+name, "from "+short(sha))
				}
				steps, err := f.db.Steps(context.Background(), res.DeploymentID)
				if err != nil || len(steps) < 2 || steps[1].Name != "verify push" || steps[1].Detail != detail {
					t.Errorf("%s: steps %+v (%v): want verify push saying %q", step, steps, err, detail)
				}
			}
		})
	}
}

// commitOn commits a new healthy version on parent, pushes it to ref and
// returns it with the version it serves.
func (f *fixture) commitOn(parent, ref string) (sha, version string) {
	f.t.Helper()
	f.version++
	version = fmt.Sprintf("v%d", f.version)
	f.repo.Git("checkout", "-q", "--detach", parent)
	f.repo.Write("VERSION", version+"\n")
	f.repo.Write("behaviour", "healthy\n")
	f.repo.Git("commit", "-q", "-am", version)
	f.repo.Git("push", "-q", "origin", "HEAD:"+ref)
	return f.repo.Git("rev-parse", "HEAD"), version
}
