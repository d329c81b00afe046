package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// world is one run's installation: a git origin and a work clone that
// pushes to it, the service in a user manager, and fraisier serve
// deploying it.
type world struct {
	ctx       context.Context
	mgr       *tsystemd.Manager
	bin, root string
	work      string
	env       []string
	port      int // fraisier serve's
	appPort   int
	version   int
	readToken string
	lines     int
	lineEvery string // sleep(1)'s argument
}

// installScript prints lines stamped with the moment each is printed
// (bash's EPOCHREALTIME, without a process per stamp), after a pause in
// which the benchmark's clients connect to the deployment's log.
const installScript = `#!/bin/bash
sleep 0.5
for ((i = 0; i < %d; i++)); do
  printf 'line %%d at %%s\n' "$i" "$EPOCHREALTIME"
  sleep %s
done
`

func (w *world) prepare() error {
	appBin := filepath.Join(w.root, "httpapp")
	if out, err := exec.CommandContext(w.ctx, "go", "build", "-o", appBin, "./internal/testenv/httpapp").CombinedOutput(); err != nil {
		return fmt.Errorf("build httpapp: %v\n%s", err, out)
	}
	w.env = append(os.Environ(), w.mgr.Env()...)
	w.env = append(w.env, "HOME="+filepath.Join(w.root, "home"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com",
		"NOTIFY_SOCKET=", "LISTEN_FDS=", "LISTEN_PID=")
	origin := filepath.Join(w.root, "origin.git")
	w.work = filepath.Join(w.root, "work")
	if err := w.sh(w.root, "git", "init", "-q", "--bare", "-b", "main", origin); err != nil {
		return err
	}
	if err := w.sh(w.root, "git", "clone", "-q", origin, w.work); err != nil {
		return err
	}
	var err error
	if w.port, err = freePort(); err != nil {
		return err
	}
	if w.appPort, err = freePort(); err != nil {
		return err
	}
	app, unit := filepath.Join(w.root, "srv", "hello"), w.mgr.Unit("hello.service")
	unitText := fmt.Sprintf("[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=%s -addr 127.0.0.1:%d -dir %s/current\nRestart=no\n", appBin, w.appPort, app)
	if err := os.MkdirAll(w.mgr.UnitDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(w.mgr.UnitDir, unit), []byte(unitText), 0o644); err != nil {
		return err
	}
	if _, err := w.mgr.Systemctl(w.ctx, "daemon-reload"); err != nil {
		return err
	}
	cfg := filepath.Join(w.root, "fraises.yaml")
	text := fmt.Sprintf(`state:
  path: %s/state.db
server:
  listen: 127.0.0.1:%d
  api_token: %s
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
        install:
          command: [bash, install.sh]
        health_check:
          url: http://127.0.0.1:%d/health
          interval: 50ms
          timeout: 1s
`, w.root, w.port, w.readToken, origin, app, unit, w.appPort)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return err
	}
	w.env = append(w.env, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE=")
	return nil
}

// push commits a new version whose install prints the stamped lines, and
// pushes it to main.
func (w *world) push() error {
	w.version++
	files := map[string]string{
		"VERSION":    fmt.Sprintf("v%d\n", w.version),
		"behaviour":  "healthy\n",
		"install.sh": fmt.Sprintf(installScript, w.lines, w.lineEvery),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(w.work, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := w.sh(w.work, "git", "add", "-A"); err != nil {
		return err
	}
	if err := w.sh(w.work, "git", "commit", "-q", "-m", fmt.Sprintf("v%d", w.version)); err != nil {
		return err
	}
	return w.sh(w.work, "git", "push", "-q", "origin", "HEAD:main")
}

// sh runs a setup command in dir and fails with its output.
func (w *world) sh(dir string, args ...string) error {
	c := exec.CommandContext(w.ctx, args[0], args[1:]...)
	c.Dir, c.Env = dir, w.env
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// output runs a fraisier command and returns its standard output.
func (w *world) output(args ...string) (string, error) {
	c := exec.CommandContext(w.ctx, w.bin, args...)
	c.Dir, c.Env = w.root, w.env
	out, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("fraisier %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
