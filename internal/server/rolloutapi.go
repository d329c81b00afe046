package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// rolloutStore is what the nodes and rollouts API needs of the state
// database beyond Store; a store that lacks it answers 501.
type rolloutStore interface {
	Nodes(ctx context.Context) ([]store.Node, error)
	Rollouts(ctx context.Context, f store.RolloutFilter) ([]store.Rollout, error)
	Rollout(ctx context.Context, id int64) (store.Rollout, error)
	ResumeRollout(ctx context.Context, id int64, actor string) error
}

// NodeJSON is the stable JSON shape of one node: its last heartbeat and
// whether that is recent enough for the node to count as alive.
type NodeJSON struct {
	store.Node
	Alive bool `json:"alive"`
	// HeartbeatAgeMS is how long ago the last heartbeat was.
	HeartbeatAgeMS int64 `json:"heartbeat_age_ms"`
}

// NodeView judges n alive when its last heartbeat is younger than timeout.
func NodeView(n store.Node, now time.Time, timeout time.Duration) NodeJSON {
	age := max(now.Sub(n.HeartbeatAt), 0)
	n.StartedAt, n.HeartbeatAt = n.StartedAt.UTC(), n.HeartbeatAt.UTC()
	return NodeJSON{Node: n, Alive: age < timeout, HeartbeatAgeMS: age.Milliseconds()}
}

// RolloutJSON is the stable JSON shape of a rollout: the store's record,
// its hosts with their node's liveness, and its progress in one line.
type RolloutJSON struct {
	store.Rollout
	// Hosts replaces the record's hosts (a shallower field wins in JSON).
	Hosts      []RolloutHostJSON `json:"hosts"`
	HostsDone  int               `json:"hosts_done"`
	HostsTotal int               `json:"hosts_total"`
	// Batches is how many batches the rollout has; Batch (0-based) is the
	// current one.
	Batches  int    `json:"batches"`
	Progress string `json:"progress"`
}

// RolloutHostJSON is one host of a rollout, with the commit it goes to
// and whether its node is alive (absent: the node never reported).
type RolloutHostJSON struct {
	store.RolloutHost
	NewSHA    string `json:"new_sha"`
	NodeAlive *bool  `json:"node_alive,omitempty"`
	// The host's health as its node last recorded it (one rollout's view
	// only: GET /api/rollouts/{id}, fraisier rollout show).
	HostHealthJSON
}

// RolloutView builds the JSON shape of r; nodes are the known nodes by
// name, judged alive when younger than the rollout's node_timeout (else
// timeout).
func RolloutView(r store.Rollout, nodes map[string]store.Node, now time.Time, timeout time.Duration) RolloutJSON {
	out := RolloutJSON{Rollout: r, Hosts: make([]RolloutHostJSON, 0, len(r.Hosts)), HostsTotal: len(r.Hosts)}
	out.Rollout.Hosts = nil
	if r.Policy.NodeTimeout > 0 {
		// A rollout's hosts are alive or dead as the rollout judges them.
		timeout = r.Policy.NodeTimeout
	}
	for _, h := range r.Hosts {
		hj := RolloutHostJSON{RolloutHost: h, NewSHA: r.SHA}
		if n, ok := nodes[h.Host]; ok {
			alive := NodeView(n, now, timeout).Alive
			hj.NodeAlive = &alive
		}
		if h.Status == store.HostSucceeded {
			out.HostsDone++
		}
		out.Batches = max(out.Batches, h.Batch+1)
		out.Hosts = append(out.Hosts, hj)
	}
	out.Progress = RolloutProgress(r, out.HostsDone, out.Batches)
	return out
}

// RolloutProgress is a rollout's progress in one line:
// "rollout 12: 2/3 hosts, batch 2 of 3, running".
func RolloutProgress(r store.Rollout, done, batches int) string {
	s := fmt.Sprintf("rollout %d: %d/%d hosts", r.ID, done, len(r.Hosts))
	if batches > 0 {
		s += fmt.Sprintf(", batch %d of %d", min(r.Batch+1, batches), batches)
	}
	s += ", " + string(r.Status)
	switch {
	case r.WaitingResume:
		s += fmt.Sprintf(", waiting for fraisier rollout resume %d", r.ID)
	case r.NextAt != nil && r.FinishedAt == nil:
		s += ", next batch at " + r.NextAt.UTC().Format(time.RFC3339)
	}
	return s
}

// registerRolloutAPI adds the nodes and rollouts API to mux.
func (s *Server) registerRolloutAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/nodes", s.handleNodes)
	mux.HandleFunc("GET /api/rollouts", s.handleRollouts)
	mux.HandleFunc("GET /api/rollouts/{id}", s.handleRollout)
	mux.HandleFunc("POST /api/rollouts/{id}/resume", s.handleRolloutResume)
}

// rollouts is the rollout store, or answers 501 (ok false).
func (s *Server) rollouts(w http.ResponseWriter) (rolloutStore, bool) {
	db, ok := s.store.(rolloutStore)
	if !ok {
		s.reply(w, http.StatusNotImplemented, apiError{"this server's state database keeps no nodes or rollouts"})
	}
	return db, ok
}

// nodesByName reads the nodes and the liveness timeout in force.
func (s *Server) nodesByName(ctx context.Context, db rolloutStore) (map[string]store.Node, []store.Node, time.Duration, error) {
	nodes, err := db.Nodes(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	by := make(map[string]store.Node, len(nodes))
	for _, n := range nodes {
		by[n.Name] = n
	}
	return by, nodes, s.table.Load().cfg.NodeTimeout(), nil
}

// handleNodes is GET /api/nodes: every node and its last heartbeat.
func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	db, ok := s.rollouts(w)
	if !ok {
		return
	}
	_, nodes, timeout, err := s.nodesByName(r.Context(), db)
	if err != nil {
		s.internalError(w, "read nodes", err)
		return
	}
	now := time.Now()
	out := make([]NodeJSON, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, NodeView(n, now, timeout))
	}
	s.reply(w, http.StatusOK, map[string]any{"nodes": out, "node_timeout_ms": timeout.Milliseconds()})
}

// handleRollouts is GET /api/rollouts?fraise=&environment=&active=&limit=.
func (s *Server) handleRollouts(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	db, ok := s.rollouts(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.RolloutFilter{Target: store.Target{Fraise: q.Get("fraise"), Environment: q.Get("environment")}, Limit: 50}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			s.reply(w, http.StatusBadRequest, apiError{"limit must be between 1 and 1000"})
			return
		}
		f.Limit = n
	}
	if v := q.Get("active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.reply(w, http.StatusBadRequest, apiError{"active must be true or false"})
			return
		}
		f.Active = b
	}
	rs, err := db.Rollouts(r.Context(), f)
	if err != nil {
		s.internalError(w, "list rollouts", err)
		return
	}
	nodes, _, timeout, err := s.nodesByName(r.Context(), db)
	if err != nil {
		s.internalError(w, "read nodes", err)
		return
	}
	now := time.Now()
	out := make([]RolloutJSON, 0, len(rs))
	for _, ro := range rs {
		out = append(out, RolloutView(ro, nodes, now, timeout))
	}
	s.reply(w, http.StatusOK, map[string]any{"rollouts": out})
}

// rolloutOf reads the rollout the path's {id} names, answering 400 or 404
// itself (ok false).
func (s *Server) rolloutOf(w http.ResponseWriter, r *http.Request, db rolloutStore) (store.Rollout, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.reply(w, http.StatusBadRequest, apiError{"rollout id must be a positive integer"})
		return store.Rollout{}, false
	}
	ro, err := db.Rollout(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.reply(w, http.StatusNotFound, apiError{fmt.Sprintf("no rollout %d", id)})
		return store.Rollout{}, false
	}
	if err != nil {
		s.internalError(w, "read rollout", err)
		return store.Rollout{}, false
	}
	return ro, true
}

// handleRollout is GET /api/rollouts/{id}: one rollout with its hosts.
func (s *Server) handleRollout(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	db, ok := s.rollouts(w)
	if !ok {
		return
	}
	s.replyRollout(w, r, db, http.StatusOK)
}

// replyRollout answers the rollout of the path's {id} with its hosts'
// node liveness.
func (s *Server) replyRollout(w http.ResponseWriter, r *http.Request, db rolloutStore, status int) {
	ro, ok := s.rolloutOf(w, r, db)
	if !ok {
		return
	}
	nodes, _, timeout, err := s.nodesByName(r.Context(), db)
	if err != nil {
		s.internalError(w, "read nodes", err)
		return
	}
	v := RolloutView(ro, nodes, time.Now(), timeout)
	cfg := s.table.Load().cfg
	hh, err := s.hostHealths(r.Context(), cfg)
	if err != nil {
		s.internalError(w, "read host health", err)
		return
	}
	hh.FillRollout(cfg, &v)
	s.reply(w, status, map[string]any{"rollout": v})
}

// handleRolloutResume is POST /api/rollouts/{id}/resume: a rollout
// waiting after its canary goes on. The token needs the deploy scope of
// the rollout's environment.
func (s *Server) handleRolloutResume(w http.ResponseWriter, r *http.Request) {
	tok, _, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	db, ok := s.rollouts(w)
	if !ok {
		return
	}
	ro, ok := s.rolloutOf(w, r, db)
	if !ok {
		return
	}
	if !tok.Allows(store.ScopeDeploy, ro.Target) {
		s.log.Warn("api: refused, out of the token's scopes", "token", tok.Name, "action", "resume", "rollout", ro.ID)
		s.reply(w, http.StatusForbidden, apiError{fmt.Sprintf("token %s may not resume rollout %d of %s: it needs the scope %s:%s",
			tok.Name, ro.ID, ro.Target, store.ScopeDeploy, ro.Target)})
		return
	}
	if !ro.WaitingResume {
		s.reply(w, http.StatusConflict, apiError{fmt.Sprintf("rollout %d is not waiting for a resume (it is %s)", ro.ID, ro.Status)})
		return
	}
	if err := db.ResumeRollout(r.Context(), ro.ID, tok.Name); err != nil {
		s.log.Error("api: resume rollout", "token", tok.Name, "rollout", ro.ID, "err", err)
		s.reply(w, http.StatusServiceUnavailable, apiError{"the rollout could not be resumed; retry"})
		return
	}
	if s.runner != nil {
		s.runner.Wake()
	}
	s.log.Info("api", "action", "resume", "token", tok.Name, "rollout", ro.ID, "fraise", ro.Fraise, "environment", ro.Environment)
	s.replyRollout(w, r, db, http.StatusOK)
}
