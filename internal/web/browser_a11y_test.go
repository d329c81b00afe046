package web_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/fraiseql/fraisier/internal/testenv/browser"
)

// auditScript checks, in the page, what a reader with a phone, a screen
// reader or a keyboard needs, and returns one line per problem:
//   - the page does not scroll sideways (wide tables scroll in main);
//   - text has a contrast ratio of at least 4.5 against its background
//     (WCAG AA), the background found by walking up to the first opaque
//     ancestor;
//   - every form field has a label, every SVG chart a text alternative;
//   - the document has a language, a title and a main landmark.
const auditScript = `(() => {
  const out = [];
  const de = document.documentElement;
  if (de.scrollWidth > window.innerWidth + 1) out.push("scrolls sideways: " + de.scrollWidth + " > " + window.innerWidth);
  if (!de.lang) out.push("no lang");
  if (!document.title) out.push("no title");
  if (!document.querySelector("main")) out.push("no main landmark");
  const rgb = s => { const m = s.match(/[\d.]+/g) || []; return m.map(Number); };
  const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); }); return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const bgOf = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c; } return [255, 255, 255]; };
  for (const el of document.body.querySelectorAll("*")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest("svg") || el.getClientRects().length === 0) continue;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden" || st.display === "none") continue;
    const fg = rgb(st.color), bg = bgOf(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) out.push("contrast " + ratio.toFixed(2) + " of <" + el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + "> " + JSON.stringify(el.textContent.trim().slice(0, 40)) + ": " + st.color + " on rgb(" + bg.join(", ") + ")");
  }
  for (const f of document.querySelectorAll("input:not([type=hidden]):not([type=submit]), select, textarea")) {
    if (!(f.labels && f.labels.length) && !f.getAttribute("aria-label") && !f.getAttribute("aria-labelledby")) out.push("unlabelled field " + (f.name || f.id));
  }
  for (const s of document.querySelectorAll("svg")) {
    if (!s.querySelector("desc, title") && !s.getAttribute("aria-label") && !s.getAttribute("aria-labelledby") && s.getAttribute("aria-hidden") !== "true") out.push("svg without a text alternative");
  }
  return out;
})()`

// TestDashboardOnAPhoneInBothThemes reads every page on a phone-sized
// screen in the light and the dark theme, and signs in with the keyboard
// alone: no page scrolls sideways, text keeps its contrast, every field is
// labelled, and the focused control shows it has the focus.
func TestDashboardOnAPhoneInBothThemes(t *testing.T) {
	f := newFixture(t)
	p := browser.Start(t).Page(t)
	p.Viewport(390, 844, true)

	// Keyboard only: Tab reaches the token field (past the header's
	// link), typing fills it, Enter submits.
	p.Navigate(f.url + "/ui/login")
	for presses := 0; browser.Eval[string](p, "document.activeElement.name || ''") != "token"; presses++ {
		if presses == 5 {
			t.Fatal("5 presses of Tab never reach the token field")
		}
		if err := p.Run(chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
	}
	if outline := browser.Eval[string](p, "getComputedStyle(document.activeElement).outlineStyle"); outline == "none" {
		t.Error("the focused token field shows no outline")
	}
	if err := p.Run(chromedp.KeyEvent(f.tokens["reader"]), chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	p.WaitText("#targets", "production")

	pages := []string{"/ui/", fmt.Sprintf("/ui/deployments/%d", f.ok), fmt.Sprintf("/ui/deployments/%d", f.failed),
		"/ui/history", "/ui/webhooks", "/ui/stats", "/ui/jobs"}
	for _, scheme := range []string{"light", "dark"} {
		p.ColorScheme(scheme)
		for _, path := range pages {
			p.Navigate(f.url + path)
			p.WaitText("main", "")
			if problems := browser.Eval[[]string](p, auditScript); len(problems) > 0 {
				t.Errorf("%s, %s theme, 390 px wide:\n  %s", path, scheme, strings.Join(problems, "\n  "))
			}
		}
	}
}
