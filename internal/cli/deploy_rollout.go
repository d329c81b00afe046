package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/git"
	"github.com/fraiseql/fraisier/internal/queue"
	"github.com/fraiseql/fraisier/internal/store"
)

// rolloutFollowEvery is how often deploy reads a rollout it follows.
const rolloutFollowEvery = 500 * time.Millisecond

// rolloutResultJSON is the stable --json shape of deploy of an environment
// with hosts.
type rolloutResultJSON struct {
	RolloutID   int64               `json:"rollout_id"`
	Fraise      string              `json:"fraise"`
	Environment string              `json:"environment"`
	SHA         string              `json:"sha"`
	Status      store.RolloutStatus `json:"status"`
	Error       string              `json:"error"`
	Hosts       []store.RolloutHost `json:"hosts"`
}

// deployHosts deploys an environment with hosts: or one host of it.
// handled is false when env is neither, for the engine to deploy here.
func (a *app) deployHosts(ctx context.Context, env *config.Environment, db *store.DB, opts deployOptions) (handled bool, err error) {
	switch {
	case env.Host != "":
		// One host: only that host's node deploys it, here.
		if err := a.onHostNode(env); err != nil {
			return true, err
		}
		return false, nil
	case !queue.HasHosts(env):
		return false, nil
	}
	return true, a.queueRollout(ctx, env, db, opts)
}

// rollbackHosts refuses a rollback this command cannot run here: of an
// environment with hosts as a whole (each host keeps its own releases),
// or of one host from another node.
func (a *app) rollbackHosts(env *config.Environment) error {
	switch {
	case env.Host != "":
		return a.onHostNode(env)
	case queue.HasHosts(env):
		return withCode(ExitUsage, fmt.Errorf("%s runs on hosts (%s): roll back one host on its node (fraisier rollback %s %s), or deploy the commit to return to, which rolls out across them",
			env.ID(), strings.Join(env.Hosts, ", "), env.Fraise.Name, env.Name+config.HostSep+env.Hosts[0]))
	}
	return nil
}

// onHostNode refuses to act on one host's target (env@host) from a node
// other than that host's.
func (a *app) onHostNode(env *config.Environment) error {
	node, err := a.nodeName(env.Fraise.Config, "")
	if err != nil {
		return err
	}
	if node == env.Host {
		return nil
	}
	base, _, _ := strings.Cut(env.Name, config.HostSep)
	return withCode(ExitUsage, fmt.Errorf("%s is host %s's: run this on the node named %s (this node is %s; $%s or server.node names it), or deploy %s to roll out across every host",
		env.ID(), env.Host, env.Host, node, nodeEnv, base))
}

// queueRollout queues one rollout of env's commit across its hosts,
// through the state every node shares, and follows it to its end unless
// --no-wait.
func (a *app) queueRollout(ctx context.Context, env *config.Environment, db *store.DB, opts deployOptions) error {
	if db.Backend() != "postgres" {
		return withCode(ExitConfig, fmt.Errorf("%s: %w", env.ID(), errHostsNeedPostgres))
	}
	if opts.plan {
		return withCode(ExitUsage, fmt.Errorf("%s runs on hosts: --plan shows one host's plan: fraisier deploy --plan %s %s", env.ID(), env.Fraise.Name, env.Name+config.HostSep+env.Hosts[0]))
	}
	sha, ref, err := commitOf(ctx, env, opts.ref)
	if err != nil {
		return err
	}
	p, _ := queue.RolloutPolicy(env)
	fraise, name := env.Target()
	q, err := db.Enqueue(ctx, store.QueueRequest{Target: store.Target{Fraise: fraise, Environment: name}, SHA: sha, Ref: ref,
		Trigger: store.TriggerCLI, Actor: actor(a.env), Rollout: &p})
	if err != nil {
		return withCode(ExitState, fmt.Errorf("queue the rollout of %s: %w", env.ID(), err))
	}
	say := a.streams.Out
	if opts.asJSON {
		say = a.streams.Err
	}
	fmt.Fprintf(say, "rollout %d queued: %s at %s across %s (fraisier rollout show %d)\n",
		q.RolloutID, env.ID(), shortSHA(sha), strings.Join(p.Hosts, ", "), q.RolloutID)
	if opts.noWait {
		if opts.asJSON {
			return writeJSON(a.streams.Out, rolloutResultJSON{RolloutID: q.RolloutID, Fraise: fraise, Environment: name, SHA: sha,
				Status: store.RolloutQueued, Hosts: []store.RolloutHost{}})
		}
		return nil
	}
	ro, err := a.followRollout(ctx, db, q.RolloutID, say)
	if err != nil {
		return err
	}
	if opts.asJSON {
		hosts := ro.Hosts
		if hosts == nil {
			hosts = []store.RolloutHost{}
		}
		if err := writeJSON(a.streams.Out, rolloutResultJSON{RolloutID: ro.ID, Fraise: fraise, Environment: name, SHA: ro.SHA,
			Status: ro.Status, Error: ro.Error, Hosts: hosts}); err != nil {
			return err
		}
	}
	return rolloutExit(ro)
}

// followRollout prints each host's changes until the rollout ends.
func (a *app) followRollout(ctx context.Context, db *store.DB, id int64, say interface{ Write([]byte) (int, error) }) (store.Rollout, error) {
	seen := map[string]store.HostStatus{}
	var status store.RolloutStatus
	tick := time.NewTicker(rolloutFollowEvery)
	defer tick.Stop()
	for {
		ro, err := db.Rollout(ctx, id)
		if err != nil {
			return store.Rollout{}, withCode(ExitState, fmt.Errorf("read rollout %d: %w", id, err))
		}
		for _, h := range ro.Hosts {
			if seen[h.Host] != h.Status {
				seen[h.Host] = h.Status
				line := fmt.Sprintf("  %s: %s", h.Host, h.Status)
				if h.Error != "" {
					line += " (" + oneLine(a.shown(h.Error), 160) + ")"
				}
				fmt.Fprintln(say, line)
			}
		}
		if ro.Status != status {
			status = ro.Status
			fmt.Fprintf(say, "rollout %d %s\n", id, status)
		}
		if rolloutEnded(ro.Status) {
			return ro, nil
		}
		select {
		case <-ctx.Done():
			return ro, fmt.Errorf("stopped following rollout %d (%s); it goes on: fraisier rollout show %d", id, ro.Status, id)
		case <-tick.C:
		}
	}
}

// rolloutEnded says whether a rollout in status s has ended.
func rolloutEnded(s store.RolloutStatus) bool {
	switch s {
	case store.RolloutSucceeded, store.RolloutFailed, store.RolloutRolledBack, store.RolloutRollbackFailed, store.RolloutSuperseded:
		return true
	}
	return false
}

// rolloutExit maps a rollout's end to deploy's exit codes.
func rolloutExit(ro store.Rollout) error {
	var code int
	switch ro.Status {
	case store.RolloutSucceeded:
		return nil
	case store.RolloutRolledBack:
		code = ExitRolledBack
	case store.RolloutRollbackFailed, store.RolloutFailed:
		// failed: a host's state is unknown (its node died) or it could
		// not be restored: as a failed rollback, an operator is needed.
		code = ExitRollbackFailed
	case store.RolloutSuperseded:
		code = ExitError
	default:
		code = ExitDeployFailed
	}
	return &silentError{withCode(code, fmt.Errorf("rollout %d %s: %s", ro.ID, ro.Status, ro.Error))}
}

// commitOf is the commit a rollout of env deploys for --ref: a full
// commit as given, else the head of the branch (the environment's by
// default), asked of the repository: every host must deploy the same one.
func commitOf(ctx context.Context, env *config.Environment, ref string) (sha, full string, err error) {
	if git.IsSHA(ref) {
		return ref, "", nil
	}
	if ref == "" {
		ref = env.Branch
	}
	branch := strings.TrimPrefix(ref, "refs/heads/")
	if strings.ContainsAny(branch, `*?[\`) {
		return "", "", withCode(ExitUsage, fmt.Errorf("%s deploys branches matching %q: name one with --ref", env.ID(), env.Branch))
	}
	sha, err = git.LsRemote(ctx, env.GitRepo, branch, git.Options{Timeout: time.Minute})
	if err != nil {
		return "", "", fmt.Errorf("resolve %s of %s (a rollout deploys one commit on every host; --ref takes a branch or a full commit): %w", branch, env.ID(), err)
	}
	return sha, "refs/heads/" + branch, nil
}
