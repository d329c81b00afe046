package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

func (a *app) serveCommand() *cobra.Command {
	var (
		listen    string
		logFormat string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive webhooks and deploy what they push",
		Long: `Serve receives webhooks from GitHub, GitLab, Gitea/Forgejo and Bitbucket (Cloud
and Data Center), records every delivery, and queues a deployment for each
fraise environment a push routes to. Per environment at most one deployment
runs and one waits: a newer push replaces the waiting one.

It listens on server.listen (default 127.0.0.1:8080), --listen overriding:
host:port, unix:/path, or systemd for socket activation. It tells systemd
READY=1 once it accepts and STOPPING=1 when SIGTERM arrives; it then stops
accepting, gives running deployments server.shutdown_grace to finish, and
rolls back and re-queues the ones still running after it.

Endpoints: POST /webhook and /webhook/{forge}; GET /health, /ready,
/providers, /metrics, /api/fraises, /api/deployments, /api/deployments/{id}.
With server.api_token set, /api/*, /providers and /metrics need it
(server.open_metrics: true serves /metrics without it). Without a token,
serve refuses to listen on an address other hosts can reach (exit 3)
unless server.open_api: true.
It prunes the state database in the background as state.retention says (see
fraisier prune), an hour apart, in short batches that leave the intake first.
Logs are JSON lines on stderr (--log-format text for people).`,
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Server.Listen = listen
			}
			log, err := a.serveLog(logFormat)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				log.Warn("configuration", "warning", w.String())
			}
			ctx := cmd.Context()
			opts := a.stateFromConfig(cfg)
			opts.CheckpointEvery = store.ServerCheckpointEvery
			db, err := openStore(ctx, opts)
			if err != nil {
				return err
			}
			defer db.Close()
			owner, err := deploy.CurrentOwner()
			if err != nil {
				return err
			}
			fault, err := deploy.ParseFault(a.env.get(deploy.FaultEnv))
			if err != nil {
				return withCode(ExitUsage, err)
			}
			runner := &queue.Runner{
				Store: db, Config: cfg, Collab: deploy.RealCollaborators(nil), Owner: owner, Fault: fault,
				Log: log.With("component", "queue"), MaxConcurrent: cfg.Server.MaxConcurrent, Grace: cfg.Server.ShutdownGrace.D(),
			}
			stopping := func() {
				runner.StopDispatch()
				log.Info("stopping: no new deliveries; running deployments get the grace period", "grace", cfg.Server.ShutdownGrace.String())
				if err := server.Notify(a.env.get, "STOPPING=1"); err != nil {
					log.Warn("sd_notify", "err", err)
				}
			}
			srv, err := server.New(server.Options{Config: cfg, Store: db, Runner: runner, Log: log.With("component", "http"),
				OnStopping: stopping})
			if err != nil {
				return withCode(ExitConfig, err)
			}
			runner.OnFinish = srv.ObserveDeployment
			l, err := server.Listen(cfg.Server.Listen, a.env.get)
			if err != nil {
				srv.Close()
				return err
			}
			// Before the workers start: a server that refuses to serve
			// must not deploy anything either.
			if err := srv.CheckListener(l); err != nil {
				l.Close()
				srv.Close()
				return withCode(ExitConfig, err)
			}

			// The workers outlive the HTTP side: deliveries received during
			// the shutdown are recorded before the workers stop.
			workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
			workDone := make(chan struct{})
			go func() { defer close(workDone); runner.Run(workCtx) }()
			// Retention runs beside the intake, once the queue has
			// recovered, and stops with the HTTP side.
			pruneCtx, stopPrune := context.WithCancel(ctx)
			pruneDone := make(chan struct{})
			go func() {
				defer close(pruneDone)
				pruneInBackground(pruneCtx, db, retentionOf(cfg), runner.Started(), log.With("component", "retention"))
			}()
			serveErr := srv.Serve(ctx, l, func() {
				log.Info("listening", "address", l.Addr().String(), "state", db.Backend(), "fraises", len(cfg.Fraises))
				// Ready once the workers run too: until the queue has
				// recovered what a crash left, /ready says 503.
				go func() {
					select {
					case <-runner.Started():
					case <-ctx.Done():
						return
					}
					if err := server.Notify(a.env.get, "READY=1"); err != nil {
						log.Warn("sd_notify", "err", err)
					}
				}()
			})
			stopPrune()
			<-pruneDone
			stopWork()
			<-workDone
			log.Info("stopped")
			return serveErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "address to listen on: host:port, unix:/path or systemd (default: server.listen, else 127.0.0.1:8080)")
	f.StringVar(&logFormat, "log-format", "json", "json or text")
	return cmd
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
