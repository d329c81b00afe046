package server_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestE2EBurst: 200 signed pushes to one branch within 2 s while a slow
// deployment runs. At most two deployments run (the one running and the
// newest push), the last pushed SHA is what ends up deployed, and all 200
// deliveries are recorded, each with its outcome: accepted for the two
// that ran, superseded for every other, and each linked to a deployment.
//
// The first push goes alone, and its deployment is held in its install
// step; the other 199 commits are pushed then. The next 198 deliveries go
// concurrently from 8 senders, each on its own keep-alive connection and
// in SHA order, so that they reach the server in no fixed order, as a
// forge's deliveries may. The last one is sent once
// all of those were answered: it is then the last push by any reading,
// and must be the one deployed.
//
// The server records deliveries in batches. A concurrent push recorded in
// the same batch as a newer one is folded into it: answered superseded,
// naming the deployment that waits. Every other push takes the waiting
// deployment over, replacing the request of the push before it in place.
func TestE2EBurst(t *testing.T) {
	const (
		n       = 200
		senders = 8
	)
	f := newE2E(t, e2eOptions{})
	f.serve()
	ds := make([]delivery, n)
	// Each push reaches the repository before its delivery leaves, as a
	// forge's do: the first alone, the rest once its deployment is held
	// (a deployment whose commit is no longer the branch's tip when it
	// fetches deploys nothing).
	shas := f.push("main", 1)
	ds[0] = f.delivery("main", "", shas[0])
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
	testenv.WaitFor(t, "the first deployment's install to start", 10*time.Second, func() bool { return f.installStarted(version("main", 1)) })
	shas = append(shas, f.push("main", n-1)...)
	for i := 1; i < n; i++ {
		ds[i] = f.delivery("main", shas[i-1], shas[i])
	}
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

	// Every push was answered 202 naming one deployment. The first queued
	// deployment A, which runs (held). Of the others, each either took
	// over the one request waiting, B (accepted; the second such push
	// queued B, and each later one replaced the request of the one before
	// it in place), or was folded into a newer push of its recording
	// batch (superseded). The first and the last are alone in their batch
	// and never folded.
	events := map[int64]bool{}
	standing := map[string]int{} // delivery id → index, for pushes not folded
	replaced := map[int64]int{}  // webhook event → the push that replaced its request
	var folded, tookOver []int
	depA, depB := results[0].a.Deployments[0].DeploymentID, int64(0)
	for i, r := range results {
		if r.err != nil || r.status != http.StatusAccepted || len(r.a.Deployments) != 1 || r.a.DeliveryID != ds[i].id || events[r.a.WebhookEventID] {
			t.Fatalf("push %d (%s): %d %+v %v; want 202 naming one deployment and a webhook event of its own", i, ds[i].id, r.status, r.a, r.err)
		}
		events[r.a.WebhookEventID] = true
		q := r.a.Deployments[0]
		if q.Superseded != 0 {
			t.Fatalf("push %d (%s): %+v; superseded deployment %d, but every waiting request was a push's", i, ds[i].id, r.a, q.Superseded)
		}
		if i > 0 && depB == 0 {
			depB = q.DeploymentID
		}
		switch {
		case i == 0:
			if r.a.Outcome != store.OutcomeAccepted || q.Folded || q.ReplacedEvent != 0 {
				t.Fatalf("first push: %+v; want accepted, queued alone", r.a)
			}
			continue
		case q.DeploymentID != depB || depB == depA:
			t.Fatalf("push %d (%s): %+v; want the deployment waiting behind %d, %d", i, ds[i].id, r.a, depA, depB)
		case q.Folded:
			if i == n-1 || r.a.Outcome != store.OutcomeSuperseded || q.ReplacedEvent != 0 {
				t.Fatalf("push %d (%s): %+v; only a concurrent push may be folded, answered superseded and replacing nothing", i, ds[i].id, r.a)
			}
			folded = append(folded, i)
			continue
		}
		if r.a.Outcome != store.OutcomeAccepted {
			t.Fatalf("push %d (%s): %+v; want accepted, as it took over the waiting request", i, ds[i].id, r.a)
		}
		standing[ds[i].id] = i
		tookOver = append(tookOver, i)
		if q.ReplacedEvent != 0 {
			if j, twice := replaced[q.ReplacedEvent]; twice {
				t.Errorf("webhook event %d's request replaced by push %d and by push %d", q.ReplacedEvent, j, i)
			}
			replaced[q.ReplacedEvent] = i
		}
	}
	t.Logf("%d pushes took over the waiting request, %d were folded into a newer one of their batch", len(tookOver), len(folded))
	// Every push that took the request over but the last had its request
	// replaced, by one later answer each; the first of them replaced none.
	if len(replaced) != len(tookOver)-1 {
		t.Errorf("%d answers replaced a waiting request, want %d", len(replaced), len(tookOver)-1)
	}
	for _, i := range tookOver[:len(tookOver)-1] {
		if _, ok := replaced[results[i].a.WebhookEventID]; !ok {
			t.Errorf("push %d took the waiting request over, and no later answer says it replaced it", i)
		}
	}
	// A folded push's reason names a concurrent push, with its commit.
	for _, i := range folded {
		a := results[i].a
		named := false
		for id, j := range standing {
			if j != n-1 && strings.Contains(a.Reason, id) && strings.Contains(a.Reason, shas[j][:12]) {
				named = true
			}
		}
		if !named {
			t.Errorf("push %d folded for %q; want a concurrent push named with its commit", i, a.Reason)
		}
	}

	f.release()
	last := shas[n-1]
	f.waitDeployed("production", last, version("main", n), 60*time.Second)

	// The state database: two deployments, A at the first push's commit
	// and B at the last's; 200 webhook events, each linked to the
	// deployment its answer named, accepted for the two that ran and
	// superseded for every other.
	deps := f.deployments("production")
	if len(deps) != 2 {
		t.Fatalf("history: %s; want two deployments", describe(deps))
	}
	for _, d := range deps {
		i := n - 1
		if d.ID == depA {
			i = 0
		}
		if d.ID != depA && d.ID != depB || d.Status != store.StatusSucceeded || d.NewSHA != shas[i] ||
			d.WebhookID == nil || *d.WebhookID != results[i].a.WebhookEventID {
			t.Errorf("deployment %d: %s at %s by webhook %v (%s); want succeeded at %s by webhook %d",
				d.ID, d.Status, d.NewSHA, d.WebhookID, d.Error, shas[i], results[i].a.WebhookEventID)
		}
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
		a := results[i].a
		dep := a.Deployments[0].DeploymentID
		if e.ID != a.WebhookEventID || e.Outcome != want || e.SHA != shas[i] || len(e.DeploymentIDs) != 1 || e.DeploymentIDs[0] != dep {
			t.Errorf("webhook event of push %d: %+v; want %s at %s linked to deployment %d", i, e, want, shas[i], dep)
		}
		if a.Deployments[0].Folded && e.Reason != a.Reason {
			t.Errorf("folded push %d recorded for %q, answered for %q", i, e.Reason, a.Reason)
		}
		if by, ok := replaced[e.ID]; ok && !strings.Contains(e.Reason, fmt.Sprint("webhook event ", results[by].a.WebhookEventID)) {
			t.Errorf("push %d, replaced by push %d, recorded for %q; want the reason to name webhook event %d", i, by, e.Reason, results[by].a.WebhookEventID)
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
