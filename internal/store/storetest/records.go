package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

func (s *suite) testSteps(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	id := must(db.StartDeployment(ctx, store.Deployment{Target: api}))(t)
	fetch := must(db.StartStep(ctx, id, "fetch"))(t)
	check(t, db.AppendStepOutput(ctx, fetch, []byte("remote: counting\n")))
	check(t, db.AppendStepOutput(ctx, fetch, nil))
	check(t, db.AppendStepOutput(ctx, fetch, []byte("done\n")))
	clk.Advance(2 * time.Second)
	zero := 0
	check(t, db.FinishStep(ctx, fetch, store.StepSucceeded, &zero, "fast-forward"))
	if err := db.FinishStep(ctx, fetch, store.StepFailed, nil, ""); !errors.Is(err, store.ErrFinished) {
		t.Errorf("finishing a step twice: %v, want ErrFinished", err)
	}
	if err := db.FinishStep(ctx, fetch, store.StepRunning, nil, ""); err == nil {
		t.Error("finished a step as running")
	}
	migrate := must(db.StartStep(ctx, id, "migrate"))(t)
	clk.Advance(time.Second)
	check(t, db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusInterrupted}))

	done := epoch.Add(2 * time.Second)
	ended := epoch.Add(3 * time.Second)
	want := []store.Step{
		{ID: fetch, DeploymentID: id, Seq: 1, Name: "fetch", Status: store.StepSucceeded, StartedAt: epoch,
			FinishedAt: &done, ExitCode: &zero, Output: "remote: counting\ndone\n", Detail: "fast-forward"},
		{ID: migrate, DeploymentID: id, Seq: 2, Name: "migrate", Status: store.StepFailed, StartedAt: done,
			FinishedAt: &ended, Output: ""},
	}
	got := must(db.Steps(ctx, id))(t)
	if len(got) == 2 && got[1].Detail == "" {
		t.Error("a step closed by the deployment's end says nothing about why")
	}
	if len(got) == 2 {
		got[1].Detail = ""
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	other := must(db.StartDeployment(ctx, store.Deployment{Target: web}))(t)
	if steps := must(db.Steps(ctx, other))(t); len(steps) != 0 {
		t.Errorf("steps of a deployment without any: %+v", steps)
	}
}

func (s *suite) testStepOutputCap(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	id := must(db.StartDeployment(ctx, store.Deployment{Target: api}))(t)
	step := must(db.StartStep(ctx, id, "build"))(t)
	var all bytes.Buffer
	for i := 0; all.Len() < 3*store.StepOutputCap; i++ {
		line := []byte(fmt.Sprintf("line %06d: %s\n", i, strings.Repeat("héllo wörld ✓ ", 40)))
		all.Write(line)
		check(t, db.AppendStepOutput(ctx, step, line))
	}
	// A chunk ending inside a character, completed by the next.
	check(t, db.AppendStepOutput(ctx, step, []byte("end ✓")[:6]))
	check(t, db.AppendStepOutput(ctx, step, []byte("end ✓")[6:]))
	all.WriteString("end ✓")

	got := must(db.Steps(ctx, id))(t)[0]
	if !got.Truncated {
		t.Error("output over the cap not marked truncated")
	}
	if len(got.Output) > store.StepOutputCap || len(got.Output) < store.StepOutputCap-3 {
		t.Errorf("kept %d bytes, want the last %d", len(got.Output), store.StepOutputCap)
	}
	if !strings.HasSuffix(all.String(), got.Output) {
		t.Error("kept output is not the tail of what was written")
	}
	if !strings.HasSuffix(got.Output, "end ✓") {
		t.Errorf("output ends %q", got.Output[len(got.Output)-20:])
	}
	if !utf8Valid(got.Output) {
		t.Error("kept output starts inside a character")
	}
	if want := int64(all.Len() - len(got.Output)); got.OutputOffset != want {
		t.Errorf("output offset %d, want the %d bytes dropped", got.OutputOffset, want)
	}

	small := must(db.StartStep(ctx, id, "small"))(t)
	check(t, db.AppendStepOutput(ctx, small, []byte("ok")))
	if got := must(db.Steps(ctx, id))(t)[1]; got.Truncated || got.Output != "ok" {
		t.Errorf("small output: %q truncated=%v", got.Output, got.Truncated)
	}
	big := must(db.StartStep(ctx, id, "big"))(t)
	check(t, db.AppendStepOutput(ctx, big, bytes.Repeat([]byte("x"), store.StepOutputCap+10)))
	if got := must(db.Steps(ctx, id))(t)[2]; !got.Truncated || len(got.Output) != store.StepOutputCap || got.OutputOffset != 10 {
		t.Errorf("one oversized chunk: %d bytes from %d, truncated=%v", len(got.Output), got.OutputOffset, got.Truncated)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func (s *suite) testWebhooks(t *testing.T) {
	db, clk := s.fresh(t)
	w := recordWebhooks(t, db, clk)
	linkWebhooks(t, db, &w)
	listWebhooks(t, db, w)
}

// recordedWebhooks are the events testWebhooks records and the
// deployments it links them to.
type recordedWebhooks struct {
	first, gitlab store.WebhookEvent
	anon          []int64
	d1, d2        int64
}

// recordWebhooks: a delivery is recorded once per forge; deliveries
// without an id are never duplicates; an unknown outcome is refused.
func recordWebhooks(t *testing.T, db *store.DB, clk *clock) recordedWebhooks {
	ctx := context.Background()
	in := store.WebhookEvent{Forge: "github", DeliveryID: "abc", EventType: "push", Repository: "acme/api",
		Ref: "refs/heads/main", SHA: sha(1), Sender: "octocat", Outcome: store.OutcomeAccepted, RemoteAddr: "192.0.2.1"}
	first, dup, err := db.RecordWebhook(ctx, in)
	check(t, err)
	if dup || first.ID == 0 {
		t.Fatalf("first delivery: %+v duplicate=%v", first, dup)
	}
	want := in
	want.ID, want.ReceivedAt, want.DeploymentIDs = first.ID, epoch, []int64{}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
	clk.Advance(time.Second)
	again, dup, err := db.RecordWebhook(ctx, store.WebhookEvent{Forge: "github", DeliveryID: "abc", Sender: "someone else"})
	check(t, err)
	if !dup || again.ID != first.ID || again.Sender != "octocat" {
		t.Errorf("redelivery: %+v duplicate=%v, want the first event and true", again, dup)
	}
	// The same delivery id from another forge is another delivery, and
	// deliveries without an id are never duplicates.
	gitlab, dup, err := db.RecordWebhook(ctx, store.WebhookEvent{Forge: "gitlab", DeliveryID: "abc", Outcome: store.OutcomeIgnored})
	check(t, err)
	if dup {
		t.Error("same delivery id on another forge reported duplicate")
	}
	var anon []int64
	for range 2 {
		e, dup, err := db.RecordWebhook(ctx, store.WebhookEvent{Forge: "gitea", Outcome: store.OutcomeRejected})
		check(t, err)
		if dup {
			t.Error("delivery without id reported duplicate")
		}
		anon = append(anon, e.ID)
	}
	if _, _, err := db.RecordWebhook(ctx, store.WebhookEvent{Forge: "github", Outcome: "weird"}); err == nil {
		t.Error("unknown outcome accepted")
	}
	return recordedWebhooks{first: first, gitlab: gitlab, anon: anon}
}

// linkWebhooks: an outcome is updated, and events are linked to the
// deployments they led to, once each.
func linkWebhooks(t *testing.T, db *store.DB, w *recordedWebhooks) {
	ctx := context.Background()
	check(t, db.SetWebhookOutcome(ctx, w.gitlab.ID, store.OutcomeSuperseded, "newer push"))
	w.d1 = must(db.StartDeployment(ctx, store.Deployment{Target: api, WebhookID: &w.first.ID}))(t)
	w.d2 = must(db.StartDeployment(ctx, store.Deployment{Target: web}))(t)
	check(t, db.LinkWebhook(ctx, w.first.ID, w.d2))
	check(t, db.LinkWebhook(ctx, w.first.ID, w.d2)) // twice is harmless
	check(t, db.LinkWebhook(ctx, w.gitlab.ID, w.d2))
	if err := db.LinkWebhook(ctx, w.first.ID, 99999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("link to an unknown deployment: %v, want ErrNotFound", err)
	}
}

// listWebhooks: every filter, and the links and outcomes listed.
func listWebhooks(t *testing.T, db *store.DB, w recordedWebhooks) {
	ctx := context.Background()
	first, gitlab, anon, d1, d2 := w.first, w.gitlab, w.anon, w.d1, w.d2
	ids := func(evs []store.WebhookEvent) []int64 {
		var out []int64
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.WebhookFilter
		want []int64
	}{
		{"all", store.WebhookFilter{}, []int64{anon[1], anon[0], gitlab.ID, first.ID}},
		{"limit", store.WebhookFilter{Limit: 1}, []int64{anon[1]}},
		{"before", store.WebhookFilter{BeforeID: gitlab.ID}, []int64{first.ID}},
		{"forge", store.WebhookFilter{Forge: "github"}, []int64{first.ID}},
		{"outcome", store.WebhookFilter{Outcome: store.OutcomeRejected}, []int64{anon[1], anon[0]}},
		{"forge+outcome", store.WebhookFilter{Forge: "gitlab", Outcome: store.OutcomeSuperseded}, []int64{gitlab.ID}},
		{"fraise api", store.WebhookFilter{Fraise: "api"}, []int64{first.ID}},
		{"fraise web", store.WebhookFilter{Fraise: "web"}, []int64{gitlab.ID, first.ID}},
		{"fraise none", store.WebhookFilter{Fraise: "nope"}, nil},
		{"fraise+forge", store.WebhookFilter{Fraise: "web", Forge: "gitlab"}, []int64{gitlab.ID}},
		{"fraise+before", store.WebhookFilter{Fraise: "web", BeforeID: gitlab.ID}, []int64{first.ID}},
		{"fraise+limit", store.WebhookFilter{Fraise: "web", Limit: 1}, []int64{gitlab.ID}},
	} {
		if diff := cmp.Diff(tc.want, ids(must(db.Webhooks(ctx, tc.f))(t))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	evs := must(db.Webhooks(ctx, store.WebhookFilter{Forge: "github"}))(t)
	if !cmp.Equal(evs[0].DeploymentIDs, []int64{d1, d2}) {
		t.Errorf("deployment ids %v, want %v", evs[0].DeploymentIDs, []int64{d1, d2})
	}
	evs = must(db.Webhooks(ctx, store.WebhookFilter{Forge: "gitlab"}))(t)
	if evs[0].Outcome != store.OutcomeSuperseded || evs[0].Reason != "newer push" {
		t.Errorf("outcome not updated: %+v", evs[0])
	}
}

func (s *suite) testReleases(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	dep := must(db.StartDeployment(ctx, store.Deployment{Target: api}))(t)
	r1 := must(db.AddRelease(ctx, store.Release{Target: api, Name: "r1", SHA: sha(1), Path: "/srv/api/releases/r1", State: store.ReleaseCurrent}))(t)
	clk.Advance(time.Minute)
	r2 := must(db.AddRelease(ctx, store.Release{Target: api, Name: "r2", SHA: sha(2), Path: "/srv/api/releases/r2", DeploymentID: dep}))(t)
	clk.Advance(time.Minute)
	must(db.AddRelease(ctx, store.Release{Target: web, Name: "w1", State: store.ReleaseGood}))(t)

	got := must(db.Releases(ctx, "api", "production"))(t)
	want := []store.Release{
		{ID: r2, Target: api, Name: "r2", SHA: sha(2), Path: "/srv/api/releases/r2", State: store.ReleaseNew, DeploymentID: dep, CreatedAt: epoch.Add(time.Minute)},
		{ID: r1, Target: api, Name: "r1", SHA: sha(1), Path: "/srv/api/releases/r1", State: store.ReleaseCurrent, CreatedAt: epoch},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}
	// One by name, and the newest few.
	if one, err := db.Release(ctx, api, "r1"); err != nil || !cmp.Equal(one, want[1]) {
		t.Errorf("Release(r1) = %+v, %v; want %+v", one, err, want[1])
	}
	if _, err := db.Release(ctx, api, "w1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Release(another target's w1) = %v, want ErrNotFound", err)
	}
	if recent := must(db.RecentReleases(ctx, api, 1))(t); len(recent) != 1 || recent[0].Name != "r2" {
		t.Errorf("RecentReleases(1) = %+v, want r2 alone", recent)
	}
	check(t, db.SetReleaseState(ctx, api, "r2", store.ReleaseCurrent))
	got = must(db.Releases(ctx, "api", ""))(t)
	if got[0].State != store.ReleaseCurrent || got[1].State != store.ReleaseGood {
		t.Errorf("after switching: r2 %s, r1 %s; want current, good", got[0].State, got[1].State)
	}
	check(t, db.SetReleaseState(ctx, api, "r2", store.ReleaseBad))
	if err := db.SetReleaseState(ctx, api, "r2", "broken"); err == nil {
		t.Error("unknown release state accepted")
	}
	// Adding a name again updates that release.
	again := must(db.AddRelease(ctx, store.Release{Target: api, Name: "r1", SHA: sha(3), State: store.ReleaseCurrent}))(t)
	if again != r1 {
		t.Errorf("re-adding r1 gave id %d, want %d", again, r1)
	}
	got = must(db.Releases(ctx, "api", "production"))(t)
	if len(got) != 2 || got[1].SHA != sha(3) || got[1].State != store.ReleaseCurrent || !got[1].CreatedAt.Equal(epoch) {
		t.Errorf("re-added r1: %+v", got)
	}
	if all := must(db.Releases(ctx, "", ""))(t); len(all) != 3 {
		t.Errorf("%d releases in all, want 3", len(all))
	}
}

// testReleaseRevision: each release keeps the migration revision its
// deployment reached, "" until one is recorded.
func (s *suite) testReleaseRevision(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	must(db.AddRelease(ctx, store.Release{Target: api, Name: "r1", SHA: sha(1), State: store.ReleaseGood, MigrationRevision: "a1"}))(t)
	clk.Advance(time.Minute)
	must(db.AddRelease(ctx, store.Release{Target: api, Name: "r2", SHA: sha(2)}))(t)
	must(db.AddRelease(ctx, store.Release{Target: apiS, Name: "r2", SHA: sha(2)}))(t)
	revisions := func(tg store.Target) map[string]string {
		m := map[string]string{}
		for _, r := range must(db.Releases(ctx, tg.Fraise, tg.Environment))(t) {
			m[r.Name] = r.MigrationRevision
		}
		return m
	}
	if diff := cmp.Diff(map[string]string{"r1": "a1", "r2": ""}, revisions(api)); diff != "" {
		t.Errorf("as added (-want +got):\n%s", diff)
	}
	// Recorded on one target's release only; a revision is opaque text.
	check(t, db.SetReleaseRevision(ctx, api, "r2", "0002_names:b2 ünïcode"))
	if diff := cmp.Diff(map[string]string{"r1": "a1", "r2": "0002_names:b2 ünïcode"}, revisions(api)); diff != "" {
		t.Errorf("after SetReleaseRevision (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"r2": ""}, revisions(apiS)); diff != "" {
		t.Errorf("the other target's release changed (-want +got):\n%s", diff)
	}
	// Changing state keeps it; re-adding the name replaces it.
	check(t, db.SetReleaseState(ctx, api, "r2", store.ReleaseCurrent))
	if got := revisions(api)["r2"]; got != "0002_names:b2 ünïcode" {
		t.Errorf("after making r2 current: %q", got)
	}
	must(db.AddRelease(ctx, store.Release{Target: api, Name: "r1", SHA: sha(1), State: store.ReleaseGood}))(t)
	if got := revisions(api)["r1"]; got != "" {
		t.Errorf("re-added r1 kept revision %q", got)
	}
	if err := db.SetReleaseRevision(ctx, api, "r9", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown release: %v, want ErrNotFound", err)
	}
}

func (s *suite) testJobStates(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	ran := epoch.Add(-time.Hour)
	check(t, db.PutJobState(ctx, store.JobState{Target: api, Job: "vacuum", UnitHash: "h1", LastResult: "success", LastRunAt: &ran}))
	clk.Advance(time.Minute)
	check(t, db.PutJobState(ctx, store.JobState{Target: api, Job: "backup", UnitHash: "h2"}))
	check(t, db.PutJobState(ctx, store.JobState{Target: api, Job: "vacuum", UnitHash: "h3", LastResult: "failed", LastRunAt: &ran}))
	want := []store.JobState{
		{Target: api, Job: "backup", UnitHash: "h2", UpdatedAt: epoch.Add(time.Minute)},
		{Target: api, Job: "vacuum", UnitHash: "h3", LastResult: "failed", LastRunAt: &ran, UpdatedAt: epoch.Add(time.Minute)},
	}
	if diff := cmp.Diff(want, must(db.JobStates(ctx, "api", ""))(t)); diff != "" {
		t.Errorf("job states (-want +got):\n%s", diff)
	}
}
