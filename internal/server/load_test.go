package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The load run: signed deliveries at a fixed rate (open loop: each request
// leaves at its scheduled time whether or not earlier ones were answered)
// to Server.Serve on a real listener and SQLite, while a real queue.Runner
// deploys the accepted pushes with real git (three targets, an install
// that does nothing, no systemd). The mix is about 60% accepted pushes,
// 25% ignored (pings, pushes to a branch nothing deploys) and 15%
// rejected (forged signatures, signed malformed payloads).

const ldSecret = "ld-webhook-secret-6b1e"

type ldOptions struct {
	rate     int           // requests per second
	duration time.Duration // how long
	senders  int           // concurrent connections
}

type ldResult struct {
	status  int
	latency time.Duration // from the scheduled send time to the answer
	service time.Duration // from the actual send to the answer
	a       answer
	kind    string // accepted, ignored, rejected
	id      string
	err     error
}

type ldReport struct {
	sent, errors       int
	byStatus           map[int]int
	p50, p99, max      time.Duration
	serviceP99         time.Duration
	heapFirst, heapEnd float64 // MiB, mean of the first and last 10 s
	rssFirst, rssEnd   float64
	deployed           int // targets main's tip was deployed to after the load
	ran                int // deployments that ended during the load
}

// ldCommits makes n commits on main of a new bare origin in one
// fast-import and returns the origin and their SHAs.
func ldCommits(t *testing.T, root string, n int) (string, []string) {
	t.Helper()
	repo := testenv.NewOrigin(t, root)
	commits := make([]testenv.ImportCommit, n)
	for i := range commits {
		commits[i] = testenv.ImportCommit{Message: "v", Files: map[string]string{"VERSION": strconv.Itoa(i+1) + "\n"}}
	}
	return repo.Dir, repo.Import("main", commits)
}

func runLoad(t *testing.T, o ldOptions) ldReport {
	root := t.TempDir()
	targets := []string{"api", "web", "worker"}
	n := int(o.duration.Seconds() * float64(o.rate))
	// A push is delivered once: request i pushes commit i/len(targets), so
	// that each target's pushes name commits of their own, in the order of
	// main's history, and the last accepted push names main's tip.
	lastPush := 0
	for i := range n {
		if i%20 < 12 {
			lastPush = i
		}
	}
	origin, shas := ldCommits(t, root, lastPush/len(targets)+1)
	tip := shas[len(shas)-1]
	var y strings.Builder
	fmt.Fprintf(&y, "git:\n  github: {secret: %s}\nserver:\n  rate_limit: {per_source: 0, global: 0, burst: 1}\n  max_concurrent_deploys: 2\nfraises:\n", ldSecret)
	for _, name := range targets {
		fmt.Fprintf(&y, "  %s:\n    type: api\n    repository: acme/%s\n    environments:\n      production:\n        branch: main\n        git_repo: %s\n        app_path: %s\n        keep_releases: 2\n        install: {command: [\"true\"]}\n",
			name, name, origin, filepath.Join(root, "srv", name))
	}
	// The server in a process of its own, with its queue runner: the load
	// generator's goroutines and garbage are not the server's, and the
	// latencies and memory measured are the server's alone.
	srvProc := startServerProcess(t, root, y.String(), serverProcessOptions{runner: true, sampleHeaps: true})
	base, db := srvProc.base, srvProc.db
	stop := srvProc.stop
	defer stop()

	// The requests, built before the clock starts.
	type req struct {
		kind, id string
		body     []byte
		header   [][2]string
	}
	reqs := make([]req, n)
	ns := testenv.RandomHex(4)
	for i := range reqs {
		id := fmt.Sprintf("ld-%s-%07d", ns, i)
		target := targets[i%len(targets)]
		sha := shas[min(i/len(targets), len(shas)-1)]
		push := func(branch string) []byte {
			b, _ := json.Marshal(map[string]any{"ref": "refs/heads/" + branch, "before": strings.Repeat("0", 40), "after": sha,
				"repository": map[string]any{"full_name": "acme/" + target}, "sender": map[string]any{"login": "load"}})
			return b
		}
		h := [][2]string{{"Content-Type", "application/json"}, {"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", id}}
		var r req
		switch m := i % 20; {
		case m < 12: // 60% accepted (lastPush counts them)
			r = req{kind: "accepted", body: push("main")}
		case m < 15: // 15% ignored: a branch nothing deploys
			r = req{kind: "ignored", body: push("feature/x")}
		case m < 17: // 10% ignored: pings
			h[1][1] = "ping"
			r = req{kind: "ignored", body: []byte(`{"zen": "load", "hook_id": 1}`)}
		case m < 19: // 10% rejected: forged
			r = req{kind: "rejected", body: push("main")}
			h = append(h, [2]string{"X-Hub-Signature-256", "sha256=" + hexHMAC("forged", r.body)})
		default: // 5% rejected: signed, malformed
			r = req{kind: "rejected", body: []byte(`{"ref": "refs/heads/main", "after": "$(id)"}`)}
		}
		if len(h) == 3 {
			h = append(h, [2]string{"X-Hub-Signature-256", "sha256=" + hexHMAC(ldSecret, r.body)})
		}
		r.id, r.header = id, h
		reqs[i] = r
	}

	// Memory, sampled each second: the server process's RSS here, its
	// heap in use by the process itself.
	var rssS []float64
	var memMu sync.Mutex
	memStop := make(chan struct{})
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-memStop:
				return
			case <-tick.C:
				r := procRSS(srvProc.pid)
				memMu.Lock()
				rssS = append(rssS, mib(r))
				memMu.Unlock()
			}
		}
	}()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.senders, MaxConnsPerHost: o.senders}}
	defer client.CloseIdleConnections()
	results := make([]ldResult, n)
	type job struct {
		i     int
		sched time.Time
	}
	jobs := make(chan job, n)
	var wg sync.WaitGroup
	for range o.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r := reqs[j.i]
				hr, _ := http.NewRequest(http.MethodPost, base+"/webhook", bytes.NewReader(r.body))
				for _, h := range r.header {
					hr.Header.Set(h[0], h[1])
				}
				sent := time.Now()
				resp, err := client.Do(hr)
				res := ldResult{kind: r.kind, id: r.id, err: err}
				if err == nil {
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					res.status = resp.StatusCode
					if err := json.Unmarshal(raw, &res.a); err != nil {
						res.err = fmt.Errorf("answer %q: %w", raw, err)
					}
				}
				now := time.Now()
				res.latency, res.service = now.Sub(j.sched), now.Sub(sent)
				results[j.i] = res
			}
		}()
	}
	begin := time.Now()
	interval := time.Second / time.Duration(o.rate)
	for i := range n {
		sched := begin.Add(time.Duration(i) * interval)
		if d := time.Until(sched); d > 0 {
			time.Sleep(d)
		}
		jobs <- job{i, sched}
	}
	close(jobs)
	wg.Wait()
	took := time.Since(begin)
	close(memStop)
	<-memDone

	rep := ldReport{byStatus: map[int]int{}, sent: n}
	var lat, svc []time.Duration
	want := map[string]int{"accepted": 202, "ignored": 200}
	mismatched := 0
	for i, r := range results {
		if r.err != nil {
			rep.errors++
			if rep.errors <= 5 {
				t.Errorf("request %d (%s): %v", i, r.kind, r.err)
			}
			continue
		}
		rep.byStatus[r.status]++
		lat, svc = append(lat, r.latency), append(svc, r.service)
		if r.status >= 500 {
			t.Errorf("request %d (%s): %d %+v", i, r.kind, r.status, r.a)
		}
		switch w := want[r.kind]; {
		case r.kind == "rejected" && (r.status == 400 || r.status == 401):
		case r.status == w:
		default:
			if mismatched++; mismatched <= 5 {
				t.Errorf("request %d (%s): %d %+v", i, r.kind, r.status, r.a)
			}
		}
	}
	rep.p50, rep.p99, rep.max = percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1)
	rep.serviceP99 = percentile(svc, 0.99)

	// Every answered delivery is in the state database: by delivery id for
	// those that carry one, by webhook event id for all.
	events := map[int64]string{}
	byDelivery := map[string]int{}
	rows, err := db.SQL().Query(`SELECT id, delivery_id FROM tb_webhook_event`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var did string
		if err := rows.Scan(&id, &did); err != nil {
			t.Fatal(err)
		}
		events[id] = did
		if did != "" {
			byDelivery[did]++
		}
	}
	rows.Close()
	lost, unrecorded, forgedStored := 0, 0, 0
	for i, r := range results {
		if r.err != nil || r.status >= 500 || r.status == 429 {
			continue
		}
		if r.status == 401 && r.a.WebhookEventID == 0 {
			// Refusals past the sample's bounds are counted, not stored.
			unrecorded++
			continue
		}
		if r.status == 401 {
			forgedStored++
		}
		did, ok := events[r.a.WebhookEventID]
		switch {
		case !ok:
			lost++
			if lost <= 5 {
				t.Errorf("request %d (%s, %d): webhook event %d is not in the database", i, r.kind, r.status, r.a.WebhookEventID)
			}
		case r.status == 401 && did != "":
			t.Errorf("request %d: forged delivery recorded with id %q", i, did)
		case r.status != 401 && (did != r.id || byDelivery[r.id] != 1):
			t.Errorf("request %d: recorded as %q (%d times), want %q once", i, did, byDelivery[r.id], r.id)
		}
	}
	if len(events) != n-rep.errors-rep.byStatus[429]-countAbove(rep.byStatus, 499)-unrecorded {
		t.Errorf("%d webhook events recorded for %d answered requests (%d refusals not recorded)", len(events), n-rep.errors, unrecorded)
	}
	// One address sends every forgery: a sample of them is stored.
	if most := refusalsPerSource * (int(took/refusalWindow) + 2); forgedStored > most {
		t.Errorf("%d forged deliveries stored in %s, want at most %d", forgedStored, took, most)
	}

	// Deployments ran during the load. Each push names main's next commit,
	// so a deployment's fetch finds main moved on to a newer push's and is
	// skipped (the queue deploys only the pushed branch's tip); once the
	// load ends, the last push, of main's tip, deploys.
	heapS := make([]float64, 0, len(rssS))
	for _, h := range srvProc.heapSamples() {
		heapS = append(heapS, mib(h))
	}
	memMu.Lock()
	rep.heapFirst, rep.heapEnd = meanOf(heapS, 0, 10), meanOf(heapS, len(heapS)-10, len(heapS))
	rep.rssFirst, rep.rssEnd = meanOf(rssS, 0, 10), meanOf(rssS, len(rssS)-10, len(rssS))
	memMu.Unlock()
	ctx := context.Background()
	all, err := db.Deployments(ctx, store.DeploymentFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		if d.Status != store.StatusQueued && d.Status != store.StatusRunning {
			rep.ran++
		}
	}
	if rep.ran == 0 {
		t.Errorf("no deployment ran during the load")
	}
	var running []store.Deployment
	if !testenv.Eventually(60*time.Second, 50*time.Millisecond, func() bool {
		var err error
		if running, err = db.RunningDeployments(ctx); err != nil {
			t.Fatal(err)
		}
		return len(running) == 0
	}) {
		t.Fatalf("%d deployments still queued or running 60s after the load", len(running))
	}
	ds, err := db.Deployments(ctx, store.DeploymentFilter{Status: store.StatusSucceeded, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.NewSHA == tip {
			rep.deployed++
		}
	}
	if rep.deployed == 0 {
		t.Errorf("main's tip %s was not deployed after the load (%d deployments succeeded)", tip, len(ds))
	}
	stop()
	t.Logf("load: %d requests in %s (%d/s scheduled, %d senders): statuses %v, %d errors",
		n, took.Round(time.Millisecond), o.rate, o.senders, rep.byStatus, rep.errors)
	t.Logf("load: latency from the scheduled send p50 %s p99 %s max %s; service p99 %s",
		rep.p50, rep.p99, rep.max, rep.serviceP99)
	t.Logf("load: the server process: heap in use %.1f MiB (first 10 s) → %.1f MiB (last 10 s); RSS %.1f → %.1f MiB; %d deployments ran during the load, main's tip deployed to %d targets after it",
		rep.heapFirst, rep.heapEnd, rep.rssFirst, rep.rssEnd, rep.ran, rep.deployed)
	return rep
}

func countAbove(m map[int]int, s int) int {
	n := 0
	for k, v := range m {
		if k > s {
			n += v
		}
	}
	return n
}

func meanOf(xs []float64, from, to int) float64 {
	from, to = max(0, from), min(len(xs), to)
	if to <= from {
		return 0
	}
	var s float64
	for _, x := range xs[from:to] {
		s += x
	}
	return s / float64(to-from)
}

// TestLoadShort is the load run in make test's budget: 3 s at 300
// requests/s. It checks correctness (no 5xx, every delivery recorded,
// deployments run); the timing figures are logged only.
func TestLoadShort(t *testing.T) {
	runLoad(t, ldOptions{rate: 300, duration: 3 * time.Second, senders: 32})
}

// TestReliabilityLoad: 60 s at 1,000 signed requests/s with deployments
// running: no 5xx, no lost webhook record, p99 under 50 ms from the
// scheduled send, memory flat.
func TestReliabilityLoad(t *testing.T) {
	testenv.Reliability(t)
	rep := runLoad(t, ldOptions{rate: 1000, duration: 60 * time.Second, senders: 64})
	if rep.p99 >= 50*time.Millisecond {
		t.Errorf("p99 %s, want under 50ms", rep.p99)
	}
	if rep.heapEnd > rep.heapFirst*1.5+16 {
		t.Errorf("heap in use grew from %.1f MiB to %.1f MiB", rep.heapFirst, rep.heapEnd)
	}
	if rep.rssEnd > rep.rssFirst*1.5+32 {
		t.Errorf("RSS grew from %.1f MiB to %.1f MiB", rep.rssFirst, rep.rssEnd)
	}
}
