package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fraiseql/fraisier/bench/grow"
)

func main() {
	var (
		bin         = flag.String("bin", "bin/fraisier", "fraisier binary to measure")
		dir         = flag.String("dir", "bench/out", "where the generated databases live")
		deployments = flag.Int("deployments", 1_000_000, "deployments in the big database")
		webhooks    = flag.Int("webhooks", 1_000_000, "webhook events in the big database")
		runs        = flag.Int("runs", 30, "runs of each command")
		target      = flag.Duration("target", 30*time.Millisecond, "the answer time each command must stay under (median)")
	)
	flag.Parse()
	if err := run(context.Background(), *bin, *dir, *deployments, *webhooks, *runs, *target); err != nil {
		fmt.Fprintln(os.Stderr, "clibench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, dir string, deployments, webhooks, runs int, target time.Duration) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	big, empty, err := databases(ctx, dir, deployments, webhooks)
	if err != nil {
		return err
	}
	config, err := filepath.Abs("examples/fraises.yaml")
	if err != nil {
		return err
	}

	cases := []struct {
		name  string
		state string
		args  []string
	}{
		{"version (process start, baseline)", "", []string{"version"}},
		{"history, empty database", empty, []string{"history"}},
		{"history", big, []string{"history"}},
		{"history --fraise --env --status", big, []string{"history", "--fraise", "billing", "--env", "production", "--status", "failed"}},
		{"history --since 7d", big, []string{"history", "--since", "7d"}},
		{"status --offline (the record only)", big, []string{"status", "--offline"}},
		{"status (with live checks of the sample config)", big, []string{"status"}},
		{"stats", big, []string{"stats"}},
		{"stats billing --since 30d", big, []string{"stats", "billing", "--since", "30d"}},
		{"webhooks --outcome ignored", big, []string{"webhooks", "--outcome", "ignored"}},
		{"history --json", big, []string{"history", "--json"}},
	}
	type row struct {
		name        string
		median, p95 time.Duration
	}
	var rows []row
	var baseline time.Duration
	for i, c := range cases {
		times := make([]time.Duration, 0, runs)
		for r := 0; r < runs+2; r++ {
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Env = append(os.Environ(), "FRAISIER_CONFIG="+config, "FRAISIER_DEMO_ROOT=/tmp/fraisier-bench", "NO_COLOR=1")
			if c.state != "" {
				cmd.Env = append(cmd.Env, "FRAISIER_STATE="+c.state)
			}
			start := time.Now()
			out, err := cmd.CombinedOutput()
			d := time.Since(start)
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", strings.Join(c.args, " "), err, out)
			}
			if r >= 2 { // the first runs warm the page cache
				times = append(times, d)
			}
		}
		sort.Slice(times, func(a, b int) bool { return times[a] < times[b] })
		med, p95 := times[len(times)/2], times[(len(times)*95+99)/100-1]
		if i == 0 {
			baseline = med
		}
		rows = append(rows, row{c.name, med, p95})
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "command\tmedian\tp95\t× baseline\tunder %s\t\n", target)
	for _, r := range rows {
		verdict := "yes"
		if r.median >= target {
			verdict = "NO"
		}
		fmt.Fprintf(tw, "%s\t%.1fms\t%.1fms\t%.2f\t%s\t\n", r.name, ms(r.median), ms(r.p95), float64(r.median)/float64(baseline), verdict)
	}
	return tw.Flush()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// databases makes the big database, unless bench/grow keeps it in dir,
// and an empty one.
func databases(ctx context.Context, dir string, deployments, webhooks int) (big, empty string, err error) {
	if big, err = grow.Cached(ctx, dir, deployments, webhooks); err != nil {
		return "", "", err
	}
	empty = filepath.Join(dir, "state-empty.db")
	if err := grow.File(ctx, empty, 0, 0); err != nil {
		return "", "", err
	}
	return big, empty, nil
}
