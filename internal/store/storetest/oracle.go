package storetest

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/store"
)

// retained is what a prune should leave, computed from the rows.
type retained struct {
	counts      map[store.PruneKind]int64
	deployments []int64 // ids left
	events      []int64
	// output: per step left, whether its output was removed.
	output map[int64]bool
	// releases whose deployment is forgotten.
	forgotten    []int64
	keptDelivery string // a delivery id whose event stays
	extraEvents  int    // events recorded after the oracle ran
}

// retentionOracle works out what pruning with r at now leaves, the
// simple way: every row read, every rule applied in Go.
func retentionOracle(t *testing.T, db *store.DB, now time.Time, r store.Retention) *retained {
	t.Helper()
	q := db.SQL()
	cutD := now.Add(-r.Deployments).Truncate(day).UnixMilli()
	cutE, cutS := now.Add(-r.Events).UnixMilli(), now.Add(-r.StepOutput).UnixMilli()
	deps, byID := oracleDeployments(t, q)
	rels := oracleReleases(t, q)
	protected := oracleProtected(t, q, deps, rels, r)

	out := &retained{output: map[int64]bool{}, counts: map[store.PruneKind]int64{
		store.PruneDeployments: 0, store.PruneEvents: 0, store.PruneStepOutput: 0}}
	for _, d := range deps {
		d.kept = r.Deployments == 0 || !d.finished.Valid || d.finished.Int64 >= cutD || protected[d.id]
		if d.kept {
			out.deployments = append(out.deployments, d.id)
		} else {
			out.counts[store.PruneDeployments]++
		}
	}
	for _, rl := range rels {
		if rl.hasDep && !byID[rl.dep].kept {
			out.forgotten = append(out.forgotten, rl.id)
		}
	}
	oracleEvents(t, q, deps, r, cutE, out)
	oracleOutput(t, q, byID, r, cutS, out)
	if out.keptDelivery == "" {
		t.Fatal("the history has no old event that is kept")
	}
	return out
}

// oracleDep is a deployment as the oracle sees it.
type oracleDep struct {
	id, hook      int64
	fraise, env   string
	status        store.Status
	finished      sql.NullInt64
	hasHook, kept bool
}

func oracleDeployments(t *testing.T, q *sql.DB) ([]*oracleDep, map[int64]*oracleDep) {
	var deps []*oracleDep
	byID := map[int64]*oracleDep{}
	scanRows(t, q, "SELECT id, fraise, environment, status, finished_at, webhook_event_id FROM tb_deployment", func(rows *sql.Rows) error {
		d := &oracleDep{}
		var hook sql.NullInt64
		err := rows.Scan(&d.id, &d.fraise, &d.env, &d.status, &d.finished, &hook)
		d.hook, d.hasHook = hook.Int64, hook.Valid
		deps = append(deps, d)
		byID[d.id] = d
		return err
	})
	return deps, byID
}

// oracleRel is a release as the oracle sees it, newest first.
type oracleRel struct {
	id, dep  int64
	target   string
	state    string
	created  int64
	hasDep   bool
	position int
}

func oracleReleases(t *testing.T, q *sql.DB) []*oracleRel {
	var rels []*oracleRel
	scanRows(t, q, "SELECT id, fraise || '/' || environment, state, created_at, deployment_id FROM tb_release ORDER BY created_at DESC, id DESC", func(rows *sql.Rows) error {
		r := &oracleRel{}
		var d sql.NullInt64
		err := rows.Scan(&r.id, &r.target, &r.state, &r.created, &d)
		r.dep, r.hasDep = d.Int64, d.Valid
		rels = append(rels, r)
		return err
	})
	return rels
}

// oracleProtected are the deployments kept whatever their age: each
// target's newest success, the state's last and broken ones, and those
// of the releases kept.
func oracleProtected(t *testing.T, q *sql.DB, deps []*oracleDep, rels []*oracleRel, r store.Retention) map[int64]bool {
	protected := map[int64]bool{}
	newestOK := map[string]int64{}
	for _, d := range deps {
		if d.status == store.StatusSucceeded && d.id > newestOK[d.fraise+"/"+d.env] {
			newestOK[d.fraise+"/"+d.env] = d.id
		}
	}
	for _, id := range newestOK {
		protected[id] = true
	}
	scanRows(t, q, "SELECT last_deployment_id, broken_deployment_id FROM tb_fraise_state", func(rows *sql.Rows) error {
		var last, broken sql.NullInt64
		err := rows.Scan(&last, &broken)
		protected[last.Int64], protected[broken.Int64] = true, true
		return err
	})
	seen := map[string]int{}
	for _, rl := range rels {
		seen[rl.target]++
		if rl.hasDep && (rl.state == store.ReleaseCurrent || seen[rl.target] <= max(1, r.KeepReleases)) {
			protected[rl.dep] = true
		}
	}
	return protected
}

// oracleEvents: events are kept when recent, or asked for a deployment
// kept, or linked to one unfinished.
func oracleEvents(t *testing.T, q *sql.DB, deps []*oracleDep, r store.Retention, cutE int64, out *retained) {
	keptBy := map[int64]bool{}
	for _, d := range deps {
		if d.hasHook && d.kept {
			keptBy[d.hook] = true
		}
	}
	scanRows(t, q, `SELECT l.webhook_event_id FROM tb_webhook_deployment l JOIN tb_deployment d ON d.id = l.deployment_id
		WHERE d.finished_at IS NULL`, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		keptBy[id] = true
		return err
	})
	scanRows(t, q, "SELECT id, delivery_id, received_at FROM tb_webhook_event", func(rows *sql.Rows) error {
		var (
			id, at   int64
			delivery string
		)
		err := rows.Scan(&id, &delivery, &at)
		if r.Events == 0 || at >= cutE || keptBy[id] {
			out.events = append(out.events, id)
			if at < cutE && out.keptDelivery == "" {
				out.keptDelivery = delivery
			}
		} else {
			out.counts[store.PruneEvents]++
		}
		return err
	})
}

// oracleOutput: the output of a kept deployment's step goes once the
// deployment finished before the step output cutoff.
func oracleOutput(t *testing.T, q *sql.DB, byID map[int64]*oracleDep, r store.Retention, cutS int64, out *retained) {
	scanRows(t, q, "SELECT s.id, s.deployment_id, length(s.output), d.finished_at FROM tb_deployment_step s JOIN tb_deployment d ON d.id = s.deployment_id",
		func(rows *sql.Rows) error {
			var (
				id, depID, size int64
				finished        sql.NullInt64
			)
			err := rows.Scan(&id, &depID, &size, &finished)
			if !byID[depID].kept {
				return err
			}
			gone := r.StepOutput > 0 && size > 0 && finished.Valid && finished.Int64 < cutS
			out.output[id] = gone
			if gone {
				out.counts[store.PruneStepOutput]++
			}
			return err
		})
}

// check compares the database with what the oracle said it would be.
func (want *retained) check(t *testing.T, db *store.DB) {
	t.Helper()
	q := db.SQL()
	ids := func(query string) []int64 {
		var out []int64
		scanRows(t, q, query, func(rows *sql.Rows) error {
			var id int64
			err := rows.Scan(&id)
			out = append(out, id)
			return err
		})
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff(sorted(want.deployments), ids("SELECT id FROM tb_deployment")); diff != "" {
		t.Errorf("deployments left (-want +got):\n%s", diff)
	}
	events := ids("SELECT id FROM tb_webhook_event")
	if len(events) != len(want.events)+want.extraEvents || !isSubset(want.events, events) {
		var extra, missing []int64
		for _, id := range events {
			if _, ok := slices.BinarySearch(sorted(want.events), id); !ok {
				extra = append(extra, id)
			}
		}
		for _, id := range want.events {
			if _, ok := slices.BinarySearch(events, id); !ok {
				missing = append(missing, id)
			}
		}
		t.Errorf("events left: %d, want %d + %d recorded meanwhile; unexpected %v…, missing %v…", len(events),
			len(want.events), want.extraEvents, extra[:min(5, len(extra))], missing[:min(5, len(missing))])
	}
	if diff := cmp.Diff(sorted(want.forgotten), ids("SELECT id FROM tb_release WHERE deployment_id IS NULL")); diff != "" {
		t.Errorf("releases whose deployment is forgotten (-want +got):\n%s", diff)
	}
	for _, orphan := range []string{
		"SELECT deployment_id FROM tb_deployment_step WHERE deployment_id NOT IN (SELECT id FROM tb_deployment)",
		"SELECT deployment_id FROM tb_webhook_deployment WHERE deployment_id NOT IN (SELECT id FROM tb_deployment)",
		"SELECT webhook_event_id FROM tb_webhook_deployment WHERE webhook_event_id NOT IN (SELECT id FROM tb_webhook_event)",
	} {
		if got := ids(orphan); len(got) > 0 {
			t.Errorf("%s: %v", orphan, got)
		}
	}
	got := map[int64]bool{}
	scanRows(t, q, "SELECT id, length(output), output_pruned_at FROM tb_deployment_step", func(rows *sql.Rows) error {
		var (
			id, size int64
			pruned   sql.NullInt64
		)
		err := rows.Scan(&id, &size, &pruned)
		if pruned.Valid && size != 0 {
			t.Errorf("step %d: output of %d bytes marked removed", id, size)
		}
		got[id] = pruned.Valid
		return err
	})
	if diff := cmp.Diff(want.output, got); diff != "" {
		t.Errorf("steps left, and whether their output was removed (-want +got):\n%s", diff)
	}
}

func sorted(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func isSubset(small, big []int64) bool {
	for _, id := range small {
		if _, ok := slices.BinarySearch(big, id); !ok {
			return false
		}
	}
	return true
}

func scanRows(t *testing.T, q *sql.DB, query string, fn func(*sql.Rows) error) {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
