package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
)

// apiStore is what the deploy API needs of the state database beyond
// Store; the server's database has it, a store that lacks it serves the
// read API only.
type apiStore interface {
	AuthenticateAPIToken(ctx context.Context, secret string) (store.APIToken, error)
	Enqueue(ctx context.Context, r store.QueueRequest) (store.Queued, error)
	Locks(ctx context.Context) ([]store.Lock, error)
	AcquireLock(ctx context.Context, l store.Lock, ttl time.Duration, holderDead func(store.Lock) bool) (store.Lock, error)
	ForceUnlock(ctx context.Context, t store.Target, reason string) (store.Lock, error)
	RecentReleases(ctx context.Context, t store.Target, limit int) ([]store.Release, error)
}

// apiLockTTL is how long a lock taken through the API lasts: until it is
// unlocked, in practice, as one taken with fraisier lock.
const apiLockTTL = 100 * 365 * 24 * time.Hour

// apiBodyLimit bounds a deploy API request's body: a few names.
const apiBodyLimit = 16 << 10

// operatorPrefix starts the owner of a lock an operator took, by hand or
// through the API, as opposed to a deployment's.
const operatorPrefix = "operator:"

// refTimeout bounds the question to the repository that turns a branch
// into the commit queued.
const refTimeout = 30 * time.Second

// apiError is the body of every refused deploy API request.
type apiError struct {
	Error string `json:"error"`
}

// apiCall is one authenticated deploy API request: who, and on what.
type apiCall struct {
	token  store.APIToken
	target store.Target
	env    *config.Environment
	db     apiStore
}

// bearer is the request's bearer token, or "".
func bearer(r *http.Request) string {
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return strings.TrimSpace(got)
}

// authenticate answers the request itself (ok false) unless it is within
// the rate limit and carries a live deploy API token.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (tok store.APIToken, db apiStore, ok bool) {
	if !s.limits.allow(sourceOf(s.clientAddr(r)), time.Now()) {
		w.Header().Set("Retry-After", "1")
		s.reply(w, http.StatusTooManyRequests, apiError{"too many requests: rate limit (server.rate_limit); retry"})
		return tok, nil, false
	}
	db, ok = s.store.(apiStore)
	if !ok {
		s.reply(w, http.StatusNotImplemented, apiError{"this server has no deploy API"})
		return tok, nil, false
	}
	if tok, ok := webToken(r); ok {
		return tok, db, true
	}
	secret := bearer(r)
	unauthorized := func(msg string) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fraisier"`)
		s.reply(w, http.StatusUnauthorized, apiError{msg})
	}
	switch {
	case secret == "":
		unauthorized("a deploy API token is required (Authorization: Bearer ...): fraisier tokens create NAME --scope deploy:FRAISE/ENV")
		return tok, nil, false
	case len(s.apiToken) > 0 && subtle.ConstantTimeCompare([]byte(secret), s.apiToken) == 1:
		s.reply(w, http.StatusForbidden, apiError{"server.api_token reads the API only: deploy with a token of fraisier tokens create NAME --scope deploy:FRAISE/ENV"})
		return tok, nil, false
	}
	tok, err := db.AuthenticateAPIToken(r.Context(), secret)
	switch {
	case errors.Is(err, store.ErrTokenRevoked):
		s.log.Warn("api: revoked token used", "token", tok.Name, "remote", s.clientAddr(r))
		unauthorized("this token was revoked: ask for a new one (fraisier tokens create)")
		return tok, nil, false
	case errors.Is(err, store.ErrNotFound):
		unauthorized("unknown token: fraisier tokens list shows the tokens this server knows")
		return tok, nil, false
	case err != nil:
		s.log.Error("api: authenticate a token", "err", err)
		s.reply(w, http.StatusServiceUnavailable, apiError{"the token could not be checked; retry"})
		return tok, nil, false
	}
	return tok, db, true
}

// begin authenticates an API request, reads its body into body and
// checks that the token may do action on the environment the body names,
// answering the request itself when not (ok false).
func (s *Server) begin(w http.ResponseWriter, r *http.Request, action string, body targeted) (apiCall, bool) {
	var c apiCall
	tok, db, ok := s.authenticate(w, r)
	if !ok {
		return c, false
	}
	c.token, c.db = tok, db
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, apiBodyLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(body); err != nil {
		s.reply(w, http.StatusBadRequest, apiError{"the body must be one JSON object: " + clip(err.Error(), 200)})
		return c, false
	}
	c.target = body.targetOf()
	if c.target.Fraise == "" || c.target.Environment == "" {
		s.reply(w, http.StatusBadRequest, apiError{`"fraise" and "environment" are required`})
		return c, false
	}
	if !tok.Allows(action, c.target) {
		s.log.Warn("api: refused, out of the token's scopes", "token", tok.Name, "action", action,
			"fraise", clip(c.target.Fraise, 80), "environment", clip(c.target.Environment, 80))
		s.reply(w, http.StatusForbidden, apiError{fmt.Sprintf("token %s may not %s %s: it needs the scope %s:%s",
			tok.Name, action, clip(c.target.String(), 120), action, clip(c.target.String(), 120))})
		return c, false
	}
	env, err := s.table.Load().cfg.Lookup(c.target.Fraise, c.target.Environment)
	if err != nil {
		s.reply(w, http.StatusNotFound, apiError{fmt.Sprintf("no environment %s in this server's configuration", clip(c.target.String(), 120))})
		return c, false
	}
	c.env = env
	return c, true
}

// targeted is a request body that names a target.
type targeted interface{ targetOf() store.Target }

// targetBody is the part of every request body that names the target.
type targetBody struct {
	Fraise      string `json:"fraise"`
	Environment string `json:"environment"`
}

func (b *targetBody) targetOf() store.Target {
	return store.Target{Fraise: b.Fraise, Environment: b.Environment}
}

type deployBody struct {
	targetBody
	Ref string `json:"ref"`
}

type lockBody struct {
	targetBody
	Reason string `json:"reason"`
}

// queuedJSON is the answer to a deploy or rollback the API queued.
type queuedJSON struct {
	DeploymentID int64 `json:"deployment_id"`
	// RolloutID is the rollout a deploy of an environment with hosts
	// queued (DeploymentID is then 0).
	RolloutID   int64  `json:"rollout_id,omitempty"`
	Fraise      string `json:"fraise"`
	Environment string `json:"environment"`
	SHA         string `json:"sha"`
	Ref         string `json:"ref,omitempty"`
	// Superseded is the waiting request this one replaced.
	Superseded int64  `json:"superseded,omitempty"`
	StatusURL  string `json:"status_url"`
	LogsURL    string `json:"logs_url"`
}

// handleAPIDeploy queues a deployment of the environment at ref (its
// branch's head by default), as a push would.
func (s *Server) handleAPIDeploy(w http.ResponseWriter, r *http.Request) {
	var body deployBody
	c, ok := s.begin(w, r, store.ScopeDeploy, &body)
	if !ok {
		return
	}
	if !s.checkUnlocked(w, r, c) {
		return
	}
	sha, ref, status, err := resolveRef(r.Context(), c.env, body.Ref)
	if err != nil {
		s.reply(w, status, apiError{err.Error()})
		return
	}
	q := store.QueueRequest{Target: c.target, SHA: sha, Ref: ref, Trigger: store.TriggerAPI, Actor: c.token.Name}
	if p, ok := queue.RolloutPolicy(c.env); ok {
		// An environment with hosts deploys as a push does: one rollout.
		q.Rollout = &p
	}
	s.enqueue(w, r, c, store.ScopeDeploy, q)
}

// enqueue queues q through the store's queue, as the intake does, wakes
// the workers and answers where to follow it.
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request, c apiCall, action string, q store.QueueRequest) {
	res, err := c.db.Enqueue(r.Context(), q)
	if err != nil {
		s.log.Error("api: queue", "token", c.token.Name, "fraise", q.Fraise, "environment", q.Environment, "err", err)
		s.reply(w, http.StatusServiceUnavailable, apiError{"the request could not be queued; retry"})
		return
	}
	if s.runner != nil {
		s.runner.Wake()
	}
	url := "/api/deployments/" + strconv.FormatInt(res.DeploymentID, 10)
	status := url
	if res.RolloutID != 0 {
		// Each host's step has its own logs; the rollout lists them.
		status = "/api/rollouts/" + strconv.FormatInt(res.RolloutID, 10)
		url = status
	}
	s.log.Info("api", "action", action, "token", c.token.Name, "fraise", q.Fraise, "environment", q.Environment,
		"sha", q.SHA, "ref", q.Ref, "deployment", res.DeploymentID, "rollout", res.RolloutID, "superseded", res.Superseded, "status", http.StatusAccepted)
	s.reply(w, http.StatusAccepted, queuedJSON{DeploymentID: res.DeploymentID, RolloutID: res.RolloutID, Fraise: q.Fraise, Environment: q.Environment,
		SHA: q.SHA, Ref: q.Ref, Superseded: res.Superseded, StatusURL: status, LogsURL: url})
}

// checkUnlocked answers 409 (ok false) when an operator holds the
// target's lock: the request would wait until someone unlocks it. A
// deployment's lock is no refusal: the request waits its turn.
func (s *Server) checkUnlocked(w http.ResponseWriter, r *http.Request, c apiCall) bool {
	locks, err := c.db.Locks(r.Context())
	if err != nil {
		s.internalError(w, "read locks", err)
		return false
	}
	now := time.Now()
	for _, l := range locks {
		if l.Target == c.target && strings.HasPrefix(l.Owner, operatorPrefix) && now.Before(l.ExpiresAt) {
			s.reply(w, http.StatusConflict, map[string]any{"error": fmt.Sprintf("%s is locked by %s since %s: %s (fraisier unlock, or POST /api/unlock)",
				c.target, l.Owner, l.AcquiredAt.UTC().Format(time.RFC3339), l.Reason), "lock": l})
			return false
		}
	}
	return true
}

// resolveRef is the commit to queue for ref and the full ref to record
// with it: a full commit as given; a branch (the environment's by
// default) at its head, asked of the repository. On error, status is the
// HTTP status to answer.
func resolveRef(ctx context.Context, env *config.Environment, ref string) (sha, full string, status int, err error) {
	switch {
	case git.IsSHA(ref):
		return ref, "", 0, nil
	case ref == "" && strings.ContainsAny(env.Branch, `*?[\`):
		return "", "", http.StatusBadRequest, fmt.Errorf(`%s deploys branches matching %q: name one in "ref"`, env.ID(), env.Branch)
	case ref == "":
		ref = env.Branch
	case strings.HasPrefix(ref, "refs/tags/"):
		return "", "", http.StatusBadRequest, fmt.Errorf(`ref %q: tags are not resolved by the API: send the tag's full commit SHA in "ref"`, clip(ref, 120))
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	if err := git.ValidateRef(branch); err != nil {
		return "", "", http.StatusBadRequest, fmt.Errorf(`"ref" must be a branch or a full commit SHA: %v`, err)
	}
	ctx, cancel := context.WithTimeout(ctx, refTimeout)
	defer cancel()
	sha, err = git.LsRemote(ctx, env.GitRepo, branch, git.Options{Timeout: refTimeout})
	switch {
	case errors.Is(err, git.ErrRefNotFound):
		return "", "", http.StatusNotFound, fmt.Errorf("no branch %s in %s's repository (for a tag or another ref, send its full commit SHA)", clip(branch, 120), env.ID())
	case err != nil:
		return "", "", http.StatusBadGateway, fmt.Errorf("the repository of %s did not answer which commit %s is at; retry", env.ID(), clip(branch, 120))
	}
	return sha, "refs/heads/" + branch, 0, nil
}

// lockOwner is the owner a lock taken with tok is recorded under.
func lockOwner(tok store.APIToken) string { return operatorPrefix + tok.Name + " via api" }

func (s *Server) handleAPILock(w http.ResponseWriter, r *http.Request) {
	var body lockBody
	c, ok := s.begin(w, r, store.ScopeLock, &body)
	if !ok {
		return
	}
	if strings.TrimSpace(body.Reason) == "" {
		s.reply(w, http.StatusBadRequest, apiError{`"reason" is required: others read it when their deploy is refused`})
		return
	}
	host, _ := os.Hostname()
	l := store.Lock{Target: c.target, Owner: lockOwner(c.token), Host: host, PID: os.Getpid(), Reason: clip(body.Reason, 500)}
	_, err := c.db.AcquireLock(r.Context(), l, apiLockTTL, func(store.Lock) bool { return false })
	var held *store.LockedError
	switch {
	case errors.As(err, &held):
		s.reply(w, http.StatusConflict, map[string]any{"error": held.Error(), "lock": held.Holder})
		return
	case err != nil:
		s.internalError(w, "take the lock", err)
		return
	}
	s.log.Info("api", "action", "lock", "token", c.token.Name, "fraise", c.target.Fraise, "environment", c.target.Environment,
		"reason", l.Reason, "status", http.StatusOK)
	s.reply(w, http.StatusOK, map[string]any{"locked": true, "fraise": c.target.Fraise, "environment": c.target.Environment,
		"owner": l.Owner, "reason": l.Reason})
}

func (s *Server) handleAPIUnlock(w http.ResponseWriter, r *http.Request) {
	var body lockBody
	c, ok := s.begin(w, r, store.ScopeLock, &body)
	if !ok {
		return
	}
	if strings.TrimSpace(body.Reason) == "" {
		s.reply(w, http.StatusBadRequest, apiError{`"reason" is required: unlocking is recorded with it`})
		return
	}
	locks, err := c.db.Locks(r.Context())
	if err != nil {
		s.internalError(w, "read locks", err)
		return
	}
	var cur *store.Lock
	for i := range locks {
		if locks[i].Target == c.target {
			cur = &locks[i]
		}
	}
	switch {
	case cur == nil:
		s.reply(w, http.StatusConflict, apiError{c.target.String() + " is not locked"})
		return
	case !strings.HasPrefix(cur.Owner, operatorPrefix):
		// Breaking a running deployment's lock is an operator's call, on
		// the host: fraisier unlock.
		s.reply(w, http.StatusConflict, map[string]any{"error": fmt.Sprintf("%s is held by a running deployment (%s): it is released when that ends; the API never breaks it",
			c.target, cur.Owner), "lock": cur})
		return
	}
	prev, err := c.db.ForceUnlock(r.Context(), c.target, clip(body.Reason, 500)+" (token "+c.token.Name+" via api)")
	if errors.Is(err, store.ErrNotFound) {
		s.reply(w, http.StatusConflict, apiError{c.target.String() + " is not locked"})
		return
	}
	if err != nil {
		s.internalError(w, "unlock", err)
		return
	}
	s.log.Info("api", "action", "unlock", "token", c.token.Name, "fraise", c.target.Fraise, "environment", c.target.Environment,
		"was", prev.Owner, "status", http.StatusOK)
	s.reply(w, http.StatusOK, map[string]any{"unlocked": true, "fraise": c.target.Fraise, "environment": c.target.Environment, "was": prev})
}

// apiTokenOf is the live deploy API token the request carries, if any:
// not server.api_token, which authorized checks itself.
func (s *Server) apiTokenOf(r *http.Request) (store.APIToken, bool) {
	secret := bearer(r)
	db, ok := s.store.(apiStore)
	if secret == "" || !ok || len(s.apiToken) > 0 && subtle.ConstantTimeCompare([]byte(secret), s.apiToken) == 1 {
		return store.APIToken{}, false
	}
	tok, err := db.AuthenticateAPIToken(r.Context(), secret)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTokenRevoked) {
			s.log.Error("api: authenticate a token", "err", err)
		}
		return store.APIToken{}, false
	}
	return tok, true
}

// followKey marks a request for a deployment that a token acting on its
// target may follow without the read scope.
type followKey struct{}

// tokenReads says whether the request may read the API by a deploy API
// token: one with the read scope, or one following a deployment of a
// target it acts on (handleDeploymentFollow).
func (s *Server) tokenReads(r *http.Request) bool {
	if r.Context().Value(followKey{}) != nil {
		return true
	}
	tok, ok := s.apiTokenOf(r)
	return ok && tok.Allows(store.ScopeRead, store.Target{})
}

// handleDeploymentFollow is GET /api/deployments/{id}: a token without
// the read scope may still follow a deployment of a target it may deploy,
// roll back or lock; anything else is the read API's answer.
func (s *Server) handleDeploymentFollow(w http.ResponseWriter, r *http.Request) {
	s.handleDeployment(w, s.following(r))
}

// following is r, marked as following its deployment when its token
// lacks the read scope but may act on the deployment's target.
func (s *Server) following(r *http.Request) *http.Request {
	if tok, ok := s.apiTokenOf(r); ok && !tok.Allows(store.ScopeRead, store.Target{}) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err == nil {
			if d, err := s.store.Deployment(r.Context(), id); err == nil && tok.CanAct(d.Target) {
				r = r.WithContext(context.WithValue(r.Context(), followKey{}, true))
			}
		}
	}
	return r
}

type rollbackBody struct {
	targetBody
	To string `json:"to"`
}

// handleAPIRollback queues a rollback to the release named by "to" (a
// release name or a commit of 7+ hex), by default the newest good release
// older than the current one, as fraisier rollback chooses it.
func (s *Server) handleAPIRollback(w http.ResponseWriter, r *http.Request) {
	var body rollbackBody
	c, ok := s.begin(w, r, store.ScopeRollback, &body)
	if !ok {
		return
	}
	if c.env.Layout == config.LayoutInplace {
		s.reply(w, http.StatusConflict, apiError{c.env.ID() + " has the inplace layout, which keeps no releases: deploy the commit to return to instead"})
		return
	}
	if queue.HasHosts(c.env) {
		// No node runs the base environment: each host keeps its releases.
		s.reply(w, http.StatusConflict, apiError{fmt.Sprintf("%s runs on hosts (%s): roll back one host (environment %s), or deploy the commit to return to, which rolls out across them",
			c.env.ID(), strings.Join(c.env.Hosts, ", "), c.target.Environment+config.HostSep+c.env.Hosts[0])})
		return
	}
	if !s.checkUnlocked(w, r, c) {
		return
	}
	rels, err := c.db.RecentReleases(r.Context(), c.target, 200)
	if err != nil {
		s.internalError(w, "read releases", err)
		return
	}
	rel, ok := rollbackRelease(rels, strings.ToLower(body.To))
	if !ok {
		what := "no earlier good release"
		if body.To != "" {
			what = fmt.Sprintf("no release %q other than the current one", clip(body.To, 80))
		}
		s.reply(w, http.StatusNotFound, apiError{fmt.Sprintf("%s of %s to roll back to (fraisier releases %s %s lists them)",
			what, c.target, c.target.Fraise, c.target.Environment)})
		return
	}
	s.enqueue(w, r, c, store.ScopeRollback, store.QueueRequest{Target: c.target, SHA: rel.SHA, Ref: rel.Name, Trigger: store.TriggerRollback,
		Actor: c.token.Name + " via api"})
}

// rollbackRelease is the release a rollback to "to" returns to, by the
// records; the engine checks again, with the disk, when it runs.
func rollbackRelease(rels []store.Release, to string) (store.Release, bool) {
	older := !slices.ContainsFunc(rels, func(r store.Release) bool { return r.State == store.ReleaseCurrent })
	for _, r := range rels { // newest first
		switch {
		case r.State == store.ReleaseCurrent:
			older = true
		case to == "" && r.State == store.ReleaseGood && older:
			return r, true
		case to != "" && (r.Name == to || len(to) >= 7 && strings.HasPrefix(r.SHA, to)):
			return r, true
		}
	}
	return store.Release{}, false
}
