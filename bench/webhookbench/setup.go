package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// work is the benchmark's temporary world: a bare origin with commits and
// the environment the child processes run in.
type work struct {
	root   string
	origin string
	shas   []string // commits on main, oldest first
	env    []string
	// held: the environment's install step sleeps, so that the first
	// push's deployment runs throughout the measured window and every
	// later push replaces the one request waiting behind it: the intake
	// alone, as in a burst while a slow deployment runs. Otherwise the
	// queue runs real deployments back to back meanwhile, and their
	// work (the server's and its git children's) competes for the cores.
	held bool
	// grown is a state database with a history, copied for each fraisier
	// run, and the webhook events and deployments it holds (ids 1 to
	// these), "" and 0 without one.
	grown                         string
	grownEvents, grownDeployments int64
}

// commits is how many commits main gets. Each fraisier run starts with a
// push of the last, main's tip, which deploys; the load's pushes name
// commits of their own (see bodies), which the origin does not have.
const commits = 16

func setup(ctx context.Context, root string) (*work, error) {
	w := &work{root: root, origin: filepath.Join(root, "origin.git")}
	home := filepath.Join(root, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, fmt.Errorf("home: %w", err)
	}
	w.env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "FRAISIER_STATE=", "FRAISIER_CONFIG=", "NO_COLOR=1",
		"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@example.com", "GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@example.com")
	git := func(dir string, args ...string) (string, error) {
		c := exec.CommandContext(ctx, "git", args...)
		c.Dir, c.Env = dir, w.env
		out, err := c.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	clone := filepath.Join(root, "clone")
	if _, err := git(root, "init", "-q", "--bare", "-b", "main", w.origin); err != nil {
		return nil, err
	}
	if _, err := git(root, "clone", "-q", w.origin, clone); err != nil {
		return nil, err
	}
	// A small application: what the queue's deployments check out.
	if err := os.MkdirAll(filepath.Join(clone, "src"), 0o755); err != nil {
		return nil, fmt.Errorf("source tree: %w", err)
	}
	for i := 0; i < commits; i++ {
		files := map[string]string{
			"VERSION": fmt.Sprintf("v%d\n", i+1),
			filepath.Join("src", fmt.Sprintf("m%02d.py", i)): strings.Repeat("x = 1\n", 40),
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(clone, name), []byte(content), 0o644); err != nil {
				return nil, fmt.Errorf("write %s: %w", name, err)
			}
		}
		if _, err := git(clone, "add", "-A"); err != nil {
			return nil, err
		}
		if _, err := git(clone, "commit", "-q", "-m", fmt.Sprintf("v%d", i+1)); err != nil {
			return nil, err
		}
		sha, err := git(clone, "rev-parse", "HEAD")
		if err != nil {
			return nil, err
		}
		w.shas = append(w.shas, sha)
	}
	if _, err := git(clone, "push", "-q", "origin", "HEAD:main"); err != nil {
		return nil, err
	}
	return w, nil
}

// writeConfig writes a fraises.yaml for one fraisier run: GitHub with the
// benchmark's secret, no rate limits, one api fraise whose pushes of main
// deploy from the local origin into dir, with no service and no health
// check (and, if w.held, an install step that sleeps), and a SQLite state
// database in dir.
func (w *work) writeConfig(dir, listen string) (string, error) {
	grace, install := "20s", ""
	if w.held {
		// At the end the held deployment is cancelled (and rolled back,
		// and queued again) after a short grace rather than awaited.
		grace = "1s"
		install = `
        install:
          command: [sleep, "600"]
          timeout: 15m`
	}
	cfg := fmt.Sprintf(`git:
  github:
    secret: %q
server:
  listen: %s
  rate_limit:
    per_source: 0   # 0: no limit of that kind
    global: 0
  shutdown_grace: %s
state:
  path: %s
fraises:
  bench:
    type: api
    repository: acme/bench
    environments:
      staging:
        branch: main
        git_repo: %s
        app_path: %s%s
`, secret, listen, grace, filepath.Join(dir, "state.db"), w.origin, filepath.Join(dir, "app"), install)
	path := filepath.Join(dir, "fraises.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// freeAddr is a loopback address nothing listens on right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}
