package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestE2EReload reloads fraises.yaml in a running fraisier serve with
// SIGHUP, as systemctl reload does. A valid new file routes the next
// push by its branch while the deployment running at the reload finishes
// with the file it started with, and a setting of the server section is
// named as needing a restart. An invalid file is refused, its problem
// logged, and pushes keep routing by the file in use. systemd hears
// RELOADING=1 then READY=1 each time, and /metrics counts both reloads.
func TestE2EReload(t *testing.T) {
	f := newE2E(t, e2eOptions{})
	notify := listenNotify(t)
	p := f.start("fraisier serve", []string{"NOTIFY_SOCKET=" + notify.path}, f.bin, "serve")
	waitReady(t, p, &http.Client{Timeout: 2 * time.Second}, f.base())
	notify.expect(t, p, "READY=1")

	// A deployment of main runs, held in its install, across the reload.
	f.hold()
	m := f.push("main", 1)
	running := f.hook("main", "", m[0]).Deployments[0].DeploymentID
	testenv.WaitFor(t, "the install of main-1 to start", 30*time.Second, func() bool { return f.installStarted(version("main", 1)) })

	f.rewriteConfig("branch: main", "branch: release", "shutdown_grace: 1m", "shutdown_grace: 2m")
	f.hangup(p, notify, "configuration reloaded")
	if !logHas(p, "configuration reload: these settings keep their old values until serve restarts", "restart_needed", "[server.shutdown_grace]") {
		t.Errorf("no log line naming server.shutdown_grace as needing a restart; log:\n%s", testenv.Tail(p.Out.String(), 4<<10))
	}
	if a := f.post(f.delivery("main", m[0], f.push("main", 1)[0])); a.Outcome != store.OutcomeIgnored || !strings.Contains(a.Reason, "no environment deploys branch main") {
		t.Errorf("push to main after the reload: %+v; want ignored, no environment deploys branch main", a)
	}
	r := f.push("release", 1)
	f.hook("release", "", r[0])
	f.release()
	f.waitDeployed("production", r[0], version("release", 1), 60*time.Second)
	if d := f.deployment(running); d.Status != store.StatusSucceeded || d.NewSHA != m[0] {
		t.Errorf("deployment running at the reload: %s of %s, want succeeded of %s (%s)", d.Status, d.NewSHA, m[0], d.Error)
	}

	// An invalid file is refused: the file in use stays.
	f.rewriteConfig("type: api", "type: apii")
	f.hangup(p, notify, "configuration reload refused: the configuration in use stays")
	if !logProblem(p, "fraises.hello.type") {
		t.Errorf("no logged configuration problem naming fraises.hello.type; log:\n%s", testenv.Tail(p.Out.String(), 4<<10))
	}
	r2 := f.push("release", 1)
	f.hook("release", r[0], r2[0])
	f.waitDeployed("production", r2[0], version("release", 2), 60*time.Second)

	resp, err := httpClient.Get(f.base() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	body := string(raw)
	for _, want := range []string{`fraisier_config_reloads_total{result="applied"} 1`, `fraisier_config_reloads_total{result="refused"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// rewriteConfig replaces, in fraises.yaml, each old string with its new
// one (pairs), insisting that each is there.
func (f *e2e) rewriteConfig(oldNew ...string) {
	f.t.Helper()
	b, err := os.ReadFile(f.cfgPath)
	if err != nil {
		f.t.Fatal(err)
	}
	text := string(b)
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(text, oldNew[i]) {
			f.t.Fatalf("fraises.yaml has no %q", oldNew[i])
		}
		text = strings.ReplaceAll(text, oldNew[i], oldNew[i+1])
	}
	if err := os.WriteFile(f.cfgPath, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// hangup sends SIGHUP to serve and waits for the log line msg and for
// RELOADING=1 then READY=1.
func (f *e2e) hangup(p *testenv.Proc, n *notifySocket, msg string) {
	f.t.Helper()
	p.Signal(f.t, syscall.SIGHUP)
	got := n.next(f.t, p)
	if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		f.t.Errorf("sd_notify after SIGHUP %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}
	n.expect(f.t, p, "READY=1")
	// The log reaches the test through a pipe: it may trail READY=1.
	testenv.WaitFor(f.t, "log line "+msg, 10*time.Second, func() bool { return logHas(p, msg) })
}

// post sends d and returns the answer, insisting on a 2xx.
func (f *e2e) post(d delivery) hookAnswer {
	f.t.Helper()
	status, a, err := f.send(&httpClient, f.base(), d)
	if err != nil || status/100 != 2 {
		f.t.Fatalf("webhook %s: %d %v", d.id, status, err)
	}
	return a
}

// logProblem reports whether serve logged a configuration problem
// mentioning path.
func logProblem(p *testenv.Proc, path string) bool {
	sc := bufio.NewScanner(strings.NewReader(p.Out.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "configuration problem" {
			if s, _ := rec["problem"].(string); strings.Contains(s, path) {
				return true
			}
		}
	}
	return false
}

// notifySocket is a NOTIFY_SOCKET that the test reads.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// Not t.TempDir: socket paths must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "frl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifySocket{path: filepath.Join(dir, "notify.sock"), msgs: make(chan string, 16)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

func (n *notifySocket) next(t *testing.T, p *testenv.Proc) string {
	t.Helper()
	select {
	case m := <-n.msgs:
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("no sd_notify message from %s within 20s; log:\n%s", p.Name, testenv.Tail(p.Out.String(), 4<<10))
	}
	return ""
}

func (n *notifySocket) expect(t *testing.T, p *testenv.Proc, want string) {
	t.Helper()
	if got := n.next(t, p); got != want {
		t.Errorf("sd_notify message %q, want %q", got, want)
	}
}

// TestE2EReloadKeepsQueuedWork reloads with work running and queued, one
// deployment at a time: production runs, staging waits, then a newer push
// to production waits. The new file renames staging to qa. After the
// reload the running deployment finishes, the waiting production push
// deploys, and the staging request, whose environment the file no longer
// has, fails saying so instead of waiting forever.
func TestE2EReloadKeepsQueuedWork(t *testing.T) {
	f := newE2E(t, e2eOptions{envs: map[string]string{"production": "main", "staging": "develop"}})
	f.rewriteConfig("shutdown_grace: 1m", "shutdown_grace: 1m\n  max_concurrent_deploys: 1")
	notify := listenNotify(t)
	p := f.start("fraisier serve", []string{"NOTIFY_SOCKET=" + notify.path}, f.bin, "serve")
	waitReady(t, p, &http.Client{Timeout: 2 * time.Second}, f.base())
	notify.expect(t, p, "READY=1")

	f.hold()
	m := f.push("main", 1)
	running := f.hook("main", "", m[0]).Deployments[0].DeploymentID
	testenv.WaitFor(t, "the install of main-1 to start", 30*time.Second, func() bool { return f.installStarted(version("main", 1)) })
	d := f.push("develop", 1)
	staging := f.hook("develop", "", d[0]).Deployments[0].DeploymentID
	m2 := f.push("main", 1)
	waiting := f.hook("main", m[0], m2[0]).Deployments[0].DeploymentID

	f.rewriteConfig("      staging:\n", "      qa:\n")
	f.hangup(p, notify, "configuration reloaded")
	f.release()
	f.waitDeployed("production", m2[0], version("main", 2), 60*time.Second)
	for _, c := range []struct {
		name   string
		id     int64
		status store.Status
		sha    string
		err    string
	}{
		{"running at the reload", running, store.StatusSucceeded, m[0], ""},
		{"production, queued at the reload", waiting, store.StatusSucceeded, m2[0], ""},
		{"staging, removed by the reload", staging, store.StatusFailed, d[0], "not in the configuration any more"},
	} {
		got := f.deployment(c.id)
		if got.Status != c.status || got.NewSHA != c.sha || !strings.Contains(got.Error, c.err) {
			t.Errorf("%s: %s of %s (%q), want %s of %s (%q)", c.name, got.Status, got.NewSHA, got.Error, c.status, c.sha, c.err)
		}
	}
}
