package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

// host is the run's world: the origins, app paths and units the example
// configuration names, made real under root.
type host struct {
	ctx  context.Context
	mgr  *tsystemd.Manager
	root string
	cfg  string
	// env is what every fraisier process of the run gets.
	env []string
}

// prepare makes the origins, the app paths, the two health-checked units
// (started and answering), the state database and the configuration: the
// example's, with its remote, ports and unit names pointing at them.
func (h *host) prepare() error {
	h.env = append(os.Environ(), h.mgr.Env()...)
	h.env = append(h.env, "HOME="+filepath.Join(h.root, "home"), "GIT_CONFIG_NOSYSTEM=1", "NO_COLOR=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
	helloGit, err := h.origin("hello", "main", "develop")
	if err != nil {
		return err
	}
	reportsGit, err := h.origin("reports", "main")
	if err != nil {
		return err
	}
	appBin := filepath.Join(h.root, "httpapp")
	if out, err := exec.CommandContext(h.ctx, "go", "build", "-o", appBin, "./internal/testenv/httpapp").CombinedOutput(); err != nil {
		return fmt.Errorf("build httpapp: %v\n%s", err, out)
	}
	for _, app := range []string{"hello", "hello-staging", "reports"} {
		if err := os.MkdirAll(filepath.Join(h.root, "srv", app), 0o755); err != nil {
			return err
		}
	}
	repl := map[string]string{
		"https://github.com/fraiseql/hello.git":   helloGit,
		"https://github.com/fraiseql/reports.git": reportsGit,
		"listen: 127.0.0.1:8080":                  fmt.Sprintf("listen: 127.0.0.1:%d", freePort()),
	}
	for i, app := range []string{"hello", "hello-staging"} {
		unit, port := h.mgr.Unit(app+".service"), freePort()
		text := fmt.Sprintf("[Service]\nExecStart=%s -addr 127.0.0.1:%d -dir %s\nRestart=no\n", appBin, port, filepath.Join(h.root, "srv", app))
		if err := os.WriteFile(filepath.Join(h.mgr.UnitDir, unit), []byte(text), 0o644); err != nil {
			return err
		}
		repl["systemd_service: "+app+".service"] = "systemd_service: " + unit
		repl[fmt.Sprintf("http://127.0.0.1:%d/health", 8000+i)] = fmt.Sprintf("http://127.0.0.1:%d/health", port)
	}
	if err := h.startUnits(repl); err != nil {
		return err
	}
	if err := h.writeConfig(repl); err != nil {
		return err
	}
	db, err := store.Open(h.ctx, store.Options{Path: filepath.Join(h.root, "state", "fraisier.db")})
	if err != nil {
		return err
	}
	return db.Close()
}

// origin makes a bare repository with one commit on each branch.
func (h *host) origin(name string, branches ...string) (string, error) {
	work, bare := filepath.Join(h.root, "work-"+name), filepath.Join(h.root, name+".git")
	steps := [][]string{
		{"git", "init", "-q", "-b", branches[0], work},
		{"git", "-C", work, "commit", "-q", "--allow-empty", "-m", "v1"},
		{"git", "clone", "-q", "--bare", work, bare},
	}
	for _, b := range branches[1:] {
		steps = append(steps, []string{"git", "-C", bare, "branch", b, branches[0]})
	}
	for _, s := range steps {
		c := exec.CommandContext(h.ctx, s[0], s[1:]...)
		c.Env = h.env
		if out, err := c.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return bare, nil
}

// startUnits starts the units repl names and waits for their health URLs.
func (h *host) startUnits(repl map[string]string) error {
	if _, err := h.mgr.Systemctl(h.ctx, "daemon-reload"); err != nil {
		return err
	}
	for k, v := range repl {
		if strings.HasPrefix(k, "systemd_service: ") {
			if _, err := h.mgr.Systemctl(h.ctx, "start", strings.TrimPrefix(v, "systemd_service: ")); err != nil {
				return err
			}
		}
	}
	for k, v := range repl {
		if strings.HasSuffix(k, "/health") {
			if err := waitHealthy(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeConfig writes the example configuration with repl applied, every
// replacement required: an example that changed fails the run rather
// than measuring something else.
func (h *host) writeConfig(repl map[string]string) error {
	text, err := os.ReadFile("examples/fraises.yaml")
	if err != nil {
		return err
	}
	s := string(text)
	for from, to := range repl {
		if !strings.Contains(s, from) {
			return fmt.Errorf("examples/fraises.yaml no longer says %q: update doctorbench", from)
		}
		s = strings.ReplaceAll(s, from, to)
	}
	h.cfg = filepath.Join(h.root, "fraises.yaml")
	if err := os.WriteFile(h.cfg, []byte(s), 0o644); err != nil {
		return err
	}
	var secret [24]byte
	_, _ = rand.Read(secret[:])
	h.env = append(h.env, "FRAISIER_CONFIG="+h.cfg, "FRAISIER_DEMO_ROOT="+h.root, "FRAISIER_STATE=",
		"GITHUB_WEBHOOK_SECRET="+hex.EncodeToString(secret[:]))
	return nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHealthy(url string) error {
	c := http.Client{Timeout: time.Second}
	for range 400 {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s never became healthy", url)
}
