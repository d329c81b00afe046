package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fraiseql/fraisier/internal/store"
	pgtest "github.com/fraiseql/fraisier/internal/testenv/pg"
)

// world is one run's parts: the PostgreSQL cluster, a git origin with a
// work clone that pushes to it, and per phase the state database every
// node shares, the configuration every node loads (its own app_path
// through ${APP_ROOT}) and the benchmark's own connection to the state.
type world struct {
	ctx     context.Context
	o       options
	cluster *pgtest.Cluster
	root    string
	origin  string
	work    string
	hosts   []string
	// The phase's state database, configuration and hosts' directory.
	url      string
	cfgPath  string
	hostsDir string
	// db is the benchmark's connection: it queues rollouts and reads
	// them, under an application_name of its own so that the connection
	// count is the nodes' alone.
	db      *store.DB
	gitEnv  []string
	commits int
	// watcher counts the notifications of the phase running.
	watcher *watcher
}

func newWorld(ctx context.Context, cluster *pgtest.Cluster, o options) (*world, error) {
	w := &world{ctx: ctx, o: o, cluster: cluster}
	var err error
	if w.root, err = os.MkdirTemp("", "fraisier-rolloutbench."); err != nil {
		return nil, err
	}
	for i := range o.hosts {
		w.hosts = append(w.hosts, fmt.Sprintf("web-%03d", i+1))
	}
	if err := w.prepareGit(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// usePhase makes the state database, configuration and hosts' directory
// of phase name, and opens the benchmark's connection to that database.
func (w *world) usePhase(name string) error {
	if w.db != nil {
		w.db.Close()
		w.db = nil
	}
	if err := w.cluster.CreateDatabase(w.ctx, "fraisier_"+name); err != nil {
		return err
	}
	w.url = w.cluster.URL("fraisier_"+name, "")
	dir := filepath.Join(w.root, name)
	w.cfgPath, w.hostsDir = filepath.Join(dir, "fraises.yaml"), filepath.Join(dir, "hosts")
	if err := os.MkdirAll(w.hostsDir, 0o755); err != nil {
		return err
	}
	if err := w.writeConfig(); err != nil {
		return err
	}
	var err error
	w.db, err = store.Open(w.ctx, store.Options{URL: w.url + "&application_name=rolloutbench"})
	return err
}

func (w *world) close() {
	if w.db != nil {
		w.db.Close()
	}
	os.RemoveAll(w.root)
}

// prepareGit makes the origin (a bare repository) and the work clone the
// benchmark commits in and pushes from.
func (w *world) prepareGit() error {
	w.gitEnv = append(os.Environ(), "HOME="+filepath.Join(w.root, "home"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
	w.origin, w.work = filepath.Join(w.root, "origin.git"), filepath.Join(w.root, "work")
	if _, err := w.git(w.root, "init", "-q", "--bare", "-b", "main", w.origin); err != nil {
		return err
	}
	if _, err := w.git(w.root, "clone", "-q", w.origin, w.work); err != nil {
		return err
	}
	_, err := w.commit()
	return err
}

// commit pushes a new commit to main (a one-line VERSION file changes)
// and returns its SHA.
func (w *world) commit() (string, error) {
	w.commits++
	if err := os.WriteFile(filepath.Join(w.work, "VERSION"), fmt.Appendf(nil, "v%d\n", w.commits), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"add", "VERSION"},
		{"commit", "-q", "-m", fmt.Sprintf("v%d", w.commits)},
		{"push", "-q", "origin", "HEAD:main"},
	} {
		if _, err := w.git(w.work, args...); err != nil {
			return "", err
		}
	}
	return w.git(w.work, "rev-parse", "HEAD")
}

// git runs git in dir and returns its trimmed output.
func (w *world) git(dir string, args ...string) (string, error) {
	c := exec.CommandContext(w.ctx, "git", args...)
	c.Dir, c.Env = dir, w.gitEnv
	out, err := c.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// writeConfig writes the one fraises.yaml every node loads: hello's
// production runs on every host; each node's ${APP_ROOT} is its own
// directory. The environment deploys code only: layout inplace (a fetch
// and a checkout), no install, no unit, no health check, no migration.
func (w *world) writeConfig() error {
	w.cfgPath = filepath.Join(w.root, "fraises.yaml")
	yaml := fmt.Sprintf(`state:
  url: %s
  dir: ${APP_ROOT}/state
fraises:
  hello:
    type: api
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: ${APP_ROOT}/hello
        layout: inplace
        hosts: [%s]
`, w.url, w.origin, strings.Join(w.hosts, ", "))
	return os.WriteFile(w.cfgPath, []byte(yaml), 0o644)
}
