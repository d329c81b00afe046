package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// historyPage is how many deployments a history page shows.
const historyPage = 50

// funcs are the helpers the templates use.
func funcs() template.FuncMap {
	return template.FuncMap{
		"short": func(sha string) string {
			if len(sha) > 12 {
				return sha[:12]
			}
			return sha
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ms":  millis,
		"why": why,
		"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
		"stepTime": func(s store.Step) string {
			if s.FinishedAt == nil {
				return "running"
			}
			return s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		},
	}
}

// millis writes a count of milliseconds (an int64 or a float64) as a
// duration.
func millis(ms any) string {
	var d time.Duration
	switch v := ms.(type) {
	case int64:
		d = time.Duration(v) * time.Millisecond
	case float64:
		d = time.Duration(v * float64(time.Millisecond))
	}
	return d.Round(time.Millisecond).String()
}

// why is what became of a delivery, in words: its recorded reason, or
// what its outcome means when none was recorded.
func why(e store.WebhookEvent) string {
	if e.Reason != "" {
		return e.Reason
	}
	switch e.Outcome {
	case store.OutcomeAccepted:
		return "accepted: it queued the deployments listed"
	case store.OutcomeDuplicate:
		return "delivered before: nothing was queued again"
	case store.OutcomeSuperseded:
		return "a newer push to the same environment took its place before it ran"
	case store.OutcomeRejected:
		return "refused: it failed authentication or could not be read"
	case store.OutcomeIgnored:
		return "ignored: no environment deploys this repository and ref"
	}
	return string(e.Outcome)
}

// targetRow is one environment on the overview.
type targetRow struct {
	store.FraiseState
	Lock    *store.Lock
	Running []store.Deployment
	Queued  []store.Deployment
	// Configured says the configuration has the environment.
	Configured bool
	// Subject is the current commit's subject, when its mirror had it.
	Subject string
	// Health is what the environment's health check said last; nil when
	// the server cannot ask.
	Health *health
	// Host is the host of a row of an environment with hosts (its
	// Environment is env@host); Node says whether that host's node is
	// alive, dead or unknown (it never reported).
	Host, Node string
}

func (d *Dashboard) overviewRows(r *http.Request) ([]targetRow, error) {
	ctx := r.Context()
	states, err := d.o.Store.FraiseStates(ctx, "", "")
	if err != nil {
		return nil, fmt.Errorf("read fraise states: %w", err)
	}
	locks, err := d.o.Store.Locks(ctx)
	if err != nil {
		return nil, fmt.Errorf("read locks: %w", err)
	}
	running, err := d.o.Store.RunningDeployments(ctx)
	if err != nil {
		return nil, fmt.Errorf("read running deployments: %w", err)
	}
	queued, err := d.o.Store.QueuedDeployments(ctx)
	if err != nil {
		return nil, fmt.Errorf("read queued deployments: %w", err)
	}
	rows := map[store.Target]*targetRow{}
	var order []store.Target
	add := func(t store.Target) *targetRow {
		if row, ok := rows[t]; ok {
			return row
		}
		rows[t] = &targetRow{FraiseState: store.FraiseState{Target: t, Status: "never"}}
		order = append(order, t)
		return rows[t]
	}
	cfg := d.o.Config()
	for _, name := range cfg.FraiseNames() {
		for _, e := range cfg.Fraises[name].EnvironmentNames() {
			env := cfg.Fraises[name].Environments[e]
			if !env.HasHosts() {
				add(store.Target{Fraise: name, Environment: e}).Configured = true
				continue
			}
			// One row per host, together under their environment.
			for _, h := range env.Hosts {
				row := add(store.Target{Fraise: name, Environment: env.HostTarget(h)})
				row.Configured, row.Host = true, h
			}
		}
	}
	for _, st := range states {
		add(st.Target).FraiseState = st
	}
	for i := range locks {
		add(locks[i].Target).Lock = &locks[i]
	}
	for _, dep := range running {
		row := add(dep.Target)
		row.Running = append(row.Running, dep)
	}
	for _, dep := range queued {
		row := add(dep.Target)
		row.Queued = append(row.Queued, dep)
	}
	out := make([]targetRow, 0, len(order))
	for _, t := range order {
		out = append(out, *rows[t])
	}
	if err := d.fillNodes(ctx, cfg, out); err != nil {
		return nil, err
	}
	d.fillLive(ctx, out)
	return out, nil
}

// fillLive adds each row's commit subject and health from the caches,
// starting the reads and probes that are due, and waits for those at most
// freshWait before it reads the caches again: what did not answer by then
// shows on a later view.
func (d *Dashboard) fillLive(ctx context.Context, rows []targetRow) {
	var started []<-chan struct{}
	for i := range rows {
		started = append(started, d.fillRow(&rows[i])...)
	}
	if len(started) == 0 {
		return
	}
	timer := time.NewTimer(freshWait)
	defer timer.Stop()
wait:
	for _, done := range started {
		select {
		case <-done:
		case <-timer.C:
			break wait
		case <-ctx.Done():
			return
		}
	}
	for i := range rows {
		d.fillRow(&rows[i])
	}
}

// fillRow sets row's subject and health from the caches; done are the
// reads and probes it started.
func (d *Dashboard) fillRow(row *targetRow) (done []<-chan struct{}) {
	if d.subjects != nil {
		subject, c := d.subjects.get(row.Target, row.CurrentSHA)
		row.Subject = subject
		if c != nil {
			done = append(done, c)
		}
	}
	if d.live == nil {
		return done
	}
	switch {
	case !row.Configured:
		row.Health = &health{Skip: "not in the configuration"}
	case row.CurrentSHA == "" && row.CurrentRelease == "":
		row.Health = &health{Skip: "nothing deployed yet"}
	case row.Host != "" && row.Host != d.o.Node:
		// Probed by the host's own node, which recorded it (fillNodes).
		if row.Health == nil || row.Health.Seen == nil {
			row.Health = &health{Skip: "checked on node " + row.Host}
		}
	default:
		h, c := d.live.get(row.Target)
		row.Health = &h
		if c != nil {
			done = append(done, c)
		}
	}
	return done
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	rows, err := d.overviewRows(r)
	if err != nil {
		d.internalError(w, r, "read the overview", err)
		return
	}
	d.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: rows})
}

// overviewFragment is the overview's table alone, which the refresh
// script swaps in.
func (d *Dashboard) overviewFragment(w http.ResponseWriter, r *http.Request) {
	rows, err := d.overviewRows(r)
	if err != nil {
		d.internalError(w, r, "read the overview", err)
		return
	}
	d.render(w, r, http.StatusOK, "fragment", page{Data: rows})
}

type deploymentData struct {
	D     store.Deployment
	Steps []store.Step
	Live  bool
}

func (d *Dashboard) deployment(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.problem(w, r, http.StatusBadRequest, "Bad deployment id", "A deployment id is a positive integer.")
		return
	}
	dep, err := d.o.Store.Deployment(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		d.problem(w, r, http.StatusNotFound, "No such deployment", fmt.Sprintf("There is no deployment %d (retention may have removed it).", id))
		return
	}
	if err != nil {
		d.internalError(w, r, "read the deployment", err)
		return
	}
	steps, err := d.o.Store.Steps(r.Context(), id)
	if err != nil {
		d.internalError(w, r, "read the steps", err)
		return
	}
	live := dep.Status == store.StatusRunning || dep.Status == store.StatusQueued
	d.render(w, r, http.StatusOK, "deployment", page{Title: fmt.Sprintf("Deployment %d", id), Nav: "history",
		Data: deploymentData{D: dep, Steps: steps, Live: live}})
}

type historyData struct {
	Filter   store.DeploymentFilter
	Since    string
	Statuses []store.Status
	Rows     []store.Deployment
	Next     string
}

// historyFilter reads the history page's query; msg says what is wrong.
func historyFilter(q url.Values) (f store.DeploymentFilter, msg string) {
	f = store.DeploymentFilter{Fraise: q.Get("fraise"), Environment: q.Get("environment"), Status: store.Status(q.Get("status")), Limit: historyPage + 1}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return f, "before must be a deployment id (a positive integer)."
		}
		f.BeforeID = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return f, "since must be a date, YYYY-MM-DD."
		}
		f.Since = t
	}
	if f.Status != "" && !slices.Contains(allStatuses(), f.Status) {
		return f, "Unknown status: choose one from the list."
	}
	return f, ""
}

func allStatuses() []store.Status {
	return append([]store.Status{store.StatusQueued, store.StatusRunning}, store.TerminalStatuses()...)
}

func (d *Dashboard) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, msg := historyFilter(q)
	if msg != "" {
		d.problem(w, r, http.StatusBadRequest, "Bad filter", msg)
		return
	}
	rows, err := d.o.Store.Deployments(r.Context(), f)
	if err != nil {
		d.internalError(w, r, "read the history", err)
		return
	}
	data := historyData{Filter: f, Since: q.Get("since"), Statuses: allStatuses(), Rows: rows}
	if len(rows) > historyPage {
		data.Rows = rows[:historyPage]
		next := url.Values{}
		for _, k := range []string{"fraise", "environment", "status", "since"} {
			if v := q.Get(k); v != "" {
				next.Set(k, v)
			}
		}
		next.Set("before", strconv.FormatInt(data.Rows[historyPage-1].ID, 10))
		data.Next = Prefix + "history?" + next.Encode()
	}
	d.render(w, r, http.StatusOK, "history", page{Title: "History", Nav: "history", Data: data})
}

// outcomes are the webhook outcomes the webhooks page filters by.
var outcomes = []store.Outcome{store.OutcomeAccepted, store.OutcomeIgnored, store.OutcomeRejected, store.OutcomeDuplicate, store.OutcomeSuperseded}

func (d *Dashboard) webhooks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.WebhookFilter{Limit: historyPage + 1, Forge: q.Get("forge"), Fraise: q.Get("fraise"), Outcome: store.Outcome(q.Get("outcome"))}
	if f.Outcome != "" && !slices.Contains(outcomes, f.Outcome) {
		d.problem(w, r, http.StatusBadRequest, "Bad filter", "outcome must be one of accepted, ignored, rejected, duplicate, superseded.")
		return
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			d.problem(w, r, http.StatusBadRequest, "Bad filter", "before must be a delivery id (a positive integer).")
			return
		}
		f.BeforeID = n
	}
	rows, err := d.o.Store.Webhooks(r.Context(), f)
	if err != nil {
		d.internalError(w, r, "read the webhook deliveries", err)
		return
	}
	next := ""
	if len(rows) > historyPage {
		rows = rows[:historyPage]
		keep := url.Values{}
		for _, k := range []string{"forge", "fraise", "outcome"} {
			if v := q.Get(k); v != "" {
				keep.Set(k, v)
			}
		}
		keep.Set("before", strconv.FormatInt(rows[historyPage-1].ID, 10))
		next = Prefix + "webhooks?" + keep.Encode()
	}
	d.render(w, r, http.StatusOK, "webhooks", page{Title: "Webhooks", Nav: "webhooks",
		Data: map[string]any{"Rows": rows, "Next": next, "Filter": f, "Outcomes": outcomes}})
}
