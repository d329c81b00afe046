package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

// Run runs the suite. open must return a new, empty database each time it
// is called and close it when the test ends.
func Run(t *testing.T, open func(t *testing.T) *store.DB) {
	RunOnly(t, open)
}

// RunOnly runs the named tests of the suite, or all of them when none is
// named.
func RunOnly(t *testing.T, open func(t *testing.T) *store.DB, names ...string) {
	s := &suite{open: open}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Migrations", s.testMigrations},
		{"SchemaTooNew", s.testSchemaTooNew},
		{"ReadOnly", s.testReadOnly},
		{"DeploymentLifecycle", s.testDeploymentLifecycle},
		{"DeploymentTarget", s.testDeploymentTarget},
		{"NotFound", s.testNotFound},
		{"FinishValidation", s.testFinishValidation},
		{"StateTransitions", s.testStateTransitions},
		{"Queued", s.testQueued},
		{"QueueSupersedes", s.testQueueSupersedes},
		{"QueueDuplicateDelivery", s.testQueueDuplicateDelivery},
		{"QueueReplay", s.testQueueReplay},
		{"QueueClaim", s.testQueueClaim},
		{"QueueConcurrentIntake", s.testQueueConcurrentIntake},
		{"QueueIntakeVsClaim", s.testQueueIntakeVsClaim},
		{"QueueConcurrentTakeover", s.testQueueConcurrentTakeover},
		{"QueuePartTakenOver", s.testQueuePartTakenOver},
		{"OrderWaits", s.testOrderWaits},
		{"OrderTakeover", s.testOrderTakeover},
		{"OrderSeveralNodes", s.testOrderSeveralNodes},
		{"OrderNoDeadlock", s.testOrderNoDeadlock},
		{"FinishFollowed", s.testFinishFollowed},
		{"DeploymentFilters", s.testDeploymentFilters},
		{"Steps", s.testSteps},
		{"StepOutputCap", s.testStepOutputCap},
		{"Webhooks", s.testWebhooks},
		{"Releases", s.testReleases},
		{"ReleaseRevision", s.testReleaseRevision},
		{"Locks", s.testLocks},
		{"ConcurrentLockers", s.testConcurrentLockers},
		{"ConcurrentWriters", s.testConcurrentWriters},
		{"Interrupted", s.testInterrupted},
		{"JobStates", s.testJobStates},
		{"Stats", s.testStats},
		{"StatsSinceSplitsDay", s.testStatsSinceSplitsDay},
		{"RebuildStats", s.testRebuildStats},
		{"Retention", s.testRetention},
		{"RetentionStatsWindow", s.testRetentionStatsWindow},
		{"RetentionKeepsByDefault", s.testRetentionKeepsByDefault},
		{"RetentionConcurrent", s.testRetentionConcurrent},
	}
	ran := 0
	for _, tc := range tests {
		if len(names) > 0 && !slices.Contains(names, tc.name) {
			continue
		}
		ran++
		t.Run(tc.name, tc.fn)
	}
	if ran == 0 {
		t.Fatalf("no test of the suite is named %q", names)
	}
}

type suite struct {
	open func(t *testing.T) *store.DB
}

// clock is the injected clock the suite moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// epoch is an arbitrary fixed time most tests start their clock at.
var epoch = time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)

// reopen closes db and opens the same database again with opts changed.
func reopen(t *testing.T, db *store.DB, change func(*store.Options)) (*store.DB, error) {
	t.Helper()
	opts := db.Options()
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if change != nil {
		change(&opts)
	}
	db2, err := store.Open(context.Background(), opts)
	if err == nil {
		t.Cleanup(func() { db2.Close() })
	}
	return db2, err
}

// fresh is a new database on a clock the test controls, set to epoch.
func (s *suite) fresh(t *testing.T) (*store.DB, *clock) {
	t.Helper()
	clk := &clock{now: epoch}
	db, err := reopen(t, s.open(t), func(o *store.Options) { o.Now = clk.Now })
	if err != nil {
		t.Fatalf("reopen with a test clock: %v", err)
	}
	return db, clk
}

func sha(n int) string { return fmt.Sprintf("%040x", n) }

var (
	api  = store.Target{Fraise: "api", Environment: "production"}
	web  = store.Target{Fraise: "web", Environment: "staging"}
	apiS = store.Target{Fraise: "api", Environment: "staging"}
)

// must(f())(t) is f's value, or the end of the test if f failed.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// deploy runs one deployment of t from start to finish: it starts now,
// lasts d and ends as status with new commit n.
func deploy(t *testing.T, db *store.DB, clk *clock, tg store.Target, n int, d time.Duration, status string) int64 {
	t.Helper()
	ctx := context.Background()
	id := must(db.StartDeployment(ctx, store.Deployment{
		Target: tg, Trigger: store.TriggerCLI, Actor: "alice", RequestedRef: "main",
		NewSHA: sha(n), Release: fmt.Sprintf("r%d", n), Host: "h1", PID: 42,
	}))(t)
	clk.Advance(d)
	check(t, db.FinishDeployment(ctx, id, store.Finish{Status: status}))
	return id
}

func (s *suite) testMigrations(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	have, known, err := db.SchemaVersion(ctx)
	check(t, err)
	if have != known || known < 1 {
		t.Fatalf("schema version %d, binary knows %d", have, known)
	}
	id := deploy(t, db, clk, api, 1, time.Second, store.StatusSucceeded)
	for range 2 {
		db, err = reopen(t, db, nil)
		check(t, err)
	}
	again, _, err := db.SchemaVersion(ctx)
	check(t, err)
	if again != have {
		t.Errorf("schema version after reopening: %d, want %d", again, have)
	}
	var applied int
	check(t, db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM tb_schema_migrations").Scan(&applied))
	if applied != known {
		t.Errorf("%d migrations recorded, want %d", applied, known)
	}
	d := must(db.Deployment(ctx, id))(t)
	if d.Status != store.StatusSucceeded {
		t.Errorf("deployment after reopening: %+v", d)
	}
	if db.Backend() != "sqlite" && db.Backend() != "postgres" {
		t.Errorf("Backend() = %q", db.Backend())
	}
	check(t, db.Ping(ctx))
}

func (s *suite) testSchemaTooNew(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	_, known, err := db.SchemaVersion(ctx)
	check(t, err)
	if _, err := db.SQL().ExecContext(ctx, fmt.Sprintf(
		"INSERT INTO tb_schema_migrations (version, applied_at) VALUES (%d, 0)", known+4)); err != nil {
		t.Fatal(err)
	}
	_, err = reopen(t, db, nil)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("reopen: %v, want ErrSchemaTooNew", err)
	}
	var sv *store.SchemaVersionError
	if !errors.As(err, &sv) || sv.Have != known+4 || sv.Known != known {
		t.Fatalf("reopen: %v, want a SchemaVersionError{%d, %d}", err, known+4, known)
	}
	want := fmt.Sprintf("state database schema version %d is newer than this fraisier (knows up to %d): upgrade fraisier or point --state elsewhere", known+4, known)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func (s *suite) testReadOnly(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	deploy(t, db, clk, api, 1, time.Second, store.StatusSucceeded)
	ro, err := reopen(t, db, func(o *store.Options) { o.ReadOnly = true })
	check(t, err)
	ds := must(ro.Deployments(ctx, store.DeploymentFilter{}))(t)
	if len(ds) != 1 {
		t.Fatalf("read-only: %d deployments, want 1", len(ds))
	}
	if _, err := ro.StartDeployment(ctx, store.Deployment{Target: api}); err == nil {
		t.Error("read-only database accepted a write")
	}
}

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

func second[T any](_ T, err error) error { return err }

// snapshot is every row of the tables a write could touch, for "nothing
// changed" checks.
func snapshot(t *testing.T, db *store.DB, tables ...string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := db.SQL().QueryContext(ctx, "SELECT * FROM "+table)
		check(t, err)
		cols, err := rows.Columns()
		check(t, err)
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			check(t, rows.Scan(ptrs...))
			var b strings.Builder
			for i, v := range vals {
				if b2, ok := v.([]byte); ok {
					v = string(b2)
				}
				fmt.Fprintf(&b, "%s=%v ", cols[i], v)
			}
			lines = append(lines, b.String())
		}
		check(t, rows.Err())
		rows.Close()
		sort.Strings(lines)
		out[table] = lines
	}
	return out
}

var derivedTables = []string{"tb_fraise_state", "tb_stats_cumulative"}

// Derived is every row of the tables RebuildStats derives, as text, for
// comparing them before and after.
func Derived(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	return snapshot(t, db, derivedTables...)
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
	for _, st := range []string{store.StatusRunning, store.StatusQueued, "", "bogus"} {
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
		status     string
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
		name := tc.status
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
	byStatus := map[string][]int64{}
	statuses := []string{store.StatusSucceeded, store.StatusFailed, store.StatusSucceeded, store.StatusRolledBack}
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

	small := must(db.StartStep(ctx, id, "small"))(t)
	check(t, db.AppendStepOutput(ctx, small, []byte("ok")))
	if got := must(db.Steps(ctx, id))(t)[1]; got.Truncated || got.Output != "ok" {
		t.Errorf("small output: %q truncated=%v", got.Output, got.Truncated)
	}
	big := must(db.StartStep(ctx, id, "big"))(t)
	check(t, db.AppendStepOutput(ctx, big, bytes.Repeat([]byte("x"), store.StepOutputCap+10)))
	if got := must(db.Steps(ctx, id))(t)[2]; !got.Truncated || len(got.Output) != store.StepOutputCap {
		t.Errorf("one oversized chunk: %d bytes, truncated=%v", len(got.Output), got.Truncated)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func (s *suite) testWebhooks(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
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

	check(t, db.SetWebhookOutcome(ctx, gitlab.ID, store.OutcomeSuperseded, "newer push"))
	d1 := must(db.StartDeployment(ctx, store.Deployment{Target: api, WebhookID: &first.ID}))(t)
	d2 := must(db.StartDeployment(ctx, store.Deployment{Target: web}))(t)
	check(t, db.LinkWebhook(ctx, first.ID, d2))
	check(t, db.LinkWebhook(ctx, first.ID, d2)) // twice is harmless
	check(t, db.LinkWebhook(ctx, gitlab.ID, d2))
	if err := db.LinkWebhook(ctx, first.ID, 99999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("link to an unknown deployment: %v, want ErrNotFound", err)
	}

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

func (s *suite) testLocks(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	alive := func(store.Lock) bool { return false }
	mine := store.Lock{Target: api, Owner: "deploy-1", Host: "h1", PID: 100, Reason: "deploy abc"}
	prev, err := db.AcquireLock(ctx, mine, time.Minute, alive)
	check(t, err)
	if prev != (store.Lock{}) {
		t.Errorf("first acquire reported a previous holder: %+v", prev)
	}
	held := mine
	held.AcquiredAt, held.ExpiresAt = epoch, epoch.Add(time.Minute)
	if diff := cmp.Diff([]store.Lock{held}, must(db.Locks(ctx))(t)); diff != "" {
		t.Errorf("locks (-want +got):\n%s", diff)
	}

	theirs := store.Lock{Target: api, Owner: "deploy-2", Host: "h2", PID: 200}
	_, err = db.AcquireLock(ctx, theirs, time.Minute, alive)
	var le *store.LockedError
	if !errors.Is(err, store.ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("contended acquire: %v, want a LockedError", err)
	}
	if diff := cmp.Diff(held, le.Holder); diff != "" {
		t.Errorf("holder (-want +got):\n%s", diff)
	}
	// Re-acquiring your own lock extends it.
	clk.Advance(30 * time.Second)
	_, err = db.AcquireLock(ctx, mine, time.Minute, alive)
	check(t, err)
	if l := must(db.Locks(ctx))(t)[0]; !l.ExpiresAt.Equal(epoch.Add(90*time.Second)) || !l.AcquiredAt.Equal(epoch) {
		t.Errorf("re-acquired lock: %+v", l)
	}
	check(t, db.RefreshLock(ctx, api, "deploy-1", 2*time.Minute))
	if l := must(db.Locks(ctx))(t)[0]; !l.ExpiresAt.Equal(epoch.Add(150 * time.Second)) {
		t.Errorf("refreshed lock expires %s", l.ExpiresAt)
	}
	if err := db.RefreshLock(ctx, api, "deploy-2", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh by a non-owner: %v, want ErrNotFound", err)
	}
	if err := db.ReleaseLock(ctx, api, "deploy-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("release by a non-owner: %v, want ErrNotFound", err)
	}
	if len(must(db.Locks(ctx))(t)) != 1 {
		t.Fatal("a non-owner's release removed the lock")
	}

	// Expired: taken over, and the previous holder reported.
	clk.Set(epoch.Add(150 * time.Second))
	prev, err = db.AcquireLock(ctx, theirs, time.Minute, alive)
	check(t, err)
	if prev.Owner != "deploy-1" {
		t.Errorf("expiry takeover reported previous holder %+v", prev)
	}
	if err := db.RefreshLock(ctx, api, "deploy-1", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refresh after losing the lock: %v, want ErrNotFound", err)
	}

	// Dead holder: taken over before expiry, when the caller says so.
	var asked store.Lock
	third := store.Lock{Target: api, Owner: "deploy-3", Host: "h2", PID: 300}
	prev, err = db.AcquireLock(ctx, third, time.Minute, func(l store.Lock) bool { asked = l; return l.PID == 200 })
	check(t, err)
	if prev.Owner != "deploy-2" || asked.Owner != "deploy-2" {
		t.Errorf("dead-holder takeover: previous %+v, asked about %+v", prev, asked)
	}
	evs := must(db.LockEvents(ctx, api, 0))(t)
	if len(evs) != 2 || evs[0].Event != store.LockHolderDead || evs[1].Event != store.LockExpired ||
		evs[0].NewOwner != "deploy-3" || evs[1].Lock.Owner != "deploy-1" {
		t.Errorf("lock events: %+v", evs)
	}

	// Another target is independent.
	_, err = db.AcquireLock(ctx, store.Lock{Target: web, Owner: "deploy-1"}, time.Minute, nil)
	check(t, err)
	if got := must(db.Locks(ctx))(t); len(got) != 2 || got[0].Target != api || got[1].Target != web {
		t.Errorf("locks: %+v", got)
	}
	removed := must(db.ForceUnlock(ctx, api, "stuck deploy"))(t)
	if removed.Owner != "deploy-3" {
		t.Errorf("force unlock removed %+v", removed)
	}
	if evs := must(db.LockEvents(ctx, api, 1))(t); len(evs) != 1 || evs[0].Event != store.LockForced || evs[0].Reason != "stuck deploy" {
		t.Errorf("force unlock event: %+v", evs)
	}
	check(t, db.ReleaseLock(ctx, web, "deploy-1"))
	if got := must(db.Locks(ctx))(t); len(got) != 0 {
		t.Errorf("locks left: %+v", got)
	}
	if _, err := db.AcquireLock(ctx, store.Lock{Target: api}, time.Minute, nil); err == nil {
		t.Error("lock without owner accepted")
	}
	if _, err := db.AcquireLock(ctx, store.Lock{Target: api, Owner: "x"}, 0, nil); err == nil {
		t.Error("lock without ttl accepted")
	}
}

func (s *suite) testConcurrentLockers(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	// A second handle on the same database stands for another process.
	opts := db.Options()
	other, err := store.Open(ctx, opts)
	check(t, err)
	t.Cleanup(func() { other.Close() })

	const n = 16
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		won    []string
		lost   int
		others []error
	)
	for i := range n {
		h := db
		if i%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("owner-%d", i)
			_, err := h.AcquireLock(ctx, store.Lock{Target: api, Owner: owner, PID: i}, time.Hour, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, owner)
			case errors.Is(err, store.ErrLocked):
				lost++
			default:
				others = append(others, err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || lost != n-1 || len(others) != 0 {
		t.Fatalf("won by %v, %d lost, errors %v; want exactly one winner", won, lost, others)
	}
	if l := must(db.Locks(ctx))(t); len(l) != 1 || l[0].Owner != won[0] {
		t.Errorf("lock held by %+v, winner %s", l, won[0])
	}
}

func (s *suite) testConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	db, _ := s.fresh(t)
	other, err := store.Open(ctx, db.Options())
	check(t, err)
	t.Cleanup(func() { other.Close() })

	const writers, each = 8, 50
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		h := db
		if w%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg := store.Target{Fraise: fmt.Sprintf("f%d", w%4), Environment: "production"}
			for i := range each {
				id, err := h.StartDeployment(ctx, store.Deployment{Target: tg, NewSHA: sha(w*1000 + i)})
				if err != nil {
					errs <- err
					return
				}
				step, err := h.StartStep(ctx, id, "run")
				if err == nil {
					err = h.AppendStepOutput(ctx, step, []byte("ok\n"))
				}
				if err == nil {
					err = h.FinishStep(ctx, step, store.StepSucceeded, nil, "")
				}
				if err == nil {
					err = h.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	st := must(db.Stats(ctx, store.StatsFilter{}))(t)
	if st[0].Total != writers*each || st[0].ByStatus[store.StatusSucceeded] != writers*each {
		t.Errorf("stats count %d deployments, want %d", st[0].Total, writers*each)
	}
	if ds := must(db.Deployments(ctx, store.DeploymentFilter{Limit: 1000}))(t); len(ds) != writers*each {
		t.Errorf("%d deployments recorded, want %d", len(ds), writers*each)
	}
	if run := must(db.RunningDeployments(ctx))(t); len(run) != 0 {
		t.Errorf("%d deployments left running", len(run))
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

// handMade records a small known history on two targets, one deployment
// every six hours from base, and returns the deployments as recorded.
func handMade(t *testing.T, db *store.DB, clk *clock, base time.Time) []store.Deployment {
	t.Helper()
	ctx := context.Background()
	type step struct {
		tg     store.Target
		status string
		dur    time.Duration
	}
	plan := []step{
		{api, store.StatusSucceeded, 60 * time.Second},
		{api, store.StatusSucceeded, 120 * time.Second},
		{web, store.StatusSucceeded, 30 * time.Second},
		{api, store.StatusFailed, 30 * time.Second},
		{api, store.StatusRolledBack, 90 * time.Second}, // incident, restored in 90 s
		{web, store.StatusSucceeded, 45 * time.Second},
		{api, store.StatusSucceeded, 100 * time.Second},
		{api, store.StatusRollbackFailed, 200 * time.Second}, // incident opens
		{api, store.StatusFailed, 10 * time.Second},          // still broken
		{web, store.StatusRolledBack, 60 * time.Second},      // incident, restored in 60 s
		{api, store.StatusRollbackFailed, 20 * time.Second},  // part of the open incident
		{api, store.StatusSucceeded, 50 * time.Second},       // restores api
		{api, store.StatusSkipped, time.Second},
		{api, store.StatusSuperseded, 500 * time.Millisecond},
		{api, store.StatusInterrupted, 40 * time.Second},
	}
	var ids []int64
	for i, p := range plan {
		clk.Set(base.Add(time.Duration(i) * 6 * time.Hour))
		st := store.StatusRunning
		if p.status == store.StatusSuperseded {
			st = store.StatusQueued
		}
		id := must(db.StartDeployment(ctx, store.Deployment{Target: p.tg, Status: st, NewSHA: sha(i + 1), Actor: "alice"}))(t)
		clk.Advance(p.dur)
		if p.status == store.StatusInterrupted {
			check(t, db.MarkInterrupted(ctx, id, "gone"))
		} else {
			check(t, db.FinishDeployment(ctx, id, store.Finish{Status: p.status}))
		}
		ids = append(ids, id)
	}
	var out []store.Deployment
	for _, id := range ids {
		out = append(out, must(db.Deployment(ctx, id))(t))
	}
	return out
}

// expected is a brute-force Stats over recorded deployments: the
// definitions of DB.Stats applied row by row, with exact percentiles.
type expected struct {
	total, measured, sumMS      int64
	byStatus                    map[string]int64
	durations                   []float64
	incidents, restored, restMS int64
	first                       time.Time
}

// reference computes per-target and overall figures for deployments
// finished at or after since. Incidents follow the documented rules, with
// the broken state tracked over the whole history.
func reference(ds []store.Deployment, since time.Time) map[store.Target]*expected {
	out := map[store.Target]*expected{{}: {byStatus: map[string]int64{}}}
	brokenStart := map[store.Target]time.Time{}
	sorted := append([]store.Deployment(nil), ds...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].FinishedAt.Before(*sorted[j].FinishedAt) })
	for _, d := range sorted {
		if d.FinishedAt == nil {
			continue
		}
		var incident, restored, restore int64
		start, broken := brokenStart[d.Target]
		switch d.Status {
		case store.StatusRollbackFailed:
			if !broken {
				incident = 1
				brokenStart[d.Target] = d.StartedAt
			}
		case store.StatusRolledBack, store.StatusSucceeded:
			if broken {
				restored, restore = 1, d.FinishedAt.Sub(start).Milliseconds()
				delete(brokenStart, d.Target)
			} else if d.Status == store.StatusRolledBack {
				incident, restored, restore = 1, 1, d.DurationMS
			}
		}
		if d.FinishedAt.Before(since) {
			continue
		}
		for _, k := range []store.Target{{}, d.Target} {
			e := out[k]
			if e == nil {
				e = &expected{byStatus: map[string]int64{}}
				out[k] = e
			}
			e.total++
			e.byStatus[d.Status]++
			if d.Status != store.StatusSkipped && d.Status != store.StatusSuperseded {
				e.measured++
				e.sumMS += d.DurationMS
				e.durations = append(e.durations, float64(d.DurationMS))
			}
			e.incidents += incident
			e.restored += restored
			e.restMS += restore
			if e.first.IsZero() || d.FinishedAt.Before(e.first) {
				e.first = *d.FinishedAt
			}
		}
	}
	return out
}

func nearestRank(xs []float64, pct int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := (pct*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

// compareStats checks got against the brute-force figures: counts, rates
// and means exactly, percentiles within the stated precision.
func compareStats(t *testing.T, label string, got store.Stats, e *expected, since *time.Time, now time.Time) {
	t.Helper()
	if e == nil {
		e = &expected{byStatus: map[string]int64{}}
	}
	if got.Total != e.total {
		t.Errorf("%s: total %d, want %d", label, got.Total, e.total)
	}
	for _, st := range store.TerminalStatuses() {
		if got.ByStatus[st] != e.byStatus[st] {
			t.Errorf("%s: %s %d, want %d", label, st, got.ByStatus[st], e.byStatus[st])
		}
	}
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	near := func(name string, got, want, rel float64) {
		t.Helper()
		if math.Abs(got-want) > rel*math.Abs(want)+1e-9 {
			t.Errorf("%s: %s %v, want %v (±%g%%)", label, name, got, want, rel*100)
		}
	}
	ok := e.byStatus[store.StatusSucceeded]
	bad := e.byStatus[store.StatusRolledBack] + e.byStatus[store.StatusRollbackFailed]
	near("success rate", got.SuccessRate, ratio(ok, e.measured), 1e-12)
	near("change failure rate", got.ChangeFailureRate, ratio(bad, ok+bad), 1e-12)
	near("mean duration", got.MeanDurationMS, ratio(e.sumMS, e.measured), 1e-12)
	if got.Incidents != e.incidents {
		t.Errorf("%s: incidents %d, want %d", label, got.Incidents, e.incidents)
	}
	near("mean time to restore", got.MeanTimeToRestore, ratio(e.restMS, e.restored), 1e-12)
	for _, p := range []struct {
		name string
		pct  int
		got  float64
	}{{"median", 50, got.MedianDurationMS}, {"p95", 95, got.P95DurationMS}} {
		want := nearestRank(e.durations, p.pct)
		if p.got < want || p.got > want*(1+got.PercentileRelError)+1e-9 {
			t.Errorf("%s: %s %v, want %v to +%g%%", label, p.name, p.got, want, got.PercentileRelError*100)
		}
	}
	if got.PercentileRelError <= 0 || got.PercentileRelError > 0.02 {
		t.Errorf("%s: stated percentile precision %v", label, got.PercentileRelError)
	}
	start := e.first
	if since != nil {
		start = *since
	}
	var perDay float64
	if e.total > 0 {
		perDay = float64(e.total) / math.Max(1, now.Sub(start).Hours()/24)
	}
	near("deploys per day", got.DeploysPerDay, perDay, 1e-9)
}

func (s *suite) testStats(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	// Anchored to the real clock, so that v_deployment_stats, which can
	// only use the database's own clock, agrees with Stats.
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(-5*24*time.Hour + time.Hour)
	ds := handMade(t, db, clk, base)

	// Hand-checked figures for api/production: 12 finished deployments.
	now := time.Now().UTC().Truncate(time.Millisecond) // what the store keeps
	clk.Set(now)
	st := must(db.Stats(ctx, store.StatsFilter{Fraise: "api"}))(t)
	if len(st) != 1 || st[0].Target != api {
		t.Fatalf("stats for fraise api: %+v", st)
	}
	a := st[0]
	wantBy := map[string]int64{
		store.StatusSucceeded: 4, store.StatusFailed: 2, store.StatusRolledBack: 1, store.StatusRollbackFailed: 2,
		store.StatusInterrupted: 1, store.StatusSkipped: 1, store.StatusSuperseded: 1,
	}
	if diff := cmp.Diff(wantBy, a.ByStatus); diff != "" || a.Total != 12 {
		t.Errorf("api by status, total %d (-want +got):\n%s", a.Total, diff)
	}
	// Measured: 60 120 30 90 100 200 10 20 50 40 seconds.
	if a.SuccessRate != 4.0/10 || a.ChangeFailureRate != 3.0/7 || a.MeanDurationMS != 72000 {
		t.Errorf("api success rate %v, change failure rate %v, mean %v; want 0.4, 3/7, 72000",
			a.SuccessRate, a.ChangeFailureRate, a.MeanDurationMS)
	}
	if a.MedianDurationMS < 50000 || a.MedianDurationMS > 51000 || a.P95DurationMS < 200000 || a.P95DurationMS > 204000 {
		t.Errorf("api median %v, p95 %v; want 50000 and 200000 within 2%%", a.MedianDurationMS, a.P95DurationMS)
	}
	// Incidents: the rollback (90 s), and the broken stretch from the start
	// of deployment 8 to the end of deployment 12: 4×6 h + 50 s.
	wantMTTR := (90000.0 + float64((24*time.Hour + 50*time.Second).Milliseconds())) / 2
	if a.Incidents != 2 || a.MeanTimeToRestore != wantMTTR {
		t.Errorf("api incidents %d, MTTR %v; want 2, %v", a.Incidents, a.MeanTimeToRestore, wantMTTR)
	}

	all := must(db.Stats(ctx, store.StatsFilter{}))(t)
	ref := reference(ds, time.Time{})
	if len(all) != 3 || all[0].Target != (store.Target{}) || all[1].Target != api || all[2].Target != web {
		t.Fatalf("stats rows: %+v", all)
	}
	for _, row := range all {
		compareStats(t, "all time "+row.Target.String(), row, ref[row.Target], nil, now)
	}
	if row := must(db.Stats(ctx, store.StatsFilter{Environment: "staging"}))(t); len(row) != 2 || row[1].Target != web {
		t.Errorf("stats for staging: %+v", row)
	} else {
		compareStats(t, "staging", row[0], ref[web], nil, now)
	}
	if rows := must(db.Stats(ctx, store.StatsFilter{Fraise: "nope"}))(t); len(rows) != 0 {
		t.Errorf("stats for an unknown fraise: %+v", rows)
	}

	// The view agrees with Stats.
	rows, err := db.SQL().QueryContext(ctx, `SELECT fraise, environment, finished, succeeded, failed, rolled_back,
		rollback_failed, interrupted, skipped, superseded, success_rate, mean_duration_ms, median_duration_ms,
		p95_duration_ms, deploys_per_day, change_failure_rate, incidents, mean_time_to_restore_ms
		FROM v_deployment_stats`)
	check(t, err)
	n := 0
	for rows.Next() {
		n++
		var (
			v      store.Stats
			counts [8]int64
		)
		v.ByStatus = map[string]int64{}
		check(t, rows.Scan(&v.Fraise, &v.Environment, &counts[0], &counts[1], &counts[2], &counts[3], &counts[4],
			&counts[5], &counts[6], &counts[7], &v.SuccessRate, &v.MeanDurationMS, &v.MedianDurationMS,
			&v.P95DurationMS, &v.DeploysPerDay, &v.ChangeFailureRate, &v.Incidents, &v.MeanTimeToRestore))
		v.Total = counts[0]
		for i, st := range []string{store.StatusSucceeded, store.StatusFailed, store.StatusRolledBack,
			store.StatusRollbackFailed, store.StatusInterrupted, store.StatusSkipped, store.StatusSuperseded} {
			v.ByStatus[st] = counts[i+1]
		}
		var want store.Stats
		for _, row := range all {
			if row.Target == v.Target {
				want = row
			}
		}
		// The view's clock is the database's; ours was read a moment ago.
		if math.Abs(v.DeploysPerDay-want.DeploysPerDay) > 1e-3*want.DeploysPerDay {
			t.Errorf("view %s: deploys per day %v, Stats says %v", v.Target, v.DeploysPerDay, want.DeploysPerDay)
		}
		v.DeploysPerDay, v.PercentileRelError, want.Since = want.DeploysPerDay, want.PercentileRelError, nil
		if diff := cmp.Diff(want, v, cmp.Comparer(func(a, b float64) bool {
			return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(a))
		})); diff != "" {
			t.Errorf("view disagrees with Stats for %s (-Stats +view):\n%s", v.Target, diff)
		}
	}
	check(t, rows.Err())
	if n != 2 {
		t.Errorf("view has %d rows, want 2", n)
	}
}

func (s *suite) testStatsSinceSplitsDay(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	base := epoch.Truncate(24 * time.Hour)
	ds := handMade(t, db, clk, base)
	now := base.Add(10 * 24 * time.Hour)
	clk.Set(now)
	for _, since := range []time.Time{
		base.Add(24*time.Hour + 3*time.Hour), // mid-day: a partial first day
		base.Add(24*time.Hour + 6*time.Hour + 30*time.Second),
		base.Add(48 * time.Hour), // on a day boundary
		base.Add(-time.Hour),     // before everything
		base.Add(9 * 24 * time.Hour),
	} {
		ref := reference(ds, since)
		for _, f := range []store.StatsFilter{{Since: since}, {Since: since, Fraise: "api"}, {Since: since, Environment: "staging"}} {
			rows := must(db.Stats(ctx, f))(t)
			for _, row := range rows {
				if row.Since == nil || !row.Since.Equal(since) {
					t.Errorf("since %s: row says since %v", since, row.Since)
				}
				want := ref[row.Target]
				if row.Target == (store.Target{}) && f.Environment == "staging" {
					want = ref[web]
				}
				compareStats(t, fmt.Sprintf("since %s %+v %s", since.Format(time.RFC3339), f, row.Target), row, want, &since, now)
			}
		}
	}
}

func (s *suite) testRebuildStats(t *testing.T) {
	ctx := context.Background()
	db, clk := s.fresh(t)
	handMade(t, db, clk, epoch.Truncate(24*time.Hour))
	must(db.StartDeployment(ctx, store.Deployment{Target: apiS}))(t) // left running
	clk.Advance(time.Hour)
	for i := range 40 {
		deploy(t, db, clk, []store.Target{api, web, apiS}[i%3], 100+i, time.Duration(i*7919)*time.Millisecond,
			store.TerminalStatuses()[i*5%7])
		clk.Advance(97 * time.Minute)
	}
	tables := append([]string{"tb_deployment"}, derivedTables...)
	incremental := snapshot(t, db, tables...)
	check(t, db.RebuildStats(ctx))
	if diff := cmp.Diff(incremental, snapshot(t, db, tables...)); diff != "" {
		t.Errorf("rebuilt rollups differ from incremental ones (-incremental +rebuilt):\n%s", diff)
	}
	// Repair: damaged rollups come back.
	for _, q := range []string{
		"DELETE FROM tb_stats_cumulative WHERE day % 2 = 0",
		"UPDATE tb_stats_cumulative SET succeeded = succeeded + 5, hist = '[]'",
		"DELETE FROM tb_fraise_state",
		"UPDATE tb_deployment SET incident = 0",
	} {
		_, err := db.SQL().ExecContext(ctx, q)
		check(t, err)
	}
	check(t, db.RebuildStats(ctx))
	if diff := cmp.Diff(incremental, snapshot(t, db, tables...)); diff != "" {
		t.Errorf("repaired rollups differ (-incremental +rebuilt):\n%s", diff)
	}

	// A clock set back two days: the finish lands before days already
	// rolled up, which must count it too.
	before := must(db.Stats(ctx, store.StatsFilter{Fraise: "web"}))(t)[0]
	clk.Advance(-48 * time.Hour)
	deploy(t, db, clk, web, 999, 3*time.Second, store.StatusFailed)
	after := must(db.Stats(ctx, store.StatsFilter{Fraise: "web"}))(t)[0]
	if after.Total != before.Total+1 || after.ByStatus[store.StatusFailed] != before.ByStatus[store.StatusFailed]+1 {
		t.Errorf("a finish on an earlier day: total %d -> %d", before.Total, after.Total)
	}
	since := must(db.Stats(ctx, store.StatsFilter{Fraise: "web", Since: clk.Now().Add(-time.Minute)}))(t)[0]
	if since.ByStatus[store.StatusFailed] < 1 {
		t.Errorf("a finish on an earlier day is missing from its window: %v", since.ByStatus)
	}
	rollups := snapshot(t, db, "tb_stats_cumulative")
	check(t, db.RebuildStats(ctx))
	if diff := cmp.Diff(rollups, snapshot(t, db, "tb_stats_cumulative")); diff != "" {
		t.Errorf("rollups after a finish on an earlier day differ from a rebuild (-incremental +rebuilt):\n%s", diff)
	}
}
