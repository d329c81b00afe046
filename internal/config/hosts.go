package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// HostSep joins an environment and one of its hosts into the name of the
// per-host target a rollout deploys (production@web-1).
const HostSep = "@"

// CanaryManual is the canary_wait that waits for fraisier rollout resume.
const CanaryManual = "manual"

// Rollout defaults and bounds.
const (
	DefaultNodeTimeout  = Duration(30 * time.Second)
	DefaultClaimTimeout = Duration(2 * time.Minute)
	MinNodeTimeout      = Duration(3 * time.Second)
)

// Rollout is how a push goes through an environment's hosts.
type Rollout struct {
	Canary       bool     `yaml:"canary" json:"canary,omitempty" doc:"the first host (the migration host) deploys alone first, then the rollout waits canary_wait"`
	CanaryWait   string   `yaml:"canary_wait" json:"canary_wait,omitempty" doc:"with canary: after the canary succeeded, a duration to wait before its node checks its health again and the rollout goes on, or manual to wait for fraisier rollout resume (default 0: go on at once)"`
	Batch        int      `yaml:"batch" json:"batch,omitempty" min:"1" doc:"hosts deployed at once after the first (default 1)"`
	Pause        Duration `yaml:"pause" json:"pause,omitempty" doc:"wait between two batches (default 0)"`
	MigrateOn    string   `yaml:"migrate_on" json:"migrate_on,omitempty" doc:"the host that runs migrations, once per rollout; it deploys first, alone, before any other host switches (default the first host)"`
	NodeTimeout  Duration `yaml:"node_timeout" json:"node_timeout,omitempty" doc:"a node whose heartbeat is older is dead (default 30s, at least 3s)"`
	ClaimTimeout Duration `yaml:"claim_timeout" json:"claim_timeout,omitempty" doc:"a host step no live node claimed within this fails (default 2m)"`
}

// RolloutSettings is an environment's rollout policy with every default
// resolved. Its fields are those of store.RolloutPolicy, in the same
// order and of the same types, so that the layers that know the store
// convert it with store.RolloutPolicy(s).
type RolloutSettings struct {
	Hosts        []string
	Canary       bool
	CanaryWait   time.Duration
	CanaryManual bool
	Batch        int
	Pause        time.Duration
	MigrateHost  string
	NodeTimeout  time.Duration
	ClaimTimeout time.Duration
}

// SplitHost splits a per-host environment name (production@web-1) into
// the environment and the host; host is "" for a plain name.
func SplitHost(env string) (base, host string) {
	base, host, _ = strings.Cut(env, HostSep)
	return base, host
}

// HasHosts says whether the environment deploys through rollouts across
// hosts (false for the per-host copy Lookup returns for env@host).
func (e *Environment) HasHosts() bool { return len(e.Hosts) > 0 && e.Host == "" }

// Base is the environment a per-host copy was made of, or e itself.
func (e *Environment) Base() *Environment {
	if e.HostOf != nil {
		return e.HostOf
	}
	return e
}

// HostTarget is the environment name of one host's target: production@web-1.
func (e *Environment) HostTarget(host string) string {
	return e.Base().Name + HostSep + host
}

// HostTargets are the per-host environment names of every host, in the
// order hosts: lists them; none for an environment without hosts.
func (e *Environment) HostTargets() []string {
	b := e.Base()
	out := make([]string, len(b.Hosts))
	for i, h := range b.Hosts {
		out[i] = b.HostTarget(h)
	}
	return out
}

// RolloutSettings resolves the environment's rollout policy; ok is false
// for an environment without hosts. The migration host comes first in
// Hosts, the others keep their order.
func (e *Environment) RolloutSettings() (s RolloutSettings, ok bool) {
	b := e.Base()
	if len(b.Hosts) == 0 {
		return RolloutSettings{}, false
	}
	r := Rollout{}
	if b.Rollout != nil {
		r = *b.Rollout
	}
	s = RolloutSettings{
		Canary:       r.Canary,
		Batch:        max(r.Batch, 1),
		Pause:        r.Pause.D(),
		MigrateHost:  r.MigrateOn,
		NodeTimeout:  r.NodeTimeout.D(),
		ClaimTimeout: r.ClaimTimeout.D(),
	}
	s.CanaryWait, s.CanaryManual, _ = parseCanaryWait(r.CanaryWait)
	if s.MigrateHost == "" || !slices.Contains(b.Hosts, s.MigrateHost) {
		s.MigrateHost = b.Hosts[0]
	}
	if s.NodeTimeout == 0 {
		s.NodeTimeout = DefaultNodeTimeout.D()
	}
	if s.ClaimTimeout == 0 {
		s.ClaimTimeout = DefaultClaimTimeout.D()
	}
	s.Hosts = append([]string{s.MigrateHost}, slices.DeleteFunc(slices.Clone(b.Hosts), func(h string) bool { return h == s.MigrateHost })...)
	return s, true
}

// NodeTimeout is the largest node_timeout of any environment with hosts,
// or the default: the age past which a view calls a node dead.
func (c *Config) NodeTimeout() time.Duration {
	var d time.Duration
	for _, e := range c.Environments() {
		if s, ok := e.RolloutSettings(); ok {
			d = max(d, s.NodeTimeout)
		}
	}
	if d == 0 {
		d = DefaultNodeTimeout.D()
	}
	return d
}

// lookupHost returns the per-host copy of the environment env (of fraise
// f) for host.
func lookupHost(f *Fraise, e *Environment, host string) (*Environment, error) {
	if len(e.Hosts) == 0 {
		return nil, fmt.Errorf("environment %s of %s lists no hosts, so %s names no host target", e.Name, f.Name, e.HostTarget(host))
	}
	if !slices.Contains(e.Hosts, host) {
		return nil, fmt.Errorf("environment %s of %s has no host %q (have: %s)", e.Name, f.Name, host, strings.Join(e.Hosts, ", "))
	}
	c := *e
	c.Name = e.HostTarget(host)
	c.Host = host
	c.HostOf = e
	if e.Code == e {
		c.Code = &c
	}
	return &c, nil
}

var errNegative = errors.New("negative duration")

// parseCanaryWait reads canary_wait: empty (0), manual, or a duration.
func parseCanaryWait(s string) (wait time.Duration, manual bool, err error) {
	switch s {
	case "":
		return 0, false, nil
	case CanaryManual:
		return 0, true, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, false, err
	}
	if d < 0 {
		return 0, false, errNegative
	}
	return d, false, nil
}

// hostSource says where one expanded host came from, for the report of a
// host listed twice.
type hostSource struct {
	index int
	group string
}

// String says where a host was listed, for errors.
func (s hostSource) String() string {
	if s.group == "" {
		return fmt.Sprintf("hosts[%d]", s.index)
	}
	return fmt.Sprintf("group %s (hosts[%d])", s.group, s.index)
}

// validateHostGroups checks host_groups: each member is a host name,
// listed once, and no member names a group (groups do not nest).
func (l *loader) validateHostGroups() {
	for _, g := range sortedKeys(l.cfg.HostGroups) {
		path := joinPath("host_groups", g)
		members := l.cfg.HostGroups[g]
		if len(members) == 0 {
			l.report(path, fmt.Sprintf("host group %s lists no host", g), "list its hosts, e.g. "+g+": [web-1, web-2], or remove it")
		}
		for i, h := range members {
			p := indexPath(path, i)
			switch {
			case h == "":
				l.report(p, "empty host name", "")
			case l.cfg.HostGroups[h] != nil:
				l.report(p, fmt.Sprintf("%s is a host group: groups do not nest", h), "list its hosts here instead")
			case nameProblem(h) != "":
				l.report(p, fmt.Sprintf("host %q %s", h, nameProblem(h)), "a host is a node name, which ends up in target names, logs and SQL")
			case slices.Index(members, h) < i:
				l.report(p, fmt.Sprintf("host %s is listed twice in group %s (at [%d] and [%d])", h, g, slices.Index(members, h), i), "remove one")
			}
		}
	}
	if n := l.cfg.Server.Node; n != "" {
		if msg := nameProblem(n); msg != "" {
			l.report("server.node", fmt.Sprintf("node name %q %s", n, msg), "a node name is a host name of hosts:, e.g. web-1")
		}
	}
}

// validateHosts expands the environment's hosts: (group names into their
// hosts, in order), checks them, checks rollout: and resolves its defaults.
func (l *loader) validateHosts(path string, f *Fraise, e *Environment) {
	hp := path + ".hosts"
	written := l.has(hp)
	if !written {
		if l.has(path + ".rollout") {
			l.report(path+".rollout", "rollout: needs hosts: to roll out across", "list the hosts, e.g. hosts: [web-1, web-2], or remove rollout:")
		}
		return
	}
	if f.Type != "" && f.Type != TypeAPI {
		l.report(hp, fmt.Sprintf("hosts: is only for api fraises for now, and %s is %s fraise", f.Name, article(string(f.Type))), "deploy etl and scheduled fraises on one host each: not yet across hosts")
		return
	}
	// A refused name leaves the others: rollout: is still checked
	// against them, so that one run reports every problem.
	hosts := l.expandHosts(hp, e.Hosts)
	if len(hosts) == 0 {
		return
	}
	e.Hosts = hosts
	if l.cfg.State.URL.Reveal() == "" && l.cfg.State.URLFile == "" && !l.ps.covered("state") {
		l.report(hp, "hosts: needs a shared PostgreSQL state (state.url); SQLite is one machine's",
			"set state.url (or state.url_file) to the postgres:// URL every node shares")
	}
	if e.Rollout == nil {
		e.Rollout = &Rollout{}
	}
	l.validateRollout(path+".rollout", e)
}

// expandHosts replaces group names by their hosts, refusing a host listed
// twice (naming both places) and a name that is not a valid host name.
func (l *loader) expandHosts(path string, names []string) []string {
	if len(names) == 0 {
		l.report(path, "hosts: lists no host", "list the hosts, e.g. hosts: [web-1, web-2], or remove hosts:")
		return nil
	}
	var hosts []string
	from := map[string]hostSource{}
	add := func(p, h string, src hostSource) {
		if prev, dup := from[h]; dup {
			l.report(p, fmt.Sprintf("host %s is listed twice: from %s and from %s", h, prev, src), "list each host once")
			return
		}
		from[h] = src
		hosts = append(hosts, h)
	}
	for i, name := range names {
		p := indexPath(path, i)
		if members, isGroup := l.cfg.HostGroups[name]; isGroup {
			for _, h := range members {
				add(p, h, hostSource{index: i, group: name})
			}
			continue
		}
		if name == "" {
			l.report(p, "empty host name", "")
			continue
		}
		if msg := nameProblem(name); msg != "" {
			l.report(p, fmt.Sprintf("host %q %s", name, msg), "a name here is a host group of host_groups, or else a host (a node name)")
			continue
		}
		add(p, name, hostSource{index: i})
	}
	return hosts
}

// validateRollout checks rollout: against the expanded hosts and fills
// in its defaults.
func (l *loader) validateRollout(path string, e *Environment) {
	r := e.Rollout
	if _, _, err := parseCanaryWait(r.CanaryWait); errors.Is(err, errNegative) {
		l.report(path+".canary_wait", "canary_wait must not be negative", "write 30s, 5m, or manual")
	} else if err != nil {
		l.report(path+".canary_wait", fmt.Sprintf("canary_wait %q is not a duration or manual", r.CanaryWait), "write 30s, 5m, or manual")
	} else if r.CanaryWait != "" && !r.Canary {
		l.report(path+".canary_wait", "canary_wait applies to the canary, and canary is not true", "add canary: true, or remove canary_wait")
	}
	if r.MigrateOn != "" && !slices.Contains(e.Hosts, r.MigrateOn) {
		hint := "name one of: " + strings.Join(e.Hosts, ", ")
		if c := closest(r.MigrateOn, e.Hosts); c != "" {
			hint = "did you mean " + c + "?"
		}
		l.report(path+".migrate_on", fmt.Sprintf("migrate_on %q is not one of the hosts", r.MigrateOn), hint)
	}
	if l.has(path+".node_timeout") && r.NodeTimeout < MinNodeTimeout {
		l.report(path+".node_timeout", fmt.Sprintf("node_timeout %s is shorter than %s", r.NodeTimeout, MinNodeTimeout),
			"nodes heartbeat every node_timeout/6 (at least 1s): a shorter timeout calls live nodes dead")
	}
	if l.has(path+".claim_timeout") && r.ClaimTimeout <= 0 {
		l.report(path+".claim_timeout", "claim_timeout must be more than 0", "the time a host's node has to start its step, e.g. 2m")
	}
	setIfUnset(l, path+".batch", &r.Batch, 1)
	setIfZero(&r.MigrateOn, e.Hosts[0])
	setIfUnset(l, path+".node_timeout", &r.NodeTimeout, DefaultNodeTimeout)
	setIfUnset(l, path+".claim_timeout", &r.ClaimTimeout, DefaultClaimTimeout)
}
