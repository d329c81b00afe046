package store_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// workload drives a store as fraisier does, on a database that has lived
// a while: the intake (new pushes, redeliveries of deliveries recorded
// long ago and just now, replays under new delivery ids, refused
// deliveries), the queue, a deployment from claim to finish with its
// steps and their output, a failed one and an interrupted one, and the
// reads of the CLI's read commands and of the API. Each call goes through
// do, which notes the method: every exported method of *store.DB is
// either called here or named in offPath, so that a new method of the
// store is a decision, not a blind spot.
type workload struct {
	t      *testing.T
	ctx    context.Context
	db     *store.DB
	called map[string]bool
	n      int // deliveries made so far, for unique ids and commits
	// old is a delivery recorded long before the workload, in the grown
	// history: GitHub's Redeliver button sends such ids.
	old store.WebhookEvent
}

// offPath are the methods of *store.DB not on the intake, queue, deploy
// or read paths: no query of theirs runs while fraisier serves.
var offPath = map[string]string{
	"Backend":         "no SQL",
	"Options":         "no SQL",
	"SQL":             "the handle itself",
	"Close":           "no query",
	"Checkpoint":      "a PRAGMA, no table read",
	"StepsChanged":    "no SQL: a channel the live log waits on",
	"SchemaVersion":   "one read of tb_schema_migrations at open",
	"RebuildStats":    "a repair that reads every deployment on purpose",
	"PruneOutbox":     "retention of the outbox: an hourly background pass, in batches of 200, that reads only the messages it removes (ix_outbox_done)",
	"Listen":          "its own connection: LISTEN, no table read",
	"ResumeRollout":   "an operator's resume: one rollout by id and its steps (ix_deployment_rollout), as AdvanceRollouts reads them",
	"RolloutVerified": "a canary's health check, once per rollout: one rollout by id and its steps, as AdvanceRollouts reads them",
	"Releases":        "a target's whole release history, for a rollback's choice and crash recovery: an operator's command or a recovery reads it on purpose; a deployment looks one release up (Release), fraisier releases the newest (RecentReleases)",
}

func newWorkload(t *testing.T, db *store.DB, old store.WebhookEvent) *workload {
	return &workload{t: t, ctx: context.Background(), db: db, called: map[string]bool{}, old: old}
}

// do runs one call of method, failing the test on its error.
func (w *workload) do(method string, f func() error) {
	w.t.Helper()
	w.called[method] = true
	if err := f(); err != nil {
		w.t.Fatalf("workload: %s: %v", method, err)
	}
}

// checkCoverage fails the test if an exported method of *store.DB is
// neither called by the workload nor listed in offPath.
func (w *workload) checkCoverage() {
	w.t.Helper()
	var missing []string
	typ := reflect.TypeOf(w.db)
	for i := range typ.NumMethod() {
		m := typ.Method(i).Name
		if _, off := offPath[m]; !off && !w.called[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		w.t.Errorf("the workload calls no %s: call each in workload_test.go, or name it in offPath with why its queries never run on a grown database's hot paths",
			strings.Join(missing, ", "))
	}
}

func (w *workload) run() {
	w.intake()
	w.checks()
	w.queue()
	w.deploy()
	w.reads()
	w.rollouts()
	w.tokens()
	w.outbox()
	w.checkCoverage()
}

// tokens: the deploy API's tokens. Every API call authenticates one; an
// operator creates, lists and revokes them.
func (w *workload) tokens() {
	scope, err := store.ParseScope("deploy:api/production")
	if err != nil {
		w.t.Fatal(err)
	}
	var secret string
	w.do("CreateAPIToken", func() (err error) {
		_, secret, err = w.db.CreateAPIToken(w.ctx, "ci", []store.Scope{scope})
		return err
	})
	w.do("AuthenticateAPIToken", func() error { _, err := w.db.AuthenticateAPIToken(w.ctx, secret); return err })
	w.do("APITokens", func() error { _, err := w.db.APITokens(w.ctx); return err })
	w.do("RevokeAPIToken", func() error { _, err := w.db.RevokeAPIToken(w.ctx, "ci"); return err })
}

var (
	apiProd = store.Target{Fraise: "api", Environment: "production"}
	webStag = store.Target{Fraise: "web", Environment: "staging"}
)

// push is the next delivery: a push of a commit of its own to t.
func (w *workload) push(t store.Target) store.Intake {
	w.n++
	sha := fmt.Sprintf("%040x", 0xfeed0000+w.n)
	e := store.WebhookEvent{Forge: "github", DeliveryID: fmt.Sprintf("workload-%d", w.n), EventType: "push",
		Repository: "acme/" + t.Fraise, Ref: "refs/heads/" + t.Environment, SHA: sha, Sender: "ada",
		Outcome: store.OutcomeAccepted, RemoteAddr: "192.0.2.7"}
	return store.Intake{Event: e, Requests: []store.QueueRequest{{Target: t, SHA: sha, Ref: e.Ref,
		Trigger: store.TriggerWebhook, Actor: "ada via github"}}}
}

var reportsProd = store.Target{Fraise: "reports", Environment: "production"}

// ordered is the next delivery: a push to api/production whose
// reports/production request runs after api's.
func (w *workload) ordered() store.Intake {
	it := w.push(apiProd)
	r := it.Requests[0]
	r.Target, r.After = reportsProd, []store.Target{apiProd}
	it.Requests = append(it.Requests, r)
	return it
}

func (w *workload) record(items ...store.Intake) []store.IntakeResult {
	w.t.Helper()
	var res []store.IntakeResult
	w.do("RecordIntake", func() (err error) {
		res, err = w.db.RecordIntake(w.ctx, items)
		return err
	})
	return res
}

func (w *workload) intake() {
	w.do("Ping", func() error { return w.db.Ping(w.ctx) })
	first, second, other := w.push(apiProd), w.push(apiProd), w.push(webStag)
	ignored := w.push(webStag)
	ignored.Requests, ignored.Event.Outcome, ignored.Event.Reason = nil, store.OutcomeIgnored, "branch not deployed"
	refused := store.Intake{Event: store.WebhookEvent{Forge: "github", EventType: "push", Outcome: store.OutcomeRejected,
		Reason: "bad signature", RemoteAddr: "198.51.100.9"}}
	// A burst: two pushes for one target fold, one for another, an
	// ignored delivery, a refused one without a delivery id.
	res := w.record(first, second, other, ignored, refused)
	// A push whose reports environment runs after its api (after:,
	// shares_code_with): both queued, reports waiting for api.
	w.record(w.ordered())
	// Redeliveries, alone and in a batch: of the burst's deliveries, of
	// one recorded long ago, and one twice in the same batch.
	w.record(second)
	w.record(first, ignored, store.Intake{Event: w.old})
	again := w.push(webStag)
	w.record(again, again)
	// A replay: the same push under a new delivery id.
	replay := second
	replay.Event.DeliveryID = "workload-replay"
	w.record(replay)

	// The single-delivery path, new and redelivered.
	single := w.push(webStag).Event
	var ev store.WebhookEvent
	w.do("RecordWebhook", func() (err error) {
		ev, _, err = w.db.RecordWebhook(w.ctx, single)
		return err
	})
	w.do("RecordWebhook", func() error { _, _, err := w.db.RecordWebhook(w.ctx, single); return err })
	w.do("SetWebhookOutcome", func() error {
		return w.db.SetWebhookOutcome(w.ctx, ev.ID, store.OutcomeIgnored, "no environment follows this branch")
	})
	if len(res[0].Queued) > 0 {
		w.do("LinkWebhook", func() error { return w.db.LinkWebhook(w.ctx, ev.ID, res[0].Queued[0].DeploymentID) })
	}
}

func (w *workload) queue() {
	sha := func() string { w.n++; return fmt.Sprintf("%040x", 0xbeef0000+w.n) }
	worker := store.Target{Fraise: "worker", Environment: "production"}
	w.do("Enqueue", func() error {
		_, err := w.db.Enqueue(w.ctx, store.QueueRequest{Target: worker, SHA: sha(), Ref: "refs/heads/main",
			Trigger: store.TriggerCLI, Actor: "bob"})
		return err
	})
	w.do("EnqueueIfIdle", func() error {
		_, _, err := w.db.EnqueueIfIdle(w.ctx, store.QueueRequest{Target: worker, SHA: sha(), Ref: "refs/heads/main",
			Trigger: store.TriggerPoll, Actor: "fraisier"})
		return err
	})
	w.do("EnqueueIfIdle", func() error {
		_, _, err := w.db.EnqueueIfIdle(w.ctx, store.QueueRequest{Target: store.Target{Fraise: "mailer", Environment: "dev"},
			SHA: sha(), Ref: "refs/heads/main", Trigger: store.TriggerSchedule, Actor: "fraisier"})
		return err
	})
	w.do("QueuedDeployments", func() error { _, err := w.db.QueuedDeployments(w.ctx); return err })
	w.do("SettleQueue", func() error { _, err := w.db.SettleQueue(w.ctx); return err })
	w.do("RunningDeployments", func() error { _, err := w.db.RunningDeployments(w.ctx); return err })
}

// deploy runs the queued request of api/production as the queue's worker
// and the engine do, then a CLI deployment that fails and is rolled back,
// and one whose process dies.
func (w *workload) deploy() {
	var queued []store.Deployment
	w.do("QueuedDeployments", func() (err error) {
		queued, err = w.db.QueuedDeployments(w.ctx)
		return err
	})
	var id int64
	for _, d := range queued {
		if d.Target == apiProd {
			id = d.ID
		}
	}
	if id == 0 {
		w.t.Fatalf("workload: nothing queued for %s: %+v", apiProd, queued)
	}
	lock := store.Lock{Target: apiProd, Owner: "serve-1", Host: "deploy-1", PID: 4242, Reason: "deploy"}
	w.do("AcquireLock", func() error {
		_, err := w.db.AcquireLock(w.ctx, lock, time.Minute, func(store.Lock) bool { return false })
		return err
	})
	var d store.Deployment
	w.do("ClaimQueued", func() (err error) {
		d, err = w.db.ClaimQueued(w.ctx, id, store.Claim{Host: "deploy-1", PID: 4242})
		return err
	})
	w.engineReads(apiProd)
	w.do("SetDeploymentTarget", func() error { return w.db.SetDeploymentTarget(w.ctx, id, d.NewSHA) })
	w.do("SetDeploymentRestart", func() error { return w.db.SetDeploymentRestart(w.ctx, id, "blue_green", "green") })
	w.steps(id)
	release := "20261206-120000-" + d.NewSHA[:7]
	w.do("AddRelease", func() error {
		_, err := w.db.AddRelease(w.ctx, store.Release{Target: apiProd, Name: release, SHA: d.NewSHA,
			Path: "/srv/api/releases/" + release, DeploymentID: id})
		return err
	})
	w.do("SetReleaseRevision", func() error { return w.db.SetReleaseRevision(w.ctx, apiProd, release, "0042") })
	w.do("SetReleaseState", func() error { return w.db.SetReleaseState(w.ctx, apiProd, release, store.ReleaseCurrent) })
	w.do("RefreshLock", func() error { return w.db.RefreshLock(w.ctx, apiProd, lock.Owner, time.Minute) })
	// Its code runs in reports/production too, which follows it.
	w.do("FinishFollowed", func() error {
		_, err := w.db.FinishFollowed(w.ctx, id, store.Finish{Status: store.StatusSucceeded, Release: release},
			[]store.QueueRequest{{Target: reportsProd, SHA: d.NewSHA, Ref: d.RequestedRef, Trigger: store.TriggerWebhook, Actor: d.Actor}})
		return err
	})
	w.do("ReleaseLock", func() error { return w.db.ReleaseLock(w.ctx, apiProd, lock.Owner) })
	w.do("SettleQueue", func() error { _, err := w.db.SettleQueue(w.ctx); return err })

	// From the CLI: a deployment that fails its health check, rolls back,
	// and one that breaks the target, then one that restores it.
	for _, status := range []store.Status{store.StatusRolledBack, store.StatusRollbackFailed, store.StatusSucceeded} {
		id := w.start(webStag)
		w.steps(id)
		w.do("FinishDeployment", func() error {
			return w.db.FinishDeployment(w.ctx, id, store.Finish{Status: status, Error: "health check: 503"})
		})
	}
	// Recovery after a crash: the dead process's deployment and lock.
	dead := w.start(store.Target{Fraise: "billing", Environment: "production"})
	w.do("MarkInterrupted", func() error { return w.db.MarkInterrupted(w.ctx, dead, "deploying process died") })
	w.do("AcquireLock", func() error {
		_, err := w.db.AcquireLock(w.ctx, store.Lock{Target: webStag, Owner: "cli-9", Host: "deploy-1", PID: 99},
			time.Minute, func(store.Lock) bool { return true })
		return err
	})
	w.do("ForceUnlock", func() error { _, err := w.db.ForceUnlock(w.ctx, webStag, "operator"); return err })
	w.do("PutJobState", func() error {
		return w.db.PutJobState(w.ctx, store.JobState{Target: apiProd, Job: "nightly", UnitHash: "abc", LastResult: "success"})
	})
}

// start records a running deployment of t started from the CLI.
func (w *workload) start(t store.Target) int64 {
	w.n++
	var id int64
	w.do("StartDeployment", func() (err error) {
		id, err = w.db.StartDeployment(w.ctx, store.Deployment{Target: t, Trigger: store.TriggerCLI, Actor: "carol",
			RequestedRef: "main", NewSHA: fmt.Sprintf("%040x", 0xcafe0000+w.n), Host: "deploy-1", PID: 777})
		return err
	})
	return id
}

// engineReads are what the engine reads before it deploys to t.
func (w *workload) engineReads(t store.Target) {
	w.do("FraiseStates", func() error { _, err := w.db.FraiseStates(w.ctx, t.Fraise, t.Environment); return err })
	w.do("Restarts", func() error { _, err := w.db.Restarts(w.ctx, t.Fraise, t.Environment); return err })
	w.do("Release", func() error {
		rs, err := w.db.RecentReleases(w.ctx, t, 1)
		if err != nil || len(rs) == 0 {
			return err
		}
		_, err = w.db.Release(w.ctx, t, rs[0].Name)
		return err
	})
	w.do("Deployments", func() error {
		_, err := w.db.Deployments(w.ctx, store.DeploymentFilter{Fraise: t.Fraise, Environment: t.Environment,
			Status: store.StatusSucceeded, Limit: 1})
		return err
	})
}

// steps records a deployment's steps as the engine does: each started,
// its output appended in chunks (more than is kept, for one), finished.
func (w *workload) steps(id int64) {
	for i, name := range []string{"fetch", "build", "switch"} {
		var step int64
		w.do("StartStep", func() (err error) {
			step, err = w.db.StartStep(w.ctx, id, name)
			return err
		})
		chunk := []byte(strings.Repeat(name+" output line\n", 1+i*2000))
		for range 3 {
			w.do("AppendStepOutput", func() error { return w.db.AppendStepOutput(w.ctx, step, chunk) })
		}
		code := 0
		w.do("FinishStep", func() error { return w.db.FinishStep(w.ctx, step, store.StepSucceeded, &code, "") })
	}
}

// reads are those of history, show, webhooks, stats, status, releases,
// locks and jobs, with their filters, and of the API.
func (w *workload) reads() {
	now := time.Now()
	var newest []store.Deployment
	for _, f := range []store.DeploymentFilter{
		{}, {Fraise: "billing"}, {Fraise: "billing", Environment: "production"}, {Environment: "dev"},
		{Status: store.StatusRollbackFailed}, {Status: store.StatusRunning}, {Status: store.StatusQueued},
		{Fraise: "auth", Status: store.StatusRolledBack}, {Environment: "staging", Status: store.StatusFailed},
		{Fraise: "api", Environment: "production", Status: store.StatusInterrupted},
		{Fraise: "nope"}, {Since: now.Add(-time.Hour)}, {Limit: 200}, {BeforeID: 5000, Limit: 50},
	} {
		w.do("Deployments", func() (err error) {
			newest, err = w.db.Deployments(w.ctx, f)
			return err
		})
	}
	w.do("Deployments", func() (err error) { newest, err = w.db.Deployments(w.ctx, store.DeploymentFilter{}); return err })
	for _, d := range newest[:min(3, len(newest))] {
		w.do("Deployment", func() error { _, err := w.db.Deployment(w.ctx, d.ID); return err })
		w.do("Steps", func() error { _, err := w.db.Steps(w.ctx, d.ID); return err })
	}
	for _, f := range []store.WebhookFilter{
		{}, {Forge: "gitlab"}, {Outcome: store.OutcomeRejected}, {Outcome: store.OutcomeAccepted}, {Fraise: "api"},
		{Forge: "github", Outcome: store.OutcomeDuplicate}, {BeforeID: 5000, Limit: 50}, {Fraise: "nope"},
	} {
		w.do("Webhooks", func() error { _, err := w.db.Webhooks(w.ctx, f); return err })
	}
	for _, f := range []store.StatsFilter{
		{}, {Fraise: "api"}, {Fraise: "api", Environment: "production"}, {Since: now.Add(-7 * 24 * time.Hour)},
		{Fraise: "web", Environment: "staging", Since: now.Add(-36 * time.Hour)},
	} {
		w.do("Stats", func() error { _, err := w.db.Stats(w.ctx, f); return err })
	}
	month := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -29)
	for _, f := range []store.DailyFilter{
		{StatsFilter: store.StatsFilter{Since: month}}, {StatsFilter: store.StatsFilter{Since: month, Environment: "production"}, Durations: true},
		{StatsFilter: store.StatsFilter{Since: month, Fraise: "api", Environment: "production"}, Durations: true},
	} {
		w.do("DailyStats", func() error { _, err := w.db.DailyStats(w.ctx, f); return err })
	}
	w.do("FraiseStates", func() error { _, err := w.db.FraiseStates(w.ctx, "", ""); return err })
	w.do("Restarts", func() error { _, err := w.db.Restarts(w.ctx, "", ""); return err })
	w.do("RecentReleases", func() error {
		_, err := w.db.RecentReleases(w.ctx, store.Target{Fraise: "web", Environment: "staging"}, 51)
		return err
	})
	w.do("Locks", func() error { _, err := w.db.Locks(w.ctx); return err })
	w.do("LockEvents", func() error { _, err := w.db.LockEvents(w.ctx, webStag, 20); return err })
	w.do("JobStates", func() error { _, err := w.db.JobStates(w.ctx, "", ""); return err })
}

// outbox is fraisier serve's notification sender: messages queued as a
// deployment ends, claimed, attempted, listed by fraisier notifications,
// counted for /metrics, and pruned.
func (w *workload) outbox() {
	dep := int64(1)
	var ids []int64
	w.do("EnqueueOutbox", func() (err error) {
		ids, err = w.db.EnqueueOutbox(w.ctx,
			store.OutboxMessage{Kind: store.OutboxNotification, Target: "team", Event: "failed", DeploymentID: &dep, Payload: `{"version":1}`},
			store.OutboxMessage{Kind: store.OutboxForgeStatus, Target: "github", Payload: `{"state":"pending"}`})
		return err
	})
	w.do("ClaimOutbox", func() error { _, err := w.db.ClaimOutbox(w.ctx, store.OutboxNotification, 16, time.Minute); return err })
	w.do("RecordOutboxAttempt", func() error {
		return w.db.RecordOutboxAttempt(w.ctx, ids[0], store.OutboxAttempt{Outcome: store.OutboxFailed, HTTPStatus: 503,
			Error: "the receiver answered 503", Next: time.Now().Add(time.Minute)})
	})
	for _, f := range []store.OutboxFilter{{Kind: store.OutboxNotification},
		{Kind: store.OutboxNotification, States: []store.OutboxState{store.OutboxFailed, store.OutboxGivenUp}}} {
		w.do("Outbox", func() error { _, err := w.db.Outbox(w.ctx, f); return err })
	}
	w.do("OutboxAttempts", func() error { _, err := w.db.OutboxAttempts(w.ctx, ids[0]); return err })
	w.do("OutboxCounts", func() error { _, err := w.db.OutboxCounts(w.ctx, store.OutboxNotification); return err })
}

// rollouts: nodes heartbeat; pushes to an environment with hosts become
// rollouts (the second waits behind the first, the third supersedes it);
// each host's node lists and runs its steps; every node advances the
// rollouts; the views read them.
func (w *workload) rollouts() {
	shop := store.Target{Fraise: "shop", Environment: "production"}
	hosts := []string{"web-1", "web-2"}
	for _, h := range hosts {
		w.do("Heartbeat", func() error { return w.db.Heartbeat(w.ctx, store.Node{Name: h, Hostname: h, PID: 1, Version: "1"}) })
	}
	var first int64
	for i := range 3 {
		it := w.push(shop)
		it.Requests[0].Rollout = &store.RolloutPolicy{Hosts: hosts}
		if res := w.record(it); i == 0 {
			first = res[0].Queued[0].RolloutID
		}
	}
	advance := func() {
		w.do("AdvanceRollouts", func() error {
			now := time.Now()
			_, err := w.db.AdvanceRollouts(w.ctx, now, now.Add(-time.Hour))
			return err
		})
	}
	for _, h := range hosts {
		var queued []store.Deployment
		w.do("QueuedDeploymentsFor", func() (err error) { queued, err = w.db.QueuedDeploymentsFor(w.ctx, h); return err })
		for _, d := range queued {
			if d.Node != h {
				continue
			}
			w.do("ClaimQueued", func() error {
				_, err := w.db.ClaimQueued(w.ctx, d.ID, store.Claim{Host: h, PID: 1})
				return err
			})
			w.do("FinishDeployment", func() error {
				return w.db.FinishDeployment(w.ctx, d.ID, store.Finish{Status: store.StatusSucceeded, Release: "r1"})
			})
		}
		advance()
	}
	w.do("Rollout", func() error {
		r, err := w.db.Rollout(w.ctx, first)
		if err == nil && r.Status != store.RolloutSucceeded {
			err = fmt.Errorf("rollout %d is %s (%s), want succeeded", first, r.Status, r.Error)
		}
		return err
	})
	w.do("Rollouts", func() error {
		_, err := w.db.Rollouts(w.ctx, store.RolloutFilter{Target: shop, Active: true})
		return err
	})
	w.do("Rollouts", func() error { _, err := w.db.Rollouts(w.ctx, store.RolloutFilter{Limit: 20}); return err })
	w.do("Nodes", func() error { _, err := w.db.Nodes(w.ctx); return err })
	for _, h := range hosts {
		w.do("RecordHostHealth", func() error {
			t := store.Target{Fraise: shop.Fraise, Environment: shop.Environment + "@" + h}
			return w.db.RecordHostHealth(w.ctx, store.HostHealth{Target: t, Node: h, Healthy: true})
		})
	}
	w.do("HostHealth", func() error { _, err := w.db.HostHealth(w.ctx); return err })
}
