package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/web"
)

// webTokenKey carries the token of a dashboard session into the deploy
// API's handlers: only this process can set it, after the dashboard
// checked the session.
type webTokenKey struct{}

// webToken is the dashboard session's token the request carries, if any.
func webToken(r *http.Request) (store.APIToken, bool) {
	tok, ok := r.Context().Value(webTokenKey{}).(store.APIToken)
	return tok, ok
}

// LiveState is what an environment's health check and units say now.
type LiveState = web.LiveState

// DashboardHooks are what the dashboard's overview reads beyond the
// state database; a hook left nil leaves its column empty.
type DashboardHooks struct {
	// Subjects reads commit subjects (by full SHA) from an environment's
	// git mirror, leaving out those it cannot read.
	Subjects func(ctx context.Context, fraise, environment string, shas ...string) map[string]string
	// Live asks an environment's health check and units now, within ctx.
	Live func(ctx context.Context, fraise, environment string) LiveState
	// Node is this server's node name: the overview asks Live about an
	// environment's host only on that host's node.
	Node string
}

// dashboard is the web dashboard over the server's store, or nil when
// the store lacks what it reads.
func (s *Server) dashboard(hooks DashboardHooks) (http.Handler, error) {
	db, ok := s.store.(web.Store)
	if !ok {
		return nil, nil
	}
	return web.New(web.Options{
		Store:     db,
		Config:    func() *config.Config { return s.table.Load().cfg },
		ReadToken: s.apiToken,
		HTTPS:     s.overHTTPS,
		Act:       s.webAct,
		Allow:     func(r *http.Request) bool { return s.limits.allow(sourceOf(s.clientAddr(r)), time.Now()) },
		Log:       s.log,
		LiveLog:   s.LiveLog,
		Subjects:  hooks.Subjects,
		Live:      hooks.Live,
		Timers:    web.NewTimers(s.timers),
		Node:      hooks.Node,
	})
}

// overHTTPS says whether the request came over TLS, or through a trusted
// proxy that says it received it over HTTPS.
func (s *Server) overHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	addr, err := netip.ParseAddr(peer)
	return err == nil && s.trusted(addr) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// webAct runs one of the deploy API's handlers for a dashboard session:
// the same scopes, lock checks and queueing as a request with the token.
func (s *Server) webAct(r *http.Request, tok store.APIToken, action string, fields map[string]string) (int, []byte) {
	handlers := map[string]http.HandlerFunc{"deploy": s.handleAPIDeploy, "rollback": s.handleAPIRollback, "lock": s.handleAPILock, "unlock": s.handleAPIUnlock}
	h, ok := handlers[action]
	if !ok {
		return http.StatusNotFound, []byte(`{"error":"no such action"}`)
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"error":"encode the request"}`)
	}
	req, err := http.NewRequestWithContext(context.WithValue(r.Context(), webTokenKey{}, tok), http.MethodPost, "/api/"+action, bytes.NewReader(body))
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"error":"build the request"}`)
	}
	req.RemoteAddr = r.RemoteAddr
	req.Header.Set("Content-Type", "application/json")
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto"} {
		req.Header[k] = r.Header.Values(k)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h(rec, req)
	return rec.status, rec.body.Bytes()
}

// recorder keeps a handler's answer for webAct.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (rc *recorder) Header() http.Header { return rc.header }

func (rc *recorder) WriteHeader(status int) {
	if !rc.wrote {
		rc.status, rc.wrote = status, true
	}
}

func (rc *recorder) Write(b []byte) (int, error) {
	rc.WriteHeader(http.StatusOK)
	return rc.body.Write(b)
}
