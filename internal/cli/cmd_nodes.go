package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// nodesJSON is the stable --json shape of nodes (and GET /api/nodes).
type nodesJSON struct {
	Nodes         []server.NodeJSON `json:"nodes"`
	NodeTimeoutMS int64             `json:"node_timeout_ms"`
}

func (a *app) nodesCommand() *cobra.Command {
	var (
		asJSON bool
		remote remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes sharing the state database, their last heartbeat and whether they are alive",
		Long: "List the nodes (fraisier serve or fraisier node processes) that share the state database.\n" +
			"A node is alive while its last heartbeat is younger than the largest rollout.node_timeout\n" +
			"of the configuration (30s without one).",
		Args: rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out nodesJSON
			if here, err := remote.local(); err != nil || !here {
				err = remoteOr(err, func() error { return a.remoteGet(cmd.Context(), remote, "/api/nodes", &out) })
				if err != nil {
					return err
				}
			} else if out, err = a.nodes(cmd.Context()); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			return a.printNodes(out)
		},
	}
	addJSONFlag(cmd, &asJSON)
	addRemoteFlags(cmd, &remote)
	cmd.Flags().Lookup("remote").Usage = "read the nodes from the fraisier serve at this URL through its API (https://host, or http:// on a loopback address)"
	return cmd
}

// nodes reads the nodes from the state database, judged against the
// configuration's node timeout.
func (a *app) nodes(ctx context.Context) (nodesJSON, error) {
	cfg, err := a.optionalConfig()
	if err != nil {
		return nodesJSON{}, err
	}
	db, err := a.openStateOf(ctx, cfg)
	if err != nil {
		return nodesJSON{}, err
	}
	defer db.Close()
	nodes, err := db.Nodes(ctx)
	if err != nil {
		return nodesJSON{}, withCode(ExitState, err)
	}
	timeout := nodeTimeout(cfg)
	out := nodesJSON{Nodes: make([]server.NodeJSON, 0, len(nodes)), NodeTimeoutMS: timeout.Milliseconds()}
	now := time.Now()
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, server.NodeView(n, now, timeout))
	}
	return out, nil
}

func (a *app) printNodes(out nodesJSON) error {
	if len(out.Nodes) == 0 {
		return nothingYet(a.streams.Out, false, "no nodes yet: fraisier serve and fraisier node record a heartbeat as they start")
	}
	t := newTable(a.streams.Out, "NAME", "HOSTNAME", "VERSION", "LAST HEARTBEAT", "ALIVE")
	for _, n := range out.Nodes {
		t.row(a.shown(n.Name), orDash(a.shown(n.Hostname)), orDash(a.shown(n.Version)), fmtAge(n.HeartbeatAgeMS), yesNo(n.Alive))
	}
	return t.flush()
}

// optionalConfig is the configuration when there is one to find, or nil;
// a file the user named that cannot be loaded is an error.
func (a *app) optionalConfig() (*config.Config, error) {
	if _, err := config.Find(a.configPath, a.env.Lookup); err != nil && a.configPath == "" && a.env.get("FRAISIER_CONFIG") == "" {
		return nil, nil
	}
	return a.loadConfig()
}

// openStateOf opens the state database of cfg, or the one stateLocation
// chooses without a configuration.
func (a *app) openStateOf(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	if cfg == nil {
		return a.openState(ctx)
	}
	return openStore(ctx, a.stateFromConfig(cfg))
}

// nodeTimeout is the age past which a node is dead for the views.
func nodeTimeout(cfg *config.Config) time.Duration {
	if cfg == nil {
		return config.DefaultNodeTimeout.D()
	}
	return cfg.NodeTimeout()
}

// remoteGet reads path of the remote serve's API into out.
func (a *app) remoteGet(ctx context.Context, f remoteFlags, path string, out any) error {
	c, err := a.remote(f)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// fmtAge is an age in milliseconds as "12s ago", "3m05s ago".
func fmtAge(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case ms < 0:
		return "-"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// yesNo is b as the tables print it.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
