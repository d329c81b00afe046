package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the dashboard reads of the state database.
type Store interface {
	AuthenticateAPIToken(ctx context.Context, secret string) (store.APIToken, error)
	APITokens(ctx context.Context) ([]store.APIToken, error)
	FraiseStates(ctx context.Context, fraise, env string) ([]store.FraiseState, error)
	Deployments(ctx context.Context, f store.DeploymentFilter) ([]store.Deployment, error)
	Deployment(ctx context.Context, id int64) (store.Deployment, error)
	Steps(ctx context.Context, deploymentID int64) ([]store.Step, error)
	QueuedDeployments(ctx context.Context) ([]store.Deployment, error)
	RunningDeployments(ctx context.Context) ([]store.Deployment, error)
	Locks(ctx context.Context) ([]store.Lock, error)
	Webhooks(ctx context.Context, f store.WebhookFilter) ([]store.WebhookEvent, error)
	Stats(ctx context.Context, f store.StatsFilter) ([]store.Stats, error)
	DailyStats(ctx context.Context, f store.DailyFilter) ([]store.DayStats, error)
	JobStates(ctx context.Context, fraise, env string) ([]store.JobState, error)
}

// Act carries out action (store.ScopeDeploy, store.ScopeRollback,
// store.ScopeLock or "unlock") with fields as its JSON body, as tok, through the deploy
// API's handler; it answers that handler's status and JSON body.
type Act func(r *http.Request, tok store.APIToken, action string, fields map[string]string) (status int, body []byte)

// Options configure a dashboard.
type Options struct {
	Store Store
	// Config is the configuration in force (it changes on reload).
	Config func() *config.Config
	// ReadToken is server.api_token: it signs in read-only.
	ReadToken []byte
	// HTTPS says whether the request reached the server over TLS, or a
	// trusted proxy said it reached the proxy so.
	HTTPS func(r *http.Request) bool
	Act   Act
	// Allow, when set, rate-limits sign-in attempts: false refuses one.
	Allow func(r *http.Request) bool
	Log   *slog.Logger
	// SessionTTL is how long a session lasts (default 12 hours).
	SessionTTL time.Duration
	// LiveLog, when set, streams the live log of the deployment named by
	// the request's {id} (Server-Sent Events) to a signed-in session: a
	// browser's EventSource sends the session cookie, not a bearer token.
	LiveLog http.HandlerFunc
	// Subjects, when set, reads commit subjects for the overview, which
	// keeps them by SHA.
	Subjects Subjects
	// Live, when set, asks an environment's health check and units now.
	// The overview calls it in the background, at most every few seconds
	// per environment while someone views it, with a timeout in ctx.
	Live func(ctx context.Context, fraise, environment string) LiveState
	// Node is this server's node name: the overview checks the health of
	// an environment's host only on that host's own node.
	Node string
	// Timers, when set, tells the jobs page what systemd says of each
	// job's timer; without it the page says that it cannot tell.
	Timers *Timers
}

// Dashboard serves /ui/.
type Dashboard struct {
	o        Options
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	origin   *http.CrossOriginProtection
	subjects *subjectCache // nil without Options.Subjects
	live     *liveCache    // nil without Options.Live
}

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

// New builds the dashboard.
func New(o Options) (*Dashboard, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HTTPS == nil {
		o.HTTPS = func(r *http.Request) bool { return r.TLS != nil }
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	d := &Dashboard{o: o, sessions: newSessions(o.SessionTTL), origin: http.NewCrossOriginProtection()}
	if o.Subjects != nil {
		d.subjects = newSubjectCache(o.Subjects)
	}
	if o.Live != nil {
		d.live = newLiveCache(o.Live)
	}
	if err := d.parse(); err != nil {
		return nil, err
	}
	d.mux = d.routes()
	return d, nil
}

// parse reads every page template with the shared layout.
func (d *Dashboard) parse() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: list templates: %w", err)
	}
	d.pages = map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs()).ParseFS(templateFS, "templates/layout.html", "templates/fragment.html", n)
		if err != nil {
			return fmt.Errorf("web: parse %s: %w", n, err)
		}
		d.pages[base] = t
	}
	return nil
}

func (d *Dashboard) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static := http.FileServerFS(staticFS)
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/", static))
	mux.HandleFunc("GET /ui/login", d.loginForm)
	mux.HandleFunc("POST /ui/login", d.login)
	mux.HandleFunc("POST /ui/logout", d.authed(d.logout))
	mux.HandleFunc("GET /ui/{$}", d.authed(d.overview))
	mux.HandleFunc("GET /ui/fragment/overview", d.authed(d.overviewFragment))
	mux.HandleFunc("GET /ui/deployments/{id}", d.authed(d.deployment))
	if d.o.LiveLog != nil {
		mux.HandleFunc("GET /ui/deployments/{id}/log", d.authed(d.o.LiveLog))
	}
	mux.HandleFunc("GET /ui/history", d.authed(d.history))
	mux.HandleFunc("GET /ui/webhooks", d.authed(d.webhooks))
	mux.HandleFunc("GET /ui/stats", d.authed(d.stats))
	mux.HandleFunc("GET /ui/jobs", d.authed(d.jobs))
	mux.HandleFunc("GET /ui/rollouts", d.authed(d.rollouts))
	mux.HandleFunc("GET /ui/rollouts/{id}", d.authed(d.rollout))
	mux.HandleFunc("GET /ui/actions/{action}", d.authed(d.confirm))
	mux.HandleFunc("POST /ui/actions/{action}", d.authed(d.act))
	mux.HandleFunc("/ui/", d.authed(d.notFound))
	return mux
}

// ServeHTTP answers a request under /ui/.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	d.mux.ServeHTTP(w, r)
}

// page is what every template gets.
type page struct {
	Title   string
	Session *session
	Nav     string
	Data    any
}

// render writes the page name with status.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	t, ok := d.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	p.Session = sessionOf(r)
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, p); err != nil {
		d.o.Log.Error("web: render", "page", name, "err", err)
		http.Error(w, "the page could not be shown; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprint(w, b.String())
}

// problem shows a page that says what went wrong and what to do.
func (d *Dashboard) problem(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	d.render(w, r, status, "problem", page{Title: title, Data: msg})
}

func (d *Dashboard) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	d.o.Log.Error("web: "+what, "err", err)
	d.problem(w, r, http.StatusInternalServerError, "Internal error", what+" failed; see the server log.")
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request) {
	d.problem(w, r, http.StatusNotFound, "Not found", "There is no page here. The overview lists every fraise.")
}
