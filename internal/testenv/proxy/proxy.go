package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// ErrUnavailable reports that this machine cannot run the proxy: it is
// not installed, or there is no unprivileged user to run it as.
var ErrUnavailable = errors.New("proxy unavailable")

// Nginx is an nginx that proxies Addr to the upstream named Upstream,
// whose block lives in UpstreamFile (the file fraisier writes).
type Nginx struct {
	// Addr is where nginx listens (127.0.0.1:port).
	Addr         string
	Upstream     string
	UpstreamFile string
	PIDFile      string
	// Argv runs this nginx in the foreground; Test checks its
	// configuration (nginx -t).
	Argv, Test []string
	dir        string
	proc       *proc
}

// Caddy is a running Caddy whose one route proxies Addr through the
// reverse_proxy handler with @id ID; Admin is its admin API.
type Caddy struct {
	Addr  string
	Admin string
	ID    string
	dir   string
	proc  *proc
}

// StartNginx starts nginx on a free loopback port for the length of the
// test; its upstream first points at initial (host:port, where nothing
// need listen).
func StartNginx(t testing.TB, upstream, initial string) *Nginx {
	t.Helper()
	n, err := runNginx(context.Background(), upstream, initial, loopback(t))
	orUnavailable(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", n.Log())
		}
		n.Close()
	})
	return n
}

// PrepareNginx writes nginx's configuration, as StartNginx does, without
// starting it: Argv runs it in the foreground (under a systemd unit, say),
// and Ready waits until it answers.
func PrepareNginx(t testing.TB, upstream, initial string) *Nginx {
	t.Helper()
	n, err := prepareNginx(upstream, initial, loopback(t))
	orUnavailable(t, err)
	t.Cleanup(n.Close)
	return n
}

// Ready waits until an nginx started from Argv by someone else answers.
func (n *Nginx) Ready(t testing.TB) {
	t.Helper()
	if err := n.ready(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// RunNginx is StartNginx outside a test (a benchmark): Close stops nginx
// and removes its directory.
func RunNginx(ctx context.Context, upstream, initial string) (*Nginx, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return runNginx(ctx, upstream, initial, addr)
}

func runNginx(ctx context.Context, upstream, initial, addr string) (*Nginx, error) {
	n, err := prepareNginx(upstream, initial, addr)
	if err != nil {
		return nil, err
	}
	if n.proc, err = start("nginx", nil, n.Argv...); err == nil {
		err = n.ready(ctx, n.proc)
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func prepareNginx(upstream, initial, addr string) (*Nginx, error) {
	bin, err := lookPath("nginx", "/usr/sbin/nginx")
	if err != nil {
		return nil, err
	}
	dir, err := runDir()
	if err != nil {
		return nil, err
	}
	n := &Nginx{Addr: addr, Upstream: upstream, dir: dir,
		UpstreamFile: filepath.Join(dir, "upstream", upstream+".conf"), PIDFile: filepath.Join(dir, "run", "nginx.pid")}
	conf := filepath.Join(dir, "nginx.conf")
	errLog := filepath.Join(dir, "run", "error.log")
	temp := func(name string) string { return filepath.Join(dir, "run", name) }
	text := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %s;
error_log %s info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;
    include %s/*.conf;
    server {
        listen %s;
        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, n.PIDFile, errLog, temp("body"), temp("proxy"), temp("fastcgi"), temp("uwsgi"), temp("scgi"),
		filepath.Dir(n.UpstreamFile), n.Addr, upstream)
	err = os.MkdirAll(filepath.Dir(n.UpstreamFile), 0o755)
	if err == nil {
		err = os.WriteFile(n.UpstreamFile, fmt.Appendf(nil, "upstream %s {\n    server %s;\n}\n", upstream, initial), 0o644)
	}
	if err == nil {
		err = os.WriteFile(conf, []byte(text), 0o644)
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("write nginx's configuration: %w", err)
	}
	n.Argv = []string{bin, "-p", dir, "-c", conf, "-e", errLog}
	n.Test = append(append([]string{}, n.Argv...), "-t", "-q")
	return n, nil
}

func (n *Nginx) ready(ctx context.Context, p *proc) error {
	if err := waitFor(ctx, p, "nginx's pid file", func() bool { _, err := os.Stat(n.PIDFile); return err == nil }); err != nil {
		return err
	}
	return waitListening(ctx, p, n.Addr)
}

// Log is the end of nginx's error log.
func (n *Nginx) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "run", "error.log"))
	return testenv.Tail(string(b), 4<<10)
}

// Close stops nginx (when this package started it) and removes its
// directory.
func (n *Nginx) Close() {
	n.proc.stop()
	os.RemoveAll(n.dir)
}

// CaddyOption changes the reverse_proxy handler StartCaddy and RunCaddy
// configure (its JSON object).
type CaddyOption func(handler map[string]any)

// UpstreamKeepAlive turns the reverse_proxy's keep-alive to its upstream
// on or off (Caddy's default is on: it pools connections to the upstream
// and reuses them): the Caddyfile's transport http { keepalive off }.
func UpstreamKeepAlive(on bool) CaddyOption {
	return func(h map[string]any) {
		h["transport"] = map[string]any{"protocol": "http", "keep_alive": map[string]any{"enabled": on}}
	}
}

// StartCaddy starts Caddy on a free loopback port, with its admin API on
// another, for the length of the test; its reverse_proxy (@id id) first
// dials initial (host:port, or unix//path).
func StartCaddy(t testing.TB, id, initial string, opts ...CaddyOption) *Caddy {
	t.Helper()
	c, err := runCaddy(context.Background(), id, initial, loopback(t), loopback(t), opts)
	orUnavailable(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("caddy output:\n%s", testenv.Tail(c.proc.out.String(), 8<<10))
		}
		c.Close()
	})
	return c
}

// RunCaddy is StartCaddy outside a test (a benchmark): Close stops Caddy
// and removes its directory.
func RunCaddy(ctx context.Context, id, initial string, opts ...CaddyOption) (*Caddy, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return runCaddy(ctx, id, initial, addr, admin, opts)
}

func runCaddy(ctx context.Context, id, initial, addr, adminAddr string, opts []CaddyOption) (*Caddy, error) {
	bin, err := lookPath("caddy", "/usr/bin/caddy")
	if err != nil {
		return nil, err
	}
	dir, err := runDir()
	if err != nil {
		return nil, err
	}
	c := &Caddy{Addr: addr, Admin: "http://" + adminAddr, ID: id, dir: dir}
	handler := map[string]any{"handler": "reverse_proxy", "@id": id, "upstreams": []any{map[string]string{"dial": initial}}}
	for _, o := range opts {
		o(handler)
	}
	raw, err := json.Marshal(map[string]any{
		"admin": map[string]any{"listen": adminAddr},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"srv0": map[string]any{
			"listen":          []string{c.Addr},
			"automatic_https": map[string]any{"disable": true},
			"routes":          []any{map[string]any{"handle": []any{handler}}},
		}}}},
	})
	conf := filepath.Join(dir, "caddy.json")
	if err == nil {
		err = os.WriteFile(conf, raw, 0o644)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("write Caddy's configuration: %w", err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "run", "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "run", "config")}
	c.proc, err = start("caddy", env, bin, "run", "--config", conf)
	if err == nil {
		err = waitFor(ctx, c.proc, "Caddy's admin API", func() bool {
			resp, err := http.Get(c.Admin + "/id/" + id + "/upstreams")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	if err == nil {
		err = waitListening(ctx, c.proc, c.Addr)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Log is the end of what Caddy wrote (its JSON log).
func (c *Caddy) Log() string { return testenv.Tail(c.proc.out.String(), 8<<10) }

// Output is all Caddy wrote so far: its log, one JSON object a line.
func (c *Caddy) Output() string { return c.proc.out.String() }

// Close stops Caddy and removes its directory.
func (c *Caddy) Close() {
	c.proc.stop()
	os.RemoveAll(c.dir)
}

// Get is what a GET of path through the proxy at addr answers: the body,
// trimmed, or "error: " and why.
func Get(client *http.Client, addr, path string) string {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("error: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return strings.TrimSpace(string(b))
}

func orUnavailable(t testing.TB, err error) {
	t.Helper()
	switch {
	case errors.Is(err, ErrUnavailable):
		testenv.Unavailable(t, "%v", err)
	case err != nil:
		t.Fatal(err)
	}
}

func lookPath(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("%w: %s is not installed (scripts/test-deps.sh installs it)", ErrUnavailable, name)
}

// loopback is a loopback address for a test, its port drawn as
// testenv.FreePort draws them, away from the ephemeral range.
func loopback(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// runDir is a directory the proxy's user can read, with run/ it can
// write: as root the proxy runs as nobody, never as root.
func runDir() (string, error) {
	cred, err := unprivileged()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "fraisier-proxy-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err == nil {
		err = os.Mkdir(filepath.Join(dir, "run"), 0o755)
	}
	if err == nil && cred != nil {
		err = os.Chown(filepath.Join(dir, "run"), int(cred.Uid), int(cred.Gid))
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("make the proxy's directory: %w", err)
	}
	return dir, nil
}

// unprivileged is the credential of nobody when this process runs as
// root, else nil: the proxy runs as this process's own user.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("%w: no user nobody to run the proxy as: %v", ErrUnavailable, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan struct{}
}

// start runs argv in a process group of its own, as nobody when root.
func start(name string, env []string, argv ...string) (*proc, error) {
	cred, err := unprivileged()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop ends the process group this package started (nginx's workers go
// with their master), by its own pid; nil stops nothing.
func (p *proc) stop() {
	if p == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitFor polls cond for up to 15s; p, when this package started the
// proxy, ends the wait early if it exits.
func waitFor(ctx context.Context, p *proc, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var exited <-chan struct{}
	if p != nil {
		exited = p.done
	}
	for !cond() {
		select {
		case <-exited:
			return fmt.Errorf("%s exited before %s was ready:\n%s", p.name, what, p.out.String())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within 15s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func waitListening(ctx context.Context, p *proc, addr string) error {
	client := &http.Client{Timeout: time.Second}
	return waitFor(ctx, p, addr, func() bool {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}
