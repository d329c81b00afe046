package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

func (s *suite) testDeploymentLifecycle(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	hook, dup, err := db.RecordWebhook(ctx, store.WebhookEvent{Forge: "github", DeliveryID: "d-1", Outcome: store.OutcomeAccepted})
	check(t, err)
	if dup {
		t.Fatal("first delivery reported duplicate")
	}
	in := store.Deployment{
		Target: api, Trigger: store.TriggerWebhook, Actor: "octocat", RequestedRef: "refs/heads/main",
		OldSHA: strings.ToUpper(sha(1)), NewSHA: sha(2), Release: "20250310-090000", WebhookID: &hook.ID,
		Host: "web-1", PID: 1234,
		ID: 999, Status: "", StartedAt: time.Unix(1, 0), // ignored
	}
	id := must(db.StartDeployment(ctx, in))(t)
	got := must(db.Deployment(ctx, id))(t)
	want := in
	want.ID, want.Status, want.StartedAt, want.OldSHA = id, store.StatusRunning, epoch, sha(1)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("started deployment (-want +got):\n%s", diff)
	}
	states := must(db.FraiseStates(ctx, "", ""))(t)
	if len(states) != 1 || states[0].Status != store.StatusRunning || states[0].LastDeployment != id {
		t.Errorf("state while running: %+v", states)
	}
	evs := must(db.Webhooks(ctx, store.WebhookFilter{}))(t)
	if len(evs) != 1 || !cmp.Equal(evs[0].DeploymentIDs, []int64{id}) {
		t.Errorf("webhook event not linked by StartDeployment: %+v", evs)
	}

	clk.Advance(90 * time.Second)
	check(t, db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded, NewSHA: sha(3), Release: "r3"}))
	got = must(db.Deployment(ctx, id))(t)
	fin := epoch.Add(90 * time.Second)
	want.Status, want.FinishedAt, want.DurationMS, want.NewSHA, want.Release = store.StatusSucceeded, &fin, 90000, sha(3), "r3"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("finished deployment (-want +got):\n%s", diff)
	}
	wantState := []store.FraiseState{{
		Target: api, Status: store.StatusSucceeded, CurrentSHA: sha(3), CurrentRelease: "r3",
		DeployedAt: fin, DeployedBy: "octocat", LastDeployment: id,
	}}
	if diff := cmp.Diff(wantState, must(db.FraiseStates(ctx, "api", "production"))(t)); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}

	if _, err := db.StartDeployment(ctx, store.Deployment{Target: api, NewSHA: "abc123"}); err == nil {
		t.Error("an abbreviated commit was accepted")
	}
	if _, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "api"}}); err == nil {
		t.Error("a deployment without environment was accepted")
	}
	if _, err := db.StartDeployment(ctx, store.Deployment{Target: api, Status: store.StatusSucceeded}); err == nil {
		t.Error("a deployment started as succeeded")
	}
	missing := int64(424242)
	if _, err := db.StartDeployment(ctx, store.Deployment{Target: api, WebhookID: &missing}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("start with an unknown webhook: %v, want ErrNotFound", err)
	}
}

// testDeploymentTarget: the target commit is recorded while the deployment
// runs, survives a finish that names none (failed, interrupted), is
// overridden by one that does, and cannot change a finished deployment.
func (s *suite) testDeploymentTarget(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	start := func() int64 {
		return must(db.StartDeployment(ctx, store.Deployment{Target: api, Trigger: store.TriggerCLI, OldSHA: sha(1)}))(t)
	}
	newSHA := func(id int64) string { return must(db.Deployment(ctx, id))(t).NewSHA }

	tests := []struct {
		name   string
		finish *store.Finish // nil: left running
		want   string
	}{
		{"running", nil, sha(2)},
		{"failed keeps it", &store.Finish{Status: store.StatusFailed, Error: "install: exit status 1"}, sha(2)},
		{"interrupted keeps it", &store.Finish{Status: store.StatusInterrupted, Error: "died"}, sha(2)},
		{"a finish that names another wins", &store.Finish{Status: store.StatusSucceeded, NewSHA: sha(3)}, sha(3)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := start()
			if got := newSHA(id); got != "" {
				t.Fatalf("new_sha before it is resolved: %q", got)
			}
			check(t, db.SetDeploymentTarget(ctx, id, strings.ToUpper(sha(2))))
			if tc.finish != nil {
				check(t, db.FinishDeployment(ctx, id, *tc.finish))
			}
			if got := newSHA(id); got != tc.want {
				t.Errorf("new_sha %q, want %q", got, tc.want)
			}
			if tc.finish == nil {
				running := must(db.RunningDeployments(ctx))(t)
				if len(running) == 0 || running[len(running)-1].ID != id || running[len(running)-1].NewSHA != tc.want {
					t.Errorf("running deployments %+v: want %d going to %s", running, id, tc.want)
				}
				check(t, db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusFailed}))
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		done := start()
		check(t, db.FinishDeployment(ctx, done, store.Finish{Status: store.StatusFailed}))
		running := start()
		defer db.FinishDeployment(ctx, running, store.Finish{Status: store.StatusFailed})
		refusals := []struct {
			name string
			id   int64
			sha  string
			is   error
		}{
			{"finished", done, sha(4), store.ErrFinished},
			{"unknown", 31337, sha(4), store.ErrNotFound},
			{"abbreviated", running, "abc1234", nil},
			{"empty", running, "", nil},
		}
		for _, r := range refusals {
			err := db.SetDeploymentTarget(ctx, r.id, r.sha)
			switch {
			case err == nil:
				t.Errorf("%s: accepted", r.name)
			case r.is != nil && !errors.Is(err, r.is):
				t.Errorf("%s: %v, want %v", r.name, err, r.is)
			}
		}
		if got := newSHA(done); got != "" {
			t.Errorf("finished deployment's new_sha changed to %q", got)
		}
		if got := newSHA(running); got != "" {
			t.Errorf("a refused target was recorded: %q", got)
		}
	})
}

func (s *suite) testNotFound(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	const none = 31337
	code := 0
	for name, err := range map[string]error{
		"Deployment":        second(db.Deployment(ctx, none)),
		"Steps":             second(db.Steps(ctx, none)),
		"FinishDeployment":  db.FinishDeployment(ctx, none, store.Finish{Status: store.StatusSucceeded}),
		"MarkInterrupted":   db.MarkInterrupted(ctx, none, "gone"),
		"ClaimQueued":       second(db.ClaimQueued(ctx, none, store.Claim{})),
		"StartStep":         second(db.StartStep(ctx, none, "x")),
		"AppendStepOutput":  db.AppendStepOutput(ctx, none, []byte("x")),
		"FinishStep":        db.FinishStep(ctx, none, store.StepSucceeded, &code, ""),
		"SetWebhookOutcome": db.SetWebhookOutcome(ctx, none, store.OutcomeIgnored, ""),
		"LinkWebhook":       db.LinkWebhook(ctx, none, none),
		"SetReleaseState":   db.SetReleaseState(ctx, api, "nope", store.ReleaseGood),
		"RefreshLock":       db.RefreshLock(ctx, api, "me", time.Minute),
		"ReleaseLock":       db.ReleaseLock(ctx, api, "me"),
		"ForceUnlock":       second(db.ForceUnlock(ctx, api, "why")),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
}

func (s *suite) testFinishValidation(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	id := deploy(t, db, clk, api, 1, time.Second, store.StatusSucceeded)
	running := must(db.StartDeployment(ctx, store.Deployment{Target: api, NewSHA: sha(2)}))(t)
	tables := append([]string{"tb_deployment"}, derivedTables...)
	before := snapshot(t, db, tables...)

	if err := db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusFailed}); !errors.Is(err, store.ErrFinished) {
		t.Errorf("finishing twice: %v, want ErrFinished", err)
	}
	if err := db.FinishDeployment(ctx, 98765, store.Finish{Status: store.StatusSucceeded}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finishing an unknown deployment: %v, want ErrNotFound", err)
	}
	for _, st := range []store.Status{store.StatusRunning, store.StatusQueued, "", "bogus"} {
		if err := db.FinishDeployment(ctx, running, store.Finish{Status: st}); err == nil {
			t.Errorf("finished as %q", st)
		}
	}
	if err := db.FinishDeployment(ctx, running, store.Finish{Status: store.StatusSucceeded, NewSHA: "xyz"}); err == nil {
		t.Error("finished with a malformed commit")
	}
	if diff := cmp.Diff(before, snapshot(t, db, tables...)); diff != "" {
		t.Errorf("a refused finish changed the database (-before +after):\n%s", diff)
	}
}

func (s *suite) testStateTransitions(t *testing.T) {
	ctx := context.Background()
	const dur = 10 * time.Second
	for _, tc := range []struct {
		status     store.Status
		brokenFrom bool // the target was broken (rollback_failed) before
		wantSHA    int  // the commit current afterwards
		wantBroken bool
	}{
		{store.StatusSucceeded, false, 2, false},
		{store.StatusFailed, false, 1, false},
		{store.StatusRolledBack, false, 1, false},
		{store.StatusRollbackFailed, false, 1, true},
		{store.StatusInterrupted, false, 1, false},
		{store.StatusSkipped, false, 1, false},
		{store.StatusSuperseded, false, 1, false},
		{store.StatusSucceeded, true, 2, false},
		{store.StatusRolledBack, true, 1, false},
		{store.StatusFailed, true, 1, true},
		{store.StatusRollbackFailed, true, 1, true},
		{store.StatusInterrupted, true, 1, true},
	} {
		name := string(tc.status)
		if tc.brokenFrom {
			name = "broken/" + name
		}
		t.Run(name, func(t *testing.T) {
			db, clk := s.fresh(t)
			deploy(t, db, clk, api, 1, dur, store.StatusSucceeded)
			firstDone := clk.Now()
			var brokenAt time.Time
			if tc.brokenFrom {
				clk.Advance(time.Minute)
				deploy(t, db, clk, api, 9, dur, store.StatusRollbackFailed)
				brokenAt = clk.Now()
			}
			clk.Advance(time.Minute)
			id := must(db.StartDeployment(ctx, store.Deployment{Target: api, Actor: "bob", NewSHA: sha(2), Release: "r2"}))(t)
			clk.Advance(dur)
			check(t, db.FinishDeployment(ctx, id, store.Finish{Status: tc.status, Error: "boom"}))

			want := store.FraiseState{Target: api, Status: tc.status, LastDeployment: id,
				CurrentSHA: sha(1), CurrentRelease: "r1", DeployedAt: firstDone, DeployedBy: "alice"}
			if tc.wantSHA == 2 {
				want.CurrentSHA, want.CurrentRelease, want.DeployedAt, want.DeployedBy = sha(2), "r2", clk.Now(), "bob"
			}
			if tc.wantBroken {
				at := clk.Now()
				if tc.brokenFrom {
					at = brokenAt // broken since the first failure, not the latest
				}
				want.BrokenSince = &at
			}
			states := must(db.FraiseStates(ctx, "", ""))(t)
			if diff := cmp.Diff([]store.FraiseState{want}, states); diff != "" {
				t.Errorf("state after %s (-want +got):\n%s", name, diff)
			}
		})
	}
}

func (s *suite) testQueued(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	q := must(db.StartDeployment(ctx, store.Deployment{Target: api, Status: store.StatusQueued, NewSHA: sha(1)}))(t)
	if d := must(db.Deployment(ctx, q))(t); d.Status != store.StatusQueued {
		t.Fatalf("queued deployment is %s", d.Status)
	}
	clk.Advance(time.Minute)
	check(t, second(db.ClaimQueued(ctx, q, store.Claim{Host: "h", PID: 1})))
	if _, err := db.ClaimQueued(ctx, q, store.Claim{Host: "h", PID: 2}); !errors.Is(err, store.ErrNotQueued) {
		t.Errorf("claimed a running deployment: %v, want ErrNotQueued", err)
	}
	d := must(db.Deployment(ctx, q))(t)
	if d.Status != store.StatusRunning || !d.StartedAt.Equal(epoch.Add(time.Minute)) {
		t.Errorf("begun deployment: status %s, started %s", d.Status, d.StartedAt)
	}
	if st := must(db.FraiseStates(ctx, "", ""))(t); st[0].Status != store.StatusRunning {
		t.Errorf("state of a begun deployment: %s", st[0].Status)
	}
	clk.Advance(5 * time.Second)
	check(t, db.FinishDeployment(ctx, q, store.Finish{Status: store.StatusSucceeded}))
	if d := must(db.Deployment(ctx, q))(t); d.DurationMS != 5000 {
		t.Errorf("duration %d ms, want 5000: the wait in the queue does not count", d.DurationMS)
	}

	q2 := must(db.StartDeployment(ctx, store.Deployment{Target: api, Status: store.StatusQueued}))(t)
	check(t, db.FinishDeployment(ctx, q2, store.Finish{Status: store.StatusSuperseded}))

	// A queued deployment starts when it begins, after later ids started:
	// history since a time must still find it.
	clk.Set(epoch.Add(time.Hour))
	late := must(db.StartDeployment(ctx, store.Deployment{Target: web, Status: store.StatusQueued}))(t)
	clk.Advance(time.Minute)
	early := deploy(t, db, clk, web, 7, time.Second, store.StatusSucceeded)
	clk.Advance(time.Minute)
	check(t, second(db.ClaimQueued(ctx, late, store.Claim{Host: "h", PID: 1})))
	since := epoch.Add(time.Hour + 90*time.Second)
	ids := func(f store.DeploymentFilter) []int64 {
		var out []int64
		for _, d := range must(db.Deployments(ctx, f))(t) {
			out = append(out, d.ID)
		}
		return out
	}
	if got := ids(store.DeploymentFilter{Since: since}); !cmp.Equal(got, []int64{late}) {
		t.Errorf("since %s: %v, want [%d] (not %d, started before)", since, got, late, early)
	}
	if got := ids(store.DeploymentFilter{Since: clk.Now().Add(time.Second)}); len(got) != 0 {
		t.Errorf("since the future: %v", got)
	}
	if d := must(db.Deployment(ctx, q2))(t); d.Status != store.StatusSuperseded || d.FinishedAt == nil {
		t.Errorf("superseded: %+v", d)
	}
}

func (s *suite) testDeploymentFilters(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	var all []int64 // ids, oldest first
	byTarget := map[store.Target][]int64{}
	byStatus := map[store.Status][]int64{}
	statuses := []store.Status{store.StatusSucceeded, store.StatusFailed, store.StatusSucceeded, store.StatusRolledBack}
	for i := range 30 {
		tg := []store.Target{api, web, apiS}[i%3]
		st := statuses[i%4]
		id := deploy(t, db, clk, tg, i, time.Second, st)
		clk.Advance(time.Hour)
		all = append(all, id)
		byTarget[tg] = append(byTarget[tg], id)
		byStatus[st] = append(byStatus[st], id)
	}
	newest := func(ids []int64, n int) []int64 {
		var out []int64
		for i := len(ids) - 1; i >= 0 && len(out) < n; i-- {
			out = append(out, ids[i])
		}
		return out
	}
	intersect := func(a, b []int64) []int64 {
		in := map[int64]bool{}
		for _, x := range b {
			in[x] = true
		}
		var out []int64
		for _, x := range a {
			if in[x] {
				out = append(out, x)
			}
		}
		return out
	}
	var apiAll []int64
	for _, id := range all {
		if d := must(db.Deployment(ctx, id))(t); d.Fraise == "api" {
			apiAll = append(apiAll, id)
		}
	}
	var staging []int64
	for _, id := range all {
		if d := must(db.Deployment(ctx, id))(t); d.Environment == "staging" {
			staging = append(staging, id)
		}
	}
	for _, tc := range []struct {
		name string
		f    store.DeploymentFilter
		want []int64
	}{
		{"default limit", store.DeploymentFilter{}, newest(all, 20)},
		{"limit", store.DeploymentFilter{Limit: 3}, newest(all, 3)},
		{"before", store.DeploymentFilter{Limit: 2, BeforeID: all[10]}, newest(all[:10], 2)},
		{"target", store.DeploymentFilter{Fraise: "api", Environment: "production", Limit: 100}, newest(byTarget[api], 100)},
		{"fraise", store.DeploymentFilter{Fraise: "api", Limit: 100}, newest(apiAll, 100)},
		{"environment", store.DeploymentFilter{Environment: "staging", Limit: 100}, newest(staging, 100)},
		{"status", store.DeploymentFilter{Status: store.StatusFailed, Limit: 100}, newest(byStatus[store.StatusFailed], 100)},
		{"fraise+status", store.DeploymentFilter{Fraise: "api", Status: store.StatusSucceeded, Limit: 100},
			newest(intersect(apiAll, byStatus[store.StatusSucceeded]), 100)},
		{"env+status", store.DeploymentFilter{Environment: "staging", Status: store.StatusSucceeded, Limit: 100},
			newest(intersect(staging, byStatus[store.StatusSucceeded]), 100)},
		{"target+status", store.DeploymentFilter{Fraise: "web", Environment: "staging", Status: store.StatusRolledBack, Limit: 100},
			newest(intersect(byTarget[web], byStatus[store.StatusRolledBack]), 100)},
		{"since", store.DeploymentFilter{Since: epoch.Add(25 * time.Hour), Limit: 100}, newest(all[25:], 100)},
		{"none", store.DeploymentFilter{Fraise: "nope"}, nil},
	} {
		ds := must(db.Deployments(ctx, tc.f))(t)
		var got []int64
		for _, d := range ds {
			got = append(got, d.ID)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func (s *suite) testInterrupted(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	done := deploy(t, db, clk, api, 1, time.Second, store.StatusSucceeded)
	a := must(db.StartDeployment(ctx, store.Deployment{Target: api, Host: "h1", PID: 7}))(t)
	b := must(db.StartDeployment(ctx, store.Deployment{Target: web, Status: store.StatusQueued}))(t)
	run := must(db.RunningDeployments(ctx))(t)
	if len(run) != 2 || run[0].ID != a || run[1].ID != b || run[0].PID != 7 {
		t.Fatalf("running: %+v", run)
	}
	clk.Advance(time.Minute)
	check(t, db.MarkInterrupted(ctx, a, "process 7 on h1 is gone"))
	if err := db.MarkInterrupted(ctx, done, "x"); !errors.Is(err, store.ErrFinished) {
		t.Errorf("interrupting a finished deployment: %v, want ErrFinished", err)
	}
	d := must(db.Deployment(ctx, a))(t)
	if d.Status != store.StatusInterrupted || d.Error != "process 7 on h1 is gone" || d.DurationMS != 60000 {
		t.Errorf("interrupted: %+v", d)
	}
	if run := must(db.RunningDeployments(ctx))(t); len(run) != 1 || run[0].ID != b {
		t.Errorf("still running: %+v", run)
	}
	st := must(db.Stats(ctx, store.StatsFilter{Fraise: "api"}))(t)
	if len(st) != 1 || st[0].ByStatus[store.StatusInterrupted] != 1 || st[0].Total != 2 {
		t.Errorf("stats after interruption: %+v", st)
	}
	fs := must(db.FraiseStates(ctx, "api", ""))(t)
	if fs[0].Status != store.StatusInterrupted || fs[0].CurrentSHA != sha(1) {
		t.Errorf("state after interruption: %+v", fs[0])
	}
}
