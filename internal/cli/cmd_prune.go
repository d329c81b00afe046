package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// pruneJSON is the stable --json shape of prune.
type pruneJSON struct {
	DryRun bool             `json:"dry_run"`
	Kinds  []prunedKindJSON `json:"kinds"`
}

type prunedKindJSON struct {
	Kind        string     `json:"kind"`
	RetentionMS int64      `json:"retention_ms"` // 0: kept forever
	Cutoff      *time.Time `json:"cutoff"`
	Removed     int64      `json:"removed"`
	Bytes       int64      `json:"bytes"`
	OldestKept  *time.Time `json:"oldest_kept"`
}

func (a *app) pruneCommand() *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove from the state database what state.retention says is too old",
		Long: `Prune removes what state.retention says is too old: webhook events (default
90d), the output of deployments' steps (default 90d: the steps stay, and show
and logs say the output was removed) and, only when state.retention.deployments
is set, finished deployments (whole UTC days). fraisier serve does this in the
background; prune is for hosts that do not run serve.

Whatever its age, a deployment queued or running stays, as does one a target's
state names, its newest success, and one that made a release that may still be
on disk; a webhook event stays as long as a deployment it triggered. Statistics
are kept in daily rollups and read the same after pruning.

It works in short transactions, so it can run beside serve. --dry-run counts
what would go and removes nothing. For each kind it says how many records went
(steps, for step output, with the bytes) and the oldest record kept.`,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			db, err := openStore(cmd.Context(), a.stateFromConfig(cfg))
			if err != nil {
				return err
			}
			defer db.Close()
			opts := prunePacing
			opts.DryRun = dryRun
			rep, err := store.Prune(cmd.Context(), db, retentionOf(cfg), opts)
			if err != nil {
				return err
			}
			out := pruneView(rep)
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			return renderPrune(a, out)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be removed; remove nothing")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

// retentionOf is the configuration's retention. A deployment that made a
// release stays while the release can still be on disk: each environment
// keeps keep_releases of them, and never removes the current and previous
// ones.
func retentionOf(cfg *config.Config) store.Retention {
	r := cfg.State.Retention
	keep := cfg.Defaults.KeepReleases
	for _, f := range cfg.Fraises {
		if f == nil {
			continue
		}
		for _, e := range f.Environments {
			if e != nil {
				keep = max(keep, e.KeepReleases)
			}
		}
	}
	return store.Retention{Events: r.Events.D(), StepOutput: r.StepOutput.D(), Deployments: r.Deployments.D(), KeepReleases: keep + 2}
}

func pruneView(rep store.PruneReport) pruneJSON {
	out := pruneJSON{DryRun: rep.DryRun, Kinds: make([]prunedKindJSON, 0, len(rep.Kinds))}
	for _, k := range rep.Kinds {
		out.Kinds = append(out.Kinds, prunedKindJSON{Kind: string(k.Kind), RetentionMS: k.Retention.Milliseconds(),
			Cutoff: utcPtr(k.Cutoff), Removed: k.Removed, Bytes: k.Bytes, OldestKept: utcPtr(k.OldestKept)})
	}
	return out
}

func renderPrune(a *app, out pruneJSON) error {
	removed := "REMOVED"
	if out.DryRun {
		fmt.Fprintln(a.streams.Out, "dry run: nothing was removed")
		removed = "WOULD REMOVE"
	}
	t := newTable(a.streams.Out, "KIND", "RETENTION", "CUTOFF", removed, "OLDEST KEPT")
	for _, k := range out.Kinds {
		n := strconv.FormatInt(k.Removed, 10)
		if k.Bytes > 0 {
			n += " (" + fmtBytes(k.Bytes) + ")"
		}
		t.row(k.Kind, fmtRetention(k.RetentionMS), fmtTimePtr(k.Cutoff), n, fmtTimePtr(k.OldestKept))
	}
	return t.flush()
}

// fmtRetention writes a retention as the configuration would: whole days
// as "90d", forever as "kept".
func fmtRetention(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d <= 0:
		return "kept"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func fmtBytes(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

// How fraisier prune goes: batches of about 10 ms with as long a pause
// after each, so that a serve on the same database (which it is not meant
// for, but may meet) still gets the writer half the time.
var prunePacing = store.PruneOptions{MaxHold: 10 * time.Millisecond, Share: 0.5}

// How serve prunes: a pass as soon as the queue has started, then one
// every servePruneEvery; each batch holds the database's writer for about
// servePacing.MaxHold and pruning takes at most servePacing.Share of the
// time, so that the webhook intake's commits come first.
const servePruneEvery = time.Hour

var servePacing = store.PruneOptions{MaxHold: 2 * time.Millisecond, Share: 0.1}

// pruneInBackground runs serve's retention passes until ctx ends, the
// first once started is closed. It logs what each pass removed, and a
// failed pass as a warning: the next one tries again.
func pruneInBackground(ctx context.Context, db *store.DB, r store.Retention, started <-chan struct{}, log *slog.Logger) {
	if r.Events <= 0 && r.StepOutput <= 0 && r.Deployments <= 0 {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-started:
	}
	for {
		start := time.Now()
		rep, err := store.Prune(ctx, db, r, servePacing)
		if ctx.Err() != nil {
			return
		}
		args := []any{"took", time.Since(start).Round(time.Millisecond).String(), "batches", rep.Batches,
			"held", rep.Held.Round(time.Millisecond).String(), "longest_batch", rep.MaxHeld.Round(10 * time.Microsecond).String()}
		var removed int64
		for _, k := range rep.Kinds {
			args = append(args, string(k.Kind), k.Removed)
			removed += k.Removed
		}
		switch {
		case err != nil:
			log.Warn("retention: pass failed; the next one tries again", append(args, "err", err, "next", servePruneEvery.String())...)
		case removed > 0:
			log.Info("retention: pruned the state database", args...)
		}
		t := time.NewTimer(servePruneEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
