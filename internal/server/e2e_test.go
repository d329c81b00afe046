package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// fraisierBin returns the path of the fraisier binary, building it on the
// first call. The binary goes to a directory named after this test
// process; directories left by earlier test processes that are gone are
// removed first (a test binary has no hook that runs after its last test
// without TestMain, which this package leaves to its unit tests).
func fraisierBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { builtBin, buildErr = buildFraisier() })
	if errors.Is(buildErr, exec.ErrNotFound) {
		testenv.Unavailable(t, "build fraisier: %v", buildErr)
	}
	if buildErr != nil {
		t.Fatalf("build fraisier: %v", buildErr)
	}
	return builtBin
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

func buildFraisier() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "fraisier-e2e-bin-*"))
	for _, dir := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "fraisier-e2e-bin-"))
		if err == nil && syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(dir)
		}
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("fraisier-e2e-bin-%d", os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "fraisier")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/fraiseql/fraisier/cmd/fraisier")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return bin, nil
}

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
}

// e2e is one fraisier installation on real parts.
type e2e struct {
	t       *testing.T
	bin     string
	root    string
	ctl     string
	origin  string
	pusher  string
	cfgPath string
	dbPath  string
	secret  string
	port    int
	env     []string
	mgr     *tsystemd.Manager
	envs    map[string]*e2eEnv
	heads   map[string][]string // SHAs pushed per branch, oldest first
	procs   []*proc

	dbOnce sync.Once
	db     *store.DB
	dbErr  error

	deliveries atomic.Int64
	deliveryNS string
}

func newE2E(t *testing.T, o e2eOptions) *e2e {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		testenv.Unavailable(t, "git not installed")
	}
	if o.envs == nil {
		o.envs = map[string]string{"production": "main"}
	}
	if o.grace == "" {
		o.grace = "1m"
	}
	bin := fraisierBin(t)
	app := testenv.BuildHTTPApp(t)
	mgr := tsystemd.UserManager(t)
	root := t.TempDir()
	f := &e2e{
		t: t, bin: bin, root: root, ctl: filepath.Join(root, "ctl"),
		origin: filepath.Join(root, "origin.git"), pusher: filepath.Join(root, "pusher.git"),
		cfgPath: filepath.Join(root, "fraises.yaml"), dbPath: filepath.Join(root, "state", "fraisier.db"),
		secret: randomHex(16), port: testenv.FreePort(t), mgr: mgr,
		envs: map[string]*e2eEnv{}, heads: map[string][]string{}, deliveryNS: randomHex(4),
	}
	if err := os.MkdirAll(f.ctl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.ctl, "install.sh"), []byte(installScript), 0o644); err != nil {
		t.Fatal(err)
	}
	f.git(root, "init", "-q", "--bare", "-b", "main", f.origin)
	f.git(root, "init", "-q", "--bare", "-b", "main", f.pusher)
	f.git(f.pusher, "remote", "add", "origin", f.origin)

	var b strings.Builder
	fmt.Fprintf(&b, `git:
  github:
    secret: ${E2E_WEBHOOK_SECRET}
server:
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
`, f.port, o.grace)
	for name, branch := range o.envs {
		e := &e2eEnv{name: name, branch: branch, unit: mgr.Unit("hello-" + name + ".service"),
			app: filepath.Join(root, "srv", name), port: testenv.FreePort(t)}
		f.envs[name] = e
		unit := fmt.Sprintf("[Unit]\nDescription=fraisier e2e %s\n[Service]\nExecStart=%s -addr 127.0.0.1:%d -dir %s\nRestart=no\n",
			name, app, e.port, filepath.Join(e.app, "current"))
		if err := os.WriteFile(filepath.Join(mgr.UnitDir, e.unit), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
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
`, name, branch, f.origin, e.app, e.unit, filepath.Join(f.ctl, "install.sh"), f.ctl, e.port)
		if p := o.pullRequests[name]; p != "" {
			fmt.Fprintf(&b, "        pull_requests: %q\n", p)
		}
	}
	if err := os.WriteFile(f.cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := mgr.Systemctl(context.Background(), "daemon-reload"); err != nil {
		t.Fatalf("daemon-reload: %v %s", err, out)
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

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (f *e2e) git(dir string, args ...string) string {
	f.t.Helper()
	return f.gitIn(dir, nil, args...)
}

func (f *e2e) gitIn(dir string, stdin io.Reader, args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "HOME="+f.root, "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// push makes n commits on branch, each with its own VERSION
// (<branch>-<k>), pushes them to the origin in one push, and returns their
// SHAs, oldest first. One git fast-import makes them all, so that hundreds
// cost a fraction of a second.
func (f *e2e) push(branch string, n int) []string {
	f.t.Helper()
	var b bytes.Buffer
	data := func(s string) { fmt.Fprintf(&b, "data %d\n%s\n", len(s), s) }
	have := len(f.heads[branch])
	for i := 1; i <= n; i++ {
		k := have + i
		v := fmt.Sprintf("%s-%d", branch, k)
		fmt.Fprintf(&b, "commit refs/heads/%s\nmark :%d\ncommitter test <test@example.com> %d +0000\n", branch, i, 1700000000+k)
		data(v)
		if i == 1 && have > 0 {
			fmt.Fprintf(&b, "from refs/heads/%s^0\n", branch)
		}
		b.WriteString("M 644 inline VERSION\n")
		data(v + "\n")
		if k == 1 {
			b.WriteString("M 644 inline behaviour\n")
			data("healthy\n")
		}
	}
	b.WriteString("done\n")
	marks := filepath.Join(f.root, "marks")
	f.gitIn(f.pusher, &b, "fast-import", "--quiet", "--done", "--export-marks="+marks)
	f.git(f.pusher, "push", "-q", "origin", "refs/heads/"+branch+":refs/heads/"+branch)
	mb, err := os.ReadFile(marks)
	if err != nil {
		f.t.Fatal(err)
	}
	shas := make([]string, n)
	for _, line := range strings.Split(strings.TrimSpace(string(mb)), "\n") {
		mark, sha, ok := strings.Cut(line, " ")
		i, err := strconv.Atoi(strings.TrimPrefix(mark, ":"))
		if !ok || err != nil || i < 1 || i > n {
			f.t.Fatalf("fast-import mark %q", line)
		}
		shas[i-1] = sha
	}
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
	Outcome        string `json:"outcome"`
	Reason         string `json:"reason"`
	WebhookEventID int64  `json:"webhook_event_id"`
	Forge          string `json:"forge"`
	DeliveryID     string `json:"delivery_id"`
	Duplicate      bool   `json:"duplicate"`
	Deployments    []struct {
		Fraise        string `json:"fraise"`
		Environment   string `json:"environment"`
		DeploymentID  int64  `json:"deployment_id"`
		Superseded    int64  `json:"superseded"`
		ReplacedEvent int64  `json:"replaced_webhook_event_id"`
		Folded        bool   `json:"folded"`
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

// proc is one fraisier process.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan struct{}
	err  error
}

// start runs argv (the fraisier binary unless argv[0] is a path) in the
// background with the fixture's environment plus extraEnv.
func (f *e2e) start(name string, extraEnv []string, argv ...string) *proc {
	f.t.Helper()
	return startProc(f.t, name, append(append([]string{}, f.env...), extraEnv...), argv)
}

func startProc(t *testing.T, name string, env, argv []string) *proc {
	t.Helper()
	p := &proc{name: name, out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", p.name, p.cmd.Process.Pid, tail(p.out.String(), 12<<10))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %s", p.name, d)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", p.name, p.err)
	return -1
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
}

// serve starts fraisier serve and waits until /ready answers 200.
func (f *e2e) serve() *proc {
	f.t.Helper()
	f.procs = append(f.procs, nil)
	p := f.start(fmt.Sprintf("fraisier serve #%d", len(f.procs)), nil, f.bin, "serve")
	f.procs[len(f.procs)-1] = p
	waitReady(f.t, p, &http.Client{Timeout: 2 * time.Second}, f.base())
	return p
}

func waitReady(t *testing.T, p *proc, c *http.Client, base string) {
	t.Helper()
	waitFor(t, p.name+" to answer /ready", 20*time.Second, func() bool {
		if p.exited() {
			t.Fatalf("%s exited before it was ready: %v", p.name, p.err)
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
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("fraisier %s: %v", strings.Join(args, " "), err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		f.t.Fatalf("fraisier %s: did not finish within 60s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		f.t.Fatalf("fraisier %s: %v", strings.Join(args, " "), err)
	}
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
func (f *e2e) serving(env string) string {
	f.t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", f.envs[env].port))
	if err != nil {
		return "down: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// waitDeployed waits until nothing runs or waits and env serves version v
// at sha.
func (f *e2e) waitDeployed(env, sha, v string, d time.Duration) {
	f.t.Helper()
	waitFor(f.t, fmt.Sprintf("%s to be deployed to %s", v, env), d, func() bool {
		return f.idle() && f.state(env).CurrentSHA == sha && f.serving(env) == v
	})
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logHas reports whether a JSON log line of p has msg and every key=value
// in attrs (values compared as their JSON text without quotes).
func logHas(p *proc, msg string, attrs ...string) bool {
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
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
