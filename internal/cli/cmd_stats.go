package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/store"
)

// statsJSON is the stable --json shape of stats.
type statsJSON struct {
	Since *time.Time        `json:"since"`
	Stats []targetStatsJSON `json:"stats"`
}

type targetStatsJSON struct {
	Fraise              string                 `json:"fraise"`
	Environment         string                 `json:"environment"`
	Total               int64                  `json:"total"`
	ByStatus            map[store.Status]int64 `json:"by_status"`
	SuccessRate         float64                `json:"success_rate"`
	MeanDurationMS      float64                `json:"mean_duration_ms"`
	MedianDurationMS    float64                `json:"median_duration_ms"`
	P95DurationMS       float64                `json:"p95_duration_ms"`
	DeploysPerDay       float64                `json:"deploys_per_day"`
	ChangeFailureRate   float64                `json:"change_failure_rate"`
	Incidents           int64                  `json:"incidents"`
	MeanTimeToRestoreMS float64                `json:"mean_time_to_restore_ms"`
}

func (a *app) statsCommand() *cobra.Command {
	var (
		fraise, env, since string
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "stats [fraise [environment]]",
		Short: "Summarise deployments: outcomes, durations, frequency, failure rate, time to restore",
		Long: `Summarise finished deployments per fraise and environment (and over all of
them when no fraise is named): counts by status, success rate, mean, median and
p95 duration, deploys per day, change-failure rate and mean time to restore.
Median and p95 come from a duration histogram and are within 2%.`,
		Args: rangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := positionalTarget(args, &fraise, &env); err != nil {
				return err
			}
			sinceT, err := parseSince(since, time.Now())
			if err != nil {
				return &usageError{err}
			}
			db, err := a.openState(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			rows, err := db.Stats(cmd.Context(), store.StatsFilter{Fraise: fraise, Environment: env, Since: sinceT})
			if err != nil {
				return withCode(ExitState, err)
			}
			out := statsJSON{Stats: make([]targetStatsJSON, 0, len(rows))}
			if !sinceT.IsZero() {
				out.Since = &sinceT
			}
			// The window the figures are for: retention may have moved
			// its start back to a midnight (see store.DB.Stats).
			if len(rows) > 0 && rows[0].Since != nil {
				out.Since = utcPtr(rows[0].Since)
			}
			for _, s := range rows {
				byStatus := s.ByStatus
				if byStatus == nil {
					byStatus = map[store.Status]int64{}
				}
				out.Stats = append(out.Stats, targetStatsJSON{
					Fraise: s.Fraise, Environment: s.Environment, Total: s.Total, ByStatus: byStatus,
					SuccessRate: s.SuccessRate, MeanDurationMS: s.MeanDurationMS, MedianDurationMS: s.MedianDurationMS,
					P95DurationMS: s.P95DurationMS, DeploysPerDay: s.DeploysPerDay, ChangeFailureRate: s.ChangeFailureRate,
					Incidents: s.Incidents, MeanTimeToRestoreMS: s.MeanTimeToRestore,
				})
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			t := newTable(a.streams.Out, "FRAISE", "ENVIRONMENT", "TOTAL", "SUCCEEDED", "FAILED", "ROLLED BACK", "ROLLBACK FAILED", "SUCCESS", "MEAN", "MEDIAN", "P95", "PER DAY", "CFR", "MTTR")
			for _, s := range out.Stats {
				name, envName := s.Fraise, s.Environment
				if name == "" {
					name, envName = "(all)", ""
				}
				t.row(name, orDash(envName), strconv.FormatInt(s.Total, 10),
					strconv.FormatInt(s.ByStatus[store.StatusSucceeded], 10),
					strconv.FormatInt(s.ByStatus[store.StatusFailed], 10),
					strconv.FormatInt(s.ByStatus[store.StatusRolledBack], 10),
					strconv.FormatInt(s.ByStatus[store.StatusRollbackFailed], 10),
					pct(s.SuccessRate, s.Total), fmtDurationMS(int64(s.MeanDurationMS)), fmtDurationMS(int64(s.MedianDurationMS)),
					fmtDurationMS(int64(s.P95DurationMS)), fmt.Sprintf("%.1f", s.DeploysPerDay), pct(s.ChangeFailureRate, s.Total),
					fmtDurationMS(int64(s.MeanTimeToRestoreMS)))
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&fraise, "fraise", "", "only this fraise")
	f.StringVar(&env, "env", "", "only this environment")
	f.StringVar(&since, "since", "", "only deployments since: a duration (90m, 36h, 7d) or a date")
	addJSONFlag(cmd, &asJSON)
	return cmd
}

func pct(rate float64, total int64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", rate*100)
}
