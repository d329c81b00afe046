package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/queue"
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

// hxServer is one fraisier serve on a loopback listener.
type hxServer struct {
	t    testing.TB
	root string
	db   *store.DB
	addr string
	base string
	cfg  *config.Config
	pid  int
	// heap is the server process's Go heap in use after a GC: when it was
	// ready, and (after stop) when it stopped.
	heapReady, heapStopped uint64
	// heaps are the server's heap in use (no GC forced), sampled every
	// second while it runs, when asked for (serverProcessOptions).
	mu    sync.Mutex
	heaps []uint64
	stop  func()
}

func (s *hxServer) heapSamples() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.heaps...)
}

// serveEnv makes the test binary a fraisier server (see TestMain): the
// server runs in a process of its own, as in production, so that the
// attacker's or load generator's goroutines and garbage in the test
// process are not the server's, and what the probes, latencies and memory
// figures measure is the server alone.
const serveEnv = "FRAISIER_HX_SERVE_ROOT"

// serverProcessOptions say what the server process runs besides the HTTP
// server.
type serverProcessOptions struct {
	runner      bool // a queue.Runner deploying what is queued (2 at once)
	sampleHeaps bool // report the heap in use every second
}

func startHostileServer(t *testing.T, yaml func(root string) string) *hxServer {
	t.Helper()
	root := t.TempDir()
	return startServerProcess(t, root, yaml(root), serverProcessOptions{})
}

// startServerProcess serves the configuration text from root (its state
// database in root/state) in a process of its own, and opens a second
// handle on that database for the checks.
func startServerProcess(t *testing.T, root, text string, o serverProcessOptions) *hxServer {
	t.Helper()
	cfg, err := config.Parse("fraises.yaml", []byte(text), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "fraises.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+root, fmt.Sprintf("FRAISIER_HX_SERVE_RUNNER=%v", o.runner),
		fmt.Sprintf("FRAISIER_HX_SERVE_HEAPS=%v", o.sampleHeaps))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &hxServer{t: t, root: root, cfg: cfg, pid: cmd.Process.Pid}
	lines := bufio.NewScanner(out)
	ready := false
	for !ready && lines.Scan() {
		k, v, _ := strings.Cut(lines.Text(), " ")
		switch k {
		case "addr":
			s.addr, s.base = v, "http://"+v
		case "ready-heap":
			s.heapReady, _ = strconv.ParseUint(v, 10, 64)
			ready = true
		}
	}
	if !ready {
		in.Close()
		cmd.Wait()
		t.Fatalf("the server process never got ready: %s", clip(stderr.String(), 2000))
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for lines.Scan() {
			k, v, _ := strings.Cut(lines.Text(), " ")
			n, _ := strconv.ParseUint(v, 10, 64)
			s.mu.Lock()
			switch k {
			case "heap":
				s.heaps = append(s.heaps, n)
			case "stopped-heap":
				s.heapStopped = n
			}
			s.mu.Unlock()
		}
	}()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			in.Close()
			<-readDone
			if err := cmd.Wait(); err != nil {
				t.Errorf("server process: %v: %s", err, clip(stderr.String(), 2000))
			}
			if s.db != nil {
				s.db.Close()
			}
		})
	}
	t.Cleanup(s.stop)
	// A second handle on the server's state database, for the checks.
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(root, "state", "fraisier.db")})
	if err != nil {
		t.Fatal(err)
	}
	s.db = db
	return s
}

// serveProcess is the server process's side: serve root's fraises.yaml on
// a free loopback port until stdin closes, with no deploy workers unless
// FRAISIER_HX_SERVE_RUNNER=true. It prints "addr <host:port>", then
// "ready-heap <bytes>" (in use after a GC) once ready, "heap <bytes>"
// every second if FRAISIER_HX_SERVE_HEAPS=true, and "stopped-heap
// <bytes>" once stopped.
func serveProcess(root string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "test server:", err)
		return 1
	}
	text, err := os.ReadFile(filepath.Join(root, "fraises.yaml"))
	if err != nil {
		return fail(err)
	}
	cfg, err := config.Parse("fraises.yaml", text, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return fail(err)
	}
	// The CLI fills it; fraisier serve keeps its mirrors beside its database.
	cfg.State.Dir = filepath.Join(root, "state")
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(root, "state", "fraisier.db"), CheckpointEvery: store.ServerCheckpointEvery})
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	var runner *queue.Runner
	if os.Getenv("FRAISIER_HX_SERVE_RUNNER") == "true" {
		owner, err := deploy.CurrentOwner()
		if err != nil {
			return fail(err)
		}
		runner = &queue.Runner{Store: db, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, MaxConcurrent: 2,
			Poll: 200 * time.Millisecond, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	opts := Options{Config: cfg, Store: db}
	if runner != nil {
		opts.Runner = runner
	}
	srv, err := New(opts)
	if err != nil {
		return fail(err)
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	workDone := make(chan struct{})
	if runner != nil {
		runner.OnFinish = srv.ObserveDeployment
		go func() { defer close(workDone); runner.Run(workCtx) }()
	} else {
		close(workDone)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l, nil) }()
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf(format, args...)
	}
	heap := func(gc bool) uint64 {
		if gc {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	say("addr %s\nready-heap %d\n", l.Addr(), heap(true))
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		if os.Getenv("FRAISIER_HX_SERVE_HEAPS") != "true" {
			return
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				say("heap %d\n", heap(false))
			}
		}
	}()
	io.Copy(io.Discard, os.Stdin)
	close(stopSampling)
	<-sampled
	cancel()
	if err := <-done; err != nil {
		return fail(err)
	}
	stopWork()
	<-workDone
	say("stopped-heap %d\n", heap(true))
	return 0
}

// hxReq is one request of the corpus. Most are sent with net/http; raw
// requests are written to the connection byte for byte (what net/http
// refuses to send); stream bodies are generated while they are sent.
type hxReq struct {
	method, path string
	header       [][2]string
	body         []byte
	// stream, when positive, sends that many bytes of JSON-looking body
	// instead of body; chunked sends it without a Content-Length.
	stream  int64
	chunked bool
	raw     []byte
}

// hxCase is one hostile request and what the contract promises for it.
type hxCase struct {
	name     string
	category string
	req      hxReq
	// status is the documented answer; 0 means the server closes the
	// connection without answering (a client too slow to send its request).
	status int
	// outcome is the answer's outcome, when fraisier (and not net/http
	// before it) answers.
	outcome string
	// authentic: signed with a configured secret. Only these may be
	// recorded with their delivery id, or queue anything.
	authentic bool
	duplicate bool
}

// hxForge describes one forge's documented push and how to sign it.
type hxForge struct {
	kind    string
	file    string
	eventH  string
	event   string
	idH     string
	secret  string
	refJSON string // the pushed branch as it appears in the payload
	refOf   func(branch string) string
	repo    string // the repository name as it appears in the payload
	sha     string
	sign    func(h [][2]string, secret string, body []byte) [][2]string
	// repoStatus answers a signed push whose repository name is hostile.
	repoStatus int
}

func outcomeOf(status int) string {
	switch status {
	case 202:
		return "accepted"
	case 200:
		return "ignored"
	}
	return "rejected"
}

func hxHMACHeader(name, prefix string) func([][2]string, string, []byte) [][2]string {
	return func(h [][2]string, secret string, body []byte) [][2]string {
		return append(h, [2]string{name, prefix + hexHMAC(secret, body)})
	}
}

func hxJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

var hxForges = []hxForge{
	{kind: "github", file: "github_push", eventH: "X-GitHub-Event", event: "push", idH: "X-GitHub-Delivery", secret: "hx-gh-secret-7f3a",
		refJSON: `"refs/heads/main"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"Codertocat/Hello-World"`, sha: "0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C", sign: hxHMACHeader("X-Hub-Signature-256", "sha256="), repoStatus: 202},
	// GitLab signs (Standard Webhooks): with its signing key configured,
	// the token hx-gl-token-91c2 is refused, and the corpus sends it as
	// one more forgery.
	{kind: "gitlab", file: "gitlab_push", eventH: "X-Gitlab-Event", event: "Push Hook", idH: "X-Gitlab-Event-UUID", secret: hxWhsecKey,
		refJSON: `"refs/heads/master"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"mike/diaspora"`, sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		sign: hxStandardWebhook, repoStatus: 202},
	{kind: "gitea", file: "gitea_push", eventH: "X-Gitea-Event", event: "push", idH: "X-Gitea-Delivery", secret: "hx-gitea-secret-0b4d",
		refJSON: `"refs/heads/develop"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"gitea/webhooks"`, sha: "bffeb74224043ba2feb48d137756c8a9331c449a", sign: hxHMACHeader("X-Gitea-Signature", ""), repoStatus: 202},
	{kind: "bitbucket", file: "bitbucket_push", eventH: "X-Event-Key", event: "repo:push", idH: "X-Request-UUID", secret: "hx-bb-secret-5e6f",
		refJSON: `"name": "main"`, refOf: func(b string) string { return `"name": ` + hxJSON(b) },
		repo: `"team_name/project-x"`, sha: "709d658dc5b6d6afcd46049c2f332ee3f515a67d", sign: hxHMACHeader("X-Hub-Signature", "sha256="), repoStatus: 200},
	{kind: "bitbucket_server", file: "bitbucket_server_refs_changed", eventH: "X-Event-Key", event: "repo:refs_changed", idH: "X-Request-Id", secret: "hx-bbs-secret-a8d1",
		refJSON: `"refs/heads/master"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"slug": "repository"`, sha: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc", sign: hxHMACHeader("X-Hub-Signature", "sha256="), repoStatus: 400},
}

// hxStandardWebhook signs as GitLab does with a signing key: the
// delivery's X-Gitlab-Event-UUID (when it has one) is also its webhook-id.
func hxStandardWebhook(h [][2]string, key string, body []byte) [][2]string {
	did := "hx-gitlab-without-id"
	for _, kv := range h {
		if kv[0] == "X-Gitlab-Event-UUID" {
			did = kv[1]
		}
	}
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(m, "%s.%s.", did, stamp)
	m.Write(body)
	return append(h, [2]string{"Webhook-Id", did}, [2]string{"Webhook-Timestamp", stamp},
		[2]string{"Webhook-Signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))})
}

// hxCorpus generates the corpus. marker names the files an injection
// would create; round keeps delivery ids unique when the corpus is sent
// several times to one server.
func hxCorpus(t *testing.T, marker string, round int) []hxCase {
	t.Helper()
	var cases []hxCase
	add := func(c hxCase) { cases = append(cases, c) }
	id := func(f hxForge, what string) string { return fmt.Sprintf("hx-%d-%s-%s", round, f.kind, what) }
	evil := "/tmp/" + marker
	hostile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "hostile", name))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.ReplaceAll(b, []byte("MARKER"), []byte(marker))
	}

	for _, f := range hxForges {
		base := payload(t, f.file)
		// Each round pushes a commit of its own: another round's pushes
		// under their own delivery ids would be replays.
		sha := f.sha
		if round > 0 {
			sha = fmt.Sprintf("%040x", round)
			base = bytes.ReplaceAll(base, []byte(f.sha), []byte(sha))
		}
		if !bytes.Contains(base, []byte(f.refJSON)) || !bytes.Contains(base, []byte(f.repo)) {
			t.Fatalf("%s: payload lacks %s or %s", f.file, f.refJSON, f.repo)
		}
		path := "/webhook/" + f.kind
		hdr := func(did string) [][2]string {
			h := [][2]string{{"Content-Type", "application/json"}, {f.eventH, f.event}}
			if did != "" {
				h = append(h, [2]string{f.idH, did})
			}
			return h
		}
		signed := func(did string, body []byte) hxReq {
			return hxReq{method: "POST", path: path, header: f.sign(hdr(did), f.secret, body), body: body}
		}
		withRef := func(branch string) []byte {
			return bytes.ReplaceAll(base, []byte(f.refJSON), []byte(f.refOf(branch)))
		}
		withRepo := func(name string) []byte {
			repl := hxJSON(name)
			if strings.HasPrefix(f.repo, `"slug"`) {
				repl = `"slug": ` + hxJSON(name)
			}
			return bytes.ReplaceAll(base, []byte(f.repo), []byte(repl))
		}
		cat := func(c string) string { return c }

		// Unauthenticated: 401, recorded rejected without the delivery id.
		unauth := func(name, category string, req hxReq) {
			add(hxCase{name: f.kind + ": " + name, category: category, req: req, status: 401, outcome: "rejected"})
		}
		unauth("missing signature", cat("missing signature"), hxReq{method: "POST", path: path, header: hdr(id(f, "nosig")), body: base})
		unauth("wrong secret", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "wrong")), "not-the-secret", base), body: base})
		unauth("another forge's secret", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "cross")), "hx-api-token-3c9e", base), body: base})
		unauth("empty secret", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "emptysecret")), "", base), body: base})
		unauth("secret with a trailing escaped newline", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "nl")), f.secret+`\n`, base), body: base})
		if f.kind != "gitlab" {
			// HMAC forges: the signature binds the body.
			unauth("signature of another body", "signature of another body", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "other")), f.secret, []byte("{}")), body: base})
			tampered := withRef("$(touch " + evil + ")")
			unauth("signature of the body before tampering", "signature of another body", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "tamper")), f.secret, base), body: tampered})
			appended := append(append([]byte{}, base...), ' ')
			unauth("signature of the body, one byte appended", "signature of another body", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "append")), f.secret, base), body: appended})
			name, prefix := hxSigHeader(f)
			good := prefix + hexHMAC(f.secret, base)
			for _, v := range []struct{ what, sig string }{
				{"empty signature", ""}, {"truncated signature", good[:len(good)/2]}, {"signature not hex", prefix + strings.Repeat("zz", 32)},
				{"signature with a shell payload", prefix + "$(touch " + evil + ")"}, {"signature twice as long", good + hexHMAC(f.secret, base)},
				{"sha1 prefix", "sha1=" + hexHMAC(f.secret, base)}, {"upper-case prefix", strings.ToUpper(prefix) + hexHMAC(f.secret, base)[:10]},
			} {
				unauth(v.what, "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "sig-"+strconv.Itoa(len(cases)))), [2]string{name, v.sig}), body: base})
			}
		} else {
			unauth("token with a shell payload", "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "shtoken")), [2]string{"X-Gitlab-Token", "$(touch " + evil + ")"}), body: base})
			unauth("token prefix", "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "prefix")), [2]string{"X-Gitlab-Token", f.secret[:5]}), body: base})
			unauth("the signing token sent as the token", "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "whsec-as-token")), [2]string{"X-Gitlab-Token", "whsec_"}), body: base})
			unauth("the configured token, while a signing key is configured", "missing signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "token")), [2]string{"X-Gitlab-Token", "hx-gl-token-91c2"}), body: base})
			now := time.Now()
			sw := func(what string, key string, ts time.Time, signed []byte, body []byte) {
				did := id(f, "sw-"+what)
				h := hdr("")
				stamp := strconv.FormatInt(ts.Unix(), 10)
				m := hmac.New(sha256.New, []byte(key))
				fmt.Fprintf(m, "%s.%s.", did, stamp)
				m.Write(signed)
				h = append(h, [2]string{"Webhook-Id", did}, [2]string{"Webhook-Timestamp", stamp},
					[2]string{"Webhook-Signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))})
				unauth("standard webhooks: "+what, "bad signature", hxReq{method: "POST", path: path, header: h, body: body})
			}
			sw("stale timestamp (replay after 10 minutes)", hxWhsecKey, now.Add(-10*time.Minute), base, base)
			sw("timestamp from the future", hxWhsecKey, now.Add(10*time.Minute), base, base)
			sw("signature of another body", hxWhsecKey, now, []byte("{}"), base)
			sw("wrong key", "not-the-key", now, base, base)
		}
		unauth("malformed JSON", "malformed JSON", hxReq{method: "POST", path: path, header: hdr(id(f, "malformed-unsigned")), body: []byte(`{"ref": `)})
		unauth("deeply nested JSON", "deeply nested JSON", hxReq{method: "POST", path: path, header: hdr(id(f, "nested-unsigned")), body: hostile("nested.json")})
		unauth("shell metacharacters in the ref", "shell metacharacters", hxReq{method: "POST", path: path, header: hdr(id(f, "meta-unsigned")), body: withRef("$(touch " + evil + ")")})
		unauth("path traversal in the repository", "path traversal", hxReq{method: "POST", path: path, header: hdr(id(f, "trav-unsigned")), body: withRepo("../../../../tmp/" + marker)})
		unauth("NUL bytes in the body", "NUL bytes", hxReq{method: "POST", path: path, header: hdr(id(f, "nul-unsigned")), body: append([]byte{0, 0, 0}, base...)})
		// The delivery id of a real delivery that has not arrived yet: the
		// forgery must not take it (checked when the real one follows).
		unauth("forged delivery with a future real delivery's id", "replayed delivery", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "real")), "forged", base), body: base})

		// Authenticated and malformed: 400, recorded rejected.
		bad := func(name, category string, did string, body []byte) {
			add(hxCase{name: f.kind + ": signed " + name, category: category, req: signed(did, body), status: 400, outcome: "rejected", authentic: true})
		}
		bad("malformed JSON", "malformed JSON", id(f, "malformed"), []byte(`{"ref": `))
		bad("JSON array", "malformed JSON", id(f, "array"), []byte(`[1, 2, 3]`))
		bad("JSON null", "malformed JSON", id(f, "null"), []byte(`null`))
		bad("empty body", "malformed JSON", id(f, "empty"), nil)
		bad("trailing garbage after the JSON", "malformed JSON", id(f, "trailing"), append(append([]byte{}, base...), []byte(`{"ref": "x"}`)...))
		bad("deeply nested JSON", "deeply nested JSON", id(f, "nested"), hostile("nested.json"))
		bad("deeply nested JSON inside the payload", "deeply nested JSON", id(f, "nested-inner"),
			bytes.Replace(base, []byte("{"), []byte(`{"x": `+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`, `), 1))
		for i, meta := range []string{"$(touch " + evil + ")", "`touch " + evil + "`", "main;touch " + evil, "main|touch " + evil, "main&&touch " + evil,
			"main>" + evil, "main<" + evil, "main'x", `main"x`, "main\ntouch " + evil, "--upload-pack=touch " + evil, "-x"} {
			bad(fmt.Sprintf("shell metacharacters in the ref (%d)", i), "shell metacharacters", id(f, "meta-"+strconv.Itoa(i)), withRef(meta))
		}
		for i, trav := range []string{"../../../../tmp/" + marker, "main/../../" + marker, "..", "main/.hidden"} {
			bad(fmt.Sprintf("path traversal in the ref (%d)", i), "path traversal", id(f, "trav-ref-"+strconv.Itoa(i)), withRef(trav))
		}
		bad("NUL byte in the ref", "NUL bytes", id(f, "nul-ref"), withRef("main\x00"+evil))
		bad("NUL bytes in the body", "NUL bytes", id(f, "nul-body"), append([]byte{0}, base...))
		bad("invalid UTF-8 in the ref", "invalid UTF-8", id(f, "utf8-ref"),
			bytes.ReplaceAll(base, []byte(f.refJSON), []byte(strings.Replace(f.refOf("mainXX"), "XX", "\xff\xfe", 1))))
		bad("invalid UTF-8 in the repository", "invalid UTF-8", id(f, "utf8-repo"), bytes.ReplaceAll(base, []byte(f.repo),
			[]byte(strings.Replace(f.repo, `"`, "\"\xc3\x28", 2)[:len(f.repo)+2]+`"`)))
		bad("SHA with a shell payload", "shell metacharacters", id(f, "sha"), bytes.ReplaceAll(base, []byte(sha), []byte("$(touch "+evil+")")))
		bad("SHA that looks like an option", "shell metacharacters", id(f, "sha-opt"), bytes.ReplaceAll(base, []byte(sha), []byte("--output="+evil)))

		// Authenticated, harmless to deploy: repository names that route
		// nowhere are ignored (200), names that are not names are refused.
		// Where the payload also carries clone URLs (GitHub, GitLab, Gitea)
		// those still route it: the hostile name is only recorded, and what
		// is cloned is the configuration's git_repo, never the payload's.
		// Bitbucket Cloud has only the name, which routes nowhere; Data
		// Center refuses a slug holding /.
		for i, repo := range []string{"../../../../tmp/" + marker, "acme/hello;touch " + evil, "acme/$(touch " + evil + ")", "acme/`id`"} {
			add(hxCase{name: fmt.Sprintf("%s: signed hostile repository name (%d)", f.kind, i), category: "path traversal",
				req: signed(id(f, "repo-"+strconv.Itoa(i)), withRepo(repo)), status: f.repoStatus, outcome: outcomeOf(f.repoStatus), authentic: true})
		}
		add(hxCase{name: f.kind + ": signed repository name with a NUL byte", category: "NUL bytes",
			req: signed(id(f, "repo-nul"), withRepo("acme/hello\x00")), status: 400, outcome: "rejected", authentic: true})

		// Unknown events, signed: 200 ignored.
		for i, ev := range []string{"deployment_status", "push; touch " + evil, "../../etc/passwd"} {
			h := f.sign([][2]string{{"Content-Type", "application/json"}, {f.eventH, ev}, {f.idH, id(f, "event-"+strconv.Itoa(i))}}, f.secret, base)
			add(hxCase{name: fmt.Sprintf("%s: signed unknown event %q", f.kind, ev), category: "unknown event",
				req: hxReq{method: "POST", path: path, header: h, body: base}, status: 200, outcome: "ignored", authentic: true})
		}

		// Replays: the real delivery (after its forgery above), then the
		// same bytes again: the first answer, duplicate, nothing new queued.
		add(hxCase{name: f.kind + ": the real delivery after a forgery took its id", category: "replayed delivery",
			req: signed(id(f, "real"), base), status: 202, outcome: "accepted", authentic: true})
		for i := range 2 {
			add(hxCase{name: fmt.Sprintf("%s: replayed delivery (%d)", f.kind, i+1), category: "replayed delivery",
				req: signed(id(f, "real"), base), status: 202, outcome: "accepted", authentic: true, duplicate: true})
		}
		// The same push under a new delivery id: recorded ignored, nothing
		// queued.
		add(hxCase{name: f.kind + ": the real delivery's push under a new delivery id", category: "replayed under a new id",
			req: signed(id(f, "real-new-id"), base), status: 200, outcome: "ignored", authentic: true})

		// Refused before authentication: content type, size.
		add(hxCase{name: f.kind + ": text/plain", category: "content type", req: hxReq{method: "POST", path: path,
			header: f.sign([][2]string{{"Content-Type", "text/plain"}, {f.eventH, f.event}, {f.idH, id(f, "ct")}}, f.secret, base), body: base},
			status: 415, outcome: "rejected"})
		add(hxCase{name: f.kind + ": content type with an injected parameter", category: "header injection", req: hxReq{method: "POST", path: path,
			header: [][2]string{{"Content-Type", "application/json; charset=\"$(touch " + evil + ")\"; x=\"`id`"}, {f.eventH, f.event}}, body: base},
			status: 415, outcome: "rejected"})
		add(hxCase{name: f.kind + ": 30 MB body", category: "30 MB body", req: hxReq{method: "POST", path: path,
			header: f.sign(hdr(id(f, "big")), f.secret, nil), stream: 30 << 20}, status: 413, outcome: "rejected"})
		add(hxCase{name: f.kind + ": 30 MB body, chunked", category: "30 MB body", req: hxReq{method: "POST", path: path,
			header: hdr(id(f, "big-chunked")), stream: 30 << 20, chunked: true}, status: 413, outcome: "rejected"})
		add(hxCase{name: f.kind + ": body one byte over the limit", category: "30 MB body", req: hxReq{method: "POST", path: path,
			header: hdr(id(f, "limit")), stream: 1<<20 + 1}, status: 413, outcome: "rejected"})
	}

	// Forge detection and paths: 400, 404, 405; never recorded.
	gh := hxForges[0]
	ghBody := payload(t, gh.file)
	ghSigned := func(did string) [][2]string {
		return gh.sign([][2]string{{"Content-Type", "application/json"}, {"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", did}}, gh.secret, ghBody)
	}
	for _, p := range []string{"/webhook/sourceforge", "/webhook/github%2f..%2f..%2fetc%2fpasswd", "/webhook/..%2f..%2f" + marker,
		"/webhook/%00", "/webhook/github%0d%0aSet-Cookie:%20x=1", "/webhook/" + strings.Repeat("a", 4000)} {
		add(hxCase{name: "unknown forge in the path " + clip(p, 60), category: "path traversal",
			req: hxReq{method: "POST", path: p, header: ghSigned(fmt.Sprintf("hx-%d-path-%d", round, len(cases))), body: ghBody}, status: 404, outcome: "bad_request"})
	}
	add(hxCase{name: "no forge headers", category: "unknown event", req: hxReq{method: "POST", path: "/webhook",
		header: [][2]string{{"Content-Type", "application/json"}}, body: ghBody}, status: 400, outcome: "bad_request"})
	add(hxCase{name: "X-Event-Key without a Bitbucket delivery id", category: "unknown event", req: hxReq{method: "POST", path: "/webhook",
		header: [][2]string{{"Content-Type", "application/json"}, {"X-Event-Key", "repo:something"}}, body: ghBody}, status: 400, outcome: "bad_request"})
	add(hxCase{name: "GET /webhook", category: "unknown event", req: hxReq{method: "GET", path: "/webhook"}, status: 405})
	add(hxCase{name: "PUT /webhook/github", category: "unknown event", req: hxReq{method: "PUT", path: "/webhook/github", header: ghSigned("hx-put"), body: ghBody}, status: 405})
	add(hxCase{name: "API without its token", category: "missing signature", req: hxReq{method: "GET", path: "/api/fraises"}, status: 401})
	add(hxCase{name: "API with a wrong token", category: "bad signature", req: hxReq{method: "GET", path: "/api/deployments",
		header: [][2]string{{"Authorization", "Bearer hx-api-token-3c9"}}}, status: 401})
	add(hxCase{name: "API with a token payload", category: "header injection", req: hxReq{method: "GET", path: "/api/deployments?fraise=../../etc",
		header: [][2]string{{"Authorization", "Bearer $(touch " + evil + ")"}}}, status: 401})

	// Header injection and malformed HTTP, written byte for byte: net/http
	// refuses them before any handler (400, 431), or they are one more
	// header and authentication refuses the request (401).
	rawPost := func(headers string, body []byte) []byte {
		return []byte(fmt.Sprintf("POST /webhook/github HTTP/1.1\r\nHost: fraisier\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			headers, len(body), body))
	}
	sig := "X-Hub-Signature-256: sha256=" + hexHMAC(gh.secret, ghBody) + "\r\n"
	for _, r := range []struct {
		name   string
		raw    []byte
		status int
		auth   bool
	}{
		{"NUL byte in a header value", rawPost("X-GitHub-Event: push\r\nX-GitHub-Delivery: a\x00b\r\n"+sig, ghBody), 400, false},
		{"CR inside a header value", rawPost("X-GitHub-Event: push\rX-Injected: 1\r\n"+sig, ghBody), 400, false},
		// net/http unfolds it into one value (RFC 9112 allows either): the
		// event type "push X-Injected: 1" is unknown, and ignored.
		{"obsolete line folding", rawPost("X-GitHub-Event: push\r\n X-Injected: 1\r\n"+sig, ghBody), 200, true},
		{"header name with a space", rawPost("X-GitHub Event: push\r\n"+sig, ghBody), 400, false},
		{"header without a colon", rawPost("X-GitHub-Event push\r\n"+sig, ghBody), 400, false},
		// net/http reads the chunked body (empty) and drops Content-Length;
		// the smuggled second request is never read (Connection: close).
		{"Content-Length and Transfer-Encoding together (smuggling)", []byte("POST /webhook/github HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nPOST /webhook/github HTTP/1.1\r\n\r\n"), 401, false},
		{"two different Content-Lengths", []byte("POST /webhook/github HTTP/1.1\r\nHost: f\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}x"), 400, false},
		{"64 KB of headers", rawPost("X-GitHub-Event: push\r\nX-Padding: "+strings.Repeat("a", 70<<10)+"\r\n", ghBody), 431, false},
		{"a delivery id with an injected header, unsigned", rawPost("X-GitHub-Event: push\r\nX-GitHub-Delivery: x\r\nSet-Cookie: x=1\r\n", ghBody), 401, false},
		{"an injected second signature header", rawPost("X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=00\r\n"+sig, ghBody), 401, false},
		{"a bare LF line ending", []byte(strings.ReplaceAll(string(rawPost("X-GitHub-Event: push\r\n", ghBody)), "\r\n", "\n")), 401, false},
		{"HTTP/0.9 request line", []byte("POST /webhook/github\r\n\r\n"), 400, false},
		{"request line with a shell payload", []byte("POST /webhook/$(touch%20" + evil + ") HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"), 404, false},
	} {
		outcome := ""
		if r.status < 300 || r.status == 401 {
			outcome = outcomeOf(r.status)
		}
		add(hxCase{name: "raw: " + r.name, category: "header injection", req: hxReq{raw: r.raw}, status: r.status, outcome: outcome, authentic: r.auth})
	}
	return cases
}

// hasDeliveryHeader reports whether r names a delivery id in a header.
func hasDeliveryHeader(r hxReq) bool {
	for _, h := range r.header {
		switch http.CanonicalHeaderKey(h[0]) {
		case "X-Github-Delivery", "X-Gitlab-Event-Uuid", "X-Gitea-Delivery", "X-Request-Uuid", "X-Request-Id", "Webhook-Id":
			return true
		}
	}
	return false
}

// hxSigHeader is the header an HMAC forge signs in, and its prefix.
func hxSigHeader(f hxForge) (string, string) {
	h := f.sign(nil, "k", nil)
	name, v := h[0][0], h[0][1]
	prefix, _, _ := strings.Cut(v, "=")
	if prefix == v {
		return name, ""
	}
	return name, prefix + "="
}

// hxResult is what one request got.
type hxResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

var hxClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

// jsonStream yields n bytes: a JSON object whose value is one long string.
type jsonStream struct{ n, off int64 }

func (s *jsonStream) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	k := int64(len(p))
	if k > s.n-s.off {
		k = s.n - s.off
	}
	for i := int64(0); i < k; i++ {
		switch pos := s.off + i; {
		case pos < 6:
			p[i] = `{"a":"`[pos]
		case pos >= s.n-2:
			p[i] = `"}`[pos-(s.n-2)]
		default:
			p[i] = 'x'
		}
	}
	s.off += k
	return int(k), nil
}

func (s *hxServer) do(r hxReq) hxResult {
	if r.raw != nil {
		return s.raw(r.raw)
	}
	if r.stream > 0 {
		return s.streamed(r)
	}
	req, err := http.NewRequest(r.method, s.base+r.path, bytes.NewReader(r.body))
	if err != nil {
		return hxResult{err: err}
	}
	if strings.Contains(r.path, "%") {
		req.URL.RawPath = r.path // keep the escapes as sent
		req.URL.Opaque = r.path
	}
	for _, h := range r.header {
		req.Header.Add(h[0], h[1])
	}
	resp, err := hxClient.Do(req)
	if err != nil {
		return hxResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return hxResult{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// raw writes b to a new connection and reads one answer, or notes that
// the connection closed without one (status 0).
func (s *hxServer) raw(b []byte) hxResult {
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return hxResult{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go c.Write(b)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return hxResult{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return hxResult{status: resp.StatusCode, header: resp.Header, body: body}
}

// streamed sends a generated body of r.stream bytes on its own connection,
// reading the answer while it writes: the server answers 413 long before
// the body ends.
func (s *hxServer) streamed(r hxReq) hxResult {
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return hxResult{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: fraisier\r\n", r.method, r.path)
	for _, h := range r.header {
		fmt.Fprintf(&head, "%s: %s\r\n", h[0], h[1])
	}
	if r.chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", r.stream)
	}
	go func() {
		w := bufio.NewWriterSize(c, 64<<10)
		w.Write(head.Bytes())
		src := &jsonStream{n: r.stream}
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				var werr error
				if r.chunked {
					_, werr = fmt.Fprintf(w, "%x\r\n%s\r\n", n, buf[:n])
				} else {
					_, werr = w.Write(buf[:n])
				}
				if werr != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
		if r.chunked {
			w.WriteString("0\r\n\r\n")
		}
		w.Flush()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return hxResult{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return hxResult{status: resp.StatusCode, header: resp.Header, body: body}
}

// hxProbe measures /health every interval until stop is closed.
type hxProbe struct {
	mu    sync.Mutex
	lat   []time.Duration
	fails []string
}

// probeEnv makes the test binary a health prober (see TestMain): the probe
// runs in a process of its own, so that what it measures is the server's
// answer, not the attacker's goroutines and garbage in the test process
// delaying the prober itself.
const probeEnv = "FRAISIER_HX_PROBE_URL"

// run probes base+"/health" every interval from a child process until
// stop is closed, then collects its measurements.
func (p *hxProbe) run(base string, interval time.Duration, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), probeEnv+"="+base+"/health", fmt.Sprintf("FRAISIER_HX_PROBE_EVERY=%d", interval))
	in, err := cmd.StdinPipe()
	if err != nil {
		p.fail(err.Error())
		return
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		p.fail(err.Error())
		return
	}
	<-stop
	in.Close()
	if err := cmd.Wait(); err != nil {
		p.fail(fmt.Sprintf("probe process: %v: %s", err, clip(out.String(), 300)))
	}
	for _, line := range strings.Split(out.String(), "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		switch kind {
		case "ok":
			if ns, err := strconv.ParseInt(rest, 10, 64); err == nil {
				p.mu.Lock()
				p.lat = append(p.lat, time.Duration(ns))
				p.mu.Unlock()
			}
		case "fail":
			p.fail(rest)
		}
	}
}

func (p *hxProbe) fail(msg string) {
	p.mu.Lock()
	p.fails = append(p.fails, msg)
	p.mu.Unlock()
}

// probeProcess is the prober's side: GET url every interval until stdin
// closes, one line per probe ("ok <ns>" or "fail <why>").
func probeProcess(url string) int {
	interval, _ := strconv.ParseInt(os.Getenv("FRAISIER_HX_PROBE_EVERY"), 10, 64)
	if interval <= 0 {
		interval = int64(10 * time.Millisecond)
	}
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	tick := time.NewTicker(time.Duration(interval))
	defer tick.Stop()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	for {
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
		start := time.Now()
		resp, err := c.Get(url)
		d := time.Since(start)
		switch {
		case err != nil:
			fmt.Fprintf(w, "fail %v\n", err)
		case resp.StatusCode != 200:
			fmt.Fprintf(w, "fail %s\n", resp.Status)
		default:
			fmt.Fprintf(w, "ok %d\n", d.Nanoseconds())
		}
		if resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

func (p *hxProbe) summary() (n int, p99, max time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lat), percentile(p.lat, 0.99), percentile(p.lat, 1)
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// memSampler records the server process's RSS.
type memSampler struct {
	pid     int
	mu      sync.Mutex
	rssPeak uint64
}

func (m *memSampler) sample() (rss uint64) {
	rss = procRSS(m.pid)
	m.mu.Lock()
	m.rssPeak = max(m.rssPeak, rss)
	m.mu.Unlock()
	return rss
}

func (m *memSampler) run(interval time.Duration, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			m.sample()
		}
	}
}

// procRSS is process pid's resident set in bytes (VmRSS), 0 where /proc
// is not there.
func procRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

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

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

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
