package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

const day = 24 * time.Hour

// quiet is a target deployed on the first day only.
var quiet = store.Target{Fraise: "old", Environment: "quiet"}

// The retention the tests prune with: shorter than the grown history,
// each kind with a cutoff of its own.
var testRetention = store.Retention{Events: 20 * day, StepOutput: 10 * day, Deployments: 40 * day, KeepReleases: 2}

// testRetention grows a history of 80 days, prunes it, and checks what is
// left against what Retention promises, computed here from the rows
// themselves: the deployments nothing keeps are gone with their steps and
// links, queued, running and referenced ones stay, events go unless a
// deployment kept asked for them, step output goes from the steps it
// leaves, and stats read the same before and after. A dry run counts
// exactly what the real pass then removes, and a second pass removes
// nothing.
func (s *suite) testRetention(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	growHistory(t, db, clk, 80)
	windows := statsWindows(clk.Now())
	before := statsOf(t, db, windows)
	want := retentionOracle(t, db, clk.Now(), testRetention)

	dry := must(store.Prune(ctx, db, testRetention, store.PruneOptions{DryRun: true}))(t)
	if diff := cmp.Diff(want.counts, removedOf(dry)); diff != "" {
		t.Errorf("dry run's counts (-want +got):\n%s", diff)
	}
	if now := retentionOracle(t, db, clk.Now(), testRetention); !cmp.Equal(now.counts, want.counts) {
		t.Fatalf("the dry run changed the database: %v, then %v", want.counts, now.counts)
	}
	rep := must(store.Prune(ctx, db, testRetention, store.PruneOptions{}))(t)
	if diff := cmp.Diff(dry.Kinds, rep.Kinds); diff != "" {
		t.Errorf("dry run and real pass differ (-dry +real):\n%s", diff)
	}
	want.check(t, db)
	stepsSayRemoved(t, db, clk.Now())
	if diff := cmp.Diff(before, statsOf(t, db, windows)); diff != "" {
		t.Errorf("stats changed by pruning (-before +after):\n%s", diff)
	}
	again := must(store.Prune(ctx, db, testRetention, store.PruneOptions{}))(t)
	for _, k := range again.Kinds {
		if k.Removed != 0 || k.Bytes != 0 {
			t.Errorf("second pass removed %d %s (%d bytes)", k.Removed, k.Kind, k.Bytes)
		}
	}

	// Life goes on: the deployment left running finishes, a kept
	// delivery is still recognised when redelivered, and every target
	// deploys again, restoring a broken one from the deployment that
	// broke it, which is kept.
	running := must(db.RunningDeployments(ctx))(t)
	for _, d := range running {
		if d.Status == store.StatusRunning {
			check(t, db.FinishDeployment(ctx, d.ID, store.Finish{Status: store.StatusFailed}))
		}
	}
	for _, tg := range []store.Target{api, apiS, web, quiet} {
		deploy(t, db, clk, tg, 9000, time.Minute, store.StatusSucceeded)
	}
	res := must(db.RecordIntake(ctx, []store.Intake{{Event: store.WebhookEvent{Forge: "github", DeliveryID: want.keptDelivery,
		Outcome: store.OutcomeAccepted}}}))(t)
	if !res[0].Duplicate {
		t.Errorf("delivery %s, kept, redelivered: not taken for a duplicate", want.keptDelivery)
	}
	for _, st := range must(db.FraiseStates(ctx, "", ""))(t) {
		if st.BrokenSince != nil && st.Target != (store.Target{Fraise: "old", Environment: "running"}) {
			t.Errorf("%s still broken after a deployment succeeded", st.Target)
		}
	}
}

// testRetentionStatsWindow: a stats window starting mid-day on a day
// whose deployments retention removed starts at that day's midnight
// instead (Since says so) and reads as that window did before pruning;
// one starting after the cutoff is untouched. RebuildStats, which would
// recount from the deployments left, refuses.
func (s *suite) testRetentionStatsWindow(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	growHistory(t, db, clk, 80)
	early := clk.Now().Add(-60*day - 5*time.Hour) // before the deployments' cutoff
	late := clk.Now().Add(-30*day - 5*time.Hour)
	midnight := early.Truncate(day)
	wantEarly := must(db.Stats(ctx, store.StatsFilter{Since: midnight}))(t)
	wantLate := must(db.Stats(ctx, store.StatsFilter{Since: late}))(t)
	if got := must(db.Stats(ctx, store.StatsFilter{Since: early}))(t); cmp.Equal(got, wantEarly) {
		t.Fatal("the history does not tell a window starting mid-day from one starting at midnight")
	}
	must(store.Prune(ctx, db, testRetention, store.PruneOptions{}))(t)
	if diff := cmp.Diff(wantEarly, must(db.Stats(ctx, store.StatsFilter{Since: early}))(t)); diff != "" {
		t.Errorf("window from %s, after pruning (-from its midnight before +got):\n%s", early, diff)
	}
	if diff := cmp.Diff(wantLate, must(db.Stats(ctx, store.StatsFilter{Since: late}))(t)); diff != "" {
		t.Errorf("window from %s, after pruning (-before +after):\n%s", late, diff)
	}
	if err := db.RebuildStats(ctx); err == nil || !strings.Contains(err.Error(), "removed by retention") {
		t.Errorf("RebuildStats after deployments were pruned: %v, want a refusal", err)
	}
}

// testRetentionKeepsByDefault: with the default retention (deployments
// kept), no deployment goes, nor any event that triggered one; old
// events that triggered nothing go, and so does old output.
func (s *suite) testRetentionKeepsByDefault(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	growHistory(t, db, clk, 30)
	r := store.Retention{Events: 10 * day, StepOutput: 10 * day, KeepReleases: 7}
	want := retentionOracle(t, db, clk.Now(), r)
	if want.counts[store.PruneEvents] == 0 || want.counts[store.PruneStepOutput] == 0 {
		t.Fatalf("the history has nothing to prune: %v", want.counts)
	}
	rep := must(store.Prune(ctx, db, r, store.PruneOptions{}))(t)
	if diff := cmp.Diff(want.counts, removedOf(rep)); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	want.check(t, db)
	if rep.Kinds[0].Removed != 0 || rep.Kinds[0].Cutoff != nil {
		t.Errorf("deployments kept forever, yet: %+v", rep.Kinds[0])
	}
}

// testRetentionConcurrent: two pruners on one database (two PostgreSQL
// nodes, or serve and fraisier prune on one SQLite file) while the intake
// records deliveries: neither fails, and together they leave what one
// alone would.
func (s *suite) testRetentionConcurrent(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	growHistory(t, db, clk, 40)
	r := store.Retention{Events: 10 * day, StepOutput: 5 * day, Deployments: 20 * day, KeepReleases: 2}
	want := retentionOracle(t, db, clk.Now(), r)
	opts := db.Options()
	opts.Now = clk.Now
	other, err := store.Open(ctx, opts)
	check(t, err)
	defer other.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	total := map[store.PruneKind]int64{}
	var mu sync.Mutex
	for _, p := range []*store.DB{db, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Small batches, so that the two interleave.
			rep, err := store.Prune(ctx, p, r, store.PruneOptions{MaxHold: time.Microsecond})
			mu.Lock()
			defer mu.Unlock()
			for k, n := range removedOf(rep) {
				total[k] += n
			}
			errs <- err
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			_, err := db.RecordIntake(ctx, []store.Intake{{Event: store.WebhookEvent{Forge: "github",
				DeliveryID: fmt.Sprintf("during-%d", i), Outcome: store.OutcomeIgnored, ReceivedAt: clk.Now()}}})
			if err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		check(t, err)
	}
	if diff := cmp.Diff(want.counts, total); diff != "" {
		t.Errorf("removed by both pruners together (-want +got):\n%s", diff)
	}
	want.extraEvents = 50
	want.check(t, db)
}

func removedOf(rep store.PruneReport) map[store.PruneKind]int64 {
	out := map[store.PruneKind]int64{}
	for _, k := range rep.Kinds {
		out[k.Kind] = k.Removed
	}
	return out
}

// growHistory records days of activity ending at the clock's new time:
// per day and target, a push delivered twice (the first folded into the
// second), a delivery that routes nowhere, a deployment of the push and
// one by hand, each with a step that prints and one that prints nothing,
// ending in turn in every terminal status, a release for each success.
// Three targets are left on the first day: old/queued with a request that
// never ran (taken over by a second push), old/running with a deployment
// that never finished, old/quiet broken, its deployments kept by what
// refers to them.
func growHistory(t *testing.T, db *store.DB, clk *clock, days int) {
	t.Helper()
	ctx := context.Background()
	start := clk.Now().Truncate(day)
	hook := func(delivery string, outcome store.Outcome) *int64 {
		ev, _, err := db.RecordWebhook(ctx, store.WebhookEvent{Forge: "github", DeliveryID: delivery, Outcome: outcome})
		check(t, err)
		return &ev.ID
	}
	clk.Set(start.Add(time.Hour))
	must(db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: "old", Environment: "queued"}, SHA: sha(99999),
		Trigger: store.TriggerWebhook, WebhookID: hook("old-queued", store.OutcomeAccepted)}))(t)
	must(db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "old", Environment: "running"},
		Trigger: store.TriggerWebhook, WebhookID: hook("old-running", store.OutcomeAccepted)}))(t)
	// A newer push takes old/queued's request over: the first push's
	// event is then only linked to it.
	oldPush := store.WebhookEvent{Forge: "github", DeliveryID: "old-queued-again", EventType: "push", Ref: "refs/heads/main",
		SHA: sha(99998), Outcome: store.OutcomeAccepted}
	must(db.RecordIntake(ctx, []store.Intake{{Event: oldPush, Requests: []store.QueueRequest{{Target: store.Target{Fraise: "old", Environment: "queued"},
		SHA: sha(99998), Ref: "refs/heads/main", Trigger: store.TriggerWebhook}}}}))(t)
	// old/quiet deploys on the first day only: three releases, a failure,
	// then a rollback that fails (broken since), and a failure while broken.
	for i, status := range []store.Status{store.StatusSucceeded, store.StatusSucceeded, store.StatusSucceeded, store.StatusFailed,
		store.StatusRollbackFailed, store.StatusFailed} {
		id := deploy(t, db, clk, quiet, 99900+i, time.Minute, status)
		if status == store.StatusSucceeded {
			must(db.AddRelease(ctx, store.Release{Target: quiet, Name: fmt.Sprintf("q%d", i), SHA: sha(99900 + i),
				State: store.ReleaseCurrent, DeploymentID: id}))(t)
		}
	}

	statuses := store.TerminalStatuses()
	n := 0
	for d := range days {
		for i, tg := range []store.Target{api, apiS, web} {
			// A different hour each day, so that days split unevenly;
			// time only goes forward, as ids do.
			clk.Set(start.Add(time.Duration(d)*day + time.Duration(2+(d*5)%13+i*3)*time.Hour))
			push := func(part string, commit int) store.Intake {
				return store.Intake{
					Event: store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprintf("%d-%s-%s", d, tg, part), EventType: "push",
						Ref: "refs/heads/main", SHA: sha(commit), Outcome: store.OutcomeAccepted},
					Requests: []store.QueueRequest{{Target: tg, SHA: sha(commit), Ref: "refs/heads/main", Trigger: store.TriggerWebhook}},
				}
			}
			res := must(db.RecordIntake(ctx, []store.Intake{
				push("a", n+1),
				push("b", n+2),
				{Event: store.WebhookEvent{Forge: "gitlab", DeliveryID: fmt.Sprintf("%d-%s-c", d, tg), Outcome: store.OutcomeIgnored}},
			}))(t)
			if len(res[1].Queued) != 1 {
				t.Fatalf("day %d %s: %+v", d, tg, res)
			}
			pushed := res[1].Queued[0].DeploymentID
			must(db.ClaimQueued(ctx, pushed, store.Claim{Host: "h1", PID: 1}))(t)
			byHand := must(db.StartDeployment(ctx, store.Deployment{Target: tg, Trigger: store.TriggerCLI, NewSHA: sha(n + 3)}))(t)
			for j, id := range []int64{pushed, byHand} {
				n += 3
				for _, name := range []string{"install", "health"} {
					step := must(db.StartStep(ctx, id, name))(t)
					if name == "install" {
						check(t, db.AppendStepOutput(ctx, step, []byte(fmt.Sprintf("installing %d\n", id))))
					}
					check(t, db.FinishStep(ctx, step, store.StepSucceeded, nil, ""))
				}
				clk.Advance(time.Duration(1+(n*37)%600) * time.Second)
				status := statuses[(d*3+i*2+j)%len(statuses)]
				check(t, db.FinishDeployment(ctx, id, store.Finish{Status: status, NewSHA: sha(n)}))
				if status == store.StatusSucceeded {
					must(db.AddRelease(ctx, store.Release{Target: tg, Name: fmt.Sprintf("r%d", id), SHA: sha(n),
						State: store.ReleaseCurrent, DeploymentID: id}))(t)
				}
			}
		}
	}
	clk.Set(start.Add(time.Duration(days)*day + 7*time.Hour))
}

// statsWindows are the windows whose stats pruning must not change: all
// time, a fraise, a target, a window starting at a midnight before the
// deployments' cutoff, and one starting mid-day after it.
func statsWindows(now time.Time) []store.StatsFilter {
	return []store.StatsFilter{
		{},
		{Fraise: "api"},
		{Fraise: "web", Environment: "staging"},
		{Since: now.Truncate(day).Add(-60 * day)},
		{Since: now.Add(-30*day - 5*time.Hour)},
		{Since: now.Add(-3 * time.Hour)},
	}
}

func statsOf(t *testing.T, db *store.DB, windows []store.StatsFilter) [][]store.Stats {
	t.Helper()
	var out [][]store.Stats
	for _, f := range windows {
		out = append(out, must(db.Stats(context.Background(), f))(t))
	}
	return out
}

// stepsSayRemoved: Steps tells a step whose output retention removed
// (when, and no output) from one that printed nothing or still has it.
func stepsSayRemoved(t *testing.T, db *store.DB, now time.Time) {
	t.Helper()
	var id int64
	if err := db.SQL().QueryRowContext(context.Background(),
		"SELECT deployment_id FROM tb_deployment_step WHERE output_pruned_at IS NOT NULL ORDER BY id LIMIT 1").Scan(&id); err != nil {
		t.Fatalf("a deployment whose output was removed: %v", err)
	}
	for _, st := range must(db.Steps(context.Background(), id))(t) {
		switch st.Name {
		case "install":
			if st.OutputPrunedAt == nil || !st.OutputPrunedAt.Equal(now) || st.Output != "" {
				t.Errorf("deployment %d step %s: output %q, removed at %v; want removed at %s", id, st.Name, st.Output, st.OutputPrunedAt, now)
			}
		default:
			if st.OutputPrunedAt != nil {
				t.Errorf("deployment %d step %s printed nothing, yet its output was removed at %s", id, st.Name, st.OutputPrunedAt)
			}
		}
	}
}
