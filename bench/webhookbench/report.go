package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func report(all []measured, o options) error {
	t := o.t
	base := map[int]measured{}
	for _, m := range all {
		if m.isBaseRun {
			base[m.round] = m
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "round\tserver\treq/s\tp50\tp99\tmax\tmax RSS\t× baseline\t≥ %.0f/s\tp99 < %s\tRSS < %d MB\tratio ≥ %.2f\tnon-202\tCPU server/generator\t\n",
		t.rate, t.p99, t.rss>>20, t.ratio)
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
		if m.bin == o.bin && m.redeliver == 0 {
			ratios, rates, p99s, rsss = append(ratios, ratio), append(rates, l.rate()), append(p99s, l.pct(99)), append(rsss, m.maxRSS)
		}
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
	if o.redeliver > 0 {
		if err := reportRedeliveries(all, o); err != nil {
			return err
		}
	}
	if o.against != "" {
		reportAgainst(all, o)
	}
	return reportDurability(all)
}

// reportRedeliveries compares, round by round, each binary's rate with
// redeliveries to its rate with unique ids.
func reportRedeliveries(all []measured, o options) error {
	unique := map[[2]any]measured{}
	for _, m := range all {
		if !m.isBaseRun && m.redeliver == 0 {
			unique[[2]any{m.round, m.bin}] = m
		}
	}
	fmt.Printf("\nredeliveries (%.0f%% of deliveries sent again under their id) against unique ids, same binary, same round:\n", 100*o.redeliver)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "round\tserver\treq/s\tunique ids req/s\t× unique\t≥ %.2f\tp99\tp99 < %s\tredelivered\tanswered as the first\t\n", o.t.redelivered, o.t.p99)
	var ratios []float64
	var p99s []time.Duration
	var unlike []string
	for _, m := range all {
		if m.isBaseRun || m.redeliver == 0 {
			continue
		}
		u := unique[[2]any{m.round, m.bin}]
		ratio := m.load.rate() / u.load.rate()
		if m.bin == o.bin {
			ratios, p99s = append(ratios, ratio), append(p99s, m.load.pct(99))
		}
		like := m.load.redelivered - m.load.unlike
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%d\t%d: %s\t\n", m.round, m.name, m.load.rate(), u.load.rate(), ratio,
			verdict(ratio >= o.t.redelivered), fmtMS(m.load.pct(99)), verdict(m.load.pct(99) < o.t.p99), m.load.redelivered, like,
			verdict(m.load.unlike == 0))
		if m.load.unlike > 0 {
			unlike = append(unlike, fmt.Sprintf("round %d, %s: %d redeliveries answered otherwise than the first time (%s)",
				m.round, m.name, m.load.unlike, m.load.firstUnlike))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print the table: %w", err)
	}
	if len(ratios) > 0 {
		fmt.Printf("fraisier with redeliveries, median of %d rounds: %.2f× its unique-id rate (target ≥ %.2f: %s), p99 %s (target < %s: %s)\n",
			len(ratios), medianF(ratios), o.t.redelivered, verdict(medianF(ratios) >= o.t.redelivered),
			fmtMS(medianD(p99s)), o.t.p99, verdict(medianD(p99s) < o.t.p99))
	}
	if len(unlike) > 0 {
		return errors.New(strings.Join(unlike, "; "))
	}
	return nil
}

// reportAgainst is -bin's rate over -against's, per load, median of the
// rounds.
func reportAgainst(all []measured, o options) {
	rate := map[[3]any]float64{}
	for _, m := range all {
		if !m.isBaseRun {
			rate[[3]any{m.round, m.bin, m.redeliver}] = m.load.rate()
		}
	}
	fmt.Printf("\n%s against %s, same round:\n", o.bin, o.against)
	for _, f := range []float64{0, o.redeliver} {
		var ratios []float64
		for r := 1; r <= o.rounds; r++ {
			if old := rate[[3]any{r, o.against, f}]; old > 0 {
				ratios = append(ratios, rate[[3]any{r, o.bin, f}]/old)
			}
		}
		if len(ratios) > 0 {
			fmt.Printf("  %.0f%% redelivered: %.2f× the rate, median of %d rounds\n", 100*f, medianF(ratios), len(ratios))
		}
		if o.redeliver == 0 {
			break
		}
	}
}

// reportDurability checks that every first delivery answered 202 was
// recorded.
func reportDurability(all []measured) error {
	var failures []string
	fmt.Println("durability (fraisier's state database after a clean stop):")
	for _, m := range all {
		if m.isBaseRun {
			continue
		}
		ok := m.recorded == m.load.total202
		fmt.Printf("  round %d, %s: %d first deliveries answered 202, %d webhook events recorded (%s): %s; deployments %s; VmHWM %.1f MB; log %.1f MB\n",
			m.round, m.name, m.load.total202, m.recorded, m.outcomes, verdict(ok), m.deploys, mb(m.hwm), mb(m.logBytes))
		if !ok {
			failures = append(failures, fmt.Sprintf("round %d, %s: %d deliveries answered 202 but %d recorded", m.round, m.name, m.load.total202, m.recorded))
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
