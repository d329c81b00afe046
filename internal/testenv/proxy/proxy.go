package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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

// Nginx is a running nginx that proxies Addr to the upstream named
// Upstream, whose block lives in UpstreamFile (the file fraisier writes).
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
	proc  *proc
}

// StartNginx starts nginx on a free loopback port; its upstream first
// points at initial (host:port, where nothing need listen).
func StartNginx(t testing.TB, upstream, initial string) *Nginx {
	t.Helper()
	n := PrepareNginx(t, upstream, initial)
	n.proc = start(t, "nginx", nil, n.Argv...)
	waitFor(t, n.proc, "nginx's pid file", func() bool { _, err := os.Stat(n.PIDFile); return err == nil })
	waitListening(t, n.proc, n.Addr)
	return n
}

// PrepareNginx writes nginx's configuration, as StartNginx does, without
// starting it: Argv runs it in the foreground (under a systemd unit, say),
// and Ready waits until it answers.
func PrepareNginx(t testing.TB, upstream, initial string) *Nginx {
	t.Helper()
	bin := lookPath(t, "nginx", "/usr/sbin/nginx")
	dir := runDir(t)
	n := &Nginx{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), Upstream: upstream, dir: dir,
		UpstreamFile: filepath.Join(dir, "upstream", upstream+".conf"), PIDFile: filepath.Join(dir, "run", "nginx.pid")}
	conf := filepath.Join(dir, "nginx.conf")
	errLog := filepath.Join(dir, "run", "error.log")
	mkdirs(t, filepath.Join(dir, "upstream"))
	write(t, n.UpstreamFile, fmt.Sprintf("upstream %s {\n    server %s;\n}\n", upstream, initial))
	temp := func(name string) string { return filepath.Join(dir, "run", name) }
	write(t, conf, fmt.Sprintf(`daemon off;
worker_processes 1;
pid %s;
error_log %s info;
events { worker_connections 512; }
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
		filepath.Dir(n.UpstreamFile), n.Addr, upstream))
	n.Argv = []string{bin, "-p", dir, "-c", conf, "-e", errLog}
	n.Test = append(append([]string{}, n.Argv...), "-t", "-q")
	return n
}

// Ready waits until an nginx started from Argv by someone else answers.
func (n *Nginx) Ready(t testing.TB) {
	t.Helper()
	p := &proc{name: "nginx", out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	waitFor(t, p, "nginx's pid file", func() bool { _, err := os.Stat(n.PIDFile); return err == nil })
	waitListening(t, p, n.Addr)
}

// Log is the end of nginx's error log.
func (n *Nginx) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "run", "error.log"))
	return testenv.Tail(string(b), 4<<10)
}

// StartCaddy starts Caddy on a free loopback port with its admin API on
// another; its reverse_proxy (@id id) first dials initial.
func StartCaddy(t testing.TB, id, initial string) *Caddy {
	t.Helper()
	bin := lookPath(t, "caddy", "/usr/bin/caddy")
	dir := runDir(t)
	c := &Caddy{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), ID: id}
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	c.Admin = "http://" + adminAddr
	cfg := map[string]any{
		"admin": map[string]any{"listen": adminAddr},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"srv0": map[string]any{
			"listen":          []string{c.Addr},
			"automatic_https": map[string]any{"disable": true},
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler": "reverse_proxy", "@id": id, "upstreams": []any{map[string]string{"dial": initial}},
			}}}},
		}}}},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "caddy.json")
	write(t, conf, string(raw))
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "run", "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "run", "config")}
	c.proc = start(t, "caddy", env, bin, "run", "--config", conf)
	waitFor(t, c.proc, "Caddy's admin API", func() bool {
		resp, err := http.Get(c.Admin + "/id/" + id + "/upstreams")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	waitListening(t, c.proc, c.Addr)
	return c
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

func lookPath(t testing.TB, name, fallback string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	testenv.Unavailable(t, "%s is not installed (scripts/test-deps.sh installs it)", name)
	return ""
}

// runDir is a directory the proxy's user can read, with run/ it can
// write: as root the proxy runs as nobody, never as root.
func runDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fraisier-proxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mkdirs(t, filepath.Join(dir, "run"))
	if cred := unprivileged(t); cred != nil {
		if err := os.Chown(filepath.Join(dir, "run"), int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// unprivileged is the credential of nobody when the test runs as root,
// else nil: the proxy runs as the test's own user.
func unprivileged(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		testenv.Unavailable(t, "no user nobody to run the proxy as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan struct{}
}

// start runs argv for the length of the test, as nobody when root; the
// test's end stops it (this process, by its own pid).
func start(t testing.TB, name string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: unprivileged(t), Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		// Its process group: nginx's workers go with their master.
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, testenv.Tail(p.out.String(), 8<<10))
		}
	})
	return p
}

func waitFor(t testing.TB, p *proc, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s was ready:\n%s", p.name, what, p.out.String())
		case <-ctx.Done():
			t.Fatalf("%s: %s not ready within 15s:\n%s", p.name, what, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitListening(t testing.TB, p *proc, addr string) {
	t.Helper()
	waitFor(t, p, addr, func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

func mkdirs(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
