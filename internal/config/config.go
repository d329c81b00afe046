package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// FraiseNames returns the names of the fraises, sorted.
func (c *Config) FraiseNames() []string { return sortedKeys(c.Fraises) }

// EnvironmentNames returns the names of the fraise's environments, sorted.
func (f *Fraise) EnvironmentNames() []string { return sortedKeys(f.Environments) }

// Environments returns every environment of every fraise, sorted by fraise
// then environment name.
func (c *Config) Environments() []*Environment {
	var out []*Environment
	for _, fname := range c.FraiseNames() {
		f := c.Fraises[fname]
		for _, ename := range f.EnvironmentNames() {
			out = append(out, f.Environments[ename])
		}
	}
	return out
}

// Lookup finds one environment of one fraise. The error names what exists,
// so that a typo on the command line is easy to fix. For env@host (a host
// of an environment with hosts:) it returns a copy of the environment
// named env@host, with Host and HostOf set.
func (c *Config) Lookup(fraise, env string) (*Environment, error) {
	if base, host := SplitHost(env); host != "" || base != env {
		e, err := c.Lookup(fraise, base)
		if err != nil {
			return nil, err
		}
		return lookupHost(e.Fraise, e, host)
	}
	f, ok := c.Fraises[fraise]
	if !ok {
		return nil, fmt.Errorf("no fraise %q in %s (have: %s)", fraise, c.Path, strings.Join(c.FraiseNames(), ", "))
	}
	e, ok := f.Environments[env]
	if !ok {
		return nil, fmt.Errorf("fraise %s has no environment %q (have: %s)", fraise, env, strings.Join(f.EnvironmentNames(), ", "))
	}
	return e, nil
}

// Summary counts what a configuration holds, for config validate.
type Summary struct {
	Fraises      int `json:"fraises"`
	Environments int `json:"environments"`
	Jobs         int `json:"jobs"`
}

// Summary counts the fraises, environments and jobs.
func (c *Config) Summary() Summary {
	var s Summary
	s.Fraises = len(c.Fraises)
	for _, e := range c.Environments() {
		s.Environments++
		s.Jobs += len(e.Jobs)
	}
	return s
}

// Target returns the fraise and environment names.
func (e *Environment) Target() (fraise, env string) {
	if e.Fraise != nil {
		fraise = e.Fraise.Name
	}
	return fraise, e.Name
}

// ID is "fraise/environment", the form shares_code_with and the command
// line use.
func (e *Environment) ID() string {
	f, env := e.Target()
	return f + "/" + env
}

// Services returns the systemd units restarted after the switch, each with
// its suffix (.service unless written otherwise).
func (e *Environment) Services() []string { return e.SystemdService }

// IsProtected reports whether destructive operations are refused here.
func (e *Environment) IsProtected() bool { return e.Protected != nil && *e.Protected }

// IsAutoDeploy reports whether a matching push deploys this environment.
func (e *Environment) IsAutoDeploy() bool { return e.AutoDeploy == nil || *e.AutoDeploy }

// CodePath is the directory whose releases this environment runs: its own
// app_path, or that of the environment it shares code with.
func (e *Environment) CodePath() string {
	if e.Code != nil {
		return e.Code.AppPath
	}
	return e.AppPath
}

// AcceptedSecrets returns every secret a delivery may be signed with:
// secret, the content of secret_file, and secrets, without empty ones.
func (f *Forge) AcceptedSecrets() []Secret {
	if f == nil {
		return nil
	}
	return acceptedSecrets(f.Secret, f.FileSecret, f.Secrets)
}

// AcceptedSecrets returns the fraise's own secrets, as Forge.AcceptedSecrets.
func (w *FraiseWebhook) AcceptedSecrets() []Secret {
	if w == nil {
		return nil
	}
	return acceptedSecrets(w.Secret, w.FileSecret, w.Secrets)
}

func acceptedSecrets(secret, file Secret, more []Secret) []Secret {
	var out []Secret
	for _, s := range append([]Secret{secret, file}, more...) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Forges returns the configured forges by their key in the git section.
func (g *Git) Forges() map[string]*Forge {
	out := map[string]*Forge{}
	for k, f := range map[string]*Forge{
		"github": g.GitHub, "gitlab": g.GitLab, "gitea": g.Gitea,
		"bitbucket": g.Bitbucket, "bitbucket_server": g.BitbucketServer,
	} {
		if f != nil {
			out[k] = f
		}
	}
	return out
}

// Calendar is the job's OnCalendar expression: on_calendar as written, or
// schedule converted from cron.
func (j *Job) Calendar() (string, error) {
	if j.OnCalendar != "" {
		return j.OnCalendar, nil
	}
	return CronToOnCalendar(j.Schedule)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func envPath(fraise, env string) string {
	return "fraises." + fraise + ".environments." + env
}
