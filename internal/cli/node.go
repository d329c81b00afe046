package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
	"github.com/fraiseql/fraisier/internal/version"
)

// nodeEnv names this node when --node does not.
const nodeEnv = "FRAISIER_NODE"

// errHostsNeedPostgres refuses hosts: on a state only one machine sees.
var errHostsNeedPostgres = errors.New("hosts: needs a shared PostgreSQL state (state.url); SQLite is one machine's")

// nodeName is this node's name among the nodes sharing the state
// database: --node, else $FRAISIER_NODE, else server.node, else the
// machine's host name.
func (a *app) nodeName(cfg *config.Config, flag string) (string, error) {
	name, from := flag, "--node"
	if name == "" {
		name, from = a.env.get(nodeEnv), "$"+nodeEnv
	}
	if name == "" && cfg != nil {
		name, from = cfg.Server.Node, "server.node"
	}
	if name == "" {
		host, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("node name: %w (set server.node, --node or $%s)", err, nodeEnv)
		}
		name, from = host, "the host name"
	}
	// The name is part of lock owners (host/pid/start/nonce) and of
	// per-host target names (env@host).
	if strings.ContainsAny(name, "/@ \t\r\n") {
		return "", withCode(ExitConfig, fmt.Errorf("node name %q (from %s): a node name has no /, @ or blank; e.g. web-1", name, from))
	}
	return name, nil
}

// nodeOwner is the lock owner of this process as node: the node's name in
// place of the host name, so that locks, tb_deployment.host and crash
// recovery are per node (several nodes on one machine recover only their
// own deployments).
func nodeOwner(node string) (deploy.Owner, error) {
	owner, err := deploy.CurrentOwner()
	if err != nil {
		return deploy.Owner{}, err
	}
	owner.Host = node
	return owner, nil
}

// checkHostsState refuses a configuration with hosts: over a state that is
// not PostgreSQL: --state or $FRAISIER_STATE may override state.url.
func checkHostsState(cfg *config.Config, db *store.DB) error {
	if db.Backend() == "postgres" {
		return nil
	}
	for _, env := range cfg.Environments() {
		if queue.HasHosts(env) {
			f, e := env.Target()
			return withCode(ExitConfig, fmt.Errorf("%s/%s: %w", f, e, errHostsNeedPostgres))
		}
	}
	return nil
}

// rolloutLoop is this node's heartbeat and rollout coordinator over db,
// waking runner and woken by it.
func rolloutLoop(db *store.DB, runner *queue.Runner, node string, log *slog.Logger) *queue.RolloutLoop {
	host, _ := os.Hostname()
	n := store.Node{Name: node, Hostname: host, Version: version.Version, PID: os.Getpid(), StartedAt: time.Now().UTC()}
	return queue.NewRolloutLoop(runner, db, n, db.Backend() == "postgres", log.With("component", "rollouts"))
}

// runRolloutLoop runs loop once runner has recovered, until ctx is done;
// the channel it returns is closed then.
func runRolloutLoop(ctx context.Context, loop *queue.RolloutLoop, runner *queue.Runner, log *slog.Logger) <-chan struct{} {
	return queue.RunRolloutLoop(ctx, loop, runner, log)
}
