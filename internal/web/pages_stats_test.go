package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/web"
)

// dashboard serves web.New over db with the configuration text and the
// timers, signed in with readToken: it answers GET path's status and
// body.
func dashboard(t *testing.T, db *store.DB, yaml string, timers *web.Timers) func(path string) (int, string) {
	t.Helper()
	cfg, err := config.Parse("fraises.yaml", []byte(yaml), config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := web.New(web.Options{Store: db, Config: func() *config.Config { return cfg }, ReadToken: []byte(readToken), Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(hs.URL+"/ui/login", url.Values{"token": {readToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return func(path string) (int, string) {
		t.Helper()
		resp, err := c.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Request.URL.Path == "/ui/login" {
			t.Fatalf("GET %s: not signed in", path)
		}
		return resp.StatusCode, string(b)
	}
}

// openAt opens a fresh store whose clock reads *now.
func openAt(t *testing.T, now *time.Time, mu *sync.Mutex) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(t.TempDir(), "state.db"), Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return *now
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var (
	svgRe  = regexp.MustCompile(`<svg [^>]*>`)
	descRe = regexp.MustCompile(`<desc id="([^"]+)">([^<]*)</desc>`)
)

// TestStatsChartsDeploysPerDay: deployments of known outcomes on known
// days show in the per-day charts and their table, all together and per
// environment, and the filter form narrows them to one environment.
// Every chart is an image with a title and a description that says its
// figures in words.
func TestStatsChartsDeploysPerDay(t *testing.T) {
	var mu sync.Mutex
	today := time.Now().UTC().Truncate(24 * time.Hour)
	now := today.AddDate(0, 0, -3).Add(10 * time.Hour)
	db := openAt(t, &now, &mu)
	ctx := context.Background()
	prod, staging := store.Target{Fraise: "shop", Environment: "production"}, store.Target{Fraise: "shop", Environment: "staging"}
	record := func(daysAgo int, tg store.Target, status store.Status, took time.Duration) {
		mu.Lock()
		now = today.AddDate(0, 0, -daysAgo).Add(10 * time.Hour)
		mu.Unlock()
		id, err := db.StartDeployment(ctx, store.Deployment{Target: tg, Trigger: store.TriggerCLI, Actor: "bot", NewSHA: shaOK})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		now = now.Add(took)
		mu.Unlock()
		if err := db.FinishDeployment(ctx, id, store.Finish{Status: status}); err != nil {
			t.Fatal(err)
		}
	}
	// Three days ago: 2 succeeded (10 s, 30 s) and one rolled back on
	// production; yesterday one failure on staging; today a skipped one.
	record(3, prod, store.StatusSucceeded, 10*time.Second)
	record(3, prod, store.StatusSucceeded, 30*time.Second)
	record(3, prod, store.StatusRolledBack, 20*time.Second)
	record(1, staging, store.StatusFailed, 5*time.Second)
	record(0, prod, store.StatusSkipped, time.Second)
	mu.Lock()
	now = time.Now().UTC()
	mu.Unlock()
	get := dashboard(t, db, webConfig, nil)

	status, body := get("/ui/stats")
	if status != http.StatusOK {
		t.Fatalf("GET /ui/stats: %d %s", status, body)
	}
	day := func(daysAgo int) string { return today.AddDate(0, 0, -daysAgo).Format("2006-01-02") }
	for _, w := range []string{
		`<h2 id="daily">Deploys per day</h2>`,
		// All together, in words and in the table, without durations.
		"5 in all, 2 succeeded, 2 failed, rolled back or interrupted, 1 skipped or superseded. The most in a day: 3, on " + day(3) + ".",
		"<tr><td>" + day(3) + "</td><td>2</td><td>1</td><td>0</td></tr>",
		"<tr><td>" + day(1) + "</td><td>0</td><td>1</td><td>0</td></tr>",
		"<tr><td>" + day(0) + "</td><td>0</td><td>0</td><td>1</td></tr>",
		"Choose a fraise or an environment to see its median and p95 duration per day.",
		// Each environment, with a link to show it alone.
		`<a href="/ui/stats?environment=staging&amp;fraise=shop">shop/staging</a>`,
		"1 in all, 0 succeeded, 1 failed, rolled back or interrupted, 0 skipped or superseded.",
		`<option value="staging" >staging</option>`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("the stats page lacks %q", w)
		}
	}
	checkCharts(t, body, 7) // all together, each environment, and the four bar charts
	if n := strings.Count(body, "<figure id=\"daily-"); n != 3 || strings.Contains(body, "Median and p95 duration per day") {
		t.Errorf("%d per-day figures, want all together and two environments, without durations", n)
	}

	// One fraise: each environment in full, with its durations. Median
	// and p95 are the upper bounds of histogram buckets: exact to within
	// 2%.
	status, body = get("/ui/stats?fraise=shop")
	if status != http.StatusOK {
		t.Fatalf("one fraise: %d", status)
	}
	dayRow(t, body, day(3), "2", "1", "0", 20*time.Second, 30*time.Second)
	for _, w := range []string{"Median and p95 duration per day, shop/production", "Median and p95 duration per day, shop/staging",
		"over the 1 day with deployments; p95 up to 3"} {
		if !strings.Contains(body, w) {
			t.Errorf("the page of fraise shop lacks %q", w)
		}
	}
	checkCharts(t, body, 8)

	status, body = get("/ui/stats?fraise=shop&environment=staging")
	if status != http.StatusOK {
		t.Fatalf("filtered: %d", status)
	}
	dayRow(t, body, day(1), "0", "1", "0", 5*time.Second, 5*time.Second)
	for _, w := range []string{`<option value="staging" selected>staging</option>`, `<option value="shop" selected>shop</option>`} {
		if !strings.Contains(body, w) {
			t.Errorf("the page filtered to shop/staging lacks %q", w)
		}
	}
	if strings.Contains(body, "shop/production") || strings.Contains(body, "<td>"+day(3)+"</td><td>2</td>") {
		t.Errorf("the page filtered to shop/staging shows production")
	}
	if _, body = get("/ui/stats?fraise=nosuch"); !strings.Contains(body, "No deployment in the last 30 days.") || strings.Contains(body, `id="daily"`) {
		t.Errorf("an unknown fraise: the page shows charts or lacks the empty message")
	}
}

// checkCharts: every SVG is an image named by a title and described by
// a text that is on the page; at least min of them.
func checkCharts(t *testing.T, body string, min int) {
	t.Helper()
	descs := map[string]string{}
	for _, m := range descRe.FindAllStringSubmatch(body, -1) {
		descs[m[1]] = m[2]
	}
	svgs := svgRe.FindAllString(body, -1)
	if len(svgs) < min {
		t.Errorf("%d charts, want at least %d", len(svgs), min)
	}
	for _, s := range svgs {
		if !strings.Contains(s, `role="img"`) {
			t.Errorf("chart %s is not an image to assistive technology", s)
		}
		m := regexp.MustCompile(`aria-labelledby="([^"]+)"`).FindStringSubmatch(s)
		if m == nil {
			t.Errorf("chart %s has no label", s)
			continue
		}
		described := false
		for _, id := range strings.Fields(m[1]) {
			if !strings.Contains(body, fmt.Sprintf(`id="%s"`, id)) {
				t.Errorf("chart %s names %s, which is not on the page", s, id)
			}
			if strings.TrimSpace(descs[id]) != "" {
				described = true
			}
		}
		if !described {
			t.Errorf("chart %s has no text description", s)
		}
	}
}

// dayRow checks the first row of day in a per-day table: the counts
// exactly, the median and p95 to within 2% above.
func dayRow(t *testing.T, body, day, ok, bad, other string, median, p95 time.Duration) {
	t.Helper()
	m := regexp.MustCompile(`<tr><td>` + day + `</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>`).FindStringSubmatch(body)
	if m == nil {
		t.Errorf("no row for %s in a table of figures per day", day)
		return
	}
	if m[1] != ok || m[2] != bad || m[3] != other {
		t.Errorf("%s: %s succeeded, %s failed, %s other; want %s, %s, %s", day, m[1], m[2], m[3], ok, bad, other)
	}
	for i, want := range []time.Duration{median, p95} {
		got, err := time.ParseDuration(m[4+i])
		if err != nil || got < want || float64(got) > 1.02*float64(want) {
			t.Errorf("%s: duration %q, want %s to +2%%", day, m[4+i], want)
		}
	}
}
