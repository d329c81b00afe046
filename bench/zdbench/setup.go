package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// secret signs the benchmark's GitHub pushes.
const secret = "zdbench: a webhook secret of realistic length, 40+ bytes"

// world is one run's installation: a git origin and a work clone that
// pushes to it, the services in a user manager (one per mode, and two for
// push-to-live: fraisier's and the one deployed by hand), and fraisier's
// configuration.
type world struct {
	ctx    context.Context
	mgr    *tsystemd.Manager
	bin    string // the fraisier binary
	script string // bench/deploy-by-hand.sh
	root   string
	origin string
	work   string
	appBin string
	// linkKeepAlive: the link modes' Caddy keeps its upstream
	// connections alive (-link-keepalive), to measure what that does.
	linkKeepAlive bool
	env           []string
	version       int
	modes         []*mode
	drain         string   // blue/green's drain: the slow requests' time and a second
	closers       []func() // the proxies, stopped when the run ends
	serve         int      // fraisier serve's port
	live          side     // fraisier's side of push-to-live
	byHand        side     // the side deploy-by-hand.sh deploys
}

// side is one copy of the service: where it is deployed, its unit and
// the port it answers on.
type side struct {
	app, unit string
	port      int
}

func (s side) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// prepare builds the service, makes the origin and the work clone, and
// the units of push-to-live's two sides.
func (w *world) prepare() error {
	w.appBin = filepath.Join(w.root, "httpapp")
	if out, err := exec.CommandContext(w.ctx, "go", "build", "-o", w.appBin, "./internal/testenv/httpapp").CombinedOutput(); err != nil {
		return fmt.Errorf("build httpapp: %v\n%s", err, out)
	}
	w.env = append(os.Environ(), w.mgr.Env()...)
	w.env = append(w.env, "HOME="+filepath.Join(w.root, "home"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com",
		"NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=")
	w.origin, w.work = filepath.Join(w.root, "origin.git"), filepath.Join(w.root, "work")
	if err := w.sh(w.root, "git", "init", "-q", "--bare", "-b", "main", w.origin); err != nil {
		return err
	}
	if err := w.sh(w.root, "git", "clone", "-q", w.origin, w.work); err != nil {
		return err
	}
	if err := os.MkdirAll(w.mgr.UnitDir, 0o755); err != nil {
		return err
	}
	var err error
	if w.serve, err = freePort(); err != nil {
		return err
	}
	if w.live, err = w.serviceUnit("live", "", ""); err != nil {
		return err
	}
	w.byHand, err = w.serviceUnit("byhand", "", "")
	return err
}

// serviceUnit writes name's service unit on a free port, with extra lines
// in its [Unit] section; listen is how the app gets its socket (-addr, or
// -systemd-socket).
func (w *world) serviceUnit(name, unitExtra, listen string) (side, error) {
	s := side{app: filepath.Join(w.root, "srv", name), unit: w.mgr.Unit(name + ".service")}
	var err error
	if s.port, err = freePort(); err != nil {
		return s, err
	}
	// No start limit: the benchmark restarts far more often than systemd's
	// default allows (5 starts in 10 s).
	if listen == "" {
		listen = fmt.Sprintf("-addr 127.0.0.1:%d", s.port)
	}
	text := fmt.Sprintf("[Unit]\nStartLimitIntervalSec=0\n%s[Service]\nExecStart=%s %s -dir %s/current\nRestart=no\n",
		unitExtra, w.appBin, listen, s.app)
	return s, os.WriteFile(filepath.Join(w.mgr.UnitDir, s.unit), []byte(text), 0o644)
}

// environment is one environment's lines in fraises.yaml, deployed by
// the command line only (no webhook deploys it) unless it is the fraise
// live's.
func (w *world) environment(name string, s side, restart string) string {
	text := fmt.Sprintf(`      %s:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        keep_releases: 100
        systemd_service: %s
        health_check:
          url: %s/health
          interval: 50ms
          timeout: 1s
`, name, w.origin, s.app, s.unit, s.url())
	if restart != "" {
		text += "        restart: " + restart + "\n"
	}
	if s != w.live {
		text += "        auto_deploy: false\n"
	}
	return text
}

// writeConfig writes fraises.yaml: the fraise "hello" with one environment
// per measured mode, deployed by the command line, and the fraise "live"
// that GitHub pushes of acme/live deploy through fraisier serve.
func (w *world) writeConfig(path string, envs []string) error {
	hello := ""
	if len(envs) > 0 {
		hello = "  hello:\n    type: api\n    environments:\n" + strings.Join(envs, "")
	}
	text := fmt.Sprintf(`git:
  github:
    secret: %q
server:
  listen: 127.0.0.1:%d
  rate_limit:
    per_source: 0
    global: 0
state:
  path: %s/state.db
fraises:
%s  live:
    type: api
    repository: acme/live
    environments:
%s`, secret, w.serve, w.root, hello, w.environment("production", w.live, ""))
	return os.WriteFile(path, []byte(text), 0o600)
}

// validate runs fraisier config validate on path and returns its output
// when the file is refused.
func (w *world) validate(path string) error {
	c := exec.CommandContext(w.ctx, w.bin, "config", "validate", path)
	c.Env, c.Dir = w.env, w.root
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(string(out)))
	}
	return nil
}

// push commits a new version and pushes it to main; it returns the new
// version and its commit.
func (w *world) push() (version, sha string, err error) {
	w.version++
	version = fmt.Sprintf("v%d", w.version)
	files := map[string]string{"VERSION": version + "\n", "behaviour": "healthy\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(w.work, name), []byte(content), 0o644); err != nil {
			return "", "", err
		}
	}
	if err := w.sh(w.work, "git", "add", "-A"); err != nil {
		return "", "", err
	}
	if err := w.sh(w.work, "git", "commit", "-q", "-m", version); err != nil {
		return "", "", err
	}
	if err := w.sh(w.work, "git", "push", "-q", "origin", "HEAD:main"); err != nil {
		return "", "", err
	}
	sha, err = w.output(w.work, "git", "rev-parse", "HEAD")
	return version, sha, err
}

// fraisier runs a fraisier command and fails with its output.
func (w *world) fraisier(args ...string) error {
	return w.sh(w.root, append([]string{w.bin}, args...)...)
}

// sh runs a command in dir and fails with its output.
func (w *world) sh(dir string, args ...string) error {
	_, err := w.output(dir, args...)
	return err
}

// output runs a command in dir and returns its trimmed output.
func (w *world) output(dir string, args ...string) (string, error) {
	c := exec.CommandContext(w.ctx, args[0], args[1:]...)
	c.Dir, c.Env = dir, w.env
	out, err := c.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// freePort is a free loopback port below the kernel's ephemeral range:
// while a service restarts, its port must not be handed to one of the
// load generator's thousands of outgoing connections.
func freePort() (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo)
	}
	if lo-1 < 11000 {
		return 0, fmt.Errorf("the ephemeral port range starts at %d: no room below it for the services", lo)
	}
	for range 100 {
		p := 10000 + rand.IntN(lo-10000)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port found below %d", lo)
}

// waitFor polls check every 5 ms until it returns true or limit passes.
func waitFor(limit time.Duration, check func() bool) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if check() {
			return true
		}
	}
	return false
}
