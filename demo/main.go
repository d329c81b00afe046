package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: demo FRAISIER_BINARY")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	ctx  context.Context
	bin  string
	root string
	work string
	port int
	// serverPort is where fraisier serve listens.
	serverPort int
	env        []string
	bold       string
	reset      string
	failed     bool
}

func run(ctx context.Context, bin string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "fraisier-demo.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	fmt.Println("starting a systemd user manager for the demo's service...")
	mgr, err := tsystemd.Start(ctx)
	if err != nil {
		return fmt.Errorf("systemd user manager: %w", err)
	}
	defer mgr.Close(context.Background())

	d := &demo{ctx: ctx, bin: bin, root: root, work: filepath.Join(root, "work")}
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("NO_COLOR") == "" {
		d.bold, d.reset = "\x1b[1m", "\x1b[0m"
	}
	if err := d.prepare(mgr); err != nil {
		return err
	}
	d.tour()
	if err := d.serve(); err != nil {
		fmt.Printf("!! %v\n", err)
		d.failed = true
	}

	fmt.Printf("\nThe state database was SQLite at %s (removed on exit).\n", filepath.Join(root, "state", "fraisier.db"))
	if d.failed {
		return errors.New("a step did not end as expected (see above)")
	}
	return nil
}

// prepare builds the demo's service and installs its unit in mgr, writes
// fraises.yaml, sets the environment every command gets, and makes the
// git origin and the work clone that pushes to it.
func (d *demo) prepare(mgr *tsystemd.Manager) error {
	var err error
	if d.port, err = freePort(); err != nil {
		return err
	}
	if d.serverPort, err = freePort(); err != nil {
		return err
	}
	app := filepath.Join(d.root, "srv", "hello")
	unit := mgr.Unit("hello.service")
	if err := d.installService(mgr, unit, app); err != nil {
		return err
	}
	cfgPath := filepath.Join(d.root, "fraises.yaml")
	if err := os.WriteFile(cfgPath, []byte(d.config(app, unit)), 0o644); err != nil {
		return err
	}
	d.env = append(os.Environ(), mgr.Env()...)
	d.env = append(d.env, "FRAISIER_CONFIG="+cfgPath, "FRAISIER_STATE=", "DEMO_WEBHOOK_SECRET="+demoSecret,
		"HOME="+filepath.Join(d.root, "home"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Demo", "GIT_AUTHOR_EMAIL=demo@example.com", "GIT_COMMITTER_NAME=Demo", "GIT_COMMITTER_EMAIL=demo@example.com")

	d.git(d.root, "init", "-q", "--bare", "-b", "main", "origin.git")
	d.git(d.root, "clone", "-q", "origin.git", "work")
	return nil
}

// installService builds the demo's HTTP service and writes its unit,
// which serves the release current in app.
func (d *demo) installService(mgr *tsystemd.Manager, unit, app string) error {
	appBin := filepath.Join(d.root, "httpapp")
	fmt.Println("building the demo's HTTP service...")
	build := exec.CommandContext(d.ctx, "go", "build", "-o", appBin, "./internal/testenv/httpapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the demo service: %v\n%s", err, out)
	}
	unitText := fmt.Sprintf("[Unit]\nDescription=fraisier demo: hello\n[Service]\nExecStart=%s -addr 127.0.0.1:%d -dir %s\nRestart=no\n",
		appBin, d.port, filepath.Join(app, "current"))
	if err := os.MkdirAll(mgr.UnitDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mgr.UnitDir, unit), []byte(unitText), 0o644); err != nil {
		return err
	}
	if out, err := mgr.Systemctl(d.ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("daemon-reload: %v %s", err, out)
	}
	return nil
}

// config is the demo's fraises.yaml.
func (d *demo) config(app, unit string) string {
	return fmt.Sprintf(`# The demo's fraises.yaml: one api fraise run by a user systemd manager,
# deployed by hand and by fraisier serve on a signed GitHub push.
state:
  path: %[1]s/state/fraisier.db
git:
  github:
    secret: ${DEMO_WEBHOOK_SECRET}
server:
  listen: 127.0.0.1:%[5]d
fraises:
  hello:
    type: api
    description: a small HTTP service
    repository: demo/hello
    environments:
      production:
        branch: main
        git_repo: %[1]s/origin.git
        app_path: %[2]s
        scope: user
        systemd_service: %[3]s
        keep_releases: 3
        health_check:
          url: http://127.0.0.1:%[4]d/health
          timeout: 1s
          retries: 3
          interval: 300ms
`, d.root, app, unit, d.port, d.serverPort)
}

// tour is the demo proper, command by command: deploys by hand, an
// automatic rollback, the record, and a rollback by hand.
func (d *demo) tour() {
	d.fraisier(0, "version")
	d.fraisier(0, "config", "validate")
	d.fraisier(0, "list")

	d.say("push v1 and deploy it")
	d.push("v1", "healthy")
	d.fraisier(0, "deploy", "hello", "production")
	d.curl()

	d.say("push v2: --plan first, then deploy")
	d.push("v2", "healthy")
	d.fraisier(0, "deploy", "hello", "production", "--plan")
	d.fraisier(0, "deploy", "hello", "production")
	d.curl()

	d.say("push v3, which fails its health check: fraisier rolls back by itself (exit 11)")
	d.push("v3", "unhealthy")
	d.fraisier(11, "deploy", "hello", "production")
	d.curl()

	d.say("what happened, and what runs where")
	d.fraisier(0, "history")
	d.fraisier(0, "status")
	d.fraisier(0, "releases", "hello", "production")
	d.fraisier(0, "show", "3")
	d.fraisier(0, "stats")

	d.say("roll back by hand to v1 (no fetch, no build)")
	d.fraisier(0, "rollback", "hello", "production")
	d.curl()
}

func (d *demo) say(s string) { fmt.Printf("\n%s# %s%s\n", d.bold, s, d.reset) }

// fraisier runs the binary as a user would and checks its exit code.
func (d *demo) fraisier(wantCode int, args ...string) {
	fmt.Printf("\n%s$ fraisier %s%s\n", d.bold, strings.Join(args, " "), d.reset)
	cmd := exec.CommandContext(d.ctx, d.bin, args...)
	cmd.Env, cmd.Dir = d.env, d.root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	if code != wantCode {
		fmt.Printf("!! exit code %d, expected %d\n", code, wantCode)
		d.failed = true
	}
}

func (d *demo) git(dir string, args ...string) {
	cmd := exec.CommandContext(d.ctx, "git", args...)
	cmd.Env, cmd.Dir = d.env, dir
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Printf("!! git %s: %v\n%s", strings.Join(args, " "), err, out)
		d.failed = true
	}
}

func (d *demo) push(version, behaviour string) {
	os.WriteFile(filepath.Join(d.work, "VERSION"), []byte(version+"\n"), 0o644)
	os.WriteFile(filepath.Join(d.work, "behaviour"), []byte(behaviour+"\n"), 0o644)
	d.git(d.work, "add", "-A")
	d.git(d.work, "commit", "-q", "-m", version+" ("+behaviour+")")
	d.git(d.work, "push", "-q", "origin", "HEAD:main")
	fmt.Printf("  pushed %s (%s)\n", version, behaviour)
}

func (d *demo) curl() {
	c := http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", d.port)
	resp, err := c.Get(url)
	if err != nil {
		fmt.Printf("  GET %s: %v\n", url, err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	fmt.Printf("  GET %s → %d %s\n", url, resp.StatusCode, strings.TrimSpace(string(b)))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
