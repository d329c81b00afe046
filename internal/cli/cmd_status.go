package cli

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/deploy"
	"github.com/fraiseql/fraisier/internal/server"
	"github.com/fraiseql/fraisier/internal/store"
)

// statusJSON is the stable --json shape of status.
type statusJSON struct {
	Targets []targetStatusJSON `json:"targets"`
	// Rollouts are the active rollouts of the environments with hosts
	// shown; absent when none has hosts.
	Rollouts []server.RolloutJSON `json:"rollouts,omitempty"`
}

type targetStatusJSON struct {
	Fraise         string            `json:"fraise"`
	Environment    string            `json:"environment"`
	Type           config.FraiseType `json:"type"`
	Branch         string            `json:"branch"`
	Configured     bool              `json:"configured"`
	Status         store.Status      `json:"status"`
	CurrentSHA     string            `json:"current_sha"`
	CurrentRelease string            `json:"current_release"`
	DeployedAt     *time.Time        `json:"deployed_at"`
	DeployedBy     string            `json:"deployed_by"`
	LastDeployment *int64            `json:"last_deployment_id"`
	BrokenSince    *time.Time        `json:"broken_since"`
	Locked         *lockJSON         `json:"lock"`
	// Restart is how the last deployment took over (plain, socket,
	// blue_green) and Colour the blue/green colour serving after it.
	Restart string `json:"restart,omitempty"`
	Colour  string `json:"colour,omitempty"`
	// Live is what git, systemd and the health check say now, beside what
	// the record says; absent with --offline, and for a host other than
	// this machine's node.
	Live *deploy.Live `json:"live,omitempty"`
	// Host is the host of a row of an environment with hosts (Environment
	// is then env@host); NodeAlive says whether its node is alive, absent
	// when the node never reported.
	Host      string `json:"host,omitempty"`
	NodeAlive *bool  `json:"node_alive,omitempty"`
	// The health the host's own node last recorded, as far as it may be
	// believed now (health, health_detail, health_checked_at,
	// health_by_node); absent without a host.
	server.HostHealthJSON
}

type lockJSON struct {
	Owner      string    `json:"owner"`
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Reason     string    `json:"reason"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// statusNever is shown for a configured environment fraisier never deployed.
const statusNever = "never deployed"

func (a *app) statusCommand() *cobra.Command {
	var (
		asJSON bool
		opts   statusOptions
		remote remoteFlags
	)
	cmd := &cobra.Command{
		Use:   "status [fraise [environment]]",
		Short: "Show what runs where: the record, and what git, systemd and the health check say now",
		Args:  rangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.fraise, opts.env = argAt(args, 0), argAt(args, 1)
			if here, err := remote.local(); err != nil || !here {
				return remoteOr(err, func() error { return a.remoteStatus(cmd.Context(), remote, opts.fraise, opts.env, asJSON) })
			}
			out, err := a.status(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.streams.Out, out)
			}
			return a.printStatus(out)
		},
	}
	cmd.Flags().BoolVar(&opts.offline, "offline", false, "answer from the state database only: do not ask git (branch head), systemd (units) or the health check (one try)")
	cmd.Flags().DurationVar(&opts.liveTimeout, "live-timeout", 5*time.Second, "bound on each environment's live checks")
	addJSONFlag(cmd, &asJSON)
	addRemoteFlags(cmd, &remote)
	return cmd
}

// statusOptions are status's arguments and flags.
type statusOptions struct {
	fraise, env string
	offline     bool
	liveTimeout time.Duration
}

// status gathers the rows status shows: each configured target the
// arguments name, then the targets the state database records that the
// configuration no longer has.
func (a *app) status(ctx context.Context, o statusOptions) (statusJSON, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return statusJSON{}, err
	}
	if o.fraise != "" {
		f, err := findFraise(cfg, o.fraise)
		if err != nil {
			return statusJSON{}, err
		}
		if o.env != "" {
			if _, err := findEnvironment(f, baseEnv(o.env)); err != nil {
				return statusJSON{}, err
			}
			if _, err := cfg.Lookup(o.fraise, o.env); err != nil {
				return statusJSON{}, withCode(ExitNotFound, err)
			}
		}
	}
	db, err := openStore(ctx, a.stateFromConfig(cfg))
	if err != nil {
		return statusJSON{}, err
	}
	defer db.Close()
	read := o
	wide := wideEnv(cfg, o)
	if wide {
		read.env = ""
	}
	states, err := db.FraiseStates(ctx, read.fraise, read.env)
	if err != nil {
		return statusJSON{}, withCode(ExitState, err)
	}
	if wide {
		states = keepEnv(states, baseEnv(o.env))
	}
	shown := shownEnvironments(cfg, o)
	var hv *statusHostView
	if anyHost(shown) {
		if hv, err = a.readHostView(ctx, cfg, db); err != nil {
			return statusJSON{}, err
		}
	}
	locks, err := db.Locks(ctx)
	if err != nil {
		return statusJSON{}, withCode(ExitState, err)
	}
	lockOf := map[store.Target]store.Lock{}
	for _, l := range locks {
		lockOf[l.Target] = l
	}
	rows := configuredRows(ctx, shown, o, states, lockOf, hv)
	rows = append(rows, orphanRows(rows, states, lockOf)...)
	if err := fillRestarts(ctx, db, read, rows); err != nil {
		return statusJSON{}, withCode(ExitState, err)
	}
	out := statusJSON{Targets: rows}
	if hv != nil {
		if out.Rollouts, err = activeRollouts(ctx, db, shown, hv); err != nil {
			return statusJSON{}, err
		}
	}
	return out, nil
}

// configuredRows are the rows of the configured targets shown, with
// what the state database records of each and, unless offline, what the
// live checks say (for a host row, only that of this machine's node).
func configuredRows(ctx context.Context, shown []shownEnv, o statusOptions, states []store.FraiseState, lockOf map[store.Target]store.Lock, hv *statusHostView) []targetStatusJSON {
	byTarget := map[store.Target]store.FraiseState{}
	for _, s := range states {
		byTarget[s.Target] = s
	}
	rows := []targetStatusJSON{}
	now := time.Now()
	for _, s := range shown {
		f, e := s.fraise, s.env
		t := store.Target{Fraise: f.Name, Environment: e.Name}
		row := targetStatusJSON{Fraise: f.Name, Environment: e.Name, Type: f.Type, Branch: e.Branch, Configured: true, Status: statusNever, Host: s.host}
		if st, ok := byTarget[t]; ok {
			fillState(&row, st)
		}
		fillLock(&row, lockOf, t)
		if s.host != "" {
			row.NodeAlive = hv.alive(s.host, now)
			row.HostHealthJSON = hv.health.Of(hv.cfg, t, s.host)
		}
		if !o.offline && (s.host == "" || s.host == hv.node) {
			l := deploy.Inspect(ctx, deploy.RealCollaborators(nil), e, o.liveTimeout)
			row.Live = &l
		}
		rows = append(rows, row)
	}
	return rows
}

// orphanRows are the targets recorded in the state database but not
// among the configured rows: gone from the configuration, they still run
// somewhere, so status shows them rather than hides them.
func orphanRows(configured []targetStatusJSON, states []store.FraiseState, lockOf map[store.Target]store.Lock) []targetStatusJSON {
	seen := map[store.Target]bool{}
	for _, r := range configured {
		seen[store.Target{Fraise: r.Fraise, Environment: r.Environment}] = true
	}
	var orphans []store.FraiseState
	for _, s := range states {
		if !seen[s.Target] {
			orphans = append(orphans, s)
		}
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Target.String() < orphans[j].Target.String() })
	var rows []targetStatusJSON
	for _, s := range orphans {
		row := targetStatusJSON{Fraise: s.Fraise, Environment: s.Environment}
		fillState(&row, s)
		fillLock(&row, lockOf, s.Target)
		rows = append(rows, row)
	}
	return rows
}

// printStatus writes status's table.
func (a *app) printStatus(out statusJSON) error {
	colours := anyColour(out.Targets)
	hosts := slices.ContainsFunc(out.Targets, func(r targetStatusJSON) bool { return r.Host != "" })
	t := newTable(a.streams.Out, withNode(hosts, withColour(colours, "FRAISE", "ENVIRONMENT", a.paintHeader("STATUS"), "SHA", "RELEASE", "SERVES", "DEPLOYED", "BY", "NOTE"), "NODE", "HEALTH")...)
	now := time.Now()
	for _, r := range out.Targets {
		note := ""
		switch {
		case !r.Configured:
			note = "not in configuration"
		case r.Locked != nil:
			note = "locked by " + r.Locked.Owner
		case r.BrokenSince != nil:
			note = "operator needed since " + fmtTime(*r.BrokenSince)
		}
		if r.Live != nil {
			note = joinNotes(note, liveNote(r))
		}
		if hn := healthNote(r); hn != "" {
			note = joinNotes(note, hn)
		}
		deployed := "-"
		if r.DeployedAt != nil {
			deployed = fmtTime(*r.DeployedAt)
		}
		t.row(withNode(hosts, withColour(colours, r.Fraise, r.Environment, a.paintStatus(string(r.Status)), shortSHA(r.CurrentSHA), orDash(r.CurrentRelease), orDash(r.Colour), deployed, orDash(a.shown(r.DeployedBy)), orDash(a.shown(note))), nodeCell(r), healthCell(r, now))...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	a.printRolloutLines(out.Rollouts)
	return nil
}

// findFraise is the configured fraise named name, or a not-found error
// listing the configured ones.
func findFraise(cfg *config.Config, name string) (*config.Fraise, error) {
	f, ok := cfg.Fraises[name]
	if !ok {
		return nil, notFound("no fraise %q in %s (have: %s)", name, cfg.Path, joinNames(cfg.FraiseNames()))
	}
	return f, nil
}

// findEnvironment is f's environment named name, or a not-found error
// listing f's environments.
func findEnvironment(f *config.Fraise, name string) (*config.Environment, error) {
	e, ok := f.Environments[name]
	if !ok {
		return nil, notFound("fraise %s has no environment %q (have: %s)", f.Name, name, joinNames(f.EnvironmentNames()))
	}
	return e, nil
}

func fillState(row *targetStatusJSON, s store.FraiseState) {
	row.Status = s.Status
	row.CurrentSHA = s.CurrentSHA
	row.CurrentRelease = s.CurrentRelease
	if !s.DeployedAt.IsZero() {
		at := s.DeployedAt.UTC()
		row.DeployedAt = &at
	}
	row.DeployedBy = s.DeployedBy
	if s.LastDeployment != 0 {
		id := s.LastDeployment
		row.LastDeployment = &id
	}
	row.BrokenSince = s.BrokenSince
}

func fillLock(row *targetStatusJSON, locks map[store.Target]store.Lock, t store.Target) {
	if l, ok := locks[t]; ok {
		row.Locked = &lockJSON{Owner: l.Owner, Host: l.Host, PID: l.PID, Reason: l.Reason, AcquiredAt: l.AcquiredAt.UTC(), ExpiresAt: l.ExpiresAt.UTC()}
	}
}

func argAt(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// joinNames lists names (of fraises, statuses, outcomes) for a message.
func joinNames[T ~string](names []T) string {
	if len(names) == 0 {
		return "none"
	}
	s := string(names[0])
	for _, n := range names[1:] {
		s += ", " + string(n)
	}
	return s
}

// liveNote sums up the live checks for the NOTE column.
func liveNote(r targetStatusJSON) string {
	l := r.Live
	var parts []string
	switch {
	case l.BranchError != "":
		parts = append(parts, "branch head unknown: "+oneLine(l.BranchError, 40))
	case l.BranchHead != "" && l.BranchHead != r.CurrentSHA:
		parts = append(parts, fmt.Sprintf("%s is at %s", r.Branch, shortSHA(l.BranchHead)))
	}
	if l.CurrentRelease != r.CurrentRelease && r.CurrentRelease != "" {
		parts = append(parts, "current on disk is "+orDash(l.CurrentRelease))
	}
	if l.UnitsError != "" {
		parts = append(parts, "units unknown: "+oneLine(l.UnitsError, 40))
	}
	for _, u := range sortedKeys(l.Units) {
		if !l.Units[u] {
			parts = append(parts, u+" inactive")
		}
	}
	switch {
	case l.ColourError != "":
		parts = append(parts, "proxy unknown: "+oneLine(l.ColourError, 40))
	case l.Colour != r.Colour:
		parts = append(parts, "proxy sends to "+orDash(l.Colour))
	}
	if l.Healthy != nil && !*l.Healthy {
		parts = append(parts, "unhealthy")
	}
	if len(parts) == 0 {
		return "live: ok"
	}
	return "live: " + strings.Join(parts, "; ")
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
