package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// met says whether the phase met its targets: every rollout's overhead
// per host under target, and no error of any kind.
func (p phaseResult) met(target time.Duration, hosts int) bool {
	for _, fs := range p.rollouts {
		for _, f := range fs {
			if f.overheadPerHost(hosts) >= target {
				return false
			}
		}
	}
	return p.errors() == 0
}

// errors is every error the nodes met: claims, advance passes, error logs.
func (p phaseResult) errors() int64 {
	return p.c.claimErrors.Load() + p.c.advanceErrors.Load() + p.c.errorLogs.Load()
}

// report prints, per database, the single-host baseline, a row per batch
// size, and the errors and connection figures.
func report(out io.Writer, o options, phases []phaseResult) {
	for _, p := range phases {
		single, singleSteps := median(p.singleWall), median(p.singleSteps)
		fmt.Fprintf(out, "\n%s database (%s); %d hosts, one in-process node each\n", p.name, p.history, o.hosts)
		fmt.Fprintf(out, "single-host deploy (baseline, %d runs): %.0f ms queued to recorded end, of which the engine's own %.0f ms (median)\n",
			len(p.singleWall), ms(single), ms(singleSteps))
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "batch\tbatches\trollouts\trollout time\tsteps' own\toverhead/host median\tmax\t÷ single deploy\tnotifications/rollout\tadvance passes/rollout\tCPU/host step: PostgreSQL\tnodes\tgit\tunder %s\t\n", o.target)
		for _, b := range o.batches {
			fs := p.rollouts[b]
			if len(fs) == 0 {
				continue
			}
			var walls, steps, over []time.Duration
			var notes, adv int64
			var cpu cpuTimes
			for _, f := range fs {
				walls, steps, over = append(walls, f.wall), append(steps, f.steps), append(over, f.overheadPerHost(o.hosts))
				notes, adv = notes+f.notifications, adv+f.advances
				cpu = cpuTimes{pg: cpu.pg + f.cpu.pg, nodes: cpu.nodes + f.cpu.nodes, git: cpu.git + f.cpu.git}
			}
			perStep := func(d time.Duration) float64 { return ms(d) / float64(len(fs)*o.hosts) }
			verdict := "yes"
			if slices.Max(over) >= o.target {
				verdict = "NO"
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.2f s\t%.2f s\t%.1f ms\t%.1f ms\t%.3f\t%d\t%d\t%.1f ms\t%.1f ms\t%.1f ms\t%s\t\n", b, fs[0].batches, len(fs),
				median(walls).Seconds(), median(steps).Seconds(), ms(median(over)), ms(slices.Max(over)),
				float64(median(over))/float64(single), notes/int64(len(fs)), adv/int64(len(fs)),
				perStep(cpu.pg), perStep(cpu.nodes), perStep(cpu.git), verdict)
		}
		tw.Flush()
		c := p.c
		fmt.Fprintf(out, "claim contention errors: %d of %d claims (target 0; %d expected ErrNotQueued/ErrNotReady)\n",
			c.claimErrors.Load(), c.claims.Load(), c.claimsExpected.Load())
		fmt.Fprintf(out, "AdvanceRollouts errors: %d of %d passes (target 0); log records at error level: %d (target 0), at warning: %d\n",
			c.advanceErrors.Load(), c.advances.Load(), c.errorLogs.Load(), c.warnLogs.Load())
		for _, e := range c.firstErrors {
			fmt.Fprintf(out, "  error: %s\n", e)
		}
		fmt.Fprintf(out, "PostgreSQL connections of the nodes (pg_stat_activity, peak): %d, of which %d LISTEN and at most %d running a statement at once (%.1f per node)\n",
			p.peak[0], p.peak[1], p.peak[2], float64(p.peak[0])/float64(o.hosts))
		fmt.Fprintf(out, "heartbeats: %.1f writes/s for %d nodes; queue notifications over the phase: %d\n", p.beatsPerSec, o.hosts, p.notes)
		verdict := "met"
		if !p.met(o.target, o.hosts) {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "targets (overhead under %s per host in every rollout, 0 errors): %s\n", o.target, verdict)
	}
}

// median is the median of ds (the mean of the middle two when even).
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
