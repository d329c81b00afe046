package browser

import (
	"context"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Viewport makes the tab a device width by height CSS pixels, a phone
// when mobile (a 390x844 one, say): media queries, the viewport meta tag
// and screenshots follow.
func (p *Page) Viewport(width, height int, mobile bool) {
	p.t.Helper()
	err := p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: int64(width), Height: int64(height), DeviceScaleFactor: 1, Mobile: mobile,
		})
		return err
	}))
	if err != nil {
		p.t.Fatalf("browser: viewport %dx%d: %v", width, height, err)
	}
}

// ColorScheme makes the page see prefers-color-scheme: scheme ("light" or
// "dark"), to check both of a page's themes.
func (p *Page) ColorScheme(scheme string) {
	p.t.Helper()
	err := p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
	if err != nil {
		p.t.Fatalf("browser: color scheme %s: %v", scheme, err)
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value
// decoded as T (a promise is awaited).
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}
