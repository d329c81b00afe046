package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// The hostile corpus: requests an attacker (or a broken forge) sends to
// fraisier serve, each with the status docs/webhooks.md gives it. They go
// to a real server (Server.Serve on a real loopback listener, so the
// http.Server timeouts are the ones fraisier runs with) on real SQLite.
// The corpus is generated here from the forges' documented payloads
// (testdata/*.json) and the hand-written files of testdata/hostile/. After
// it the test checks what no answer shows: nothing unauthenticated was
// queued or took a delivery id, nothing was created on disk, memory stayed
// bounded, and /health answered throughout.

// hxSecrets are the secrets of the hostile server: they must never come
// back in an answer.
var hxSecrets = []string{"hx-gh-secret-7f3a", "hx-gl-token-91c2", "hx-gitea-secret-0b4d", "hx-bb-secret-5e6f",
	"hx-bbs-secret-a8d1", "hx-api-token-3c9e", hxWhsecKey}

// hxWhsecKey is the raw key of GitLab's Standard Webhooks signing token.
const hxWhsecKey = "hx-gl-signing-key-22aa"

const hxConfig = `
git:
  github: {secret: hx-gh-secret-7f3a}
  gitlab: {secrets: [hx-gl-token-91c2, %[2]s]}
  gitea: {secret: hx-gitea-secret-0b4d}
  bitbucket: {secret: hx-bb-secret-5e6f}
  bitbucket_server: {secret: hx-bbs-secret-a8d1}
server:
  read_timeout: 1s
  write_timeout: 5s
  idle_timeout: 5s
  rate_limit: {per_source: 0, global: 0, burst: 1}
  api_token: hx-api-token-3c9e
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    forge: github
    environments:
      production: {branch: main, git_repo: %[1]s/git/hello.git, app_path: %[1]s/srv/hello}
  diaspora:
    type: api
    repository: mike/diaspora
    forge: gitlab
    environments:
      production: {branch: master, git_repo: %[1]s/git/diaspora.git, app_path: %[1]s/srv/diaspora}
  webhooks:
    type: api
    repository: gitea/webhooks
    forge: gitea
    environments:
      dev: {branch: develop, git_repo: %[1]s/git/webhooks.git, app_path: %[1]s/srv/webhooks}
  projectx:
    type: api
    repository: team_name/project-x
    forge: bitbucket
    environments:
      production: {branch: main, git_repo: %[1]s/git/px.git, app_path: %[1]s/srv/px}
  bbs:
    type: api
    repository: PROJ/repository
    forge: bitbucket_server
    environments:
      production: {branch: master, git_repo: %[1]s/git/bbs.git, app_path: %[1]s/srv/bbs}
`

// slowClient opens a connection and trickles a request's headers one
// byte per interval, never finishing them (or, with body, finishes the
// headers and trickles the body). It reports how long the server let it
// stay, and what it answered (status 0: closed without an answer).
func slowClient(addr string, interval time.Duration, body bool) (time.Duration, int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	start := time.Now()
	head := "POST /webhook/github HTTP/1.1\r\nHost: fraisier\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n"
	var trickle string
	if body {
		if _, err := io.WriteString(c, head+"X-Hub-Signature-256: sha256=00\r\nContent-Length: 100000\r\n\r\n"); err != nil {
			return 0, 0, err
		}
		trickle = "{" + strings.Repeat(" ", 99999)
	} else {
		io.WriteString(c, head)
		trickle = "X-Slow: " + strings.Repeat("a", 100000)
	}
	answered := make(chan int, 1)
	go func() {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	for i := 0; ; i++ {
		select {
		case st := <-answered:
			return time.Since(start), st, nil
		case <-time.After(interval):
		}
		if i >= len(trickle) {
			return time.Since(start), -1, fmt.Errorf("the server kept a slow client for %s", time.Since(start))
		}
		if _, err := c.Write([]byte{trickle[i]}); err != nil {
			// Closed by the server: wait for the reader to see it.
			return time.Since(start), <-answered, nil
		}
	}
}

// hxOptions scale an attack run.
type hxOptions struct {
	rounds    int // the corpus, sent this many times (concurrently)
	slow      int // slowloris connections held during the run
	bigBodies int // extra concurrent 30 MB bodies
}

// hxReport is what an attack run measured.
type hxReport struct {
	requests              int
	probes                int
	probeP99, probeMax    time.Duration
	heapBefore, heapAfter uint64
	rssBefore             uint64
	rssAfter, rssPeak     uint64
	slowMax               time.Duration
	byCategory            map[string]int
}

func runHostile(t *testing.T, o hxOptions) hxReport {
	marker := "fraisier-hx-" + testenv.RandomHex(6)
	s := startHostileServer(t, func(root string) string {
		return fmt.Sprintf(hxConfig, root, "whsec_"+base64.StdEncoding.EncodeToString([]byte(hxWhsecKey)))
	})
	before := snapshotMarkers(t, marker)

	mem := memSampler{pid: s.pid}
	rep := hxReport{byCategory: map[string]int{}}
	rep.heapBefore, rep.rssBefore = s.heapReady, mem.sample()

	stop := make(chan struct{})
	var bg sync.WaitGroup
	probe := &hxProbe{}
	bg.Add(2)
	go probe.run(s.base, 10*time.Millisecond, stop, &bg)
	go mem.run(20*time.Millisecond, stop, &bg)

	// Slow clients, during the whole run.
	var slowMu sync.Mutex
	var slowErrs []string
	var slowWG sync.WaitGroup
	for i := range o.slow {
		slowWG.Add(1)
		go func() {
			defer slowWG.Done()
			d, status, err := slowClient(s.addr, 100*time.Millisecond, i%2 == 1)
			slowMu.Lock()
			defer slowMu.Unlock()
			rep.slowMax = max(rep.slowMax, d)
			switch {
			case err != nil:
				slowErrs = append(slowErrs, err.Error())
			case status >= 200 && status < 300:
				slowErrs = append(slowErrs, fmt.Sprintf("a slow client got %d", status))
			}
		}()
	}
	var bigWG sync.WaitGroup
	bigErrs := make(chan string, o.bigBodies)
	bigAnswers := make([][]byte, o.bigBodies)
	for i := range o.bigBodies {
		bigWG.Add(1)
		go func() {
			defer bigWG.Done()
			r := s.do(hxReq{method: "POST", path: "/webhook/github", stream: 30 << 20, chunked: i%2 == 0,
				header: [][2]string{{"Content-Type", "application/json"}, {"X-GitHub-Event", "push"}}})
			bigAnswers[i] = r.body
			if r.status != 413 {
				bigErrs <- fmt.Sprintf("30 MB body %d: %d %v", i, r.status, r.err)
			}
		}()
	}

	type sent struct {
		c hxCase
		r hxResult
	}
	var all []sent
	var allMu sync.Mutex
	var rounds sync.WaitGroup
	for round := range o.rounds {
		rounds.Add(1)
		go func() {
			defer rounds.Done()
			for _, c := range hxCorpus(t, marker, round) {
				r := s.do(c.req)
				allMu.Lock()
				all = append(all, sent{c, r})
				allMu.Unlock()
			}
		}()
	}
	rounds.Wait()
	bigWG.Wait()
	slowWG.Wait()
	close(stop)
	bg.Wait()
	close(bigErrs)
	for e := range bigErrs {
		t.Error(e)
	}
	for _, e := range slowErrs {
		t.Error("slow client: " + e)
	}

	// Every answer is the documented one.
	authentic := map[string]bool{}
	eventIDs := map[int64]string{}
	register := func(name string, body []byte, auth, dup bool) (answer, bool) {
		var a answer
		if json.Unmarshal(body, &a) != nil {
			return a, false
		}
		if a.WebhookEventID != 0 {
			if prev, seen := eventIDs[a.WebhookEventID]; seen && !dup {
				t.Errorf("%s: webhook event %d already answered for %s", name, a.WebhookEventID, prev)
			}
			eventIDs[a.WebhookEventID] = name
			if auth && a.DeliveryID != "" {
				authentic[a.DeliveryID] = true
			}
		}
		return a, true
	}
	for _, b := range bigAnswers {
		register("extra 30 MB body", b, false, false)
	}
	for _, x := range all {
		c, r := x.c, x.r
		rep.requests++
		rep.byCategory[c.category]++
		if r.err != nil {
			t.Errorf("%s: %v", c.name, r.err)
			continue
		}
		a, isJSON := register(c.name, r.body, c.authentic, c.duplicate)
		if r.status != c.status {
			t.Errorf("%s: answered %d, want %d: %s", c.name, r.status, c.status, clip(string(r.body), 300))
			continue
		}
		if r.header.Get("Set-Cookie") != "" || r.header.Get("X-Injected") != "" {
			t.Errorf("%s: an injected header came back: %v", c.name, r.header)
		}
		for _, sec := range hxSecrets {
			if bytes.Contains(r.body, []byte(sec)) {
				t.Errorf("%s: the answer shows a secret", c.name)
			}
		}
		if c.outcome == "" {
			continue
		}
		if !isJSON {
			t.Errorf("%s: answer is not JSON: %q", c.name, r.body)
			continue
		}
		// A push answers what its delivery is now: superseded (still 202)
		// once a later push to the same target replaced it, which with
		// several rounds at once can happen within the batch that records
		// it (replays, and the first delivery too).
		replaced := c.outcome == "accepted" && a.Outcome == "superseded"
		if (a.Outcome != c.outcome && !replaced) || a.Duplicate != c.duplicate {
			t.Errorf("%s: outcome %s duplicate %v (%s), want %s duplicate %v", c.name, a.Outcome, a.Duplicate, a.Reason, c.outcome, c.duplicate)
		}
		if !c.authentic && (a.DeliveryID != "" || len(a.Deployments) > 0) {
			t.Errorf("%s: unauthenticated request answered with delivery id %q and %d deployments", c.name, a.DeliveryID, len(a.Deployments))
		}
		if c.authentic && c.status < 500 && a.WebhookEventID != 0 && a.DeliveryID == "" && hasDeliveryHeader(c.req) {
			t.Errorf("%s: authenticated delivery recorded without its id", c.name)
		}
	}

	// The state database: every recorded delivery with an id or a
	// deployment was authenticated; forged ones hold no id.
	evs, err := s.db.Webhooks(context.Background(), store.WebhookFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.DeliveryID != "" && !authentic[e.DeliveryID] {
			t.Errorf("event %d holds delivery id %q that only a forged request sent", e.ID, e.DeliveryID)
		}
		if len(e.DeploymentIDs) > 0 && !authentic[e.DeliveryID] {
			t.Errorf("event %d (%s) queued deployments %v", e.ID, e.Reason, e.DeploymentIDs)
		}
		if _, ok := eventIDs[e.ID]; !ok {
			t.Errorf("event %d (%s %s) was recorded but named in no answer", e.ID, e.Outcome, e.Reason)
		}
		for _, sec := range hxSecrets {
			if strings.Contains(fmt.Sprintf("%+v", e), sec) {
				t.Errorf("event %d holds a secret", e.ID)
			}
		}
	}
	q, err := s.db.QueuedDeployments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// One real push per forge routes to one target each; its replays and
	// the other rounds' pushes supersede or join it.
	if len(q) != len(hxForges) {
		t.Errorf("%d deployments queued, want %d (one per forge's real push): %+v", len(q), len(hxForges), q)
	}
	for _, d := range q {
		if d.Actor == "" || strings.Contains(d.Actor, marker) {
			t.Errorf("queued deployment %d by %q", d.ID, d.Actor)
		}
	}

	// Nothing was created on disk by any payload: no file named after the
	// marker anywhere the payloads pointed, and no fraise directory.
	if after := snapshotMarkers(t, marker); after != before {
		t.Errorf("files named after the payloads' marker appeared: %q (before: %q)", after, before)
	}
	for _, dir := range []string{"srv", "git"} {
		if _, err := os.Stat(filepath.Join(s.root, dir)); err == nil {
			t.Errorf("%s/%s was created: a deployment ran", s.root, dir)
		}
	}

	n, p99, pmax := probe.summary()
	rep.probes, rep.probeP99, rep.probeMax = n, p99, pmax
	if len(probe.fails) > 0 {
		t.Errorf("/health failed %d times during the attack: %v", len(probe.fails), probe.fails[:min(5, len(probe.fails))])
	}
	if n == 0 {
		t.Errorf("no health probe answered during the attack")
	}
	rep.rssAfter = mem.sample()
	rep.rssPeak = mem.rssPeak
	s.stop()
	rep.heapAfter = s.heapStopped
	t.Logf("hostile: %d requests (%d rounds), %d slow clients (held at most %s), %d extra 30 MB bodies",
		rep.requests, o.rounds, o.slow, rep.slowMax.Round(time.Millisecond), o.bigBodies)
	t.Logf("hostile: /health during the attack: %d probes, p99 %s, max %s", rep.probes, rep.probeP99, rep.probeMax)
	t.Logf("hostile: the server process (its own): heap in use after a GC %.1f MiB when ready, %.1f MiB when stopped; RSS %.1f MiB before, %.1f MiB peak, %.1f MiB after the attack",
		mib(rep.heapBefore), mib(rep.heapAfter), mib(rep.rssBefore), mib(rep.rssPeak), mib(rep.rssAfter))
	var cats []string
	for k, v := range rep.byCategory {
		cats = append(cats, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(cats)
	t.Logf("hostile: by category: %s", strings.Join(cats, ", "))
	// Memory is bounded: a 30 MB body costs at most the body limit, and
	// the corpus leaves nothing behind.
	if grow := int64(rep.heapAfter) - int64(rep.heapBefore); grow > 32<<20 {
		t.Errorf("heap in use grew by %.1f MiB over the attack", mib(uint64(grow)))
	}
	return rep
}

// snapshotMarkers lists every file whose name holds marker under the
// places the payloads point at: /tmp (and $TMPDIR), the package directory,
// and the root of the filesystem's usual writable places.
func snapshotMarkers(t testing.TB, marker string) string {
	t.Helper()
	var found []string
	for _, dir := range []string{"/tmp", os.TempDir(), ".", "/var/tmp"} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if strings.Contains(d.Name(), marker) {
				found = append(found, p)
			}
			// Other tests' trees are deep; the payloads aim at the top.
			if d.IsDir() && strings.Count(filepath.Clean(p), string(filepath.Separator)) > 4 {
				return fs.SkipDir
			}
			return nil
		})
	}
	sort.Strings(found)
	return strings.Join(found, "\n")
}

// TestHostileCorpus sends the corpus once, with a few slow clients and
// 30 MB bodies alongside; the figures are logged, not asserted (make
// reliability asserts them under a heavier attack).
func TestHostileCorpus(t *testing.T) {
	rep := runHostile(t, hxOptions{rounds: 1, slow: 4, bigBodies: 2})
	if rep.requests < 200 {
		t.Errorf("the corpus has %d requests, want at least 200", rep.requests)
	}
}

// TestHostileForbiddenForge: a forge without a git: section refuses every
// delivery, signed or not (403, recorded without its delivery id).
func TestHostileForbiddenForge(t *testing.T) {
	s := startHostileServer(t, func(string) string {
		return `
git:
  github: {secret: only-github-0123456789}
fraises:
  hello:
    type: api
    repository: Codertocat/Hello-World
    environments:
      production: {branch: main, git_repo: /srv/git/hello.git, app_path: /srv/hello}
`
	})
	for _, f := range hxForges[1:] {
		body := payload(t, f.file)
		for _, secret := range []string{f.secret, "only-github-0123456789", ""} {
			h := [][2]string{{"Content-Type", "application/json"}, {f.eventH, f.event}, {f.idH, "forbidden-" + f.kind}}
			if secret != "" {
				h = f.sign(h, secret, body)
			}
			r := s.do(hxReq{method: "POST", path: "/webhook/" + f.kind, header: h, body: body})
			var a answer
			json.Unmarshal(r.body, &a)
			if r.err != nil || r.status != 403 || a.Outcome != "rejected" || a.DeliveryID != "" {
				t.Errorf("%s signed with %q: %d %+v %v; want 403 rejected without the delivery id", f.kind, secret, r.status, a, r.err)
			}
		}
	}
}

// TestReliabilityHostile: the corpus four times at once, 200 slowloris
// connections and 20 more 30 MB bodies; /health answers within 100 ms
// throughout and memory stays bounded.
func TestReliabilityHostile(t *testing.T) {
	testenv.Reliability(t)
	rep := runHostile(t, hxOptions{rounds: 4, slow: 200, bigBodies: 20})
	if rep.probeMax >= 100*time.Millisecond {
		t.Errorf("a health probe took %s during the attack, want under 100ms", rep.probeMax)
	}
	if rep.slowMax > 3*time.Second {
		t.Errorf("a slow client was held %s; read_timeout is 1s", rep.slowMax)
	}
	if grow := int64(rep.rssPeak) - int64(rep.rssBefore); grow > 256<<20 {
		t.Errorf("RSS grew by %.1f MiB at its peak", mib(uint64(grow)))
	}
}
