package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
)

// Store is what the server needs of the state database.
type Store interface {
	Ping(ctx context.Context) error
	RecordIntake(ctx context.Context, items []store.Intake) ([]store.IntakeResult, error)
	QueuedDeployments(ctx context.Context) ([]store.Deployment, error)
	FraiseStates(ctx context.Context, fraise, env string) ([]store.FraiseState, error)
	Deployments(ctx context.Context, f store.DeploymentFilter) ([]store.Deployment, error)
	Deployment(ctx context.Context, id int64) (store.Deployment, error)
	Steps(ctx context.Context, deploymentID int64) ([]store.Step, error)
}

// Runner is what the server needs of the queue workers.
type Runner interface {
	Wake()
	Ready() bool
	Running() int
}

// Options configure a Server beyond the configuration file.
type Options struct {
	Config *config.Config
	Store  Store
	// Runner runs what the server queues; nil serves intake only (tests,
	// or a node that only receives).
	Runner Runner
	Log    *slog.Logger
	// IntakeBacklog is how many deliveries may wait to be recorded before
	// new ones are answered 429 (default 4096).
	IntakeBacklog int
	// OnStopping, when set, is called as Serve begins to shut down, before
	// it stops accepting (sd_notify STOPPING=1).
	OnStopping func()
	// OnRefused, when set, is told of each request refused for a bad
	// signature (forge kind, reason); it must not block.
	OnRefused func(forge, reason string)
	// Collectors are more series for /metrics (the notification sender's).
	Collectors []prometheus.Collector
	// Dashboard feeds the dashboard's overview what the server cannot read
	// itself (commit subjects, health now).
	Dashboard DashboardHooks
	// Timers, when set, asks systemd about the scheduled jobs' timers for
	// the dashboard's jobs page.
	Timers AskTimers
}

// Server is fraisier serve's HTTP side.
type Server struct {
	// cfg is the configuration serve started with: its server section
	// holds until a restart. What routes deliveries is in table.
	cfg       *config.Config
	table     atomic.Pointer[routingTable]
	store     Store
	runner    Runner
	log       *slog.Logger
	limits    *limiter
	proxies   []netip.Prefix
	bodyLimit int64
	apiToken  []byte
	// openAPI serves /api/* and /providers without a token on any
	// address; openMetrics serves /metrics without the token.
	openAPI, openMetrics bool
	metrics              *metrics
	writer               *intakeWriter
	mux                  *http.ServeMux
	// uiMux serves the dashboard on server.ui_listen; nil when the
	// dashboard is on the main listener.
	uiMux *http.ServeMux

	writerDone chan struct{}
	onStopping func()
	onRefused  func(forge, reason string)
	bodyBudget *bodyBudget
	refusals   *refusalSampler
	// bodyTimeout bounds the time a body takes to arrive (0: the read
	// timeout does).
	bodyTimeout time.Duration
	logs        *logFeeds
	timers      AskTimers
}

// New builds a server from the configuration. Call Close (or Serve,
// which closes) to stop its intake writer.
func New(o Options) (*Server, error) {
	cfg := o.Config
	proxies, err := parseProxies(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, store: o.Store, runner: o.Runner, log: log,
		limits:      newLimiter(cfg.Server.RateLimit.PerSource, cfg.Server.RateLimit.Global, cfg.Server.RateLimit.Burst),
		proxies:     proxies,
		bodyLimit:   cfg.Server.BodyLimit,
		apiToken:    []byte(cfg.Server.APIToken.Reveal()),
		openAPI:     cfg.Server.OpenAPI,
		openMetrics: cfg.Server.OpenMetrics,
		onStopping:  o.OnStopping,
		onRefused:   o.OnRefused,
		timers:      o.Timers,
	}
	s.table.Store(newRoutingTable(cfg))
	if s.bodyLimit <= 0 {
		s.bodyLimit = 1 << 20
	}
	// Body bytes held at once: 64 MiB, or 16 bodies at the limit if that
	// is more, far above what forges send (a few KB each) and far below
	// what a flood of large bodies would take; from one source, 4 MiB or
	// two bodies at the limit.
	s.bodyBudget = newBodyBudget(max(64<<20, 16*s.bodyLimit), max(4<<20, 2*s.bodyLimit))
	// The body deadline replaces the connection's read deadline, so it is
	// set only where it cannot come later than the read timeout's: with
	// the headers in within headerTimeout, that is when the read timeout
	// is off or at least both together.
	if rt := cfg.Server.ReadTimeout.D(); rt <= 0 || rt >= headerTimeout(rt)+bodyTimeout {
		s.bodyTimeout = bodyTimeout
	}
	running := func() float64 {
		if s.runner == nil {
			return 0
		}
		return float64(s.runner.Running())
	}
	s.refusals = newRefusalSampler(refusalsPerSource, refusalsOverall, refusalWindow)
	s.metrics = newMetrics(queueDepthFunc(o.Store), running)
	for _, c := range o.Collectors {
		if err := s.metrics.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	backlog := o.IntakeBacklog
	if backlog <= 0 {
		backlog = 4096
	}
	s.writer = &intakeWriter{store: o.Store, in: make(chan *pendingIntake, backlog), maxBatch: 512,
		gather: intakeGather, gatherBatch: gatherBatch, gatherRate: gatherRate, log: log}
	if s.runner != nil {
		s.writer.wake = s.runner.Wake
	}
	s.writerDone = make(chan struct{})
	go func() { defer close(s.writerDone); s.writer.run() }()

	s.mux = s.routes()
	ui, err := s.dashboard(o.Dashboard)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.mountDashboard(ui)
	return s, nil
}

// routes is the server's HTTP API: the webhook intake, health and
// readiness, the metrics and the read-only API.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", s.handleWebhook)
	mux.HandleFunc("POST /webhook/{forge}", s.handleWebhook)
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("GET /ready", s.handleReady)
	mux.HandleFunc("GET /providers", s.handleProviders)
	mux.HandleFunc("GET /api/fraises", s.handleFraises)
	mux.HandleFunc("GET /api/deployments", s.handleDeployments)
	mux.HandleFunc("GET /api/deployments/{id}", s.handleDeploymentFollow)
	mux.HandleFunc("GET /api/deployments/{id}/log", s.liveLog())
	mux.HandleFunc("POST /api/deploy", s.handleAPIDeploy)
	mux.HandleFunc("POST /api/rollback", s.handleAPIRollback)
	mux.HandleFunc("POST /api/lock", s.handleAPILock)
	mux.HandleFunc("POST /api/unlock", s.handleAPIUnlock)
	s.registerRolloutAPI(mux)
	scrape := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if !s.openMetrics && !s.authorized(w, r) {
			return
		}
		scrape.ServeHTTP(w, r)
	})
	return mux
}

// ObserveDeployment is the queue's OnFinish: it feeds the deployment
// metrics.
func (s *Server) ObserveDeployment(f queue.Finished) { s.metrics.finished(f) }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Close stops the intake writer once every delivery handed to it is
// recorded. Handlers must have returned (http.Server.Shutdown does that).
func (s *Server) Close() {
	s.writer.close()
	<-s.writerDone
}

func (s *Server) reply(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Serve answers on l until ctx is done, then shuts down: it stops
// accepting, lets requests in flight finish (up to grace) and records
// every delivery already received. ready is called once it accepts. It
// refuses a listener that CheckListener refuses.
func (s *Server) Serve(ctx context.Context, l net.Listener, ready func()) error {
	return s.ServeAll(ctx, Listeners{Main: l}, ready)
}

// headerTimeout bounds how long a client may take to send its headers:
// the read timeout, but never more than 5 s, and 5 s when the read timeout
// is off (0), so that slow clients cannot hold connections open.
func headerTimeout(read time.Duration) time.Duration {
	if read > 0 && read < 5*time.Second {
		return read
	}
	return 5 * time.Second
}
