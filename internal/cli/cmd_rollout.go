package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// rolloutsJSON is the stable --json shape of rollouts (and GET /api/rollouts).
type rolloutsJSON struct {
	Rollouts []server.RolloutJSON `json:"rollouts"`
}

// rolloutOneJSON is the stable --json shape of rollout show and resume
// (and GET /api/rollouts/{id}).
type rolloutOneJSON struct {
	Rollout server.RolloutJSON `json:"rollout"`
}

func (a *app) rolloutsCommand() *cobra.Command {
	var (
		asJSON, active bool
		limit          int
		remote         remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "rollouts [fraise [environment]]",
		Short: "List rollouts across hosts, newest first",
		Args:  rangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return &usageError{fmt.Errorf("--limit %d: want at least 1", limit)}
			}
			f := store.RolloutFilter{Target: store.Target{Fraise: argAt(args, 0), Environment: argAt(args, 1)}, Active: active, Limit: limit}
			var out rolloutsJSON
			if here, err := remote.local(); err != nil || !here {
				q := url.Values{"limit": {strconv.Itoa(limit)}}
				setIf(q, "fraise", f.Target.Fraise)
				setIf(q, "environment", f.Target.Environment)
				if active {
					q.Set("active", "true")
				}
				if err := remoteOr(err, func() error { return a.remoteGet(cmd.Context(), remote, "/api/rollouts?"+q.Encode(), &out) }); err != nil {
					return err
				}
			} else if out, err = a.rollouts(cmd.Context(), f); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			if len(out.Rollouts) == 0 {
				return nothingYet(a.streams.Out, f.Target.Fraise != "" || active, "no rollouts yet: a push to an environment with hosts: makes one")
			}
			t := newTable(a.streams.Out, "ID", "FRAISE", "ENVIRONMENT", a.paintHeader("STATUS"), "SHA", "HOSTS", "BATCH", "CREATED", "ERROR")
			for _, r := range out.Rollouts {
				t.row(strconv.FormatInt(r.ID, 10), a.shown(r.Fraise), a.shown(r.Environment), a.paintStatus(string(r.Status)), shortSHA(r.SHA),
					fmt.Sprintf("%d/%d", r.HostsDone, r.HostsTotal), batchOf(r), fmtTime(r.CreatedAt), orDash(oneLine(a.shown(r.Error), 60)))
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&active, "active", false, "only rollouts that have not ended")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many rollouts")
	addJSONFlag(cmd, &asJSON)
	addRemoteFlags(cmd, &remote)
	cmd.Flags().Lookup("remote").Usage = "read the rollouts from the fraisier serve at this URL through its API (https://host, or http:// on a loopback address)"
	return cmd
}

func (a *app) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Show one rollout across hosts, or resume one waiting after its canary",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return &usageError{errors.New("a subcommand is required: show ID or resume ID")}
		},
	}
	cmd.AddCommand(a.rolloutShowCommand(), a.rolloutResumeCommand())
	return cmd
}

func (a *app) rolloutShowCommand() *cobra.Command {
	var (
		asJSON bool
		remote remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a rollout: each host's status, deployment, commits, error and whether its node is alive",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			viaAPI := func(out *rolloutOneJSON) error {
				return a.remoteGet(cmd.Context(), remote, "/api/rollouts/"+args[0], out)
			}
			return a.rolloutOne(cmd.Context(), args[0], remote, asJSON, viaAPI, nil)
		},
	}
	addJSONFlag(cmd, &asJSON)
	addRemoteFlags(cmd, &remote)
	cmd.Flags().Lookup("remote").Usage = "read the rollout from the fraisier serve at this URL through its API (https://host, or http:// on a loopback address)"
	return cmd
}

func (a *app) rolloutResumeCommand() *cobra.Command {
	var (
		asJSON bool
		remote remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "resume ID",
		Short: "Let a rollout waiting after its canary (canary_wait: manual) go on to the other hosts",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			viaAPI := func(out *rolloutOneJSON) error {
				c, err := a.remote(remote)
				if err != nil {
					return err
				}
				err = c.do(cmd.Context(), http.MethodPost, "/api/rollouts/"+args[0]+"/resume", map[string]string{}, out)
				var ae *answerError
				if errors.As(err, &ae) && ae.status == http.StatusConflict {
					return ae // not waiting for a resume: exit 1, as here
				}
				return err
			}
			return a.rolloutOne(cmd.Context(), args[0], remote, asJSON, viaAPI, a.resume)
		},
	}
	addJSONFlag(cmd, &asJSON)
	addRemoteFlags(cmd, &remote)
	cmd.Flags().Lookup("remote").Usage = "resume the rollout through the API of the fraisier serve at this URL (a token with the deploy scope of its environment)"
	return cmd
}

// rolloutOne runs a rollout subcommand on the rollout arg names, then
// prints it: here, reading it after act (nil: only read), or through the
// API of the serve --remote names, with viaAPI.
func (a *app) rolloutOne(ctx context.Context, arg string, remote remoteFlags, asJSON bool,
	viaAPI func(out *rolloutOneJSON) error, act func(context.Context, *store.DB, store.Rollout) error) error {
	id, err := rolloutID(arg)
	if err != nil {
		return err
	}
	var out rolloutOneJSON
	if here, err := remote.local(); err != nil || !here {
		if err := remoteOr(err, func() error { return viaAPI(&out) }); err != nil {
			return err
		}
	} else if out.Rollout, err = a.rollout(ctx, id, act); err != nil {
		return err
	}
	return a.printRollout(out, asJSON)
}

// resume resumes r in db, refusing a rollout that waits for no resume.
func (a *app) resume(ctx context.Context, db *store.DB, r store.Rollout) error {
	if !r.WaitingResume {
		return fmt.Errorf("rollout %d is not waiting for a resume (it is %s)", r.ID, r.Status)
	}
	if err := db.ResumeRollout(ctx, r.ID, actor(a.env)); err != nil {
		return withCode(ExitState, err)
	}
	return nil
}

// rolloutID parses a rollout id argument.
func rolloutID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, &usageError{fmt.Errorf("rollout id %q: want a positive integer (fraisier rollouts lists them)", s)}
	}
	return id, nil
}

// rollouts reads the rollouts f selects, with their hosts' node liveness.
func (a *app) rollouts(ctx context.Context, f store.RolloutFilter) (rolloutsJSON, error) {
	cfg, err := a.optionalConfig()
	if err != nil {
		return rolloutsJSON{}, err
	}
	db, err := a.openStateOf(ctx, cfg)
	if err != nil {
		return rolloutsJSON{}, err
	}
	defer db.Close()
	rs, err := db.Rollouts(ctx, f)
	if err != nil {
		return rolloutsJSON{}, withCode(ExitState, err)
	}
	nodes, err := nodeMap(ctx, db)
	if err != nil {
		return rolloutsJSON{}, err
	}
	out := rolloutsJSON{Rollouts: make([]server.RolloutJSON, 0, len(rs))}
	now, timeout := time.Now(), nodeTimeout(cfg)
	for _, r := range rs {
		out.Rollouts = append(out.Rollouts, server.RolloutView(r, nodes, now, timeout))
	}
	return out, nil
}

// rollout reads rollout id; act, when set, acts on it first (resume) and
// the rollout is read again after.
func (a *app) rollout(ctx context.Context, id int64, act func(context.Context, *store.DB, store.Rollout) error) (server.RolloutJSON, error) {
	cfg, err := a.optionalConfig()
	if err != nil {
		return server.RolloutJSON{}, err
	}
	db, err := a.openStateOf(ctx, cfg)
	if err != nil {
		return server.RolloutJSON{}, err
	}
	defer db.Close()
	r, err := db.Rollout(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return server.RolloutJSON{}, notFound("no rollout %d (fraisier rollouts lists them)", id)
	}
	if err != nil {
		return server.RolloutJSON{}, withCode(ExitState, err)
	}
	if act != nil {
		if err := act(ctx, db, r); err != nil {
			return server.RolloutJSON{}, err
		}
		if r, err = db.Rollout(ctx, id); err != nil {
			return server.RolloutJSON{}, withCode(ExitState, err)
		}
	}
	hh, err := server.ReadHostHealths(ctx, db, nodeTimeout(cfg))
	if err != nil {
		return server.RolloutJSON{}, withCode(ExitState, err)
	}
	v := server.RolloutView(r, hh.Nodes, time.Now(), nodeTimeout(cfg))
	hh.FillRollout(cfg, &v)
	return v, nil
}

// nodeMap is every node's last heartbeat, by name.
func nodeMap(ctx context.Context, db *store.DB) (map[string]store.Node, error) {
	nodes, err := db.Nodes(ctx)
	if err != nil {
		return nil, withCode(ExitState, err)
	}
	m := make(map[string]store.Node, len(nodes))
	for _, n := range nodes {
		m[n.Name] = n
	}
	return m, nil
}

// printRollout writes one rollout: a summary, then one row per host.
func (a *app) printRollout(out rolloutOneJSON, asJSON bool) error {
	if asJSON {
		return writeJSON(a.streams.Out, out)
	}
	r := out.Rollout
	w := a.streams.Out
	fmt.Fprintln(w, a.shown(r.Progress))
	fmt.Fprintf(w, "target:  %s/%s at %s", a.shown(r.Fraise), a.shown(r.Environment), shortSHA(r.SHA))
	if r.Ref != "" {
		fmt.Fprintf(w, " (%s)", a.shown(r.Ref))
	}
	fmt.Fprintf(w, "\ntrigger: %s by %s, created %s\n", a.shown(string(r.Trigger)), orDash(a.shown(r.Actor)), fmtTime(r.CreatedAt))
	if r.Error != "" {
		fmt.Fprintf(w, "error:   %s\n", oneLine(a.shown(r.Error), 200))
	}
	t := newTable(w, "HOST", a.paintHeader("STATUS"), "DEPLOYMENT", "FROM", "TO", "NODE", "HEALTH", "ERROR")
	now := time.Now()
	for _, h := range r.Hosts {
		dep := "-"
		if h.DeploymentID != nil {
			dep = strconv.FormatInt(*h.DeploymentID, 10)
		}
		if h.RollbackID != nil {
			dep += ", rollback " + strconv.FormatInt(*h.RollbackID, 10)
		}
		t.row(a.shown(h.Host), a.paintStatus(string(h.Status)), dep, shortSHA(h.OldSHA), shortSHA(h.NewSHA), nodeWord(h.NodeAlive),
			healthCell(targetStatusJSON{Host: h.Host, HostHealthJSON: h.HostHealthJSON}, now), orDash(oneLine(a.shown(h.Error), 60)))
	}
	return t.flush()
}

// nodeWord says whether a host's node is alive: alive, dead, or unknown
// when it never reported.
func nodeWord(alive *bool) string {
	switch {
	case alive == nil:
		return "unknown"
	case *alive:
		return "alive"
	}
	return "dead"
}

// batchOf is "2/3": the current batch of a rollout, 1-based, of its batches.
func batchOf(r server.RolloutJSON) string {
	if r.Batches == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", min(r.Batch+1, r.Batches), r.Batches)
}

// setIf sets query parameter k to v unless v is empty.
func setIf(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// hostOfEnv is the host part of a per-host environment name, or "".
func hostOfEnv(env string) string {
	_, h := config.SplitHost(env)
	return h
}

// baseEnv is the environment part of a per-host environment name.
func baseEnv(env string) string {
	b, _ := config.SplitHost(env)
	return strings.TrimSpace(b)
}
