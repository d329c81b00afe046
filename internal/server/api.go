package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
	"github.com/fraiseql/fraisier/internal/store"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.reply(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers 200 only when a delivery would be recorded and run:
// the state database answers and the queue workers are running.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "workers": "ok"}
	ok := true
	if err := s.store.Ping(ctx); err != nil {
		// The detail (hosts, users) stays in the log: /ready is open.
		s.log.Warn("ready: state database unreachable", "err", err)
		checks["database"], ok = "unreachable", false
	}
	if s.runner != nil && !s.runner.Ready() {
		checks["workers"], ok = "not running", false
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	s.reply(w, status, map[string]any{"ready": ok, "checks": checks})
}

type providerJSON struct {
	Forge      string `json:"forge"`
	Configured bool   `json:"configured"`
	Path       string `json:"path"`
}

// handleProviders says which forges this server accepts and where to
// post them. How each authenticates (how many secrets, whether unsigned
// deliveries pass) is not said: it would tell an attacker where to aim.
// With an API token set it needs the token, like /api/*.
func (s *Server) handleProviders(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var out []providerJSON
	keys := s.table.Load().keys
	for _, k := range forge.Kinds() {
		out = append(out, providerJSON{Forge: string(k), Configured: keys[k].configured, Path: "/webhook/" + string(k)})
	}
	s.reply(w, http.StatusOK, map[string]any{"providers": out})
}

// authorized checks the API's bearer token when one is configured; a
// deploy API token with the read scope reads it too.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.tokenReads(r) {
		return true
	}
	if len(s.apiToken) == 0 {
		if s.openAPI || localRequest(r) {
			return true
		}
		s.reply(w, http.StatusForbidden, map[string]string{
			"error": "without server.api_token only requests from this host itself are answered, and this one came through a proxy or from another host: set server.api_token"})
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(got), s.apiToken) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="fraisier"`)
	s.reply(w, http.StatusUnauthorized, map[string]string{"error": "a valid bearer token is required"})
	return false
}

type fraiseJSON struct {
	Fraise       string            `json:"fraise"`
	Type         config.FraiseType `json:"type"`
	Environments []EnvironmentJSON `json:"environments"`
}

// EnvironmentJSON is one target of GET /api/fraises: its recorded state
// and, for a host of an environment with hosts (env@host), the host,
// whether its node is alive (absent: it never reported) and its health.
type EnvironmentJSON struct {
	store.FraiseState
	Host      string `json:"host,omitempty"`
	NodeAlive *bool  `json:"node_alive,omitempty"`
	HostHealthJSON
}

func (s *Server) handleFraises(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	states, err := s.store.FraiseStates(r.Context(), "", "")
	if err != nil {
		s.internalError(w, "read fraise states", err)
		return
	}
	byTarget := map[store.Target]store.FraiseState{}
	for _, st := range states {
		byTarget[st.Target] = st
	}
	out := []fraiseJSON{}
	cfg := s.table.Load().cfg
	hh, err := s.hostHealths(r.Context(), cfg)
	if err != nil {
		s.internalError(w, "read host health", err)
		return
	}
	for _, name := range cfg.FraiseNames() {
		f := cfg.Fraises[name]
		fj := fraiseJSON{Fraise: name, Type: f.Type, Environments: []EnvironmentJSON{}}
		for _, e := range f.EnvironmentNames() {
			env := f.Environments[e]
			if !env.HasHosts() {
				fj.Environments = append(fj.Environments, EnvironmentJSON{FraiseState: stateOf(byTarget, store.Target{Fraise: name, Environment: e})})
				continue
			}
			// An environment with hosts is one target per host (env@host).
			for _, h := range env.Hosts {
				t := store.Target{Fraise: name, Environment: env.HostTarget(h)}
				fj.Environments = append(fj.Environments, EnvironmentJSON{FraiseState: stateOf(byTarget, t), Host: h,
					NodeAlive: hh.NodeAlive(h), HostHealthJSON: hh.Of(cfg, t, h)})
			}
		}
		out = append(out, fj)
	}
	s.reply(w, http.StatusOK, map[string]any{"fraises": out})
}

// stateOf is t's recorded state, or "never" when none is recorded.
func stateOf(byTarget map[store.Target]store.FraiseState, t store.Target) store.FraiseState {
	if st, ok := byTarget[t]; ok {
		return st
	}
	return store.FraiseState{Target: t, Status: "never"}
}

// hostHealths reads the hosts' recorded health and their nodes when cfg
// has an environment with hosts; a store that keeps neither shows every
// host unknown.
func (s *Server) hostHealths(ctx context.Context, cfg *config.Config) (HostHealths, error) {
	hh := HostHealths{Timeout: cfg.NodeTimeout(), Now: time.Now()}
	db, ok := s.store.(HostHealthReader)
	if !ok || !slices.ContainsFunc(cfg.Environments(), (*config.Environment).HasHosts) {
		return hh, nil
	}
	return ReadHostHealths(ctx, db, cfg.NodeTimeout())
}

func (s *Server) handleDeployments(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	f := store.DeploymentFilter{Fraise: q.Get("fraise"), Environment: q.Get("environment"), Status: store.Status(q.Get("status"))}
	for name, dst := range map[string]*int64{"before": &f.BeforeID} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				s.reply(w, http.StatusBadRequest, map[string]string{"error": name + " must be a positive integer"})
				return
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			s.reply(w, http.StatusBadRequest, map[string]string{"error": "limit must be between 1 and 1000"})
			return
		}
		f.Limit = n
	}
	if f.Status != "" && !slices.Contains(store.TerminalStatuses(), f.Status) && f.Status != store.StatusQueued && f.Status != store.StatusRunning {
		s.reply(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("unknown status %q", clip(string(f.Status), 40))})
		return
	}
	ds, err := s.store.Deployments(r.Context(), f)
	if err != nil {
		s.internalError(w, "list deployments", err)
		return
	}
	if ds == nil {
		ds = []store.Deployment{}
	}
	s.reply(w, http.StatusOK, map[string]any{"deployments": ds})
}

func (s *Server) handleDeployment(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.reply(w, http.StatusBadRequest, map[string]string{"error": "deployment id must be a positive integer"})
		return
	}
	d, err := s.store.Deployment(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.reply(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no deployment %d", id)})
		return
	}
	if err != nil {
		s.internalError(w, "read deployment", err)
		return
	}
	steps, err := s.store.Steps(r.Context(), id)
	if err != nil {
		s.internalError(w, "read steps", err)
		return
	}
	if steps == nil {
		steps = []store.Step{}
	}
	s.reply(w, http.StatusOK, map[string]any{"deployment": d, "steps": steps})
}

func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	s.log.Error(what, "err", err)
	s.reply(w, http.StatusInternalServerError, map[string]string{"error": what + " failed; see the server log"})
}
