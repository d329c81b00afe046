package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// secret is the webhook secret both servers check: a realistic length.
const secret = "webhookbench: a webhook secret of realistic length, 40+ bytes"

type targets struct {
	rate  float64
	p99   time.Duration
	rss   int64 // bytes
	ratio float64
}

func main() {
	var (
		bin      = flag.String("bin", "bin/fraisier", "fraisier binary to measure (make bench builds it)")
		conns    = flag.Int("conns", 32, "keep-alive connections")
		warmup   = flag.Duration("warmup", 2*time.Second, "unmeasured load before each measured window")
		duration = flag.Duration("duration", 10*time.Second, "measured window of each server")
		rounds   = flag.Int("rounds", 3, "rounds of baseline and fraisier, alternating which goes first")
		keep     = flag.Bool("keep", false, "keep the work directory (state database, logs, origin) for inspection")
		deploys  = flag.String("deploys", "held", "what the queue does during the load: held (one deployment runs throughout, sleeping in its install step; every push replaces the request waiting behind it) or continuous (real deployments back to back, competing for the cores)")
		t        targets
		rssMB    int64
		baseline = flag.String("baseline-listen", "", "internal: serve the baseline handler on this address (the program starts itself with it)")
	)
	flag.Float64Var(&t.rate, "min-rate", 7000, "target: fraisier's requests/s at least")
	flag.DurationVar(&t.p99, "max-p99", 20*time.Millisecond, "target: fraisier's p99 under")
	flag.Int64Var(&rssMB, "max-rss-mb", 40, "target: fraisier's peak resident memory under, in MB")
	flag.Float64Var(&t.ratio, "min-ratio", 0.65, "target: fraisier's rate over the baseline's, at least")
	flag.Parse()
	t.rss = rssMB << 20
	if *baseline != "" {
		if err := serveBaseline(*baseline, []byte(os.Getenv("WEBHOOKBENCH_SECRET"))); err != nil {
			fmt.Fprintln(os.Stderr, "webhookbench baseline:", err)
			os.Exit(1)
		}
		return
	}
	if *deploys != "held" && *deploys != "continuous" {
		fmt.Fprintf(os.Stderr, "webhookbench: -deploys %q: use held or continuous\n", *deploys)
		os.Exit(2)
	}
	if err := run(context.Background(), *bin, *conns, *warmup, *duration, *rounds, *keep, *deploys == "held", t); err != nil {
		fmt.Fprintln(os.Stderr, "webhookbench:", err)
		os.Exit(1)
	}
}

// measured is one server under one round of load.
type measured struct {
	name      string
	round     int
	load      loadResult
	maxRSS    int64 // bytes, the largest VmRSS sampled
	hwm       int64 // bytes, VmHWM at the end of the load
	recorded  int64 // fraisier: webhook events in the state database afterwards
	outcomes  string
	deploys   string
	logBytes  int64
	isBaseRun bool
}

func run(ctx context.Context, bin string, conns int, warmup, duration time.Duration, rounds int, keep, held bool, t targets) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return fmt.Errorf("resolve -bin: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("fraisier binary (run make build, or make bench): %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program for the baseline: %w", err)
	}
	root, err := os.MkdirTemp("", "fraisier-webhookbench.")
	if err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if keep {
		fmt.Println("work directory (kept):", root)
	} else {
		defer os.RemoveAll(root)
	}
	w, err := setup(ctx, root)
	if err != nil {
		return err
	}
	w.held = held
	bodies, err := makeBodies(256, []byte(secret))
	if err != nil {
		return err
	}
	queue := "one deployment held running throughout (its install step sleeps); each push replaces the request waiting behind it"
	if !held {
		queue = "real deployments run back to back from a local origin (their work competes for the cores)"
	}
	fmt.Printf("%d connections, %s warm-up then %s measured per server, %d rounds; bodies %d–%d bytes; GOMAXPROCS of each process: %d CPUs\nfraisier's queue: %s\n",
		conns, warmup, duration, rounds, bodies.minLen, bodies.maxLen, numCPU(), queue)

	var all []measured
	for r := 1; r <= rounds; r++ {
		order := []string{"baseline", "fraisier"}
		if r%2 == 0 {
			order = []string{"fraisier", "baseline"}
		}
		for _, name := range order {
			var (
				m   measured
				err error
			)
			if name == "baseline" {
				m, err = measureBaseline(ctx, self, root, bodies, conns, warmup, duration)
			} else {
				m, err = measureFraisier(ctx, bin, w, r, bodies, conns, warmup, duration)
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, name, err)
			}
			m.round = r
			all = append(all, m)
		}
	}
	return report(all, t)
}

func report(all []measured, t targets) error {
	base := map[int]measured{}
	for _, m := range all {
		if m.isBaseRun {
			base[m.round] = m
		}
	}
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "round\tserver\treq/s\tp50\tp99\tmax\tmax RSS\t× baseline\t≥ %.0f/s\tp99 < %s\tRSS < %d MB\tratio ≥ %.2f\tnon-202\tCPU server/generator\t\n",
		t.rate, t.p99, t.rss>>20, t.ratio)
	var failures []string
	var ratios, rates []float64
	var p99s []time.Duration
	var rsss []int64
	for _, m := range all {
		l := m.load
		other := l.otherStatuses()
		if m.isBaseRun {
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%s\t%s\t%s\t%.1f MB\t\t\t\t\t\t%s\t%s\t\n", m.round, m.name, l.rate(),
				fmtMS(l.pct(50)), fmtMS(l.pct(99)), fmtMS(l.pct(100)), mb(m.maxRSS), other, l.cores())
			continue
		}
		ratio := l.rate() / base[m.round].load.rate()
		ratios, rates, p99s, rsss = append(ratios, ratio), append(rates, l.rate()), append(p99s, l.pct(99)), append(rsss, m.maxRSS)
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%s\t%s\t%s\t%.1f MB\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", m.round, m.name, l.rate(),
			fmtMS(l.pct(50)), fmtMS(l.pct(99)), fmtMS(l.pct(100)), mb(m.maxRSS), ratio,
			verdict(l.rate() >= t.rate), verdict(l.pct(99) < t.p99), verdict(m.maxRSS < t.rss), verdict(ratio >= t.ratio), other, l.cores())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print the table: %w", err)
	}
	fmt.Println("CPU: the server process's own (not its git children) and this program's, over the measured window; what the machine's other processes took is neither.")
	if len(rates) > 0 {
		fmt.Printf("fraisier, median of %d rounds: %.0f req/s, p99 %s, max RSS %.1f MB, %.2f× the baseline\n",
			len(rates), medianF(rates), fmtMS(medianD(p99s)), mb(medianI(rsss)), medianF(ratios))
	}
	fmt.Println("durability (fraisier's state database after a clean stop):")
	for _, m := range all {
		if m.isBaseRun {
			continue
		}
		ok := m.recorded == m.load.total202
		fmt.Printf("  round %d: %d answered 202, %d webhook events recorded (%s): %s; deployments %s; VmHWM %.1f MB; log %.1f MB\n",
			m.round, m.load.total202, m.recorded, m.outcomes, verdict(ok), m.deploys, mb(m.hwm), mb(m.logBytes))
		if !ok {
			failures = append(failures, fmt.Sprintf("round %d: %d deliveries answered 202 but %d recorded", m.round, m.load.total202, m.recorded))
		}
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	return nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
func mb(b int64) float64           { return float64(b) / (1 << 20) }

func medianF(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func medianD(v []time.Duration) time.Duration {
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func medianI(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
