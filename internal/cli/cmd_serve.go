package cli

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// serveLong is serve's help text.
const serveLong = `Serve receives webhooks from GitHub, GitLab, Gitea/Forgejo and Bitbucket (Cloud
and Data Center), records every delivery, and queues a deployment for each
fraise environment a push routes to. Per environment at most one deployment
runs and one waits: a newer push replaces the waiting one.

It listens on server.listen (default 127.0.0.1:8080), --listen overriding:
host:port, unix:/path, or systemd for socket activation. With
server.ui_listen set, the dashboard (/ui/) is served there instead, and
only there (both systemd: the dashboard's socket is named ui). It tells systemd
READY=1 once it accepts and STOPPING=1 when SIGTERM arrives; it then stops
accepting, gives running deployments server.shutdown_grace to finish, and
rolls back and re-queues the ones still running after it.

SIGHUP (systemctl reload) reloads the configuration file: new deliveries
route and authenticate by its fraises and git sections, and deployments
start with it; running deployments finish with the configuration they
started with. A file that does not load is refused, every problem logged,
and the configuration in use stays. The server and state sections take
effect at the next restart (the log names those a reload changed).

Endpoints: POST /webhook and /webhook/{forge}; GET /health, /ready,
/providers, /metrics, /api/fraises, /api/deployments, /api/deployments/{id};
POST /api/deploy, /api/rollback, /api/lock, /api/unlock with a token of
fraisier tokens (server.api_token reads only).
With server.api_token set, /api/*, /providers and /metrics need it
(server.open_metrics: true serves /metrics without it). Without a token,
serve refuses to listen on an address other hosts can reach (exit 3)
unless server.open_api: true.
It heartbeats as its node (--node, else $FRAISIER_NODE, server.node, the
host name), runs the rollout steps of that host and advances rollouts
across the nodes sharing a PostgreSQL state (see fraisier node); an
environment with hosts: needs such a state. On PostgreSQL, LISTEN/NOTIFY
wakes the queue and a 30s poll is only a backstop (2s on SQLite).
It prunes the state database in the background as state.retention says (see
fraisier prune), an hour apart, in short batches that leave the intake first.
Logs are JSON lines on stderr (--log-format text for people).`

func (a *app) serveCommand() *cobra.Command {
	var listen, logFormat, node string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive webhooks and deploy what they push",
		Long:  serveLong,
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serve(cmd.Context(), listen, logFormat, node)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address to listen on: host:port, unix:/path or systemd (default: server.listen, else 127.0.0.1:8080)")
	f.StringVar(&logFormat, "log-format", "json", "json or text")
	addNodeFlag(cmd, &node)
	return cmd
}

// serve sets up the state database, the queue's workers and the HTTP
// side, then runs them until ctx is done.
func (a *app) serve(ctx context.Context, listen, logFormat, nodeFlag string) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	if listen != "" {
		cfg.Server.Listen = listen
		if msg := config.ListenConflict(listen, cfg.Server.UIListen); cfg.Server.UIListen != "" && msg != "" {
			return withCode(ExitConfig, fmt.Errorf("--listen %s: %s: give --listen another address, or change server.ui_listen", listen, msg))
		}
	}
	log, err := a.serveLog(logFormat)
	if err != nil {
		return err
	}
	db, node, runner, loop, err := a.nodeParts(ctx, cfg, nodeFlag, log)
	if err != nil {
		return err
	}
	defer db.Close()
	stopping := func() {
		runner.StopDispatch()
		log.Info("stopping: no new deliveries; running deployments get the grace period", "grace", cfg.Server.ShutdownGrace.String())
		if err := server.Notify(a.env.get, "STOPPING=1"); err != nil {
			log.Warn("sd_notify", "err", err)
		}
	}
	notes := newNotifications(cfg, db, log.With("component", "notify"))
	srv, err := server.New(server.Options{Config: cfg, Store: db, Runner: runner, Log: log.With("component", "http"),
		OnStopping: stopping, OnRefused: notes.notifier.Refused, Collectors: notes.metrics.Collectors(),
		Dashboard: dashboardHooks(notes.cfg.Load, runner.Collab, node),
		Timers:    jobTimers(runner.Collab)})
	if err != nil {
		return withCode(ExitConfig, err)
	}
	runner.OnFinish = notes.finished(srv.ObserveDeployment)
	runner.OnStart = notes.started
	ls, err := server.OpenListeners(cfg.Server.Listen, cfg.Server.UIListen, a.env.get)
	if err != nil {
		srv.Close()
		return err
	}
	// Before the workers start: a server that refuses to serve must not
	// deploy anything either.
	if err := srv.CheckListener(ls.Main); err != nil {
		ls.Close()
		srv.Close()
		return withCode(ExitConfig, err)
	}
	return a.runServe(ctx, serving{cfg: cfg, db: db, runner: runner, loop: loop, srv: srv, ls: ls, log: log, listen: listen, notes: notes})
}

// openNodeState opens the state database as serve and node do, after the
// configuration's warnings are logged, and names this node; a
// configuration with hosts: over a state other than PostgreSQL is refused.
func (a *app) openNodeState(ctx context.Context, cfg *config.Config, nodeFlag string, log *slog.Logger) (*store.DB, string, error) {
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w.String())
	}
	node, err := a.nodeName(cfg, nodeFlag)
	if err != nil {
		return nil, "", err
	}
	opts := a.stateFromConfig(cfg)
	opts.CheckpointEvery = store.ServerCheckpointEvery
	db, err := openStore(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	if err := checkHostsState(cfg, db); err != nil {
		db.Close()
		return nil, "", err
	}
	if hosts := configuredHosts(cfg); len(hosts) > 0 && !slices.Contains(hosts, node) {
		log.Warn("this node's name is none of the configured hosts: it runs no rollout step (set --node, $FRAISIER_NODE or server.node)",
			"node", node, "hosts", strings.Join(hosts, ", "))
	}
	return db, node, nil
}

// configuredHosts are the hosts every environment's hosts: name, sorted.
func configuredHosts(cfg *config.Config) []string {
	var hosts []string
	for _, env := range cfg.Environments() {
		if queue.HasHosts(env) {
			hosts = append(hosts, env.Hosts...)
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// nodeParts are what serve and node both run: the state database, this
// node's name, the queue's workers and the rollout loop. The caller closes
// db.
func (a *app) nodeParts(ctx context.Context, cfg *config.Config, nodeFlag string, log *slog.Logger) (*store.DB, string, *queue.Runner, *queue.RolloutLoop, error) {
	db, node, err := a.openNodeState(ctx, cfg, nodeFlag, log)
	if err != nil {
		return nil, "", nil, nil, err
	}
	runner, err := a.queueRunner(cfg, db, log, node)
	if err != nil {
		db.Close()
		return nil, "", nil, nil, err
	}
	return db, node, runner, rolloutLoop(db, runner, node, log), nil
}

// queueRunner is the queue's workers over db, deploying as this user and
// taking the rollout steps of this node.
func (a *app) queueRunner(cfg *config.Config, db *store.DB, log *slog.Logger, node string) (*queue.Runner, error) {
	owner, err := nodeOwner(node)
	if err != nil {
		return nil, err
	}
	fault, err := deploy.ParseFault(a.env.get(deploy.FaultEnv))
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	r := &queue.Runner{
		Store: db, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, Node: node, Fault: fault,
		Log: log.With("component", "queue"), MaxConcurrent: cfg.Server.MaxConcurrent, Grace: cfg.Server.ShutdownGrace.D(),
	}
	if db.Backend() == "postgres" {
		// The rollout loop's LISTEN wakes the runner; the poll is a
		// backstop.
		r.Poll = queue.ListenedPoll
	}
	return r, nil
}

// serving is what serve runs, set up and listening.
type serving struct {
	cfg    *config.Config
	db     *store.DB
	runner *queue.Runner
	loop   *queue.RolloutLoop
	// srv is nil for fraisier node, which has no HTTP side.
	srv *server.Server
	ls  server.Listeners
	log *slog.Logger
	// listen is --listen, which a reload keeps over server.listen.
	listen string
	notes  *notifications
}

// runServe runs the workers, the retention and the HTTP side until ctx
// is done, then stops them in order: the HTTP side, the retention, then
// the workers.
func (a *app) runServe(ctx context.Context, s serving) error {
	// The workers outlive the HTTP side: deliveries received during the
	// shutdown are recorded before the workers stop.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	workDone := make(chan struct{})
	go func() { defer close(workDone); s.runner.Run(workCtx) }()
	// The rollout loop heartbeats until the workers have stopped: a node
	// draining its deployments is alive.
	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	loopDone := runRolloutLoop(loopCtx, s.loop, s.runner, s.log)
	reloadCtx, stopReload := context.WithCancel(ctx)
	reloadDone := a.reloadOnHangup(reloadCtx, s)
	// Retention runs beside the intake, once the queue has recovered.
	pruneCtx, stopPrune := context.WithCancel(ctx)
	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		pruneInBackground(pruneCtx, s.db, retentionOf(s.cfg), s.runner.Started(), s.log.With("component", "retention"))
	}()
	// Notifications are sent until the workers have stopped: a deployment
	// rolled back at shutdown is still reported.
	notifyCtx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	notifyDone := make(chan struct{})
	go func() { defer close(notifyDone); s.notes.run(notifyCtx) }()
	serveErr := s.srv.ServeAll(ctx, s.ls, func() {
		attrs := []any{"address", s.ls.Main.Addr().String(), "state", s.db.Backend(), "fraises", len(s.cfg.Fraises)}
		if s.ls.UI != nil {
			attrs = append(attrs, "dashboard", s.ls.UI.Addr().String())
		}
		s.log.Info("listening", attrs...)
		go a.notifyReady(ctx, s.runner, s.log)
	})
	stopReload()
	<-reloadDone
	stopPrune()
	<-pruneDone
	stopWork()
	<-workDone
	stopLoop()
	<-loopDone
	s.notes.pending.Wait()
	s.notes.notifier.Wait()
	stopNotify()
	<-notifyDone
	s.log.Info("stopped")
	return serveErr
}

// notifyReady tells systemd READY=1 once the workers run: until the queue
// has recovered what a crash left, serve is not ready (/ready says 503).
func (a *app) notifyReady(ctx context.Context, runner *queue.Runner, log *slog.Logger) {
	select {
	case <-runner.Started():
	case <-ctx.Done():
		return
	}
	if err := server.Notify(a.env.get, "READY=1"); err != nil {
		log.Warn("sd_notify", "err", err)
	}
}

// serveLog is serve's logger on stderr: JSON lines, or text for people.
func (a *app) serveLog(format string) (*slog.Logger, error) {
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(a.streams.Err, nil)), nil
	case "text":
		return slog.New(slog.NewTextHandler(a.streams.Err, nil)), nil
	}
	return nil, &usageError{fmt.Errorf("--log-format %q: use json or text", format)}
}
