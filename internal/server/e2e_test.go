package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// The end-to-end tests run the real fraisier binary, built once per test
// binary from cmd/fraisier, as an operator runs it: `fraisier serve` on a
// loopback port with a fraises.yaml and a SQLite state database, signed
// GitHub deliveries over HTTP, a bare git origin that the test pushes to,
// and the test HTTP service run by a private systemd user manager, which
// every deployment restarts and health-checks. Other fraisier commands
// (lock, deploy, history, webhooks) run as separate processes against the
// same configuration and state; the test reads the state database itself
// for the exact assertions.
//
// Every deployment runs an install script that the test can hold: while
// the file hold exists in the control directory, installs wait there. That
// is how a test keeps a deployment running for exactly as long as it needs,
// without sleeping.

// installScript is every environment's install step: it records which
// version it installs, then waits while the test holds the gate.
const installScript = `# e2e install step: $1 is the test's control directory.
v=$(cat VERSION)
touch "$1/started-$v"
while [ -e "$1/hold" ]; do sleep 0.02; done
`

// e2eEnv is one environment of the fraise hello: a branch, a systemd unit
// running the test HTTP service from app_path/current, and its port.
type e2eEnv struct {
	name, branch string
	unit, app    string
	port         int
}

type e2eOptions struct {
	// envs maps environment names to branches; default production: main.
	envs map[string]string
	// grace is server.shutdown_grace (default 1m).
	grace string
	// pullRequests maps environment names to their pull_requests pattern.
	pullRequests map[string]string
	// checks maps the environments with trigger: checks to their checks:
	// list in YAML ("" for none).
	checks map[string]string
	// githubStatus is the API address git.github.status reports to ("":
	// none), with the token in $E2E_STATUS_TOKEN.
	githubStatus string
}

// e2e is one fraisier installation on real parts.
type e2e struct {
	t       *testing.T
	bin     string
	root    string
	ctl     string
	repo    *testenv.Origin
	cfgPath string
	dbPath  string
	secret  string
	port    int
	env     []string
	mgr     *tsystemd.Manager
	envs    map[string]*e2eEnv
	heads   map[string][]string // SHAs pushed per branch, oldest first
	procs   []*testenv.Proc

	dbOnce sync.Once
	db     *store.DB
	dbErr  error

	deliveries atomic.Int64
	deliveryNS string
}

// githubStatusYAML is git.github's status: section for the API at url.
func githubStatusYAML(url string) string {
	if url == "" {
		return ""
	}
	return "    status:\n      token: ${E2E_STATUS_TOKEN}\n      api_url: " + url + "\n"
}

func newE2E(t *testing.T, o e2eOptions) *e2e {
	t.Helper()
	if o.envs == nil {
		o.envs = map[string]string{"production": "main"}
	}
	if o.grace == "" {
		o.grace = "1m"
	}
	bin := testenv.BuildFraisier(t)
	root := t.TempDir()
	repo := testenv.NewOrigin(t, root)
	mgr := tsystemd.UserManager(t)
	f := &e2e{
		t: t, bin: bin, root: root, ctl: filepath.Join(root, "ctl"), repo: repo,
		cfgPath: filepath.Join(root, "fraises.yaml"), dbPath: filepath.Join(root, "state", "fraisier.db"),
		secret: testenv.RandomHex(16), port: testenv.FreePort(t), mgr: mgr,
		envs: map[string]*e2eEnv{}, heads: map[string][]string{}, deliveryNS: testenv.RandomHex(4),
	}
	if err := os.MkdirAll(f.ctl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.ctl, "install.sh"), []byte(installScript), 0o644); err != nil {
		t.Fatal(err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `git:
  github:
    secret: ${E2E_WEBHOOK_SECRET}
%sserver:
  listen: 127.0.0.1:%d
  shutdown_grace: %s
  rate_limit:
    per_source: 10000
    global: 10000
    burst: 1000
fraises:
  hello:
    type: api
    repository: acme/hello
    environments:
`, githubStatusYAML(o.githubStatus), f.port, o.grace)
	for name, branch := range o.envs {
		e := &e2eEnv{name: name, branch: branch, app: filepath.Join(root, "srv", name), port: testenv.FreePort(t)}
		e.unit = mgr.AppUnit(t, "hello-"+name+".service", e.port, filepath.Join(e.app, "current"))
		f.envs[name] = e
		fmt.Fprintf(&b, `      %s:
        branch: %s
        git_repo: %s
        app_path: %s
        scope: user
        systemd_service: %s
        install:
          command: [sh, %s, %s]
        health_check:
          url: http://127.0.0.1:%d/health
          timeout: 500ms
          retries: 40
          interval: 100ms
          deadline: 10s
`, name, branch, repo.Dir, e.app, e.unit, filepath.Join(f.ctl, "install.sh"), f.ctl, e.port)
		if p := o.pullRequests[name]; p != "" {
			fmt.Fprintf(&b, "        pull_requests: %q\n", p)
		}
		if c, ok := o.checks[name]; ok {
			fmt.Fprintf(&b, "        trigger: checks\n")
			if c != "" {
				fmt.Fprintf(&b, "        checks: %s\n", c)
			}
		}
	}
	if err := os.WriteFile(f.cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	home := filepath.Join(root, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	f.env = append(os.Environ(),
		"HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"FRAISIER_CONFIG="+f.cfgPath, "FRAISIER_STATE="+f.dbPath,
		"E2E_WEBHOOK_SECRET="+f.secret, "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=")
	f.env = append(f.env, mgr.Env()...)
	t.Cleanup(func() {
		// An install left waiting by a killed fraisier ends with the gate.
		os.Remove(filepath.Join(f.ctl, "hold"))
		if t.Failed() {
			t.Logf("systemd user manager log (tail):\n%s", mgr.LogTail(4<<10))
		}
	})
	return f
}

// push makes n commits on branch, each with its own VERSION
// (<branch>-<k>), pushes them to the origin in one push, and returns their
// SHAs, oldest first.
func (f *e2e) push(branch string, n int) []string {
	f.t.Helper()
	have := len(f.heads[branch])
	commits := make([]testenv.ImportCommit, n)
	for i := range commits {
		k := have + i + 1
		v := version(branch, k)
		commits[i] = testenv.ImportCommit{Message: v, Files: map[string]string{"VERSION": v + "\n"}}
		if k == 1 {
			commits[i].Files["behaviour"] = "healthy\n"
		}
	}
	shas := f.repo.Import(branch, commits)
	f.heads[branch] = append(f.heads[branch], shas...)
	return shas
}

// version is what the service answers for the k-th commit of branch.
func version(branch string, k int) string { return fmt.Sprintf("%s-%d", branch, k) }

// hold makes every install wait until release.
func (f *e2e) hold() {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.ctl, "hold"), nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *e2e) release() {
	f.t.Helper()
	if err := os.Remove(filepath.Join(f.ctl, "hold")); err != nil {
		f.t.Fatal(err)
	}
}

// installStarted reports whether an install of version v has begun.
func (f *e2e) installStarted(v string) bool {
	_, err := os.Stat(filepath.Join(f.ctl, "started-"+v))
	return err == nil
}

// ---- webhooks ----

type hookAnswer struct {
	Outcome        store.Outcome `json:"outcome"`
	Reason         string        `json:"reason"`
	WebhookEventID int64         `json:"webhook_event_id"`
	Forge          string        `json:"forge"`
	DeliveryID     string        `json:"delivery_id"`
	Duplicate      bool          `json:"duplicate"`
	Deployments    []struct {
		Fraise        string `json:"fraise"`
		Environment   string `json:"environment"`
		DeploymentID  int64  `json:"deployment_id"`
		Superseded    int64  `json:"superseded"`
		ReplacedEvent int64  `json:"replaced_webhook_event_id"`
		Folded        bool   `json:"folded"`
		HeldForChecks int64  `json:"held_for_checks"`
	} `json:"deployments"`
}

// delivery is one signed GitHub delivery: a push unless event says.
type delivery struct {
	id    string
	event string
	sha   string
	body  []byte
	sig   string
}

func (f *e2e) delivery(branch, before, after string) delivery {
	if before == "" {
		before = strings.Repeat("0", 40)
	}
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after,
		"repository": map[string]any{"full_name": "acme/hello", "clone_url": "https://git.example.invalid/acme/hello.git"},
		"pusher":     map[string]any{"name": "alice"},
		"sender":     map[string]any{"login": "alice"},
	})
	if err != nil {
		panic(err)
	}
	d := f.signed("push", body)
	d.sha = after
	return d
}

// signed is a delivery of event with body, signed with the webhook secret.
func (f *e2e) signed(event string, body []byte) delivery {
	mac := hmac.New(sha256.New, []byte(f.secret))
	mac.Write(body)
	id := fmt.Sprintf("e2e-%s-%06d", f.deliveryNS, f.deliveries.Add(1))
	return delivery{id: id, event: event, body: body, sig: "sha256=" + hex.EncodeToString(mac.Sum(nil))}
}

// send posts d to base/webhook with c and returns the status and answer.
func (f *e2e) send(c *http.Client, base string, d delivery) (int, hookAnswer, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhook", bytes.NewReader(d.body))
	if err != nil {
		return 0, hookAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/e2e")
	event := d.event
	if event == "" {
		event = "push"
	}
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", d.id)
	req.Header.Set("X-Hub-Signature-256", d.sig)
	resp, err := c.Do(req)
	if err != nil {
		return 0, hookAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, hookAnswer{}, err
	}
	var a hookAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return resp.StatusCode, a, fmt.Errorf("answer %q: %w", raw, err)
	}
	return resp.StatusCode, a, nil
}

// hook pushes the delivery for after on branch and insists on 202 naming
// one queued deployment, whose id it returns with the answer.
func (f *e2e) hook(branch, before, after string) hookAnswer {
	f.t.Helper()
	d := f.delivery(branch, before, after)
	status, a, err := f.send(&http.Client{Timeout: 10 * time.Second}, f.base(), d)
	if err != nil {
		f.t.Fatalf("webhook %s: %v", d.id, err)
	}
	if status != http.StatusAccepted || a.Outcome != store.OutcomeAccepted || len(a.Deployments) != 1 ||
		a.Deployments[0].DeploymentID == 0 || a.WebhookEventID == 0 || a.DeliveryID != d.id {
		f.t.Fatalf("webhook %s for %s: %d %+v; want 202 accepted naming one queued deployment", d.id, after, status, a)
	}
	return a
}

func (f *e2e) base() string { return fmt.Sprintf("http://127.0.0.1:%d", f.port) }

// ---- processes ----

// start runs argv (the fraisier binary unless argv[0] is a path) in the
// background with the fixture's environment plus extraEnv.
func (f *e2e) start(name string, extraEnv []string, argv ...string) *testenv.Proc {
	f.t.Helper()
	return testenv.StartProc(f.t, name, append(append([]string{}, f.env...), extraEnv...), argv...)
}

// serve starts fraisier serve and waits until /ready answers 200.
func (f *e2e) serve() *testenv.Proc {
	f.t.Helper()
	f.procs = append(f.procs, nil)
	p := f.start(fmt.Sprintf("fraisier serve #%d", len(f.procs)), nil, f.bin, "serve")
	f.procs[len(f.procs)-1] = p
	waitReady(f.t, p, &http.Client{Timeout: 2 * time.Second}, f.base())
	return p
}

func waitReady(t *testing.T, p *testenv.Proc, c *http.Client, base string) {
	t.Helper()
	testenv.WaitFor(t, p.Name+" to answer /ready", 20*time.Second, func() bool {
		if p.Exited() {
			t.Fatalf("%s exited before it was ready: %v", p.Name, p.Err())
		}
		resp, err := c.Get(base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// cli runs one fraisier command to completion and returns its stdout and
// exit code.
func (f *e2e) cli(args ...string) (string, int) {
	f.t.Helper()
	cmd := exec.Command(f.bin, args...)
	cmd.Env = f.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := testenv.Run(f.t, cmd, 60*time.Second).ExitCode()
	f.t.Logf("$ fraisier %s  (exit %d)\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return stdout.String(), code
}

// ---- state ----

// store opens the state database the fraisier processes use (once a
// fraisier process has created it).
func (f *e2e) store() *store.DB {
	f.t.Helper()
	f.dbOnce.Do(func() {
		f.db, f.dbErr = store.Open(context.Background(), store.Options{Path: f.dbPath})
		if f.dbErr == nil {
			f.t.Cleanup(func() { f.db.Close() })
		}
	})
	if f.dbErr != nil {
		f.t.Fatalf("open the state database: %v", f.dbErr)
	}
	return f.db
}

func (f *e2e) deployment(id int64) store.Deployment {
	f.t.Helper()
	d, err := f.store().Deployment(context.Background(), id)
	if err != nil {
		f.t.Fatalf("deployment %d: %v", id, err)
	}
	return d
}

// deployments lists environment env's deployments, oldest first.
func (f *e2e) deployments(env string) []store.Deployment {
	f.t.Helper()
	ds, err := f.store().Deployments(context.Background(), store.DeploymentFilter{Fraise: "hello", Environment: env, Limit: 10000})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

func (f *e2e) webhooks() map[string]store.WebhookEvent {
	f.t.Helper()
	evs, err := f.store().Webhooks(context.Background(), store.WebhookFilter{Limit: 10000})
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]store.WebhookEvent{}
	for _, e := range evs {
		if _, dup := out[e.DeliveryID]; dup {
			f.t.Errorf("delivery %s recorded twice", e.DeliveryID)
		}
		out[e.DeliveryID] = e
	}
	return out
}

func (f *e2e) state(env string) store.FraiseState {
	f.t.Helper()
	st, err := f.store().FraiseStates(context.Background(), "hello", env)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(st) == 0 {
		return store.FraiseState{}
	}
	return st[0]
}

// idle reports whether no deployment runs or waits.
func (f *e2e) idle() bool {
	f.t.Helper()
	ds, err := f.store().RunningDeployments(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return len(ds) == 0
}

// serving returns what environment env's service answers on / now.
func (f *e2e) serving(env string) string { return testenv.AppAnswer(f.envs[env].port) }

// waitDeployed waits until nothing runs or waits and env serves version v
// at sha.
func (f *e2e) waitDeployed(env, sha, v string, d time.Duration) {
	f.t.Helper()
	testenv.WaitFor(f.t, fmt.Sprintf("%s to be deployed to %s", v, env), d, func() bool {
		return f.idle() && f.state(env).CurrentSHA == sha && f.serving(env) == v
	})
}

// logHas reports whether a JSON log line of p has msg and every key=value
// in attrs (values compared as their JSON text without quotes).
func logHas(p *testenv.Proc, msg string, attrs ...string) bool {
	sc := bufio.NewScanner(strings.NewReader(p.Out.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["msg"] != msg {
			continue
		}
		for i := 0; i+1 < len(attrs); i += 2 {
			if fmt.Sprint(rec[attrs[i]]) != attrs[i+1] {
				continue lines
			}
		}
		return true
	}
	return false
}

var httpClient = http.Client{Timeout: 10 * time.Second}
