package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// bench is one run's world: a git origin and a work clone that pushes to
// it, two copies of the same service in the user manager (one deployed by
// the script, one by fraisier), and fraisier's configuration.
type bench struct {
	ctx    context.Context
	mgr    *tsystemd.Manager
	bin    string // the fraisier binary
	script string // bench/deploy-by-hand.sh
	root   string
	origin string
	work   string
	appBin string
	// env is what every process of the run gets: this process's
	// environment, then the benchmark's own (see ownEnv).
	env     []string
	version int
	byHand  side
	fr      side
}

// side is one copy of the service: where it is deployed, its unit and the
// port it listens on.
type side struct {
	app, unit string
	port      int
}

func (s side) healthURL() string { return fmt.Sprintf("http://127.0.0.1:%d/health", s.port) }

// prepare builds the service, makes the origin and the work clone, writes
// both units and fraisier's configuration.
func (b *bench) prepare() error {
	b.appBin = filepath.Join(b.root, "httpapp")
	if out, err := exec.CommandContext(b.ctx, "go", "build", "-o", b.appBin, "./internal/testenv/httpapp").CombinedOutput(); err != nil {
		return fmt.Errorf("build httpapp: %v\n%s", err, out)
	}
	b.env = append(os.Environ(), b.mgr.Env()...)
	b.env = append(b.env, "HOME="+filepath.Join(b.root, "home"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
	b.origin, b.work = filepath.Join(b.root, "origin.git"), filepath.Join(b.root, "work")
	if err := b.sh(b.root, "git", "init", "-q", "--bare", "-b", "main", b.origin); err != nil {
		return err
	}
	if err := b.sh(b.root, "git", "clone", "-q", b.origin, b.work); err != nil {
		return err
	}
	var err error
	if b.byHand, err = b.addSide("byhand"); err != nil {
		return err
	}
	if b.fr, err = b.addSide("fraisier"); err != nil {
		return err
	}
	if _, err := b.mgr.Systemctl(b.ctx, "daemon-reload"); err != nil {
		return err
	}
	return b.writeConfig()
}

// sh runs a setup command in dir and fails with its output.
func (b *bench) sh(dir string, args ...string) error {
	c := exec.CommandContext(b.ctx, args[0], args[1:]...)
	c.Dir, c.Env = dir, b.env
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// timed runs a measured command in the work directory and returns how
// long it took.
func (b *bench) timed(args ...string) (time.Duration, error) {
	c := exec.CommandContext(b.ctx, args[0], args[1:]...)
	c.Env, c.Dir = b.env, b.root
	start := time.Now()
	out, err := c.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}

// push commits a new version of a small repository (the service's files
// and some source) and pushes it to main.
func (b *bench) push() error {
	b.version++
	files := map[string]string{
		"VERSION":   fmt.Sprintf("v%d\n", b.version),
		"behaviour": "healthy\n",
	}
	for i := 0; i < 50; i++ {
		files[filepath.Join("src", fmt.Sprintf("f%02d.py", i))] = strings.Repeat("x = 1\n", 40)
	}
	for name, content := range files {
		path := filepath.Join(b.work, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := b.sh(b.work, "git", "add", "-A"); err != nil {
		return err
	}
	if err := b.sh(b.work, "git", "commit", "-q", "-m", fmt.Sprintf("v%d", b.version)); err != nil {
		return err
	}
	return b.sh(b.work, "git", "push", "-q", "origin", "HEAD:main")
}

// addSide writes the unit of one copy of the service on a free port.
func (b *bench) addSide(name string) (side, error) {
	s := side{app: filepath.Join(b.root, "srv", name), unit: b.mgr.Unit(name + ".service")}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return s, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	unit := fmt.Sprintf("[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=%s -addr 127.0.0.1:%d -dir %s/current\nRestart=no\n", b.appBin, s.port, s.app)
	if err := os.MkdirAll(b.mgr.UnitDir, 0o755); err != nil {
		return s, err
	}
	return s, os.WriteFile(filepath.Join(b.mgr.UnitDir, s.unit), []byte(unit), 0o644)
}

// writeConfig writes fraises.yaml for fraisier's side and points fraisier
// at it.
func (b *bench) writeConfig() error {
	cfg := filepath.Join(b.root, "fraises.yaml")
	text := fmt.Sprintf(`state:
  path: %s/state.db
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
        scope: user
        keep_releases: 100
        systemd_service: %s
        health_check:
          url: %s
          interval: 50ms
          timeout: 1s
`, b.root, b.origin, b.fr.app, b.fr.unit, b.fr.healthURL())
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return err
	}
	b.env = append(b.env, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE=")
	return nil
}
