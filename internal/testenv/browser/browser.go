package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// Path is where Debian's chromium package installs the browser.
const Path = "/usr/bin/chromium"

// errUnavailable reports that this machine has no Chromium to run.
var errUnavailable = errors.New("chromium unavailable")

// startTimeout bounds Chromium's start; a browser that has not answered by
// then is not going to.
const startTimeout = 60 * time.Second

// Browser is one running headless Chromium.
type Browser struct {
	ctx    context.Context // chromedp's browser context: pages derive from it
	cancel context.CancelFunc
	alloc  context.CancelFunc // kills the process and waits for it
	guard  *guard
	dir    string // the profile; every Chromium process names it

	// Started is how long Chromium took to start and answer.
	Started time.Duration

	closeOnce sync.Once
}

// Start starts a browser for t, closed when t ends. A machine without
// Chromium skips t, or fails it under FRAISIER_TEST_STRICT=1.
func Start(t testing.TB) *Browser {
	t.Helper()
	b, err := launch(Path, t.TempDir())
	if errors.Is(err, errUnavailable) {
		testenv.Unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Shared is one browser for a whole test binary, for packages with many
// browser tests: the zero value is ready, Chromium starts on the first Get,
// and each test still gets its own pages with their own cookies. Close it
// from TestMain.
type Shared struct {
	once sync.Once
	dir  string
	b    *Browser
	err  error
}

// Get returns the shared browser, starting it on first use. A machine
// without Chromium skips t, or fails it under FRAISIER_TEST_STRICT=1.
func (s *Shared) Get(t testing.TB) *Browser {
	t.Helper()
	s.once.Do(func() {
		s.dir, s.err = os.MkdirTemp("", "fraisier-browser-")
		if s.err == nil {
			s.b, s.err = launch(Path, s.dir)
		}
	})
	if errors.Is(s.err, errUnavailable) {
		testenv.Unavailable(t, "%v", s.err)
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.b
}

// Close closes the browser, if it started, and removes its profile.
func (s *Shared) Close() {
	if s.b != nil {
		s.b.Close()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// flags are Chromium's command line: headless, a fresh profile in dir, and
// no way out of the machine. Each background service that would call
// Google is off (this machine's network refuses them, many at a time); any
// request a page makes for a non-loopback host goes to the guard proxy
// (Chromium never proxies loopback), and the host resolver answers "not
// found" for every name but localhost, so nothing is looked up either.
func flags(path, dir, guardAddr string) []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("window-size", "1280,800"),
		chromedp.Flag("force-device-scale-factor", "1"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,NetworkTimeServiceQuerying,AutofillServerCommunication"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		// Live parts (SSE, timers) must run at full speed in a tab nobody sees.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		// The network guards.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("proxy-server", "http://"+guardAddr),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.Flag("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"),
	}
	if os.Geteuid() == 0 {
		// Chromium's sandbox will not start as root (it cannot drop to an
		// unprivileged user), and the tests run as root on CI; the pages it
		// loads are the tests' own loopback pages, not hostile content.
		opts = append(opts, chromedp.Flag("no-sandbox", true))
	}
	return opts
}

// launch starts the Chromium at path with its profile in dir and waits
// until it answers. The DevTools protocol runs over a pipe (chromedp's
// default), so the browser opens no debugging port another local user
// could attach to.
func launch(path, dir string) (*Browser, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %s missing (run scripts/test-deps.sh, or apt-get install chromium)", errUnavailable, path)
	}
	g, err := startGuard()
	if err != nil {
		return nil, err
	}
	// Chromium's crash handlers keep their database under the
	// configuration directory: in the profile, it is thrown away with it
	// and names dir on their command line.
	opts := append(flags(path, dir, g.addr()), chromedp.Env("XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_CACHE_HOME="+filepath.Join(dir, "cache")))
	allocCtx, alloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: ctx, cancel: cancel, alloc: alloc, guard: g, dir: dir}
	start := time.Now()
	// The first Do starts the browser and lives as long as ctx, so it gets
	// no timeout of its own: a timer ends a start that hangs instead.
	timer := time.AfterFunc(startTimeout, cancel)
	err = chromedp.Do(ctx)
	stopped := timer.Stop()
	if err != nil || !stopped {
		b.Close()
		if err == nil {
			err = context.DeadlineExceeded
		}
		return nil, fmt.Errorf("browser: start %s: %w", path, err)
	}
	b.Started = time.Since(start)
	return b, nil
}

// Close stops the browser and kills every process left that uses its
// profile (renderers, the zygote, the GPU and network services can outlive
// the main process for a moment). It is safe to call twice.
func (b *Browser) Close() {
	b.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		_ = chromedp.Cancel(ctx)
		cancel()
		b.cancel()
		b.alloc()
		killLeftovers(b.dir)
		b.guard.close()
	})
}

// Blocked returns the requests for outside hosts that the network guard
// refused, in order ("CONNECT example.com:443", "GET http://192.0.2.1/x").
// A dashboard page should make none.
func (b *Browser) Blocked() []string { return b.guard.requests() }

// killLeftovers kills the processes whose command line names the profile
// dir, looking again until three passes in a row find none: a child can
// fork while its parent dies.
func killLeftovers(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for quiet := 0; quiet < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pids := Processes(dir)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// Processes lists the running processes whose command line names dir:
// the Chromium processes of the browser with that profile (its children
// with --user-data-dir=dir, its crash handlers with their database in
// dir). Tests use it to check that none is left.
func Processes(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && mentions(cmdline, []byte(dir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mentions reports whether cmdline holds the path dir or a path under it.
// Chromium's child processes rewrite their command line into one string
// of space-separated arguments, so a space ends a path as well as a NUL.
func mentions(cmdline, dir []byte) bool {
	for rest := cmdline; ; {
		i := bytes.Index(rest, dir)
		if i < 0 {
			return false
		}
		rest = rest[i+len(dir):]
		if len(rest) == 0 || rest[0] == 0 || rest[0] == ' ' || rest[0] == '/' {
			return true
		}
	}
}

// Dir is the browser's profile directory, which every one of its
// processes names on its command line.
func (b *Browser) Dir() string { return b.dir }
