package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
	tsystemd "github.com/fraiseql/fraisier/internal/testenv/systemd"
)

func main() {
	var (
		bin      = flag.String("bin", "bin/fraisier", "fraisier binary to measure")
		runs     = flag.Int("runs", 20, "runs of each command")
		target   = flag.Duration("target", 2*time.Second, "the time a whole doctor run must stay under (median)")
		stateURL = flag.String("state-url", "", "also measure doctor with the state in this PostgreSQL database (postgres://...), migrated first")
		keep     = flag.Bool("keep", false, "keep the host (directory, user manager, units) after the runs, for profiling by hand, until interrupted")
	)
	flag.Parse()
	if err := run(context.Background(), *bin, *runs, *target, *stateURL, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "doctorbench:", err)
		os.Exit(1)
	}
}

// measured is one command of the run: its arguments, what its environment
// adds, and its times.
type measured struct {
	name  string
	args  []string
	env   []string
	times []time.Duration
}

func run(ctx context.Context, bin string, runs int, target time.Duration, stateURL string, keep bool) error {
	h := &host{ctx: ctx}
	var err error
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if h.root, err = os.MkdirTemp("", "fraisier-doctorbench."); err != nil {
		return err
	}
	defer os.RemoveAll(h.root)
	if h.mgr, err = tsystemd.Start(ctx); err != nil {
		return err
	}
	defer h.mgr.Close(context.Background())
	if err := h.prepare(); err != nil {
		return err
	}
	cases := []*measured{
		{name: "version (process start, baseline)", args: []string{"version"}},
		{name: "config validate (loading the example)", args: []string{"config", "validate"}},
		{name: "doctor (the example, SQLite state)", args: []string{"doctor"}},
	}
	if stateURL != "" {
		db, err := store.Open(ctx, store.Options{URL: stateURL})
		if err != nil {
			return err
		}
		db.Close()
		cases = append(cases, &measured{name: "doctor (the example, PostgreSQL state)", args: []string{"doctor"}, env: []string{"FRAISIER_STATE=" + stateURL}})
	}
	for _, c := range cases {
		if err := h.healthy(bin, c); err != nil {
			return err
		}
	}
	// Round by round, every command once: each round shares that moment's
	// load. The first two rounds warm the page cache and are not counted.
	for r := 0; r < runs+2; r++ {
		for _, c := range cases {
			d, err := h.timed(bin, c)
			if err != nil {
				return err
			}
			if r >= 2 {
				c.times = append(c.times, d)
			}
		}
	}
	if err := report(cases, target); err != nil {
		return err
	}
	if keep {
		h.keepForProfiling(bin, cases)
	}
	return nil
}

// keepForProfiling prints what repeats each command by hand, and waits
// for an interrupt before the run is cleaned up.
func (h *host) keepForProfiling(bin string, cases []*measured) {
	fmt.Printf("kept: %s\n  env:", h.root)
	for _, e := range h.env[len(os.Environ()):] {
		fmt.Printf(" %q", e)
	}
	fmt.Println()
	for _, c := range cases {
		fmt.Printf("  %s: %s %s %s\n", c.name, strings.Join(c.env, " "), bin, strings.Join(c.args, " "))
	}
	fmt.Println("interrupt to clean up")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}

// healthy runs c once and wants it to succeed, and a doctor run to find
// nothing to warn of: the run measures a host where everything answers.
func (h *host) healthy(bin string, c *measured) error {
	cmd := exec.CommandContext(h.ctx, bin, c.args...)
	cmd.Env = append(h.env, c.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", c.name, err, out)
	}
	if c.args[0] == "doctor" && !strings.Contains(string(out), " ok, 0 warn, 0 fail\n") {
		return fmt.Errorf("%s: not all ok on the prepared host:\n%s", c.name, out)
	}
	return nil
}

func (h *host) timed(bin string, c *measured) (time.Duration, error) {
	cmd := exec.CommandContext(h.ctx, bin, c.args...)
	cmd.Env = append(h.env, c.env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", c.name, err, out)
	}
	return d, nil
}

func report(cases []*measured, target time.Duration) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "command (%d runs each)\tmedian\tp95\t× baseline\tunder %s\t\n", len(cases[0].times), target)
	base := median(cases[0].times)
	for _, c := range cases {
		sort.Slice(c.times, func(a, b int) bool { return c.times[a] < c.times[b] })
		med, p95 := median(c.times), c.times[(len(c.times)*95+99)/100-1]
		verdict := "yes"
		if med >= target {
			verdict = "NO"
		}
		fmt.Fprintf(tw, "%s\t%.1fms\t%.1fms\t%.2f\t%s\t\n", c.name, ms(med), ms(p95), float64(med)/float64(base), verdict)
	}
	return tw.Flush()
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
