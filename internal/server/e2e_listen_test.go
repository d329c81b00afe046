package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// socketActivate is the systemd tool that passes fraisier a listening
// socket as a .socket unit would (Debian ships it in /usr/bin).
func socketActivate(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"systemd-socket-activate", "/lib/systemd/systemd-socket-activate", "/usr/lib/systemd/systemd-socket-activate"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	testenv.Unavailable(t, "systemd-socket-activate not installed")
	return ""
}

// TestE2EListenAndNotify: fraisier serve on each kind of listener —
// host:port, unix:/path, and a socket passed by systemd socket activation —
// with NOTIFY_SOCKET set as a Type=notify unit has it. On each, READY=1
// arrives once /ready answers 200 (the workers run), /health answers, and
// SIGTERM makes it send STOPPING=1 and exit 0. Nothing else is notified.
func TestE2EListenAndNotify(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	type listener struct {
		// argv runs fraisier serve on the listener; notify is NOTIFY_SOCKET
		// and env the fraisier environment, for wrappers that filter it.
		argv   func(notify string, env []string) []string
		client *http.Client
		base   string
		// activate: fraisier starts only once a connection arrives.
		activate bool
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) listener
	}{
		{"tcp", func(t *testing.T, dir string) listener {
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			return listener{
				argv:   func(string, []string) []string { return []string{bin, "serve", "--listen", addr} },
				client: &http.Client{Timeout: 5 * time.Second}, base: "http://" + addr,
			}
		}},
		{"unix", func(t *testing.T, dir string) listener {
			sock := filepath.Join(dir, "fraisier.sock")
			tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			}}
			t.Cleanup(tr.CloseIdleConnections)
			return listener{
				argv:   func(string, []string) []string { return []string{bin, "serve", "--listen", "unix:" + sock} },
				client: &http.Client{Timeout: 5 * time.Second, Transport: tr}, base: "http://fraisier",
			}
		}},
		{"systemd socket activation", func(t *testing.T, dir string) listener {
			tool := socketActivate(t)
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			return listener{
				argv: func(notify string, env []string) []string {
					// The tool hands the program only the variables named
					// with -E (and PATH, HOME, TERM, USER).
					argv := []string{tool, "-l", addr}
					for _, kv := range env {
						if strings.HasPrefix(kv, "FRAISIER_") || strings.HasPrefix(kv, "E2E_") {
							argv = append(argv, "-E", kv)
						}
					}
					return append(argv, "-E", "NOTIFY_SOCKET="+notify, bin, "serve", "--listen", "systemd")
				},
				client: &http.Client{Timeout: 5 * time.Second}, base: "http://" + addr, activate: true,
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not t.TempDir: socket paths must fit in 108 bytes.
			dir, err := os.MkdirTemp("", "fe2e-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			env := minimalConfig(t, dir)
			l := tc.setup(t, dir)
			notifyPath := filepath.Join(dir, "notify.sock")
			notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer notify.Close()
			msgs := make(chan string, 16)
			go func() {
				defer close(msgs)
				buf := make([]byte, 4096)
				for {
					n, err := notify.Read(buf)
					if err != nil {
						return
					}
					msgs <- string(buf[:n])
				}
			}()
			next := func(p *testenv.Proc, d time.Duration) string {
				t.Helper()
				select {
				case m := <-msgs:
					return m
				case <-p.Done():
					// What it sent before it exited may still be unread.
					select {
					case m := <-msgs:
						return m
					case <-time.After(time.Second):
					}
					t.Fatalf("%s exited (%v) before it notified", p.Name, p.Err())
				case <-time.After(d):
					t.Fatalf("no sd_notify message within %s", d)
				}
				return ""
			}

			p := testenv.StartProc(t, "fraisier serve ("+tc.name+")", append(env, "NOTIFY_SOCKET="+notifyPath), l.argv(notifyPath, env)...)
			if l.activate {
				// The first connection makes the tool start fraisier, once
				// the tool listens.
				testenv.WaitFor(t, "systemd-socket-activate to listen", 10*time.Second, func() bool {
					if p.Exited() {
						t.Fatalf("%s exited: %v", p.Name, p.Err())
					}
					c, err := net.DialTimeout("tcp", strings.TrimPrefix(l.base, "http://"), time.Second)
					if err != nil {
						return false
					}
					c.Close()
					return true
				})
			}
			if m := next(p, 20*time.Second); m != "READY=1" {
				t.Fatalf("first sd_notify message %q, want READY=1", m)
			}
			// Ready means ready: no retry here.
			if code, body := get(t, l.client, l.base+"/ready"); code != http.StatusOK || !strings.Contains(body, `"ready":true`) {
				t.Errorf("/ready just after READY=1: %d %s, want 200 ready", code, body)
			}
			if code, body := get(t, l.client, l.base+"/health"); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
				t.Errorf("/health: %d %s, want 200 ok", code, body)
			}
			p.Signal(t, syscall.SIGTERM)
			if m := next(p, 5*time.Second); m != "STOPPING=1" {
				t.Errorf("sd_notify message after SIGTERM %q, want STOPPING=1", m)
			}
			if code := p.Wait(t, 15*time.Second); code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0", code)
			}
			notify.Close()
			for m := range msgs {
				t.Errorf("unexpected sd_notify message %q", m)
			}
		})
	}
}

// TestE2EListenSystemdWithoutSocket: --listen systemd outside socket
// activation refuses to start and says why.
func TestE2EListenSystemdWithoutSocket(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	dir := t.TempDir()
	env := minimalConfig(t, dir)
	p := testenv.StartProc(t, "fraisier serve --listen systemd", append(env, "LISTEN_FDS=1", fmt.Sprintf("LISTEN_PID=%d", os.Getpid())),
		bin, "serve", "--listen", "systemd")
	if code := p.Wait(t, 15*time.Second); code == 0 {
		t.Fatal("fraisier serve --listen systemd without a socket exited 0")
	}
	if out := p.Out.String(); !strings.Contains(out, "no socket passed to this process") {
		t.Errorf("output does not say that no socket was passed:\n%s", out)
	}
}

// minimalConfig writes a configuration with one fraise under dir and
// returns the environment that points fraisier at it.
func minimalConfig(t *testing.T, dir string) []string {
	t.Helper()
	cfg := filepath.Join(dir, "fraises.yaml")
	yaml := fmt.Sprintf(`git:
  github:
    secret: ${E2E_WEBHOOK_SECRET}
fraises:
  hello:
    type: api
    repository: acme/hello
    environments:
      production:
        branch: main
        git_repo: %s
        app_path: %s
`, filepath.Join(dir, "origin.git"), filepath.Join(dir, "srv", "hello"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
		default:
			env = append(env, kv)
		}
	}
	return append(env, "FRAISIER_CONFIG="+cfg, "FRAISIER_STATE="+filepath.Join(dir, "state.db"), "E2E_WEBHOOK_SECRET="+testenv.RandomHex(16))
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		t.Errorf("GET %s: not JSON: %q", url, b)
	}
	compact, _ := json.Marshal(v)
	return resp.StatusCode, string(compact)
}

// TestE2EReadyAfterRecovery: READY=1 tells systemd that fraisier serve is
// up, so it must not come before /ready answers 200, even when the
// recovery of a previous process's deployments takes a while. The test
// makes it take a while, deterministically: the state database holds a
// deployment that a dead fraisier on this host was running, and the test
// holds SQLite's write lock while fraisier starts, so that recording it
// interrupted waits. Until then the workers are not running and /ready
// answers 503: READY=1 must wait too.
func TestE2EReadyAfterRecovery(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	dir, err := os.MkdirTemp("", "fe2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := minimalConfig(t, dir)
	ctx := t.Context()

	// A pid that certainly belonged to a process now gone.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := db.StartDeployment(ctx, store.Deployment{
		Target: store.Target{Fraise: "hello", Environment: "production"}, Trigger: store.TriggerCLI, Actor: "e2e",
		RequestedRef: "main", NewSHA: strings.Repeat("ab", 20), Host: host, PID: gone.Process.Pid,
	})
	if err != nil {
		t.Fatal(err)
	}
	dead := deploy.Owner{Host: host, PID: gone.Process.Pid, StartTick: 1, Nonce: "e2edead0"}
	if _, err := db.AcquireLock(ctx, store.Lock{Target: store.Target{Fraise: "hello", Environment: "production"},
		Owner: dead.String(), Host: host, PID: dead.PID, Reason: "webhook"}, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	tx, err := db.SQL().BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer unlock()

	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	client := &http.Client{Timeout: 5 * time.Second}
	p := testenv.StartProc(t, "fraisier serve", append(env, "NOTIFY_SOCKET="+notifyPath), bin, "serve", "--listen", addr)

	// Wait for READY=1 while the recovery is held (well within SQLite's
	// 5 s busy timeout), then ask /ready at once.
	notify.SetReadDeadline(time.Now().Add(2500 * time.Millisecond))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	switch {
	case err != nil:
		// Not notified while the recovery waits: right. It must come once
		// the recovery is done.
		unlock()
		notify.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err = notify.Read(buf); err != nil {
			t.Fatalf("no READY=1 after the recovery: %v", err)
		}
		if m := string(buf[:n]); m != "READY=1" {
			t.Fatalf("sd_notify %q, want READY=1", m)
		}
		fallthrough
	default:
		if m := string(buf[:n]); m != "READY=1" {
			t.Fatalf("sd_notify %q, want READY=1", m)
		}
		if code, body := get(t, client, "http://"+addr+"/ready"); code != http.StatusOK {
			t.Errorf("/ready just after READY=1: %d %s; want 200: READY=1 came before the workers were running (recovery still held)", code, body)
		}
	}
	unlock()
	waitReady(t, p, client, "http://"+addr)
	if d, err := db.Deployment(ctx, id); err != nil || d.Status != store.StatusInterrupted {
		t.Errorf("the dead process's deployment after the recovery: %s %v, want interrupted", d.Status, err)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}
