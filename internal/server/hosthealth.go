package server

import (
	"context"
	"fmt"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

// HostHealthReader is what the views read of the health each node
// records of its own host, and of the nodes' liveness.
type HostHealthReader interface {
	HostHealth(ctx context.Context) ([]store.HostHealth, error)
	Nodes(ctx context.Context) ([]store.Node, error)
}

// HostHealthJSON is the stable JSON shape of a host's health: what its own
// node last recorded, judged now (store.SeeHostHealth: stale, or its node
// dead, is unknown). Every field is absent on a row without a host.
type HostHealthJSON struct {
	// Health is healthy, unhealthy or unknown.
	Health string `json:"health,omitempty"`
	// HealthDetail says why it is unhealthy or unknown.
	HealthDetail string `json:"health_detail,omitempty"`
	// HealthCheckedAt and HealthByNode are the last probe's, stale or not.
	HealthCheckedAt *time.Time `json:"health_checked_at,omitempty"`
	HealthByNode    string     `json:"health_by_node,omitempty"`
}

// HostHealths are the views' inputs for the health of hosts: the recorded
// probes by target, the nodes by name and the liveness timeout.
type HostHealths struct {
	Records map[store.Target]store.HostHealth
	Nodes   map[string]store.Node
	Timeout time.Duration
	Now     time.Time
}

// ReadHostHealths reads the recorded probes and the nodes of db.
func ReadHostHealths(ctx context.Context, db HostHealthReader, timeout time.Duration) (HostHealths, error) {
	hh := HostHealths{Records: map[store.Target]store.HostHealth{}, Nodes: map[string]store.Node{}, Timeout: timeout, Now: time.Now()}
	recs, err := db.HostHealth(ctx)
	if err != nil {
		return hh, err
	}
	for _, h := range recs {
		hh.Records[h.Target] = h
	}
	nodes, err := db.Nodes(ctx)
	if err != nil {
		return hh, fmt.Errorf("read nodes: %w", err)
	}
	for _, n := range nodes {
		hh.Nodes[n.Name] = n
	}
	return hh, nil
}

// NodeAlive says whether host's node is alive; nil when it never reported.
func (hh HostHealths) NodeAlive(host string) *bool {
	n, ok := hh.Nodes[host]
	if !ok {
		return nil
	}
	alive := NodeView(n, hh.Now, hh.Timeout).Alive
	return &alive
}

// Of judges the health of t, a target env@host of cfg on host. Without a
// configuration (nil cfg), a target is taken to have a health check when
// a probe of it is recorded.
func (hh HostHealths) Of(cfg *config.Config, t store.Target, host string) HostHealthJSON {
	var rec *store.HostHealth
	if h, ok := hh.Records[t]; ok {
		rec = &h
	}
	hasCheck := rec != nil
	if cfg != nil {
		env, err := cfg.Lookup(t.Fraise, t.Environment)
		hasCheck = err == nil && env.HealthCheck != nil
	}
	alive := hh.NodeAlive(host)
	return HostHealthView(store.SeeHostHealth(rec, hasCheck, alive != nil && *alive, hh.Now))
}

// HostHealthView is s in its JSON shape.
func HostHealthView(s store.HealthSeen) HostHealthJSON {
	return HostHealthJSON{Health: s.Word, HealthDetail: s.Detail, HealthCheckedAt: s.CheckedAt, HealthByNode: s.By}
}

// FillRollout sets the health of each host of v (cfg may be nil).
func (hh HostHealths) FillRollout(cfg *config.Config, v *RolloutJSON) {
	for i := range v.Hosts {
		h := &v.Hosts[i]
		t := store.Target{Fraise: v.Fraise, Environment: v.Environment + config.HostSep + h.Host}
		h.HostHealthJSON = hh.Of(cfg, t, h.Host)
	}
}
