package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
	"github.com/fraiseql/fraisier/internal/testenv/proxy"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// bgFixture is a blue/green api fraise on real parts: a real systemd user
// manager running two instances of a template unit (the test HTTP
// service, each colour on its own port, from app_path/current-<colour>),
// a real nginx or Caddy in front of them, a bare git origin and a SQLite
// state database.
type bgFixture struct {
	t        *testing.T
	repo     *testenv.Origin
	app      string
	template string
	proxy    string // where the proxy listens
	mgr      *tsystemd.Manager
	cfg      *config.Config
	db       *store.DB
	engine   *Engine
	collab   Collaborators
	log      *testenv.SyncBuffer
	version  int
	logs     func() string
	httpapp  string
	// link is blue_green.link for the link kinds, in a directory of its
	// own beside the colours' sockets.
	link  string
	caddy *proxy.Caddy
}

// isLink says whether kind switches by blue_green.link.
func isLink(kind string) bool { return strings.HasSuffix(kind, "-link") }

// colourAddrs are where each colour listens for kind (two loopback
// ports; for a link kind, two unix sockets in a short directory the proxy,
// nobody under root, can reach), and the health check's lines.
func (f *bgFixture) colourAddrs(kind string) (map[string]string, string) {
	t := f.t
	if !isLink(kind) {
		ports := map[string]int{colourBlue: testenv.FreePort(t), colourGreen: testenv.FreePort(t)}
		return map[string]string{colourBlue: fmt.Sprintf("127.0.0.1:%d", ports[colourBlue]), colourGreen: fmt.Sprintf("127.0.0.1:%d", ports[colourGreen])},
			fmt.Sprintf("          url: http://127.0.0.1:%d/health\n", ports[colourBlue])
	}
	socks := shortDir(t)
	live := filepath.Join(socks, "live")
	if err := os.Mkdir(live, 0o755); err != nil {
		t.Fatal(err)
	}
	f.link = filepath.Join(live, "live.sock")
	return map[string]string{colourBlue: "unix:" + filepath.Join(socks, "blue.sock"), colourGreen: "unix:" + filepath.Join(socks, "green.sock")},
		fmt.Sprintf("          command: [%s, -probe, \"unix:%s/{colour}.sock\"]\n", f.httpapp, socks)
}

// shortDir is a directory for unix sockets whose paths stay within
// sun_path's 107 bytes (t.TempDir's may not), searchable by any user.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fbg-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newBGFixture(t *testing.T, kind string, drain time.Duration) *bgFixture {
	t.Helper()
	root := t.TempDir()
	f := &bgFixture{t: t, app: filepath.Join(root, "srv", "hello"), log: &testenv.SyncBuffer{}}
	f.repo = testenv.NewOrigin(t, root)
	f.mgr = tsystemd.UserManager(t)
	f.httpapp = testenv.BuildHTTPApp(t)
	addrs, healthYAML := f.colourAddrs(kind)
	for c, a := range addrs {
		writeFile(t, filepath.Join(root, "env", c+".env"), "ADDR="+a+"\n")
	}
	f.template = f.mgr.Unit("app@.service")
	f.mgr.WriteUnit(t, f.template, fmt.Sprintf("[Unit]\nDescription=fraisier blue/green test app %%i\n[Service]\nEnvironmentFile=%s/env/%%i.env\nExecStart=%s -addr ${ADDR} -dir %s/current-%%i\nRestart=no\n",
		root, f.httpapp, f.app))
	var proxyYAML string
	switch kind {
	case "nginx":
		n := proxy.StartNginx(t, "hello", "127.0.0.1:1")
		f.proxy, f.logs = n.Addr, n.Log
		proxyYAML = fmt.Sprintf("          nginx:\n            upstream: hello\n            file: %s\n            pid_file: %s\n            test: [%s]\n",
			n.UpstreamFile, n.PIDFile, strings.Join(n.Test, ", "))
	case "nginx-unit":
		// nginx as a unit of the manager, reloaded with systemctl reload.
		n := proxy.PrepareNginx(t, "hello", "127.0.0.1:1")
		unit := f.mgr.Unit("nginx.service")
		f.mgr.WriteUnit(t, unit, fmt.Sprintf("[Service]\nExecStart=%s\nExecReload=/bin/kill -HUP $MAINPID\n", strings.Join(n.Argv, " ")))
		f.mgr.MustSystemctl(t, "start", unit)
		t.Cleanup(func() { f.mgr.Systemctl(context.Background(), "stop", unit) })
		n.Ready(t)
		f.proxy, f.logs = n.Addr, n.Log
		proxyYAML = fmt.Sprintf("          nginx:\n            upstream: hello\n            file: %s\n            pid_file: %s\n            reload_unit: %s\n            test: [%s]\n",
			n.UpstreamFile, n.PIDFile, unit, strings.Join(n.Test, ", "))
	case "caddy":
		c := proxy.StartCaddy(t, "hello", "127.0.0.1:1")
		f.proxy, f.logs = c.Addr, func() string { return "" }
		proxyYAML = fmt.Sprintf("          caddy:\n            admin: %s\n            id: %s\n", c.Admin, c.ID)
	case "caddy-link":
		// Caddy dials the link, with keep-alive to it off, as
		// examples/bluegreen/Caddyfile.link says; fraisier never calls it.
		c := proxy.StartCaddy(t, "hello", "unix/"+f.link, proxy.UpstreamKeepAlive(false))
		f.proxy, f.logs, f.caddy = c.Addr, c.Log, c
		proxyYAML = fmt.Sprintf("          link: %s\n", f.link)
	case "nginx-link":
		n := proxy.StartNginx(t, "hello", "unix:"+f.link)
		f.proxy, f.logs = n.Addr, n.Log
		proxyYAML = fmt.Sprintf("          link: %s\n", f.link)
	}
	f.cfg = parseConfig(t, root, fmt.Sprintf(`
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        keep_releases: 5
        restart: blue_green
        blue_green:
          unit: %s
          blue: %s
          green: %s
          drain: %s
%s        health_check:
%s          timeout: 500ms
          retries: 4
          interval: 200ms
          deadline: 5s
`, f.repo.Dir, f.app, f.template, addrs[colourBlue], addrs[colourGreen], drain, proxyYAML, healthYAML))
	f.db = openState(t, filepath.Join(root, "state.db"))
	f.engine = newEngine(t, f.db, f.log)
	f.collab = RealCollaborators(f.mgr.Env())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine output:\n%s\nproxy log:\n%s\nmanager log:\n%s", f.log, f.logs(), f.mgr.LogTail(30))
		}
	})
	return f
}

func (f *bgFixture) env() *config.Environment { return lookup(f.t, f.cfg, "hello", "production") }

func (f *bgFixture) push(behaviour string) string {
	f.t.Helper()
	f.version++
	f.repo.Write("VERSION", fmt.Sprintf("v%d\n", f.version))
	f.repo.Write("behaviour", behaviour+"\n")
	return f.repo.Commit(fmt.Sprintf("v%d %s", f.version, behaviour))
}

func (f *bgFixture) deploy() Result {
	f.t.Helper()
	res, err := f.engine.Deploy(context.Background(), f.collab, Request{Env: f.env(), Trigger: store.TriggerCLI})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// through is what the proxy answers on / now.
func (f *bgFixture) through() string {
	return proxy.Get(&http.Client{Timeout: 2 * time.Second}, f.proxy, "/")
}

func (f *bgFixture) instance(colour string) string {
	return strings.Replace(f.template, "@.", "@"+colour+".", 1)
}

func (f *bgFixture) unitState(colour, prop string) string {
	f.t.Helper()
	return strings.TrimSpace(f.mgr.MustSystemctl(f.t, "show", "-p", prop, "--value", f.instance(colour)))
}

// expectColour checks the colour recorded for the target's last deployment
// and the state of both instances: the serving one active, the other not.
func (f *bgFixture) expectColour(colour string) {
	f.t.Helper()
	rs, err := f.db.Restarts(context.Background(), "hello", "production")
	if err != nil {
		f.t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Mode != config.RestartBlueGreen || rs[0].Colour != colour {
		f.t.Fatalf("recorded restart %+v, want blue_green serving %s", rs, colour)
	}
	if got := f.unitState(colour, "ActiveState"); got != "active" {
		f.t.Fatalf("%s is %s, want active", f.instance(colour), got)
	}
	if got := f.unitState(otherColour(colour), "ActiveState"); got == "active" {
		f.t.Fatalf("%s still active after its drain", f.instance(otherColour(colour)))
	}
}

// load sends requests through the proxy until stopped, and says what
// answered: every answer, in order.
type load struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	answers []string
}

func startLoad(addr string) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			a := proxy.Get(client, addr, "/")
			l.mu.Lock()
			l.answers = append(l.answers, a)
			l.mu.Unlock()
		}
	}()
	return l
}

// end stops the load and counts the answers by what they were.
func (l *load) end() map[string]int {
	close(l.stop)
	<-l.done
	counts := map[string]int{}
	for _, a := range l.answers {
		counts[a]++
	}
	return counts
}

func TestBlueGreenNginx(t *testing.T) { testBlueGreen(t, "nginx") }

func TestBlueGreenCaddy(t *testing.T) { testBlueGreen(t, "caddy") }

// TestBlueGreenCaddyLink is the story behind Caddy dialing
// blue_green.link: fraisier moves the link and never reloads Caddy.
func TestBlueGreenCaddyLink(t *testing.T) { testBlueGreen(t, "caddy-link") }

// TestBlueGreenNginxLink is the story behind nginx dialing
// blue_green.link, never reloaded.
func TestBlueGreenNginxLink(t *testing.T) { testBlueGreen(t, "nginx-link") }

// TestBlueGreenNginxUnit is the story with nginx reloaded through its
// systemd unit (reload_unit) rather than signalled.
func TestBlueGreenNginxUnit(t *testing.T) { testBlueGreen(t, "nginx-unit") }

// testBlueGreen is the end-to-end story through a real proxy: a first
// deployment starts blue, the next moves traffic to green with no failed
// request, a new colour that fails its health check never receives
// traffic, and a rollback while the previous colour is still warm
// switches back to it without restarting it.
func testBlueGreen(t *testing.T, kind string) {
	f := newBGFixture(t, kind, 3*time.Second)

	f.push("healthy")
	res := f.deploy()
	if res.Status != store.StatusSucceeded {
		t.Fatalf("first deployment %s: %v", res.Status, res.Err)
	}
	if got := f.through(); got != "v1" {
		t.Fatalf("through the proxy after the first deployment: %q, want v1", got)
	}
	f.expectColour(colourBlue)
	caddyLoads := f.caddyLoads()
	if f.caddy != nil && caddyLoads == 0 {
		t.Fatalf("Caddy's log shows no load of its first configuration, so no reload could be seen either:\n%s", f.caddy.Log())
	}

	f.push("healthy")
	l := startLoad(f.proxy)
	res = f.deploy()
	counts := l.end()
	if res.Status != store.StatusSucceeded {
		t.Fatalf("second deployment %s: %v", res.Status, res.Err)
	}
	if got := f.through(); got != "v2" {
		t.Fatalf("through the proxy after the second deployment: %q, want v2", got)
	}
	if len(counts) > 2 || counts["v1"]+counts["v2"] != sumCounts(counts) || counts["v2"] == 0 {
		t.Fatalf("answers through the proxy during the switch: %v, want only v1 then v2", counts)
	}
	f.expectColour(colourGreen)
	t.Logf("blue → green: %v", counts)
	f.expectLink(colourGreen)
	f.expectGreenServes(kind)

	t.Run("new colour fails its health check", func(t *testing.T) {
		f.push("unhealthy")
		l := startLoad(f.proxy)
		res := f.deploy()
		counts := l.end()
		if res.Status != store.StatusRolledBack {
			t.Fatalf("unhealthy deployment %s: %v", res.Status, res.Err)
		}
		if len(counts) != 1 || counts["v2"] == 0 {
			t.Fatalf("answers through the proxy during the failed deployment: %v, want v2 only", counts)
		}
		f.expectColour(colourGreen)
		f.expectLink(colourGreen)
		if steps := stepNames(t, f.db, res.DeploymentID); !strings.Contains(steps, "health:failed") || strings.Contains(steps, "switch proxy") {
			t.Fatalf("steps %s: want a failed health check and no proxy switch", steps)
		}
	})

	t.Run("rollback while the old colour is warm", func(t *testing.T) {
		f.push("healthy")
		greenPID := f.unitState(colourGreen, "MainPID")
		greenInvocation := f.unitState(colourGreen, "InvocationID")
		done := make(chan Result, 1)
		go func() {
			res, err := f.engine.Deploy(context.Background(), f.collab, Request{Env: f.env(), Trigger: store.TriggerCLI})
			if err != nil {
				res.Err = err
			}
			done <- res
		}()
		// The deployment has ended (its lock is free) and green drains.
		testenv.WaitFor(t, "v4 through the proxy", 30*time.Second, func() bool { return f.through() == "v4" })
		testenv.WaitFor(t, "the deployment's end", 10*time.Second, func() bool {
			ds, err := f.db.Deployments(context.Background(), store.DeploymentFilter{Fraise: "hello"})
			return err == nil && len(ds) > 0 && ds[0].Status == store.StatusSucceeded && ds[0].NewSHA != "" && ds[0].FinishedAt != nil
		})
		if got := f.unitState(colourGreen, "ActiveState"); got != "active" {
			t.Fatalf("green is %s during its drain, want active", got)
		}
		l := startLoad(f.proxy)
		rb, err := f.engine.Rollback(context.Background(), f.collab, RollbackRequest{Env: f.env(), Actor: "test", Wait: 30 * time.Second})
		counts := l.end()
		if err != nil || rb.Status != store.StatusSucceeded {
			t.Fatalf("rollback %s: %v %v", rb.Status, rb.Err, err)
		}
		if d := <-done; d.Status != store.StatusSucceeded {
			t.Fatalf("deployment v4 %s: %v", d.Status, d.Err)
		}
		if got := f.through(); got != "v2" {
			t.Fatalf("through the proxy after the rollback: %q, want v2", got)
		}
		if got := f.unitState(colourGreen, "MainPID"); got != greenPID {
			t.Fatalf("green's MainPID %s after the rollback, was %s: restarted", got, greenPID)
		}
		if got := f.unitState(colourGreen, "InvocationID"); got != greenInvocation {
			t.Fatalf("green's InvocationID %s after the rollback, was %s: restarted", got, greenInvocation)
		}
		f.expectLink(colourGreen)
		if len(counts) > 2 || counts["v2"]+counts["v4"] != sumCounts(counts) {
			t.Fatalf("answers through the proxy during the rollback: %v, want only v4 then v2", counts)
		}
		f.expectColour(colourGreen)
		if !bytes.Contains([]byte(f.log.String()), []byte("already runs")) {
			t.Fatalf("the rollback did not find green warm:\n%s", f.log)
		}
	})
	if got := f.caddyLoads(); got != caddyLoads {
		t.Fatalf("Caddy loaded its configuration %d times during the deployments: the link must not reload it", got-caddyLoads)
	}
}

// expectGreenServes checks what doctor and status see with green serving:
// the proxy says green serves, and the health check probes green, not
// blue (stopped) whose address it names.
func (f *bgFixture) expectGreenServes(kind string) {
	f.t.Helper()
	want := "green serves"
	if isLink(kind) {
		want = fmt.Sprintf("link directory %s is fraisier's alone; sockets %s and %s are reachable; green serves",
			filepath.Dir(f.link), strings.TrimPrefix(f.env().BlueGreen.Blue, "unix:"), strings.TrimPrefix(f.env().BlueGreen.Green, "unix:"))
	}
	if got, err := CheckProxy(context.Background(), f.collab, f.env()); err != nil || got != want {
		f.t.Fatalf("CheckProxy: %q, %v; want %s", got, err, want)
	}
	if err := CheckHealth(context.Background(), f.collab, f.env()); err != nil {
		f.t.Fatalf("CheckHealth with green serving: %v", err)
	}
	if l := Inspect(context.Background(), f.collab, f.env(), 5*time.Second); l.Colour != colourGreen || l.ColourError != "" || l.Healthy == nil || !*l.Healthy {
		f.t.Fatalf("Inspect: colour %q (%s), healthy %v (%s); want green, healthy", l.Colour, l.ColourError, l.Healthy, l.HealthError)
	}
}

// expectLink checks, for a link kind, that blue_green.link is a symlink to
// colour's socket.
func (f *bgFixture) expectLink(colour string) {
	f.t.Helper()
	if f.link == "" {
		return
	}
	got, err := os.Readlink(f.link)
	if want := strings.TrimPrefix(f.env().BlueGreen.Address(colour), "unix:"); err != nil || got != want {
		f.t.Fatalf("link %s → %q (%v), want %s's socket %s", f.link, got, err, colour, want)
	}
}

// caddyLoads counts the configurations the Caddy of a link kind loaded
// (Caddy 2.6 logs "autosaved config" at its first load and at every change
// through its admin API), 0 for other kinds.
func (f *bgFixture) caddyLoads() int {
	if f.caddy == nil {
		return 0
	}
	return strings.Count(f.caddy.Output(), `"msg":"autosaved config`)
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// TestBlueGreenSwitchRefused checks a failure at the switch itself: nginx's
// configuration test refuses (the test command is false, standing for an
// nginx that rejects the new file), the upstream file is put back, the
// new colour, healthy but never switched to, is stopped, and blue serves
// on, recorded as serving.
func TestBlueGreenSwitchRefused(t *testing.T) {
	f := newBGFixture(t, "nginx", time.Second)
	f.push("healthy")
	if res := f.deploy(); res.Status != store.StatusSucceeded {
		t.Fatalf("first deployment %s: %v", res.Status, res.Err)
	}
	before := readFile(t, f.env().BlueGreen.Nginx.File)

	f.env().BlueGreen.Nginx.Test = []string{"false"}
	f.push("healthy")
	l := startLoad(f.proxy)
	res := f.deploy()
	counts := l.end()
	if res.Status != store.StatusRolledBack {
		t.Fatalf("deployment with a refused switch %s: %v", res.Status, res.Err)
	}
	if len(counts) != 1 || counts["v1"] == 0 {
		t.Fatalf("answers through the proxy: %v, want v1 only", counts)
	}
	if got := readFile(t, f.env().BlueGreen.Nginx.File); got != before {
		t.Fatalf("upstream file after the refused switch:\n%s\nwant, as before:\n%s", got, before)
	}
	if steps := stepNames(t, f.db, res.DeploymentID); !strings.Contains(steps, "switch proxy:failed") || !strings.Contains(steps, "rollback colour:succeeded") {
		t.Fatalf("steps %s", steps)
	}
	f.expectColour(colourBlue)
}

// TestCaddyPath checks the Caddyfile way of naming the reverse_proxy, by
// its path in the admin API rather than an @id, against a real Caddy.
func TestCaddyPath(t *testing.T) {
	c := proxy.StartCaddy(t, "hello", "127.0.0.1:1")
	bg := &config.BlueGreen{Unit: "app@.service", Blue: "127.0.0.1:8001", Green: "127.0.0.1:8002",
		Caddy: &config.Caddy{Admin: c.Admin, Path: "/config/apps/http/servers/srv0/routes/0/handle/0/upstreams"}}
	p, err := newProxy(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := p.read(ctx)
	if err != nil || s.colour != "" {
		t.Fatalf("read before: %+v, %v; want no colour", s, err)
	}
	var out bytes.Buffer
	if err := p.point(ctx, colourGreen, &out); err != nil {
		t.Fatal(err)
	}
	if now, err := p.read(ctx); err != nil || now.colour != colourGreen {
		t.Fatalf("read after pointing at green: %+v, %v", now, err)
	}
	if err := p.restore(ctx, s, &out); err != nil {
		t.Fatal(err)
	}
	if now, err := p.read(ctx); err != nil || now.colour != "" || !bytes.Equal(now.raw, s.raw) {
		t.Fatalf("read after restore: %s, %v; want %s", now.raw, err, s.raw)
	}
	bg.Caddy.Path = "/config/apps/http/servers/nosuch/routes/0/handle/0/upstreams"
	if _, err := p.read(ctx); err == nil || !strings.Contains(err.Error(), "caddy") {
		t.Fatalf("read at a path that is not there: %v", err)
	}
}

// TestProxyUnixColours checks colours on unix sockets against a real
// nginx and a real Caddy: each takes the socket in its own spelling
// (server unix:/path; dial unix//path), and reading it back names the
// colour.
func TestProxyUnixColours(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	n := proxy.StartNginx(t, "hello", "127.0.0.1:1")
	c := proxy.StartCaddy(t, "hello", "127.0.0.1:1")
	for _, bg := range []*config.BlueGreen{
		{Unit: "app@.service", Blue: "unix:/run/app/blue.sock", Green: "unix:/run/app/green.sock",
			Nginx: &config.Nginx{Upstream: "hello", File: n.UpstreamFile, PIDFile: n.PIDFile, Test: n.Test}},
		{Unit: "app@.service", Blue: "unix:/run/app/blue.sock", Green: "unix:/run/app/green.sock",
			Caddy: &config.Caddy{Admin: c.Admin, ID: c.ID}},
	} {
		p, err := newProxy(bg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.point(ctx, colourGreen, &out); err != nil {
			t.Fatalf("point at a socket: %v\n%s", err, out.String())
		}
		if s, err := p.read(ctx); err != nil || s.colour != colourGreen {
			t.Fatalf("read back: %+v, %v (raw %s)", s, err, s.raw)
		}
	}
	if got := readFile(t, n.UpstreamFile); !strings.Contains(got, "server unix:/run/app/green.sock;") {
		t.Fatalf("nginx upstream file:\n%s", got)
	}
}

// TestBlueGreenLinkPlanted checks a link fraisier did not make, found at a
// deployment: refused at the first step, before anything changed, and
// left as found; blue, serving before, is not touched.
func TestBlueGreenLinkPlanted(t *testing.T) {
	f := newBGFixture(t, "caddy-link", time.Second)
	f.push("healthy")
	if res := f.deploy(); res.Status != store.StatusSucceeded {
		t.Fatalf("first deployment %s: %v", res.Status, res.Err)
	}
	bluePID := f.unitState(colourBlue, "MainPID")
	planted := filepath.Join(filepath.Dir(f.link), ".planted")
	if err := os.Symlink("/tmp/elsewhere.sock", planted); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(planted, f.link); err != nil {
		t.Fatal(err)
	}
	f.push("healthy")
	res := f.deploy()
	if res.Status != store.StatusFailed || res.Err == nil || !strings.Contains(res.Err.Error(), "points at /tmp/elsewhere.sock") {
		t.Fatalf("deployment over a planted link: %s, %v; want failed, naming the link's target", res.Status, res.Err)
	}
	if steps := stepNames(t, f.db, res.DeploymentID); steps != "check:failed" {
		t.Fatalf("steps %s, want only the check", steps)
	}
	if got, _ := os.Readlink(f.link); got != "/tmp/elsewhere.sock" {
		t.Fatalf("link → %q after the refusal, want as planted", got)
	}
	if got := f.unitState(colourBlue, "MainPID"); got != bluePID {
		t.Fatalf("blue's MainPID %s, was %s", got, bluePID)
	}
	if got := f.unitState(colourGreen, "ActiveState"); got == "active" {
		t.Fatalf("green started: %s", got)
	}
}
