package config

import (
	"strings"
	"time"
)

// Built-in defaults, applied after the defaults section.
const (
	defaultLayout        = LayoutReleases
	defaultKeepReleases  = 5
	defaultScope         = "system"
	defaultStrategy      = "apply"
	defaultManage        = "manage.py"
	defaultListen        = "127.0.0.1:8080"
	defaultBodyLimit     = 1 << 20
	defaultMaxConcurrent = 2
	defaultShutdownGrace = Duration(5 * time.Minute)
	defaultReadTimeout   = Duration(10 * time.Second)
	defaultWriteTimeout  = Duration(30 * time.Second)
	defaultIdleTimeout   = Duration(2 * time.Minute)
	defaultPerSource     = 20
	defaultGlobal        = 2000
	defaultBurst         = 40

	defaultExpectStatus = 200
	defaultHCTimeout    = Duration(5 * time.Second)
	defaultHCRetries    = 10
	defaultHCInterval   = Duration(time.Second)
	defaultHCDeadline   = Duration(60 * time.Second)

	defaultRetainEvents     = Duration(90 * 24 * time.Hour)
	defaultRetainStepOutput = Duration(90 * 24 * time.Hour)
)

// applyDefaults fills in what the file left out: first from the defaults
// section, then the built-in values. Whether a key was written is read
// from the decoder's record rather than from zero values, so that an
// explicit retries: 0 stays 0.
func (l *loader) applyDefaults() {
	c := l.cfg
	s := &c.Server
	setIfZero(&s.Listen, defaultListen)
	setIfUnset(l, "server.body_limit", &s.BodyLimit, defaultBodyLimit)
	setIfUnset(l, "server.max_concurrent_deploys", &s.MaxConcurrent, defaultMaxConcurrent)
	setIfUnset(l, "server.shutdown_grace", &s.ShutdownGrace, defaultShutdownGrace)
	setIfUnset(l, "server.read_timeout", &s.ReadTimeout, defaultReadTimeout)
	setIfUnset(l, "server.write_timeout", &s.WriteTimeout, defaultWriteTimeout)
	setIfUnset(l, "server.idle_timeout", &s.IdleTimeout, defaultIdleTimeout)
	setIfUnset(l, "server.rate_limit.per_source", &s.RateLimit.PerSource, defaultPerSource)
	setIfUnset(l, "server.rate_limit.global", &s.RateLimit.Global, defaultGlobal)
	setIfUnset(l, "server.rate_limit.burst", &s.RateLimit.Burst, defaultBurst)
	setIfUnset(l, "state.retention.events", &c.State.Retention.Events, defaultRetainEvents)
	setIfUnset(l, "state.retention.step_output", &c.State.Retention.StepOutput, defaultRetainStepOutput)

	def := &c.Defaults
	setIfZero(&def.Layout, defaultLayout)
	setIfUnset(l, "defaults.keep_releases", &def.KeepReleases, defaultKeepReleases)
	setIfZero(&def.Scope, defaultScope)

	for _, fname := range sortedKeys(c.Fraises) {
		f := c.Fraises[fname]
		if f == nil {
			continue
		}
		for _, ename := range sortedKeys(f.Environments) {
			if e := f.Environments[ename]; e != nil {
				l.environmentDefaults(envPath(fname, ename), e)
			}
		}
	}
}

func (l *loader) environmentDefaults(path string, e *Environment) {
	def := &l.cfg.Defaults
	setIfZero(&e.Layout, def.Layout)
	setIfUnset(l, path+".keep_releases", &e.KeepReleases, def.KeepReleases)
	setIfZero(&e.Scope, def.Scope)
	if e.AutoDeploy == nil {
		e.AutoDeploy = ptr(true)
	}
	if e.Protected == nil {
		e.Protected = ptr(e.Name == "production" || e.Name == "prod")
	}
	if e.GitRepo == "" && e.Fraise != nil && isCloneSource(e.Fraise.Repository) {
		e.GitRepo = e.Fraise.Repository
	}
	inheritTimeouts(&e.Timeouts, def.Timeouts)
	l.checkGateDefaults(path, e)
	restartDefault(e)

	switch {
	case e.HealthCheck != nil:
		l.healthDefaults(path+".health_check", e.HealthCheck)
	case def.HealthCheck != nil && def.HealthCheck.hasTarget():
		hc := *def.HealthCheck
		hc.Command = append([]string(nil), hc.Command...)
		l.healthDefaults("defaults.health_check", &hc)
		e.HealthCheck = &hc
	}

	if db := e.Database; db != nil {
		setIfZero(&db.Strategy, defaultStrategy)
		if db.RollbackOnFailure == nil {
			db.RollbackOnFailure = ptr(true)
		}
		// python and program stay unset unless written: the release's
		// virtualenv, found at deploy time, comes before PATH's.
		if db.Tool == "django" {
			setIfZero(&db.Manage, defaultManage)
		}
	}

	// Default unit names are built from names; when one of them is invalid
	// that is reported once, as a name, and the units stay unset.
	if e.Fraise != nil && nameProblem(e.Fraise.Name) == "" && nameProblem(e.Name) == "" {
		for i := range e.Jobs {
			j := &e.Jobs[i]
			if j.Name == "" || nameProblem(j.Name) != "" {
				continue
			}
			base := strings.Join([]string{"fraisier", e.Fraise.Name, e.Name, j.Name}, "-")
			setIfZero(&j.SystemdService, base+".service")
			setIfZero(&j.SystemdTimer, base+".timer")
		}
	}
}

// healthDefaults fills the tuning of a health check written at path from
// defaults.health_check, then from the built-in values.
func (l *loader) healthDefaults(path string, hc *HealthCheck) {
	from := l.cfg.Defaults.HealthCheck
	const dp = "defaults.health_check"
	pick := func(key string) bool {
		// The defaults section supplies a value only when it wrote one.
		return !l.has(path+"."+key) && from != nil && path != dp && l.has(dp+"."+key)
	}
	if pick("expect_status") {
		hc.ExpectStatus = from.ExpectStatus
	}
	if pick("timeout") {
		hc.Timeout = from.Timeout
	}
	if pick("retries") {
		hc.Retries = from.Retries
	}
	if pick("interval") {
		hc.Interval = from.Interval
	}
	if pick("start_delay") {
		hc.StartDelay = from.StartDelay
	}
	if pick("deadline") {
		hc.Deadline = from.Deadline
	}
	if pick("body_contains") && hc.URL != "" {
		hc.BodyContains = from.BodyContains
	}
	unset := func(key string) bool { return !l.has(path+"."+key) && !l.has(dp+"."+key) }
	if hc.URL != "" && unset("expect_status") {
		hc.ExpectStatus = defaultExpectStatus
	}
	if unset("timeout") {
		hc.Timeout = defaultHCTimeout
	}
	if unset("retries") {
		hc.Retries = defaultHCRetries
	}
	if unset("interval") {
		hc.Interval = defaultHCInterval
	}
	if unset("deadline") {
		hc.Deadline = defaultHCDeadline
	}
}

func (hc *HealthCheck) hasTarget() bool {
	return hc.URL != "" || hc.TCP != "" || len(hc.Command) > 0 || hc.Unit
}

func inheritTimeouts(t *Timeouts, from Timeouts) {
	setIfZero(&t.Fetch, from.Fetch)
	setIfZero(&t.Install, from.Install)
	setIfZero(&t.Migrate, from.Migrate)
	setIfZero(&t.Restart, from.Restart)
	setIfZero(&t.Health, from.Health)
	setIfZero(&t.Deploy, from.Deploy)
}

func setIfZero[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// setIfUnset sets a value whose zero is meaningful (retries: 0), so only
// when the key was not written at all.
func setIfUnset[T any](l *loader, path string, p *T, v T) {
	if !l.has(path) && !l.ps.covered(path) {
		*p = v
	}
}

func ptr[T any](v T) *T { return &v }
