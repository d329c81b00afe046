package web

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

type statsData struct {
	Filter                store.StatsFilter
	Fraises, Environments []string
	Rows                  []store.Stats
	Charts                []chart
	Daily                 []dayChart
	// Durations says whether the per-day charts show durations.
	Durations bool
}

func (d *Dashboard) stats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.StatsFilter{Fraise: q.Get("fraise"), Environment: q.Get("environment")}
	// Whole UTC days, today's included, for the table as for the charts:
	// a window starting at midnight is read from the rollups alone.
	f.Since = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1-statsDays)
	rows, err := d.o.Store.Stats(r.Context(), f)
	if err != nil {
		d.internalError(w, r, "read the statistics", err)
		return
	}
	// Durations per day only for a chosen fraise or environment: all
	// targets' would read every day's duration histogram of each.
	durations := f.Fraise != "" || f.Environment != ""
	days, err := d.o.Store.DailyStats(r.Context(), store.DailyFilter{StatsFilter: f, Durations: durations})
	if err != nil {
		d.internalError(w, r, "read the daily statistics", err)
		return
	}
	link := func(t store.Target) string {
		if t.Fraise == "" || (t.Fraise == f.Fraise && t.Environment == f.Environment) {
			return ""
		}
		return Prefix + "stats?" + url.Values{"fraise": {t.Fraise}, "environment": {t.Environment}}.Encode()
	}
	data := statsData{Filter: f, Durations: durations, Rows: rows, Charts: statsCharts(rows), Daily: dayCharts(days, f.Fraise != "", durations, link)}
	data.Fraises, data.Environments = targetNames(d.o.Config(), rows)
	d.render(w, r, http.StatusOK, "stats", page{Title: "Stats", Nav: "stats", Data: data})
}

// targetNames are the fraises and environment names the filters offer:
// the configuration's, and those with statistics.
func targetNames(cfg *config.Config, rows []store.Stats) (fraises, envs []string) {
	add := func(list []string, name string) []string {
		if name == "" || slices.Contains(list, name) {
			return list
		}
		return append(list, name)
	}
	for _, name := range cfg.FraiseNames() {
		fraises = add(fraises, name)
		for _, e := range cfg.Fraises[name].EnvironmentNames() {
			envs = add(envs, e)
		}
	}
	for _, s := range rows {
		fraises, envs = add(fraises, s.Fraise), add(envs, s.Environment)
	}
	slices.Sort(fraises)
	slices.Sort(envs)
	return fraises, envs
}

// jobRow is one scheduled job on the jobs page: from the configuration,
// what fraisier recorded of it, and what systemd says now.
type jobRow struct {
	JobKey
	// Schedule is the OnCalendar expression; empty for a job recorded
	// but no longer configured.
	Schedule string
	// Timer is what systemd says, valid unless Unknown says why not.
	Timer   TimerState
	Unknown string
	// Recorded is fraisier's own record of the job, if any.
	Recorded *store.JobState
}

// LastRun is when the job last ran: systemd's word, else fraisier's.
func (j jobRow) LastRun() time.Time {
	if j.Unknown == "" && !j.Timer.Last.IsZero() {
		return j.Timer.Last
	}
	if j.Recorded != nil && j.Recorded.LastRunAt != nil {
		return *j.Recorded.LastRunAt
	}
	return time.Time{}
}

// LastResult is how the last run ended: systemd's word, else fraisier's.
func (j jobRow) LastResult() string {
	if j.Unknown == "" && !j.Timer.Last.IsZero() && j.Timer.Result != "" {
		return j.Timer.Result
	}
	if j.Recorded != nil {
		return j.Recorded.LastResult
	}
	return ""
}

func (d *Dashboard) jobs(w http.ResponseWriter, r *http.Request) {
	recorded, err := d.o.Store.JobStates(r.Context(), "", "")
	if err != nil {
		d.internalError(w, r, "read the jobs", err)
		return
	}
	cfg := d.o.Config()
	var rows []jobRow
	for _, e := range cfg.Environments() {
		if e.Fraise.Type != config.TypeScheduled {
			continue
		}
		fraise, env := e.Target()
		for i := range e.Jobs {
			cal, err := e.Jobs[i].Calendar()
			if err != nil {
				cal = "invalid: " + err.Error()
			}
			rows = append(rows, jobRow{JobKey: JobKey{Target: store.Target{Fraise: fraise, Environment: env}, Job: e.Jobs[i].Name}, Schedule: cal})
		}
	}
	for i := range recorded {
		k := JobKey{Target: recorded[i].Target, Job: recorded[i].Job}
		at := slices.IndexFunc(rows, func(j jobRow) bool { return j.JobKey == k })
		if at < 0 {
			rows = append(rows, jobRow{JobKey: k, Unknown: "no longer in the configuration"})
			at = len(rows) - 1
		}
		rows[at].Recorded = &recorded[i]
	}
	if len(rows) > 0 {
		states, err := d.o.Timers.States(r.Context(), cfg)
		for i := range rows {
			st, ok := states[rows[i].JobKey]
			switch {
			case rows[i].Unknown != "":
			case err != nil:
				rows[i].Unknown = err.Error()
			case !ok:
				rows[i].Unknown = "systemd was not asked about this job"
			case st.Err != "":
				rows[i].Unknown = st.Err
			default:
				rows[i].Timer = st
			}
		}
	}
	d.render(w, r, http.StatusOK, "jobs", page{Title: "Jobs", Nav: "jobs", Data: rows})
}
