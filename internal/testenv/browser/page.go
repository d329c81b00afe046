package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds each page action; the machines the tests run on
// are small and shared.
const DefaultTimeout = 15 * time.Second

// Page is one tab in its own browser context (its own cookies and
// storage), closed when its test ends. Its helpers fail the test on error;
// Run is there for anything they do not cover.
type Page struct {
	t   testing.TB
	ctx context.Context

	// Timeout bounds each action; DefaultTimeout unless changed.
	Timeout time.Duration

	mu      sync.Mutex
	outside []string
}

// Page opens a new tab for t in a fresh browser context, closed when t ends.
func (b *Browser) Page(t testing.TB) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("browser: open a tab: %v", err)
	}
	p := &Page{t: t, ctx: ctx, Timeout: DefaultTimeout}
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range requests {
			if err != nil {
				return // the tab closed
			}
			if ev.Request != nil && !loopback(ev.Request.URL) {
				p.mu.Lock()
				p.outside = append(p.outside, ev.Request.URL)
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

// Outside returns the URLs of the requests this tab made for anything but
// a loopback address, in order; the guard refused each. Unlike
// Browser.Blocked it leaves out Chromium's own background calls, so a test
// can require that a page loads nothing from outside.
func (p *Page) Outside() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.outside...)
}

// loopback reports whether a request for rawURL stays on this machine:
// a loopback host, or a scheme with no network (about:, data:, blob:).
func loopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return u.Scheme == "about" || u.Scheme == "data" || u.Scheme == "blob"
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// Run runs chromedp actions in the tab under the page's timeout.
func (p *Page) Run(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Context is the tab's chromedp context, for chromedp.Run and events.
func (p *Page) Context() context.Context { return p.ctx }

// Navigate loads url and waits for the page's load event.
func (p *Page) Navigate(url string) {
	p.t.Helper()
	if err := p.Run(chromedp.Navigate(url)); err != nil {
		p.t.Fatalf("browser: navigate to %s: %v", url, err)
	}
}

// find is a JavaScript expression for the element a test names: by id
// first, then by the text of its label, aria-label, or for buttons and
// links by their text or value, whitespace collapsed.
func find(name string) chromedp.JSPath {
	q, _ := json.Marshal(name)
	return chromedp.JSPath(`(() => {
	const want = ` + string(q) + `;
	const norm = s => (s || "").replace(/\s+/g, " ").trim();
	const byID = document.getElementById(want);
	if (byID) return byID;
	for (const l of document.querySelectorAll("label"))
		if (norm(l.textContent) === want && l.control) return l.control;
	for (const e of document.querySelectorAll("input, select, textarea, button, a, [role=button], [aria-label]"))
		if (norm(e.getAttribute("aria-label")) === want) return e;
	for (const e of document.querySelectorAll("button, a, [role=button], input[type=submit], input[type=button]"))
		if (norm(e.textContent) === want || norm(e.value) === want) return e;
	return null;
})()`)
}

// Fill types value into the field with that id or label, replacing what
// it held, as a user would (key events, so the page's input handlers run).
func (p *Page) Fill(field, value string) {
	p.t.Helper()
	sel := find(field)
	if err := p.Run(chromedp.Clear(sel), chromedp.SendKeys(sel, value)); err != nil {
		p.t.Fatalf("browser: fill %q: %v", field, err)
	}
}

// Click clicks the element with that id, label, or button or link text.
// It does not wait for a navigation it causes: follow it with WaitText.
func (p *Page) Click(name string) {
	p.t.Helper()
	if err := p.Run(chromedp.Click(find(name))); err != nil {
		p.t.Fatalf("browser: click %q: %v", name, err)
	}
}

// Text returns the rendered text of the first element matching the CSS
// selector, waiting for it to exist.
func (p *Page) Text(selector string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(selector)))
	if err != nil {
		p.t.Fatalf("browser: text of %s: %v", selector, err)
	}
	return s
}

// WaitText waits until the first element matching the CSS selector shows
// text, across navigations (a form submitted, a page reloaded), and fails
// the test with what it showed last if it never does.
func (p *Page) WaitText(selector, text string) {
	p.t.Helper()
	qs, _ := json.Marshal(selector)
	expr := `(() => { const e = document.querySelector(` + string(qs) + `); return e ? e.innerText : null })()`
	deadline := time.Now().Add(p.Timeout)
	var last string
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(p.ctx, time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		cancel()
		switch {
		case err != nil:
			lastErr = err // a navigation in progress: try again
		case got != nil && strings.Contains(*got, text):
			return
		case got != nil:
			last, lastErr = *got, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	p.t.Fatalf("browser: %s never showed %q in %v; it showed %q (last error: %v)", selector, text, p.Timeout, last, lastErr)
}

// URL is the tab's current address.
func (p *Page) URL() string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		p.t.Fatalf("browser: location: %v", err)
	}
	return u
}

// Cookies returns the cookies the tab would send to its current address,
// HttpOnly ones included.
func (p *Page) Cookies() []*network.Cookie {
	p.t.Helper()
	var cookies []*network.Cookie
	err := p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
		cookies = r.Cookies
		return err
	}))
	if err != nil {
		p.t.Fatalf("browser: cookies: %v", err)
	}
	return cookies
}

// Screenshot writes a PNG of the whole page, not only the window, to path
// (its directory made if missing) and returns its width and height in
// pixels.
func (p *Page) Screenshot(path string) (width, height int) {
	p.t.Helper()
	var data []byte
	err := p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
		if err != nil {
			return fmt.Errorf("layout metrics: %w", err)
		}
		size := m.CSSContentSize
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: ptr(true),
			FromSurface:           ptr(true),
			Clip:                  &page.Viewport{X: 0, Y: 0, Width: size.Width, Height: size.Height, Scale: 1},
		})
		data = r.Data
		return err
	}))
	if err != nil {
		p.t.Fatalf("browser: screenshot: %v", err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		p.t.Fatalf("browser: screenshot is not a PNG: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatalf("browser: screenshot: %v", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		p.t.Fatalf("browser: screenshot: %v", err)
	}
	return cfg.Width, cfg.Height
}

func ptr[T any](v T) *T { return &v }
