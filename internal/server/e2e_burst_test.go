package server_test

import (
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// TestE2EBurst: 200 signed pushes to one branch within 2 s while a slow
// deployment runs. At most two deployments run (the one running and the
// newest push), the last pushed SHA is what ends up deployed, and all 200
// deliveries are recorded, each with its outcome: accepted for the two
// that ran, superseded for every other.
//
// The first push goes alone, and its deployment is held in its install
// step. The next 198 go concurrently from 8 senders, each on its own
// keep-alive connection and in SHA order, so that they reach the server in
// no fixed order, as a forge's deliveries may. The last one is sent once
// all of those were answered: it is then the last push by any reading,
// and must be the one deployed.
func TestE2EBurst(t *testing.T) {
	const (
		n       = 200
		senders = 8
	)
	f := newE2E(t, e2eOptions{})
	f.serve()
	shas := f.push("main", n)
	ds := make([]delivery, n)
	for i, sha := range shas {
		before := ""
		if i > 0 {
			before = shas[i-1]
		}
		ds[i] = f.delivery("main", before, sha)
	}
	type result struct {
		status int
		a      hookAnswer
		err    error
	}
	results := make([]result, n)
	clients := make([]*http.Client, senders)
	for k := range clients {
		clients[k] = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
		defer clients[k].CloseIdleConnections()
	}
	send := func(k, i int) {
		r := &results[i]
		r.status, r.a, r.err = f.send(clients[k], f.base(), ds[i])
	}

	f.hold()
	begin := time.Now()
	send(0, 0)
	first := time.Since(begin)
	waitFor(t, "the first deployment's install to start", 10*time.Second, func() bool { return f.installStarted(version("main", 1)) })
	// The wait for the install is the deployment's time, not the pushes':
	// the clock counts the first push and then the other 199.
	begin = time.Now().Add(-first)
	var wg sync.WaitGroup
	for k := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1 + k; i < n-1; i += senders {
				send(k, i)
			}
		}()
	}
	wg.Wait()
	send(0, n-1)
	took := time.Since(begin)
	t.Logf("%d pushes sent and answered in %s", n, took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("%d pushes took %s to be answered, want them within 2s", n, took)
	}

	// Every push was answered 202 naming its own queued deployment; each
	// but the first of the concurrent ones replaced the request waiting
	// before it, and nothing replaced the last.
	ids := map[int64]int{}
	events := map[int64]bool{}
	superseded := map[int64]bool{}
	for i, r := range results {
		// A concurrent push recorded in the same batch as a newer one is
		// answered with the truth at the time of the answer: superseded.
		// The first and the last are never replaced before their answer.
		outcomeOK := r.a.Outcome == store.OutcomeAccepted ||
			r.a.Outcome == store.OutcomeSuperseded && i >= 1 && i < n-1
		if r.err != nil || r.status != http.StatusAccepted || !outcomeOK || len(r.a.Deployments) != 1 || r.a.DeliveryID != ds[i].id {
			t.Fatalf("push %d (%s): %d %+v %v; want 202 accepted (or already superseded) naming one deployment", i, ds[i].id, r.status, r.a, r.err)
		}
		q := r.a.Deployments[0]
		if _, dup := ids[q.DeploymentID]; dup || events[r.a.WebhookEventID] {
			t.Fatalf("push %d: deployment %d or webhook event %d named twice", i, q.DeploymentID, r.a.WebhookEventID)
		}
		ids[q.DeploymentID], events[r.a.WebhookEventID] = i, true
		if q.Superseded != 0 {
			if superseded[q.Superseded] {
				t.Errorf("deployment %d superseded twice", q.Superseded)
			}
			superseded[q.Superseded] = true
		}
	}
	for i, r := range results {
		id := r.a.Deployments[0].DeploymentID
		want := i >= 1 && i < n-1 // every concurrent one waited and was replaced
		if superseded[id] != want {
			t.Errorf("push %d's deployment %d: superseded by a later answer %v, want %v", i, id, superseded[id], want)
		}
	}
	if len(superseded) != n-2 {
		t.Errorf("%d answers superseded a waiting request, want %d", len(superseded), n-2)
	}

	f.release()
	last := shas[n-1]
	f.waitDeployed("production", last, version("main", n), 60*time.Second)

	// The state database: 200 deployments, two ran, 198 superseded; 200
	// webhook events, each linked to its deployment with its outcome.
	ran := 0
	for _, d := range f.deployments("production") {
		i, ok := ids[d.ID]
		if !ok {
			t.Errorf("deployment %d (%s, %s) was never named in an answer", d.ID, d.Status, d.Trigger)
			continue
		}
		want := store.StatusSuperseded
		if i == 0 || i == n-1 {
			want = store.StatusSucceeded
		}
		if d.Status != store.StatusSuperseded {
			ran++
		}
		if d.Status != want || d.NewSHA != shas[i] || d.WebhookID == nil || *d.WebhookID != results[i].a.WebhookEventID {
			t.Errorf("deployment %d for push %d: %s at %s by webhook %v (%s); want %s at %s by webhook %d",
				d.ID, i, d.Status, d.NewSHA, d.WebhookID, d.Error, want, shas[i], results[i].a.WebhookEventID)
		}
		delete(ids, d.ID)
	}
	if ran > 2 {
		t.Errorf("%d deployments ran, want at most 2", ran)
	}
	if len(ids) > 0 {
		t.Errorf("%d deployments named in answers are missing from the history", len(ids))
	}
	hooks := f.webhooks()
	if len(hooks) != n {
		t.Errorf("%d webhook events recorded, want %d", len(hooks), n)
	}
	for i, d := range ds {
		e, ok := hooks[d.id]
		if !ok {
			t.Errorf("push %d (%s) was not recorded", i, d.id)
			continue
		}
		want := store.OutcomeSuperseded
		if i == 0 || i == n-1 {
			want = store.OutcomeAccepted
		}
		dep := results[i].a.Deployments[0].DeploymentID
		if e.ID != results[i].a.WebhookEventID || e.Outcome != want || e.SHA != shas[i] || len(e.DeploymentIDs) != 1 || e.DeploymentIDs[0] != dep {
			t.Errorf("webhook event of push %d: %+v; want %s at %s linked to deployment %d", i, e, want, shas[i], dep)
		}
	}
	// Only the two that ran ever reached their install step.
	started, _ := filepath.Glob(filepath.Join(f.ctl, "started-*"))
	for i := range started {
		started[i] = filepath.Base(started[i])
	}
	sort.Strings(started)
	if want := []string{"started-" + version("main", 1), "started-" + version("main", n)}; !equal(started, want) {
		t.Errorf("installs started: %v, want %v", started, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
