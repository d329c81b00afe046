package server_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/testenv"
)

// shortTempDir is a temporary directory for the test, short enough for
// socket paths (108 bytes), which t.TempDir may exceed.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fe2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// uiConfig writes minimalConfig's configuration under dir with a server
// section (YAML lines under server:) and an API token, which signs in to
// the dashboard; it returns the environment and the token.
func uiConfig(t *testing.T, dir, server string) ([]string, string) {
	t.Helper()
	env := minimalConfig(t, dir)
	token := testenv.RandomHex(16)
	f, err := os.OpenFile(filepath.Join(dir, "fraises.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "server:\n  api_token: ${E2E_API_TOKEN}\n%s", indentLines(server, "  ")); err != nil {
		t.Fatal(err)
	}
	return append(env, "E2E_API_TOKEN="+token), token
}

func indentLines(s, pad string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		b.WriteString(pad + l)
	}
	return b.String()
}

// finishedDeployment records a finished deployment of hello/production
// with one step whose output is line, in the state database serve will
// open, and returns its id.
func finishedDeployment(t *testing.T, dir, line string) int64 {
	t.Helper()
	ctx := t.Context()
	db, err := store.Open(ctx, store.Options{Path: filepath.Join(dir, "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id, err := db.StartDeployment(ctx, store.Deployment{Target: store.Target{Fraise: "hello", Environment: "production"},
		Trigger: store.TriggerCLI, Actor: "e2e", RequestedRef: "main", NewSHA: strings.Repeat("cd", 20)})
	if err != nil {
		t.Fatal(err)
	}
	step, err := db.StartStep(ctx, id, "install")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AppendStepOutput(ctx, step, []byte(line+"\n")); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := db.FinishStep(ctx, step, "succeeded", &zero, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishDeployment(ctx, id, store.Finish{Status: store.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	return id
}

// answer is a response's status, content type and body (up to 64 KiB).
type answer struct {
	code        int
	contentType string
	body        string
	location    string
}

func do(t *testing.T, c *http.Client, method, url string, form url.Values, header http.Header) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b), resp.Header.Get("Location")}
}

// TestE2EDashboardOnItsOwnAddress: with server.ui_listen, the real
// fraisier serve answers the dashboard there, and only there: its sign-in,
// its pages and its live-log stream answer on ui_listen, and on the main
// listener /ui/ answers 404 with a hint, even with the session cookie;
// the webhook, API and health routes answer on the main listener only.
// SIGTERM closes both.
func TestE2EDashboardOnItsOwnAddress(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	dir := shortTempDir(t)
	mainAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	uiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	env, token := uiConfig(t, dir, fmt.Sprintf("listen: %s\nui_listen: %s\n", mainAddr, uiAddr))
	id := finishedDeployment(t, dir, "installed on the ui listener")

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Cookies do not tell ports apart: the session cookie set by ui_listen
	// goes to the main listener too.
	c := &http.Client{Timeout: 5 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	p := testenv.StartProc(t, "fraisier serve (ui_listen)", env, bin, "serve")
	main, ui := "http://"+mainAddr, "http://"+uiAddr
	waitReady(t, p, c, main)
	testenv.WaitFor(t, "the listening line", 5*time.Second, func() bool {
		return strings.Contains(p.Out.String(), `"dashboard":"`+uiAddr+`"`)
	})

	if a := do(t, c, "GET", ui+"/ui/login", nil, nil); a.code != http.StatusOK || !strings.Contains(a.body, `action="/ui/login"`) {
		t.Fatalf("GET /ui/login on ui_listen: %d %.200s, want the sign-in form", a.code, a.body)
	}
	if a := do(t, c, "GET", ui+"/", nil, nil); a.code != http.StatusSeeOther || a.location != "/ui/" {
		t.Errorf("GET / on ui_listen: %d to %q, want 303 to /ui/", a.code, a.location)
	}
	a := do(t, c, "POST", ui+"/ui/login", url.Values{"token": {token}}, nil)
	if a.code != http.StatusSeeOther || a.location != "/ui/" {
		t.Fatalf("sign in on ui_listen: %d to %q %.300s, want 303 to /ui/", a.code, a.location, a.body)
	}
	if a := do(t, c, "GET", ui+"/ui/", nil, nil); a.code != http.StatusOK || !strings.Contains(a.body, "hello") {
		t.Errorf("GET /ui/ on ui_listen, signed in: %d %.300s, want the overview", a.code, a.body)
	}
	logURL := fmt.Sprintf("/ui/deployments/%d/log", id)
	if a := do(t, c, "GET", ui+logURL, nil, nil); a.code != http.StatusOK || !strings.HasPrefix(a.contentType, "text/event-stream") ||
		!strings.Contains(a.body, "installed on the ui listener") {
		t.Errorf("GET %s on ui_listen: %d %s %.300s, want the stream with the step's output", logURL, a.code, a.contentType, a.body)
	}

	// The main listener: no dashboard, even for a signed-in browser.
	for _, path := range []string{"/ui/", "/ui/login", "/ui/static/style.css", logURL} {
		a := do(t, c, "GET", main+path, nil, nil)
		if a.code != http.StatusNotFound || !strings.Contains(a.body, "server.ui_listen") || strings.Contains(a.body, uiAddr) {
			t.Errorf("GET %s on listen: %d %.200s, want 404 naming server.ui_listen but not its address", path, a.code, a.body)
		}
	}
	if a := do(t, c, "POST", main+"/ui/login", url.Values{"token": {token}}, nil); a.code != http.StatusNotFound {
		t.Errorf("POST /ui/login on listen: %d, want 404", a.code)
	}
	// The rest: on the main listener only.
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	if a := do(t, c, "GET", main+"/api/deployments", nil, bearer); a.code != http.StatusOK {
		t.Errorf("GET /api/deployments on listen: %d %.200s, want 200", a.code, a.body)
	}
	hook := http.Header{"X-Github-Event": {"ping"}, "X-Github-Delivery": {"e2e-ui-1"}, "Content-Type": {"application/json"}}
	if a := do(t, c, "POST", main+"/webhook", url.Values{}, hook); a.code == http.StatusNotFound {
		t.Errorf("POST /webhook on listen: 404, want the intake's answer")
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/webhook"}, {"POST", "/webhook/github"}, {"GET", "/api/deployments"}, {"POST", "/api/rollback"},
		{"GET", "/health"}, {"GET", "/ready"}, {"GET", "/metrics"}, {"GET", "/providers"}, {"GET", fmt.Sprintf("/api/deployments/%d/log", id)},
	} {
		if a := do(t, c, r.method, ui+r.path, url.Values{}, bearer); a.code != http.StatusNotFound {
			t.Errorf("%s %s on ui_listen: %d %.200s, want 404", r.method, r.path, a.code, a.body)
		}
	}

	// SIGTERM, with a connection held open on each listener.
	held := make([]net.Conn, 0, 2)
	for _, addr := range []string{mainAddr, uiAddr} {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, p.Out.String())
	}
	for i, addr := range []string{mainAddr, uiAddr} {
		held[i].SetReadDeadline(time.Now().Add(2 * time.Second))
		// Closed, by the server (EOF) or by the kernel as the process
		// exits (reset); still open, the read would time out.
		if _, err := held[i].Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("connection to %s after exit: %v, want it closed", addr, err)
		}
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts after fraisier serve exited", addr)
		}
	}
}

// TestE2EDashboardPlainHTTPWarning: ui_listen on an address other hosts
// reach serves, and serve's log warns that the sign-in travels in plain
// HTTP, unless server.trusted_proxies says a proxy (which may terminate
// TLS) stands in front; on loopback it does not warn.
func TestE2EDashboardPlainHTTPWarning(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	cases := []struct {
		name, host, extra string
		warns             bool
	}{
		{"wildcard", "0.0.0.0", "", true},
		{"wildcard behind a proxy", "0.0.0.0", "trusted_proxies: [127.0.0.1/32]\n", false},
		{"loopback", "127.0.0.1", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTempDir(t)
			mainAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			uiPort := testenv.FreePort(t)
			env, _ := uiConfig(t, dir, fmt.Sprintf("listen: %s\nui_listen: \"%s:%d\"\n%s", mainAddr, tc.host, uiPort, tc.extra))
			p := testenv.StartProc(t, "fraisier serve ("+tc.name+")", env, bin, "serve")
			c := &http.Client{Timeout: 5 * time.Second}
			waitReady(t, p, c, "http://"+mainAddr)
			if a := do(t, c, "GET", fmt.Sprintf("http://127.0.0.1:%d/ui/login", uiPort), nil, nil); a.code != http.StatusOK {
				t.Errorf("GET /ui/login on ui_listen: %d, want 200", a.code)
			}
			p.Signal(t, syscall.SIGTERM)
			if code := p.Wait(t, 15*time.Second); code != 0 {
				t.Errorf("exit code %d after SIGTERM, want 0", code)
			}
			out := p.Out.String()
			warned := strings.Contains(out, `"level":"WARN","msg":"server.ui_listen"`)
			if warned != tc.warns {
				t.Errorf("warned %v, want %v:\n%s", warned, tc.warns, out)
			}
			if warned {
				for _, says := range []string{"plain HTTP", "server.trusted_proxies", "loopback"} {
					if !strings.Contains(out, says) {
						t.Errorf("the warning does not say %q:\n%s", says, out)
					}
				}
			}
		})
	}
}

// TestE2EDashboardSocketActivated: with server.listen and server.ui_listen
// both systemd, serve takes the two sockets systemd passes, the one named
// ui for the dashboard, as a second .socket unit with
// FileDescriptorName=ui hands it; passed one socket only, it refuses to
// start and says how to name the second.
func TestE2EDashboardSocketActivated(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	tool := socketActivate(t)
	dir := shortTempDir(t)
	env, _ := uiConfig(t, dir, "listen: systemd\nui_listen: systemd\n")
	activate := func(fdnames string, addrs ...string) []string {
		argv := []string{tool}
		for _, a := range addrs {
			argv = append(argv, "-l", a)
		}
		if fdnames != "" {
			argv = append(argv, "--fdname="+fdnames)
		}
		for _, kv := range env {
			if strings.HasPrefix(kv, "FRAISIER_") || strings.HasPrefix(kv, "E2E_") {
				argv = append(argv, "-E", kv)
			}
		}
		return append(argv, bin, "serve")
	}
	c := &http.Client{Timeout: 5 * time.Second}

	t.Run("two sockets", func(t *testing.T) {
		mainAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		uiAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		// The dashboard's socket first: names, not order, tell them apart.
		p := testenv.StartProc(t, "fraisier serve (two sockets)", env, activate("ui:fraisier.socket", uiAddr, mainAddr)...)
		waitListening(t, p, uiAddr)
		waitReady(t, p, c, "http://"+mainAddr)
		if a := do(t, c, "GET", "http://"+uiAddr+"/ui/login", nil, nil); a.code != http.StatusOK || !strings.Contains(a.body, `action="/ui/login"`) {
			t.Errorf("GET /ui/login on the ui socket: %d %.200s, want the sign-in form", a.code, a.body)
		}
		if a := do(t, c, "GET", "http://"+mainAddr+"/ui/login", nil, nil); a.code != http.StatusNotFound {
			t.Errorf("GET /ui/login on the other socket: %d, want 404", a.code)
		}
		if a := do(t, c, "GET", "http://"+uiAddr+"/ready", nil, nil); a.code != http.StatusNotFound {
			t.Errorf("GET /ready on the ui socket: %d, want 404", a.code)
		}
		p.Signal(t, syscall.SIGTERM)
		if code := p.Wait(t, 15*time.Second); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0", code)
		}
	})
	t.Run("one socket", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := testenv.StartProc(t, "fraisier serve (one socket)", env, activate("", addr)...)
		waitListening(t, p, addr)
		if code := p.Wait(t, 15*time.Second); code == 0 {
			t.Fatal("fraisier serve with one socket for two systemd addresses exited 0")
		}
		if out := p.Out.String(); !strings.Contains(out, "FileDescriptorName=ui") {
			t.Errorf("output does not say how to name the dashboard's socket:\n%s", out)
		}
	})
}

// waitListening connects to addr once systemd-socket-activate listens
// there, which starts fraisier serve.
func waitListening(t *testing.T, p *testenv.Proc, addr string) {
	t.Helper()
	testenv.WaitFor(t, "systemd-socket-activate to listen on "+addr, 10*time.Second, func() bool {
		if p.Exited() {
			return true
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}
