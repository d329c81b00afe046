package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
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
	// The cached database is only as good as the schema and generator that
	// made it: its name carries a digest of both, so an edit regenerates it.
	key, err := generatorKey()
	if err != nil {
		return err
	}
	big := filepath.Join(dir, fmt.Sprintf("state-%d-%d-%s.db", deployments, webhooks, key))
	if _, err := os.Stat(big); err != nil {
		fmt.Printf("generating %s (%d deployments, %d webhook events)...\n", big, deployments, webhooks)
		start := time.Now()
		if err := generate(ctx, big+".tmp", deployments, webhooks); err != nil {
			return err
		}
		if err := os.Rename(big+".tmp", big); err != nil {
			return err
		}
		fmt.Printf("generated in %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	empty := filepath.Join(dir, "state-empty.db")
	_ = os.Remove(empty)
	if err := generate(ctx, empty, 0, 0); err != nil {
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

func generate(ctx context.Context, path string, deployments, webhooks int) error {
	_ = os.Remove(path)
	db, err := store.Open(ctx, store.Options{Path: path})
	if err != nil {
		return err
	}
	if deployments > 0 || webhooks > 0 {
		if err := store.Populate(ctx, db, deployments, webhooks, 1); err != nil {
			db.Close()
			return fmt.Errorf("populate %s: %w", path, err)
		}
	}
	return db.Close()
}

// generatorKey digests the store's SQLite schema and the generator.
func generatorKey() (string, error) {
	files, err := filepath.Glob("internal/store/migrations/sqlite/*.sql")
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("find the store's migrations (run from the repository root): %v", err)
	}
	files = append(files, "internal/store/populate.go")
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
