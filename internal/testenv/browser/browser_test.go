package browser

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
)

// shared is this test binary's browser; TestBrowserLeavesNoProcess starts
// its own to watch it close.
var shared Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

// serve starts a loopback server with the pages a test needs, closed when
// the test ends.
func serve(t *testing.T, pages map[string]string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for path, html := range pages {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, html)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestLoginFormSetsCookieAndShowsNextPage(t *testing.T) {
	b := shared.Get(t)
	t.Logf("Chromium started in %v", b.Started)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>Sign in</title><form method="post" action="/login">
<label for="tok">API token</label> <input id="tok" name="token" type="password">
<button type="submit">Sign in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("token") != "s3cret-token" {
			http.Error(w, "wrong token", http.StatusUnauthorized)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "opaque", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /home", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("session"); err != nil || c.Value != "opaque" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		fmt.Fprint(w, `<!doctype html><title>Home</title><main><h1>Overview</h1><p id="who">Signed in as reader</p></main>`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	p := b.Page(t)
	p.Navigate(srv.URL + "/login")
	p.Fill("API token", "s3cret-token")
	p.Click("Sign in")
	p.WaitText("main", "Overview")
	if got := p.Text("#who"); got != "Signed in as reader" {
		t.Errorf("#who = %q", got)
	}
	if u := p.URL(); u != srv.URL+"/home" {
		t.Errorf("URL = %s, want %s/home", u, srv.URL)
	}
	cookies := p.Cookies()
	i := slices.IndexFunc(cookies, func(c *network.Cookie) bool { return c.Name == "session" })
	if i < 0 {
		t.Fatalf("no session cookie among %d", len(cookies))
	}
	if c := cookies[i]; !c.HTTPOnly || c.Value != "opaque" || c.SameSite != "Strict" {
		t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Strict", *c)
	}

	if out := p.Outside(); len(out) > 0 {
		t.Errorf("the pages asked for outside URLs %q", out)
	}

	// Each page has its own cookie jar: a second tab is not signed in.
	other := b.Page(t)
	other.Navigate(srv.URL + "/home")
	other.WaitText("body", "API token")
}

func TestWaitTextSeesScriptChanges(t *testing.T) {
	b := shared.Get(t)
	srv := serve(t, map[string]string{"/": `<!doctype html><p id="status">waiting</p>
<script>setTimeout(() => { document.getElementById("status").textContent = "deployed abc123" }, 300)</script>`})
	p := b.Page(t)
	p.Navigate(srv.URL)
	p.WaitText("#status", "deployed abc123")
}

// TestServerSentEventsArriveInOrder releases each event only after the page
// shows the one before, so the test sees them arrive one by one.
func TestServerSentEventsArriveInOrder(t *testing.T) {
	b := shared.Get(t)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><ol id="log"></ol><script>
const log = document.getElementById("log");
const es = new EventSource("/events");
es.onmessage = e => { const li = document.createElement("li"); li.textContent = e.data; log.append(li) };
es.addEventListener("end", () => { es.close(); document.getElementById("state").textContent = "ended" });
</script><p id="state">streaming</p>`)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprint(w, "retry: 60000\n\n")
		w.(http.Flusher).Flush()
		for i := 1; i <= 3; i++ {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			time.Sleep(50 * time.Millisecond)
			fmt.Fprintf(w, "id: %d\ndata: step %d done\n\n", i, i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "event: end\ndata: \n\n")
		w.(http.Flusher).Flush()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	p := b.Page(t)
	p.Navigate(srv.URL)
	want := []string{"step 1 done", "step 2 done", "step 3 done"}
	for i, line := range want {
		release <- struct{}{}
		p.WaitText("#log", line)
		if got := strings.Split(p.Text("#log"), "\n"); !slices.Equal(got, want[:i+1]) {
			t.Fatalf("after event %d the page shows %q, want %q", i+1, got, want[:i+1])
		}
	}
	p.WaitText("#state", "ended")
}

func TestScreenshotIsAFullPagePNG(t *testing.T) {
	b := shared.Get(t)
	srv := serve(t, map[string]string{"/": `<!doctype html><style>body{margin:0;background:#fff}
div{height:2000px;background:linear-gradient(#fde,#9cf)}</style><div>tall</div>`})
	p := b.Page(t)
	p.Navigate(srv.URL)
	path := filepath.Join(t.TempDir(), "shots", "page.png")
	w, h := p.Screenshot(path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ct := http.DetectContentType(data); ct != "image/png" {
		t.Errorf("content type %s, want image/png", ct)
	}
	img, format, err := image.Decode(bytes.NewReader(data))
	if err != nil || format != "png" {
		t.Fatalf("decode: %v (format %q)", err, format)
	}
	size := img.Bounds().Size()
	if size.X != 1280 || size.Y != 2000 || w != size.X || h != size.Y {
		t.Errorf("screenshot is %v (reported %dx%d), want 1280x2000: the window's width, the page's height", size, w, h)
	}
}

// TestNothingLeavesTheMachine loads a page that asks for outside resources
// by name, by address and over TLS: each load fails fast, and the guard
// proxy saw each request instead of the network.
func TestNothingLeavesTheMachine(t *testing.T) {
	b := shared.Get(t)
	srv := serve(t, map[string]string{"/": `<!doctype html><ul>
<li id="byname">loading</li><li id="byaddr">loading</li><li id="tls">loading</li></ul>
<img src="http://fraisier-test.example/logo.png" onload="byname.textContent='loaded'" onerror="byname.textContent='failed'">
<img src="http://192.0.2.1/x.png" onload="byaddr.textContent='loaded'" onerror="byaddr.textContent='failed'">
<script>fetch("https://example.com/").then(() => tls.textContent = "loaded", () => tls.textContent = "failed")</script>`})
	p := b.Page(t)
	start := time.Now()
	p.Navigate(srv.URL)
	for _, id := range []string{"#byname", "#byaddr", "#tls"} {
		p.WaitText(id, "failed")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("outside loads took %v to fail; they should fail at once", d)
	}
	blocked := b.Blocked()
	for _, host := range []string{"fraisier-test.example", "192.0.2.1", "example.com:443"} {
		if !slices.ContainsFunc(blocked, func(r string) bool { return strings.Contains(r, host) }) {
			t.Errorf("the guard never saw a request for %s; it saw %q", host, blocked)
		}
	}
	want := []string{"http://fraisier-test.example/logo.png", "http://192.0.2.1/x.png", "https://example.com/"}
	if got := p.Outside(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("the page's outside requests are %q, want %q", got, want)
	}
	t.Logf("the guard refused: %q", blocked)
}

func TestBrowserLeavesNoProcess(t *testing.T) {
	var dir string
	t.Run("browse", func(t *testing.T) {
		start := time.Now()
		b := Start(t)
		t.Logf("Chromium started in %v (Start returned after %v)", b.Started, time.Since(start))
		dir = b.Dir()
		srv := serve(t, map[string]string{"/": `<!doctype html><p>hello</p>`})
		b.Page(t).Navigate(srv.URL)
		pids := Processes(dir)
		if len(pids) < 2 {
			t.Fatalf("found %d Chromium processes for %s while it runs; the check cannot see them", len(pids), dir)
		}
		// The DevTools protocol runs over a pipe: no process of the browser
		// listens on a TCP port another local user could attach to.
		if ports := listening(t, pids); len(ports) > 0 {
			t.Errorf("Chromium listens on %q", ports)
		}
	})
	if t.Failed() || dir == "" {
		return
	}
	if pids := Processes(dir); len(pids) > 0 {
		t.Errorf("Chromium processes %v still run after the test", pids)
	}
}

func TestMissingChromiumIsUnavailable(t *testing.T) {
	_, err := launch(filepath.Join(t.TempDir(), "chromium"), t.TempDir())
	if !errors.Is(err, errUnavailable) || !strings.Contains(err.Error(), "scripts/test-deps.sh") {
		t.Errorf("launch without Chromium = %v, want errUnavailable with the fix", err)
	}
}

func TestPhoneViewportAndDarkScheme(t *testing.T) {
	b := shared.Get(t)
	srv := serve(t, map[string]string{"/": `<!doctype html><meta name="viewport" content="width=device-width">
<style>body{margin:0;background:#fff}@media (prefers-color-scheme: dark){body{background:#111}}</style><p>fraisier</p>`})
	p := b.Page(t)
	p.Viewport(390, 844, true)
	p.ColorScheme("dark")
	p.Navigate(srv.URL)
	if w := Eval[int](p, "window.innerWidth"); w != 390 {
		t.Errorf("innerWidth = %d, want 390", w)
	}
	if bg := Eval[string](p, "getComputedStyle(document.body).backgroundColor"); bg != "rgb(17, 17, 17)" {
		t.Errorf("dark background = %s, want rgb(17, 17, 17)", bg)
	}
	if w, h := p.Screenshot(filepath.Join(t.TempDir(), "phone.png")); w != 390 || h != 844 {
		t.Errorf("phone screenshot is %dx%d, want 390x844", w, h)
	}
	p.ColorScheme("light")
	if bg := Eval[string](p, "getComputedStyle(document.body).backgroundColor"); bg != "rgb(255, 255, 255)" {
		t.Errorf("light background = %s", bg)
	}
}

// listening returns the local addresses (hex, as /proc/net/tcp writes
// them) of the listening TCP sockets that the processes pids hold.
func listening(t *testing.T, pids []int) []string {
	t.Helper()
	listen := map[string]string{} // socket inode -> local address
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 9 && f[3] == "0A" { // TCP_LISTEN
				listen["socket:["+f[9]+"]"] = f[1]
			}
		}
	}
	var found []string
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if addr, ok := listen[link]; ok {
				found = append(found, fmt.Sprintf("pid %d: %s", pid, addr))
			}
		}
	}
	return found
}
