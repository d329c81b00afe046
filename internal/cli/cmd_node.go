package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/queue"
)

// nodeLong is node's help text.
const nodeLong = `Node runs what fraisier serve runs but its HTTP side: the deploy queue's
workers, the heartbeat, and the rollout coordinator. It is for the hosts of
an environment with hosts: that sit behind the node which takes webhooks:
every node shares one PostgreSQL state (state.url), claims the steps of its
own host and advances rollouts, woken by PostgreSQL's LISTEN/NOTIFY.

Its name (--node, else $FRAISIER_NODE, else server.node, else the machine's
host name) is the host name hosts: lists; it also names this node's locks
and deployments, so that several nodes on one machine recover only their
own work after a crash. SIGHUP reloads the configuration as serve does;
SIGTERM stops taking work and gives running deployments
server.shutdown_grace. Logs are JSON lines on stderr (--log-format text for
people).`

func (a *app) nodeCommand() *cobra.Command {
	var logFormat, node string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run this host's deployments and rollouts, without the webhook and API listener",
		Long:  nodeLong,
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.node(cmd.Context(), logFormat, node)
		},
	}
	f := cmd.Flags()
	f.StringVar(&logFormat, "log-format", "json", "json or text")
	addNodeFlag(cmd, &node)
	return cmd
}

// addNodeFlag is --node of serve and node.
func addNodeFlag(cmd *cobra.Command, node *string) {
	cmd.Flags().StringVar(node, "node", "", "this node's name among the nodes sharing the state database (default: $FRAISIER_NODE, server.node, else the host name)")
}

// node runs the queue's workers, the heartbeat and the rollout loop until
// ctx is done, then lets running deployments finish within the grace.
func (a *app) node(ctx context.Context, logFormat, nodeFlag string) error {
	cfg, err := a.loadConfig()
	if err != nil {
		return err
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
	notes := newNotifications(cfg, db, log.With("component", "notify"))
	runner.OnFinish = notes.finished(func(queue.Finished) {})
	runner.OnStart = notes.started
	s := serving{cfg: cfg, db: db, runner: runner, loop: loop, log: log, notes: notes}

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	workDone := make(chan struct{})
	go func() { defer close(workDone); runner.Run(workCtx) }()
	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	loopDone := runRolloutLoop(loopCtx, loop, runner, log)
	reloadCtx, stopReload := context.WithCancel(ctx)
	reloadDone := a.reloadOnHangup(reloadCtx, s)
	notifyCtx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	notifyDone := make(chan struct{})
	go func() { defer close(notifyDone); notes.run(notifyCtx) }()
	log.Info("node running", "node", node, "state", db.Backend(), "fraises", len(cfg.Fraises))
	go a.notifyReady(ctx, runner, log)

	<-ctx.Done()
	runner.StopDispatch()
	log.Info("stopping: running deployments get the grace period", "grace", cfg.Server.ShutdownGrace.String())
	a.notify(s, "STOPPING=1")
	stopReload()
	<-reloadDone
	stopWork()
	<-workDone
	stopLoop()
	<-loopDone
	notes.pending.Wait()
	notes.notifier.Wait()
	stopNotify()
	<-notifyDone
	log.Info("stopped")
	return nil
}
