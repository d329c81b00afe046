package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

func main() {
	var (
		bin      = flag.String("bin", "bin/fraisier", "fraisier binary")
		rounds   = flag.Int("rounds", 5, "deployments of each kind (no client, one client, -watchers clients)")
		watchers = flag.Int("watchers", 100, "clients following the log in the crowded rounds")
		lines    = flag.Int("lines", 100, "lines the install step prints")
		every    = flag.String("every", "0.01", "seconds between two lines (sleep's argument)")
	)
	flag.Parse()
	if err := run(context.Background(), *bin, *rounds, *watchers, *lines, *every); err != nil {
		fmt.Fprintln(os.Stderr, "livelogbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string, rounds, watchers, lines int, every string) error {
	w := &world{ctx: ctx, lines: lines, lineEvery: every, readToken: "livelogbench-read-token-0123456789"}
	w.bin, _ = filepath.Abs(bin)
	var err error
	if w.root, err = os.MkdirTemp("", "fraisier-livelogbench."); err != nil {
		return err
	}
	defer os.RemoveAll(w.root)
	if w.mgr, err = tsystemd.Start(ctx); err != nil {
		return err
	}
	defer w.mgr.Close(context.Background())
	if err := w.prepare(); err != nil {
		return err
	}
	deployToken, err := w.output("tokens", "create", "bench", "--scope", "deploy:hello/production")
	if err != nil {
		return err
	}
	serve := exec.CommandContext(ctx, w.bin, "serve")
	serve.Dir, serve.Env = w.root, w.env
	serve.Stdout, serve.Stderr = nil, nil
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	c := &client{base: fmt.Sprintf("http://127.0.0.1:%d", w.port), read: w.readToken, deployToken: deployToken}
	if err := c.waitReady(20 * time.Second); err != nil {
		return err
	}

	// One unmeasured deployment: the first clone and the first start.
	if _, err := w.round(c, 0); err != nil {
		return err
	}
	kinds := []int{0, 1, watchers}
	results := map[int][]roundResult{}
	for r := range rounds {
		// The order rotates so that no kind always follows another.
		for k := range kinds {
			n := kinds[(r+k)%len(kinds)]
			res, err := w.round(c, n)
			if err != nil {
				return fmt.Errorf("round %d with %d clients: %w", r, n, err)
			}
			results[n] = append(results[n], res)
		}
	}
	report(rounds, lines, watchers, results)
	return nil
}

// roundResult is one deployment: its duration as fraisier recorded it,
// and the delay of each line that reached the first client after it
// connected.
type roundResult struct {
	duration time.Duration
	delays   []time.Duration
}

// round deploys a new commit with n clients following its log.
func (w *world) round(c *client, n int) (roundResult, error) {
	if err := w.push(); err != nil {
		return roundResult{}, err
	}
	id, err := c.deploy()
	if err != nil {
		return roundResult{}, err
	}
	type followed struct {
		delays []time.Duration
		err    error
	}
	done := make(chan followed, n)
	for i := range n {
		go func() {
			d, err := c.follow(id, i == 0)
			done <- followed{d, err}
		}()
	}
	var res roundResult
	if res.duration, err = c.waitFinished(id, 2*time.Minute); err != nil {
		return res, err
	}
	for range n {
		f := <-done
		if f.err != nil {
			return res, f.err
		}
		if f.delays != nil {
			res.delays = f.delays
		}
	}
	if n > 0 && len(res.delays) < w.lines/2 {
		return res, fmt.Errorf("the measuring client saw %d of %d lines live", len(res.delays), w.lines)
	}
	return res, nil
}

func report(rounds, lines, watchers int, results map[int][]roundResult) {
	fmt.Printf("a deployment whose install prints %d lines, %d deployments of each kind, medians:\n", lines, rounds)
	alone := medianDuration(results[0])
	fmt.Printf("  followed by no client         %8.1f ms\n", msf(alone))
	for _, n := range []int{1, watchers} {
		d := medianDuration(results[n])
		// Rounds of each kind run back to back: the ratio of round r's
		// durations shares that moment's machine load.
		var ratios []float64
		for r := range results[n] {
			ratios = append(ratios, float64(results[n][r].duration)/float64(results[0][r].duration))
		}
		slices.Sort(ratios)
		fmt.Printf("  followed by %3d clients       %8.1f ms   %.3f× (median of the %d paired rounds' ratios; target < 1.05× with 100)\n",
			n, msf(d), ratios[len(ratios)/2], len(ratios))
	}
	for _, n := range []int{1, watchers} {
		var all []time.Duration
		for _, r := range results[n] {
			all = append(all, r.delays...)
		}
		slices.Sort(all)
		fmt.Printf("  from the line's echo to its arrival, %3d clients: p50 %5.1f ms, p95 %5.1f ms, max %5.1f ms over %d lines (target under 100 ms)\n",
			n, msf(all[len(all)/2]), msf(all[len(all)*95/100]), msf(all[len(all)-1]), len(all))
	}
}

func medianDuration(rs []roundResult) time.Duration {
	var ds []time.Duration
	for _, r := range rs {
		ds = append(ds, r.duration)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
