package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// cookieName names the session cookie; it holds a random session id only.
const cookieName = "fraisier_session"

// readTokenID marks a session opened with server.api_token, which is no
// stored token.
const readTokenID = 0

// session is one signed-in browser: who, and its CSRF token. It never
// holds the API token itself.
type session struct {
	id      string
	Token   store.APIToken
	CSRF    string
	expires time.Time
}

// sessions are the live sessions, in this process's memory: they end
// with it.
type sessions struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: map[string]*session{}}
}

// randomID is 32 random bytes, URL-safe.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) open(tok store.APIToken, now time.Time) *session {
	s := &session{id: randomID(), Token: tok, CSRF: randomID(), expires: now.Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, old := range ss.m {
		if now.After(old.expires) {
			delete(ss.m, id)
		}
	}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) get(id string, now time.Time) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if ok && now.After(s.expires) {
		delete(ss.m, id)
		return nil, false
	}
	return s, ok
}

func (ss *sessions) close(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

type sessionKey struct{}

// sessionOf is the request's session, nil before sign-in.
func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// cookie is the session cookie for value, expiring at expires (deleting
// it when maxAge < 0).
func (d *Dashboard) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: d.o.HTTPS(r)}
}

// authed wraps a page: without a live session it redirects to the login
// form (303); a POST must also pass the origin and CSRF checks.
func (d *Dashboard) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		var s *session
		ok := false
		if err == nil {
			s, ok = d.sessions.get(c.Value, time.Now())
		}
		if ok && !d.stillValid(r.Context(), s) {
			d.sessions.close(s.id)
			ok = false
		}
		if !ok {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		if r.Method == http.MethodPost && !d.checkPost(w, r, s) {
			return
		}
		h(w, r)
	}
}

// stillValid says whether the session's stored token is still live: a
// revoked token ends its sessions.
func (d *Dashboard) stillValid(ctx context.Context, s *session) bool {
	if s.Token.ID == readTokenID {
		return len(d.o.ReadToken) > 0
	}
	toks, err := d.o.Store.APITokens(ctx)
	if err != nil {
		d.o.Log.Error("web: read tokens", "err", err)
		return false
	}
	for _, t := range toks {
		if t.ID == s.Token.ID {
			return t.RevokedAt == nil
		}
	}
	return false
}

// checkPost refuses a cross-site POST or one without the session's CSRF
// token, with 403 and a page that says so.
func (d *Dashboard) checkPost(w http.ResponseWriter, r *http.Request, s *session) bool {
	if err := d.origin.Check(r); err != nil {
		d.o.Log.Warn("web: cross-site POST refused", "path", r.URL.Path, "origin", clip(r.Header.Get("Origin"), 100))
		d.problem(w, r, http.StatusForbidden, "Refused", "This request came from another site: the dashboard only takes forms sent from its own pages.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	got := r.PostFormValue("csrf")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		d.o.Log.Warn("web: POST without a valid CSRF token refused", "path", r.URL.Path, "token", s.Token.Name)
		d.problem(w, r, http.StatusForbidden, "Refused", "This form is stale or was not sent from the dashboard: reload the page and send it again.")
		return false
	}
	return true
}

func (d *Dashboard) loginForm(w http.ResponseWriter, r *http.Request) {
	d.render(w, r, http.StatusOK, "login", page{Title: "Sign in"})
}

// login checks the token given in the form and opens a session: a stored
// token with the read scope, or server.api_token (read-only).
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if err := d.origin.Check(r); err != nil {
		d.problem(w, r, http.StatusForbidden, "Refused", "This sign-in came from another site.")
		return
	}
	if d.o.Allow != nil && !d.o.Allow(r) {
		w.Header().Set("Retry-After", "1")
		d.render(w, r, http.StatusTooManyRequests, "login", page{Title: "Sign in", Data: "Too many attempts from your address: wait a second and retry."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	secret := strings.TrimSpace(r.PostFormValue("token"))
	tok, msg := d.authenticate(r.Context(), secret)
	if msg != "" {
		d.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Data: msg})
		return
	}
	s := d.sessions.open(tok, time.Now())
	http.SetCookie(w, d.cookie(r, s.id, int(d.o.SessionTTL.Seconds())))
	d.o.Log.Info("web: signed in", "token", tok.Name)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// authenticate is the token secret stands for, or why it signs no one in.
func (d *Dashboard) authenticate(ctx context.Context, secret string) (store.APIToken, string) {
	if secret == "" {
		return store.APIToken{}, "Paste an API token: fraisier tokens create NAME --scope read makes one."
	}
	if len(d.o.ReadToken) > 0 && subtle.ConstantTimeCompare([]byte(secret), d.o.ReadToken) == 1 {
		return store.APIToken{ID: readTokenID, Name: "server.api_token", Scopes: []store.Scope{{Action: store.ScopeRead}}}, ""
	}
	tok, err := d.o.Store.AuthenticateAPIToken(ctx, secret)
	switch {
	case errors.Is(err, store.ErrTokenRevoked):
		return tok, "This token was revoked: ask for a new one (fraisier tokens create)."
	case errors.Is(err, store.ErrNotFound):
		return tok, "Unknown token: fraisier tokens list shows the tokens this server knows."
	case err != nil:
		d.o.Log.Error("web: authenticate a token", "err", err)
		return tok, "The token could not be checked; retry."
	case !tok.Allows(store.ScopeRead, store.Target{}):
		return tok, "Token " + tok.Name + " has no read scope, and the dashboard shows every fraise: use a token created with --scope read (beside its deploy, rollback or lock scopes)."
	}
	return tok, ""
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	d.sessions.close(sessionOf(r).id)
	http.SetCookie(w, d.cookie(r, "", -1))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// clip shortens s to at most n bytes for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
