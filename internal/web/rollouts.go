package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// rolloutReader is what the rollouts page and the overview's host rows
// read beyond Store; without it they say the state keeps no rollouts.
type rolloutReader interface {
	Nodes(ctx context.Context) ([]store.Node, error)
	Rollouts(ctx context.Context, f store.RolloutFilter) ([]store.Rollout, error)
	Rollout(ctx context.Context, id int64) (store.Rollout, error)
}

// rolloutsPage is how many rollouts the rollouts page lists.
const rolloutsPage = 50

// nodeLiveness judges nodes against a timeout: alive while their last
// heartbeat is younger.
type nodeLiveness struct {
	nodes   map[string]store.Node
	timeout time.Duration
	now     time.Time
}

// readNodes reads the nodes; cfg gives the timeout (its largest
// node_timeout).
func (d *Dashboard) readNodes(ctx context.Context, cfg *config.Config) (nodeLiveness, error) {
	rr, ok := d.o.Store.(rolloutReader)
	if !ok {
		return nodeLiveness{}, errors.New("the state database keeps no nodes")
	}
	nodes, err := rr.Nodes(ctx)
	if err != nil {
		return nodeLiveness{}, fmt.Errorf("read nodes: %w", err)
	}
	nl := nodeLiveness{nodes: map[string]store.Node{}, timeout: cfg.NodeTimeout(), now: time.Now()}
	for _, n := range nodes {
		nl.nodes[n.Name] = n
	}
	return nl, nil
}

// word says alive, dead, or unknown (never reported) for host's node.
func (nl nodeLiveness) word(host string) string {
	n, ok := nl.nodes[host]
	switch {
	case !ok:
		return "unknown"
	case nl.now.Sub(n.HeartbeatAt) < nl.timeout:
		return "alive"
	}
	return "dead"
}

// rolloutRow is one rollout as the pages show it.
type rolloutRow struct {
	store.Rollout
	Done, Batches int
	Nodes         map[string]string // host -> alive, dead, unknown
}

// newRolloutRow is r as the rollouts page shows it.
func newRolloutRow(r store.Rollout, nl nodeLiveness) rolloutRow {
	row := rolloutRow{Rollout: r, Nodes: map[string]string{}}
	for _, h := range r.Hosts {
		if h.Status == store.HostSucceeded {
			row.Done++
		}
		row.Batches = max(row.Batches, h.Batch+1)
		row.Nodes[h.Host] = nl.word(h.Host)
	}
	return row
}

// BatchNow is the current batch, 1-based.
func (r rolloutRow) BatchNow() int { return min(r.Batch+1, r.Batches) }

// rollouts is /ui/rollouts: the newest rollouts and their progress.
func (d *Dashboard) rollouts(w http.ResponseWriter, r *http.Request) {
	rr, ok := d.o.Store.(rolloutReader)
	if !ok {
		d.problem(w, r, http.StatusNotImplemented, "No rollouts", "This server's state database keeps no rollouts.")
		return
	}
	nl, err := d.readNodes(r.Context(), d.o.Config())
	if err != nil {
		d.internalError(w, r, "read the nodes", err)
		return
	}
	rs, err := rr.Rollouts(r.Context(), store.RolloutFilter{Limit: rolloutsPage})
	if err != nil {
		d.internalError(w, r, "read the rollouts", err)
		return
	}
	rows := make([]rolloutRow, 0, len(rs))
	for _, ro := range rs {
		rows = append(rows, newRolloutRow(ro, nl))
	}
	d.render(w, r, http.StatusOK, "rollouts", page{Title: "Rollouts", Nav: "rollouts", Data: rows})
}

// rollout is /ui/rollouts/{id}: one rollout, host by host.
func (d *Dashboard) rollout(w http.ResponseWriter, r *http.Request) {
	rr, ok := d.o.Store.(rolloutReader)
	if !ok {
		d.problem(w, r, http.StatusNotImplemented, "No rollouts", "This server's state database keeps no rollouts.")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		d.problem(w, r, http.StatusBadRequest, "Bad rollout id", "A rollout id is a positive integer.")
		return
	}
	ro, err := rr.Rollout(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		d.problem(w, r, http.StatusNotFound, "No such rollout", fmt.Sprintf("There is no rollout %d.", id))
		return
	}
	if err != nil {
		d.internalError(w, r, "read the rollout", err)
		return
	}
	nl, err := d.readNodes(r.Context(), d.o.Config())
	if err != nil {
		d.internalError(w, r, "read the nodes", err)
		return
	}
	d.render(w, r, http.StatusOK, "rollout", page{Title: fmt.Sprintf("Rollout %d", id), Nav: "rollouts", Data: newRolloutRow(ro, nl)})
}

// hostHealthReader is what the overview reads of the health each node
// records of its own host; without it another host's health is unknown.
type hostHealthReader interface {
	HostHealth(ctx context.Context) ([]store.HostHealth, error)
}

// fillNodes sets the node liveness of the overview's host rows, and the
// health recorded by their nodes for the hosts not this server's own; it
// reads the nodes only when there is a host row.
func (d *Dashboard) fillNodes(ctx context.Context, cfg *config.Config, rows []targetRow) error {
	hasHost := false
	for _, row := range rows {
		hasHost = hasHost || row.Host != ""
	}
	if !hasHost {
		return nil
	}
	nl, err := d.readNodes(ctx, cfg)
	if err != nil {
		return err
	}
	recs, err := d.hostHealth(ctx)
	if err != nil {
		return err
	}
	for i := range rows {
		row := &rows[i]
		if row.Host == "" {
			continue
		}
		row.Node = nl.word(row.Host)
		if row.Host == d.o.Node {
			continue
		}
		env, err := cfg.Lookup(row.Fraise, row.Environment)
		var rec *store.HostHealth
		if h, ok := recs[row.Target]; ok {
			rec = &h
		}
		row.Health = recorded(store.SeeHostHealth(rec, err == nil && env.HealthCheck != nil, row.Node == "alive", nl.now), nl.now)
	}
	return nil
}

// hostHealth reads the health each node recorded of its host, by target.
func (d *Dashboard) hostHealth(ctx context.Context) (map[store.Target]store.HostHealth, error) {
	m := map[store.Target]store.HostHealth{}
	hr, ok := d.o.Store.(hostHealthReader)
	if !ok {
		return m, nil
	}
	recs, err := hr.HostHealth(ctx)
	if err != nil {
		return nil, fmt.Errorf("read host health: %w", err)
	}
	for _, h := range recs {
		m[h.Target] = h
	}
	return m, nil
}
