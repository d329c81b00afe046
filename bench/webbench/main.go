package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/fraiseql/fraisier/bench/grow"
	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

func main() {
	var (
		dir         = flag.String("dir", "bench/out", "where the generated databases live")
		deployments = flag.Int("deployments", 1_000_000, "deployments in the database")
		webhooks    = flag.Int("webhooks", 1_000_000, "webhook events in the database")
		runs        = flag.Int("runs", 30, "reads of each page")
		target      = flag.Duration("target", 50*time.Millisecond, "the server time each page must stay under (median)")
	)
	flag.Parse()
	if err := run(context.Background(), *dir, *deployments, *webhooks, *runs, *target); err != nil {
		fmt.Fprintln(os.Stderr, "webbench:", err)
		os.Exit(1)
	}
}

// readToken signs the benchmark in: server.api_token, so that the grown
// database, which other benchmarks share, is only read.
const readToken = "webbench-read-token-0123456789"

func run(ctx context.Context, dir string, deployments, webhooks, runs int, target time.Duration) error {
	path, err := grow.Cached(ctx, dir, deployments, webhooks)
	if err != nil {
		return err
	}
	cfg, err := config.Load("examples/fraises.yaml", config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return err
	}
	cfg.Server.APIToken = config.Secret(readToken)
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		return err
	}
	defer db.Close()
	srv, err := server.New(server.Options{Config: cfg, Store: db})
	if err != nil {
		return err
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if _, err := c.PostForm(hs.URL+"/ui/login", url.Values{"token": {readToken}}); err != nil {
		return err
	}
	newest, err := db.Deployments(ctx, store.DeploymentFilter{Limit: 51})
	if err != nil || len(newest) < 51 {
		return fmt.Errorf("read the newest deployments: %v", err)
	}
	pages := []struct{ name, path string }{
		{"static file (baseline)", "/ui/static/style.css"},
		{"overview", "/ui/"},
		{"overview fragment (refresh)", "/ui/fragment/overview"},
		{"deployment", fmt.Sprintf("/ui/deployments/%d", newest[0].ID)},
		{"history", "/ui/history"},
		{"history, second page", fmt.Sprintf("/ui/history?before=%d", newest[50].ID)},
		{"history, filtered", "/ui/history?fraise=billing&environment=production&status=failed"},
		{"history, since 7 days", "/ui/history?since=" + time.Now().AddDate(0, 0, -7).Format("2006-01-02")},
		{"webhooks", "/ui/webhooks"},
		{"stats", "/ui/stats"},
		{"jobs", "/ui/jobs"},
	}
	fmt.Printf("%s: %d deployments, %d webhook events; %d reads a page\n", filepath.Base(path), deployments, webhooks, runs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "page\tmedian\tp95\t× baseline\tunder %s\t\n", target)
	var baseline time.Duration
	for _, p := range pages {
		med, p95, err := measure(c, hs.URL+p.path, runs)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if baseline == 0 {
			baseline = med
		}
		verdict := "yes"
		if med >= target {
			verdict = "NO"
		}
		fmt.Fprintf(tw, "%s\t%.2fms\t%.2fms\t%.1f\t%s\t\n", p.name, ms(med), ms(p95), float64(med)/float64(baseline), verdict)
	}
	return tw.Flush()
}

// measure reads url runs times, after one read to warm the caches, and
// returns the median and p95 of the time to the last byte.
func measure(c *http.Client, u string, runs int) (median, p95 time.Duration, err error) {
	var took []time.Duration
	for i := range runs + 1 {
		start := time.Now()
		resp, err := c.Get(u)
		if err != nil {
			return 0, 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/ui/login" {
			return 0, 0, fmt.Errorf("GET %s: %d at %s %v", u, resp.StatusCode, resp.Request.URL.Path, err)
		}
		if i > 0 {
			took = append(took, time.Since(start))
		}
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)*95/100], nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
