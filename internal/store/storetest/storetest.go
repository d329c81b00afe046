package storetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

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
		{"RestartMode", s.testRestartMode},
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
		{"ChecksHold", s.testChecksHold},
		{"ChecksSupersede", s.testChecksSupersede},
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
		{"DailyStats", s.testDailyStats},
		{"Retention", s.testRetention},
		{"RetentionStatsWindow", s.testRetentionStatsWindow},
		{"RetentionKeepsByDefault", s.testRetentionKeepsByDefault},
		{"RetentionConcurrent", s.testRetentionConcurrent},
		{"Outbox", s.testOutbox},
		{"OutboxConcurrentClaim", s.testOutboxConcurrentClaim},
		{"Rollouts", s.testRollouts},
		{"Nodes", s.testNodes},
		{"HostHealth", s.testHostHealth},
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
func deploy(t *testing.T, db *store.DB, clk *clock, tg store.Target, n int, d time.Duration, status store.Status) int64 {
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
