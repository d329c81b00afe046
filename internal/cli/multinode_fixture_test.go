package cli_test

import (
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// multiNode is three fraisier nodes on this machine sharing one real
// PostgreSQL state, as three servers behind one load balancer would: web-1
// runs `fraisier serve --node web-1` (the webhook intake on a loopback
// port), web-2 and web-3 run `fraisier node --node web-N`. Each host has
// its own directory (app_path, fraisier's own directory with its git
// mirror), its own private systemd user manager running the test HTTP
// service from its current release, and its own port. They all read one
// fraises.yaml, whose per-host values come from ${VAR} expansion of each
// node's environment.
type multiNode struct {
	// t is the running step's test; top the whole test's, which the
	// nodes' processes live as long as.
	t, top    *testing.T
	bin       string
	root, ctl string
	repo      *testenv.Origin
	pg        *pgtest.Cluster
	stateURL  string
	cfg       string
	secret    string
	servePort int
	hosts     []*mnHost
	version   int
	shas      map[string]string // version -> commit
	live      string            // the version every host serves after the last step
	db        *store.DB

	deliveries atomic.Int64
}

// mnHost is one host: its node's name and process, directory, service
// port, user manager and unit.
type mnHost struct {
	name string
	dir  string
	port int
	mgr  *tsystemd.Manager
	unit string
	env  []string
	proc *testenv.Proc
	runs int  // how many times its node was started
	down bool // the test stopped its node on purpose
}

// mnHostNames are the hosts in rollout order; web-1 takes the webhooks
// and, being first, runs the migrations.
var mnHostNames = []string{"web-1", "web-2", "web-3"}

// mnInstall is every host's install step: it says which host installs
// which version, makes the release unhealthy on the host its commit names
// (a file unhealthy-on-<host>), and waits while the test holds that host.
const mnInstall = `# multinode install step: $1 the test's control directory, $2 this host.
v=$(cat VERSION)
touch "$1/started-$2-$v"
if [ -e "unhealthy-on-$2" ]; then echo unhealthy > behaviour; fi
while [ -e "$1/hold-$2" ]; do sleep 0.05; done
`

// mnMigrate is the migration tool (tool: command): the database's
// revision is one file every host shares, and every run is logged, so that
// the test counts how often each version migrated and where.
const mnMigrate = `# multinode migration tool: $1 the control directory, $2 up|down|current, $3 this host, $4 the revision (down).
case $2 in
up) v=$(cat VERSION); echo "up $v $3" >> "$1/migrations.log"; echo "$v" > "$1/db-revision" ;;
down) echo "down $4 $3" >> "$1/migrations.log"; echo "$4" > "$1/db-revision" ;;
current) if [ -e "$1/db-revision" ]; then cat "$1/db-revision"; else echo none; fi ;;
esac
`

// mnConfig is the one fraises.yaml; its verbs are the webhook port, the
// origin and the control directory.
const mnConfig = `git:
  github:
    secret: ${MN_WEBHOOK_SECRET}
state:
  url: ${MN_STATE_URL}
  dir: ${NODE_DIR}/fraisier
server:
  listen: 127.0.0.1:%d
  shutdown_grace: 30s
  rate_limit:
    per_source: 10000
    global: 10000
    burst: 1000
fraises:
  hello:
    type: api
    repository: acme/hello
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: ${NODE_DIR}/app
        scope: user
        systemd_service: ${NODE_UNIT}
        hosts: [web-1, web-2, web-3]
        rollout:
          batch: 1
          node_timeout: 4s
          claim_timeout: 1m
        install:
          command: [sh, %[3]s/install.sh, %[3]s, "${NODE_NAME}"]
        database:
          tool: command
          up: [sh, %[3]s/migrate.sh, %[3]s, up, "${NODE_NAME}"]
          down: [sh, %[3]s/migrate.sh, %[3]s, down, "${NODE_NAME}", "{revision}"]
          current: [sh, %[3]s/migrate.sh, %[3]s, current]
        health_check:
          url: http://127.0.0.1:${NODE_PORT}/health
          timeout: 500ms
          retries: 10
          interval: 100ms
          deadline: 5s
`

// newMultiNode sets up the hosts and starts their nodes, returning once
// web-1 answers /ready and fraisier nodes lists the three alive.
func newMultiNode(t *testing.T) *multiNode {
	t.Helper()
	bin, err := exec.LookPath("fraisier")
	if err != nil {
		t.Fatalf("fraisier is not on PATH (testscript.Main puts it there): %v", err)
	}
	root := t.TempDir()
	f := &multiNode{t: t, top: t, bin: bin, root: root, ctl: filepath.Join(root, "ctl"), repo: testenv.NewOrigin(t, root),
		cfg: filepath.Join(root, "fraises.yaml"), secret: testenv.RandomHex(16), servePort: testenv.FreePort(t),
		shas: map[string]string{}}
	f.pg = pgCluster(t)
	if err := f.pg.CreateDatabase(context.Background(), "fraisier"); err != nil {
		t.Fatal(err)
	}
	f.stateURL = f.pg.URL("fraisier", "")
	f.writeFiles()
	for _, name := range mnHostNames {
		f.hosts = append(f.hosts, f.newHost(name))
	}
	t.Cleanup(func() {
		// An install a killed node left waiting ends with its gate.
		for _, h := range mnHostNames {
			os.Remove(filepath.Join(f.ctl, "hold-"+h))
		}
		if t.Failed() {
			for _, h := range f.hosts {
				t.Logf("%s: user manager log (tail):\n%s", h.name, h.mgr.LogTail(3<<10))
			}
			t.Logf("PostgreSQL log (tail):\n%s", f.pg.LogTail(3<<10))
			t.Logf("migrations.log:\n%s", f.migrationsLog())
		}
	})
	if out, code := f.cli("config", "validate"); code != 0 {
		t.Fatalf("fraisier config validate: exit %d\n%s", code, out)
	}
	for _, h := range f.hosts {
		f.startNode(h)
	}
	f.waitReady()
	f.waitNodes("the three nodes to be alive", 30*time.Second, map[string]bool{"web-1": true, "web-2": true, "web-3": true})
	db, err := store.Open(context.Background(), store.Options{URL: f.stateURL})
	if err != nil {
		t.Fatalf("open the shared state: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	return f
}

// writeFiles writes the control scripts and fraises.yaml.
func (f *multiNode) writeFiles() {
	f.t.Helper()
	if err := os.MkdirAll(f.ctl, 0o755); err != nil {
		f.t.Fatal(err)
	}
	for name, text := range map[string]string{"install.sh": mnInstall, "migrate.sh": mnMigrate,
		f.cfg: fmt.Sprintf(mnConfig, f.servePort, f.repo.Dir, f.ctl)} {
		if !filepath.IsAbs(name) {
			name = filepath.Join(f.ctl, name)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// newHost makes host name's directory, user manager and unit, and the
// environment its processes run with.
func (f *multiNode) newHost(name string) *mnHost {
	f.t.Helper()
	h := &mnHost{name: name, dir: filepath.Join(f.root, name), port: testenv.FreePort(f.t), mgr: tsystemd.UserManager(f.t)}
	h.unit = h.mgr.AppUnit(f.t, "hello.service", h.port, filepath.Join(h.dir, "app", "current"))
	if err := os.MkdirAll(filepath.Join(h.dir, "home"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	// Nothing of the test's own environment: no FRAISIER_STATE, which would
	// put a node on another state than state.url.
	h.env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Join(h.dir, "home"), "NO_COLOR=1",
		"GIT_CONFIG_NOSYSTEM=1", "NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=",
		"FRAISIER_CONFIG=" + f.cfg, "MN_STATE_URL=" + f.stateURL, "MN_WEBHOOK_SECRET=" + f.secret,
		"NODE_NAME=" + name, "NODE_DIR=" + h.dir, "NODE_UNIT=" + h.unit, fmt.Sprintf("NODE_PORT=%d", h.port)},
		h.mgr.Env()...)
	return h
}

// startNode starts host h's node: serve on web-1, node elsewhere.
func (f *multiNode) startNode(h *mnHost) {
	f.t.Helper()
	h.runs++
	cmd := "node"
	if h.name == "web-1" {
		cmd = "serve"
	}
	h.proc = testenv.StartProc(f.top, fmt.Sprintf("%s: fraisier %s (run %d)", h.name, cmd, h.runs), h.env,
		f.bin, cmd, "--node", h.name)
}

// host is the host named name.
func (f *multiNode) host(name string) *mnHost {
	for _, h := range f.hosts {
		if h.name == name {
			return h
		}
	}
	f.t.Fatalf("no host %s", name)
	return nil
}

// waitReady waits for web-1's serve to answer /ready.
func (f *multiNode) waitReady() {
	f.t.Helper()
	p := f.host("web-1").proc
	c := http.Client{Timeout: 2 * time.Second}
	testenv.WaitFor(f.t, p.Name+" to answer /ready", 30*time.Second, func() bool {
		f.checkRunning()
		resp, err := c.Get(f.base() + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// checkRunning ends the test if a node it did not kill has exited.
func (f *multiNode) checkRunning() {
	f.t.Helper()
	for _, h := range f.hosts {
		if h.proc != nil && !h.down && h.proc.Exited() {
			f.t.Fatalf("%s exited (%v):\n%s", h.proc.Name, h.proc.Err(), testenv.Tail(h.proc.Out.String(), 6<<10))
		}
	}
}

func (f *multiNode) base() string { return fmt.Sprintf("http://127.0.0.1:%d", f.servePort) }

// cli runs one fraisier command with web-1's environment and returns its
// stdout and exit code.
func (f *multiNode) cli(args ...string) (string, int) {
	f.t.Helper()
	cmd := exec.Command(f.bin, args...)
	cmd.Env = f.host("web-1").env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := testenv.Run(f.t, cmd, 60*time.Second).ExitCode()
	if code != 0 {
		f.t.Logf("$ fraisier %s  (exit %d)\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String(), code
}

// cliJSON runs a fraisier command that prints JSON and decodes it into v;
// an object wrapping the value under key ({"nodes": [...]}) is unwrapped.
func (f *multiNode) cliJSON(v any, key string, args ...string) {
	f.t.Helper()
	out, code := f.cli(args...)
	if code != 0 {
		f.t.Fatalf("fraisier %s: exit %d", strings.Join(args, " "), code)
	}
	raw := json.RawMessage(out)
	var wrapped map[string]json.RawMessage
	if json.Unmarshal(raw, &wrapped) == nil {
		if inner, ok := wrapped[key]; ok {
			raw = inner
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		f.t.Fatalf("fraisier %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ---- the origin ----

// commit pushes the next version to main, unhealthy on the hosts named,
// and returns its commit and version (v1, v2, ...).
func (f *multiNode) commit(unhealthyOn ...string) (sha, version string) {
	f.t.Helper()
	f.version++
	version = fmt.Sprintf("v%d", f.version)
	files := map[string]string{"VERSION": version + "\n", "behaviour": "healthy\n"}
	for _, h := range mnHostNames {
		os.Remove(filepath.Join(f.repo.Work, "unhealthy-on-"+h))
	}
	for _, h := range unhealthyOn {
		files["unhealthy-on-"+h] = "this release fails its health check on " + h + "\n"
	}
	for name, text := range files {
		f.repo.Write(name, text)
	}
	sha = f.repo.Commit(version)
	f.shas[version] = sha
	return sha, version
}

// ---- webhooks ----

// mnAnswer is serve's answer to a delivery.
type mnAnswer struct {
	Outcome     store.Outcome  `json:"outcome"`
	Reason      string         `json:"reason"`
	Deployments []store.Queued `json:"deployments"`
}

// send posts the signed GitHub push of after (before: the previous tip)
// to web-1's intake and returns the status and the answer.
func (f *multiNode) send(before, after string) (int, mnAnswer, error) {
	if before == "" {
		before = strings.Repeat("0", 40)
	}
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": before, "after": after,
		"repository": map[string]any{"full_name": "acme/hello", "clone_url": "https://git.example.invalid/acme/hello.git"},
		"pusher":     map[string]any{"name": "alice"},
		"sender":     map[string]any{"login": "alice"},
	})
	if err != nil {
		return 0, mnAnswer{}, err
	}
	mac := hmac.New(sha256.New, []byte(f.secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, f.base()+"/webhook", bytes.NewReader(body))
	if err != nil {
		return 0, mnAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/multinode")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("multinode-%06d", f.deliveries.Add(1)))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, mnAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, mnAnswer{}, err
	}
	var a mnAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return resp.StatusCode, a, fmt.Errorf("answer %q: %w", raw, err)
	}
	return resp.StatusCode, a, nil
}

// push sends the push of after and insists that it was accepted as one
// rollout, whose id it returns.
func (f *multiNode) push(before, after string) int64 {
	f.t.Helper()
	status, a, err := f.send(before, after)
	if err != nil {
		f.t.Fatalf("push of %s: %v", after, err)
	}
	if status != http.StatusAccepted || a.Outcome != store.OutcomeAccepted || len(a.Deployments) != 1 || a.Deployments[0].RolloutID == 0 {
		f.t.Fatalf("push of %s: %d %+v; want 202 accepted naming one rollout", after, status, a)
	}
	return a.Deployments[0].RolloutID
}

// ---- control ----

// hold makes host's installs wait until release.
func (f *multiNode) hold(host string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.ctl, "hold-"+host), nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *multiNode) release(host string) {
	f.t.Helper()
	if err := os.Remove(filepath.Join(f.ctl, "hold-"+host)); err != nil {
		f.t.Fatal(err)
	}
}

// installStarted reports whether host began installing version.
func (f *multiNode) installStarted(host, version string) bool {
	return testenv.Exists(filepath.Join(f.ctl, "started-"+host+"-"+version))
}

func (f *multiNode) migrationsLog() string {
	b, _ := os.ReadFile(filepath.Join(f.ctl, "migrations.log"))
	return string(b)
}

// migrations counts the migrations up to version, by host.
func (f *multiNode) migrations(version string) map[string]int {
	runs := map[string]int{}
	for _, line := range strings.Split(f.migrationsLog(), "\n") {
		if fs := strings.Fields(line); len(fs) == 3 && fs[0] == "up" && fs[1] == version {
			runs[fs[2]]++
		}
	}
	return runs
}
