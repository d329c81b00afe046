package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Notify says who hears about what: named targets, and routes from
// events to targets per environment.
type Notify struct {
	Targets map[string]*NotifyTarget `yaml:"targets" json:"targets,omitempty" name:"true" doc:"where messages go, by name"`
	Routes  []NotifyRoute            `yaml:"routes" json:"routes,omitempty" doc:"which events of which environments go to which targets; an environment no route names uses default"`
	Default *NotifyRoute             `yaml:"default" json:"default,omitempty" doc:"the route of every environment no route names"`

	MaxAttempts   int      `yaml:"max_attempts" json:"max_attempts,omitempty" min:"1" max:"100" doc:"attempts at one message before it is given up (default 8)"`
	Timeout       Duration `yaml:"timeout" json:"timeout,omitempty" doc:"how long one attempt may take (default 10s)"`
	Retention     Duration `yaml:"retention" json:"retention,omitempty" doc:"how long sent and given-up messages are kept (default 30d)"`
	LockHeldLimit Duration `yaml:"lock_held_limit" json:"lock_held_limit,omitempty" doc:"a deploy lock held longer than this sends lock_held (default 30m)"`
	QueueStuck    Duration `yaml:"queue_stuck_after" json:"queue_stuck_after,omitempty" doc:"a request queued longer than this sends queue_stuck (default 30m)"`
}

// NotifyTarget is one place messages go. URL is a shoutrrr-style URL
// (slack://, discord://, teams://, matrix://, ntfy://, telegram://,
// smtp://) or webhook+https:// (webhook+http://) for fraisier's own JSON
// webhook, signed with Secret.
type NotifyTarget struct {
	URL        Secret `yaml:"url" json:"url,omitempty" doc:"target URL: slack://, discord://, teams://, matrix://, ntfy://, telegram://, smtp:// (shoutrrr syntax) or webhook+https://host/path; it may carry tokens: prefer ${VAR} or url_file"`
	URLFile    string `yaml:"url_file" json:"url_file,omitempty" doc:"file holding the URL; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	Secret     Secret `yaml:"secret" json:"secret,omitempty" doc:"webhook+ targets: the HMAC-SHA256 key signing each body (X-Fraisier-Signature), at least 16 bytes"`
	SecretFile string `yaml:"secret_file" json:"secret_file,omitempty" doc:"file holding the signing key"`
}

// NotifyRoute sends Events of the environments it matches to Targets.
type NotifyRoute struct {
	Fraise      string   `yaml:"fraise" json:"fraise,omitempty" doc:"only this fraise (default: every fraise)"`
	Environment string   `yaml:"environment" json:"environment,omitempty" doc:"only environments of this name (default: every environment)"`
	Events      []string `yaml:"events" json:"events" required:"true" doc:"events to send: succeeded, failed, rolled_back, rollback_failed, interrupted, skipped, lock_held, webhook_refused, queue_stuck, or all (every one but skipped)"`
	Targets     []string `yaml:"targets" json:"targets" required:"true" doc:"names of notify.targets"`
}

// NotifyEvents are the events a route may name. Events not tied to an
// environment (webhook_refused, queue_stuck) follow the default route and
// routes without fraise and environment.
var notifyEvents = []string{
	"succeeded", "failed", "rolled_back", "rollback_failed", "interrupted", "skipped",
	"lock_held", "webhook_refused", "queue_stuck",
}

// NotifyEventNames returns the events a route may name, "all" aside.
func NotifyEventNames() []string { return slices.Clone(notifyEvents) }

// notifySchemes are the URL schemes a target may use.
var notifySchemes = []string{
	"webhook+https", "webhook+http", "slack", "discord", "teams", "matrix", "ntfy", "telegram", "smtp",
}

// Notify defaults.
const (
	DefaultNotifyAttempts  = 8
	DefaultNotifyTimeout   = 10 * time.Second
	DefaultNotifyRetention = 30 * 24 * time.Hour
	DefaultLockHeldLimit   = 30 * time.Minute
	DefaultQueueStuck      = 30 * time.Minute
)

// Attempts is MaxAttempts, or its default.
func (n *Notify) Attempts() int {
	if n.MaxAttempts <= 0 {
		return DefaultNotifyAttempts
	}
	return n.MaxAttempts
}

// orDefault is d, or def when d is zero.
func orDefault(d Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d.D()
}

// AttemptTimeout is Timeout, or its default.
func (n *Notify) AttemptTimeout() time.Duration { return orDefault(n.Timeout, DefaultNotifyTimeout) }

// Keep is Retention, or its default.
func (n *Notify) Keep() time.Duration { return orDefault(n.Retention, DefaultNotifyRetention) }

// LockLimit is LockHeldLimit, or its default.
func (n *Notify) LockLimit() time.Duration { return orDefault(n.LockHeldLimit, DefaultLockHeldLimit) }

// StuckAfter is QueueStuck, or its default.
func (n *Notify) StuckAfter() time.Duration { return orDefault(n.QueueStuck, DefaultQueueStuck) }

// Matches reports whether the route applies to fraise/environment; an
// empty fraise and environment (an event of no environment) match only a
// route that names neither.
func (r *NotifyRoute) Matches(fraise, environment string) bool {
	return (r.Fraise == "" || r.Fraise == fraise) && (r.Environment == "" || r.Environment == environment)
}

// Wants reports whether the route sends event.
func (r *NotifyRoute) Wants(event string) bool {
	return slices.Contains(r.Events, event) || event != "skipped" && slices.Contains(r.Events, "all")
}

// TargetsFor returns the names of the targets that event of
// fraise/environment goes to: those of every route that matches the
// environment and wants the event, or, when no route matches the
// environment, those of the default route.
func (n *Notify) TargetsFor(event, fraise, environment string) []string {
	var out []string
	matched := false
	for i := range n.Routes {
		r := &n.Routes[i]
		if !r.Matches(fraise, environment) {
			continue
		}
		matched = true
		if r.Wants(event) {
			out = append(out, r.Targets...)
		}
	}
	if !matched && n.Default != nil && n.Default.Wants(event) {
		out = append(out, n.Default.Targets...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// readNotifyFiles reads the targets' url_file and secret_file keys.
func (l *loader) readNotifyFiles() {
	for _, name := range sortedKeys(l.cfg.Notify.Targets) {
		t := l.cfg.Notify.Targets[name]
		if t == nil {
			continue
		}
		path := "notify.targets." + name
		if t.URLFile != "" {
			if t.URL != "" {
				l.report(path+".url_file", "url and url_file are both set", "keep one of them")
			} else {
				t.URL, t.URLFile = l.readSecret(path+".url_file", t.URLFile)
			}
		}
		if t.SecretFile != "" {
			if t.Secret != "" {
				l.report(path+".secret_file", "secret and secret_file are both set", "keep one of them")
			} else {
				t.Secret, t.SecretFile = l.readSecret(path+".secret_file", t.SecretFile)
			}
		}
	}
}

// validateNotify checks the targets' URLs and that routes name known
// events, targets, fraises and environments.
func (l *loader) validateNotify() {
	n := &l.cfg.Notify
	for _, name := range sortedKeys(n.Targets) {
		t := n.Targets[name]
		if t == nil {
			l.report("notify.targets."+name, "the target is empty", "give it a url (or url_file)")
			continue
		}
		l.validateNotifyTarget("notify.targets."+name, t)
	}
	for i := range n.Routes {
		l.validateRoute(fmt.Sprintf("notify.routes[%d]", i), &n.Routes[i], true)
	}
	if n.Default != nil {
		l.validateRoute("notify.default", n.Default, false)
	}
}

func (l *loader) validateNotifyTarget(path string, t *NotifyTarget) {
	raw := t.URL.Reveal()
	if raw == "" {
		if !l.has(path + ".url_file") {
			l.report(path, "the target has no url", "set url (a ${VAR} reference) or url_file")
		}
		return
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || !slices.Contains(notifySchemes, strings.ToLower(scheme)) {
		// The URL may carry a token: name its scheme only.
		l.report(path+".url", fmt.Sprintf("scheme %q is not one fraisier sends to", schemeOnly(raw)),
			"use one of "+strings.Join(notifySchemes, ", ")+" (see docs/notifications.md)")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		l.report(path+".url", "the URL does not parse or has no host (its text is not shown: it may carry a token)",
			"check it against the examples in docs/notifications.md")
		return
	}
	webhook := strings.HasPrefix(strings.ToLower(scheme), "webhook+")
	switch {
	case webhook && t.Secret == "":
		l.report(path+".secret", "a webhook+ target needs a signing secret", "set secret (a ${VAR} reference) or secret_file, at least 16 bytes, and give it to the receiver")
	case webhook:
		l.checkSecretLen(path+".secret", t.Secret)
	case t.Secret != "":
		l.report(path+".secret", "only webhook+ targets are signed", "remove secret, or use a webhook+https:// URL")
	}
}

func schemeOnly(raw string) string {
	s, _, ok := strings.Cut(raw, "://")
	if !ok || len(s) > 20 {
		return "(none)"
	}
	return s
}

func (l *loader) validateRoute(path string, r *NotifyRoute, named bool) {
	if !named && (r.Fraise != "" || r.Environment != "") {
		l.report(path, "the default route applies to every environment", "move fraise and environment into a route under notify.routes")
	}
	for i, e := range r.Events {
		if e != "all" && !slices.Contains(notifyEvents, e) {
			l.report(fmt.Sprintf("%s.events[%d]", path, i), fmt.Sprintf("unknown event %q", e),
				"use all or some of "+strings.Join(notifyEvents, ", "))
		}
	}
	if len(r.Targets) == 0 {
		l.report(path+".targets", "the route sends to no target", "name at least one of notify.targets")
	}
	for i, t := range r.Targets {
		if _, ok := l.cfg.Notify.Targets[t]; !ok {
			l.report(fmt.Sprintf("%s.targets[%d]", path, i), fmt.Sprintf("no target named %q", t),
				"define it under notify.targets or fix the name")
		}
	}
	if r.Fraise != "" {
		f, ok := l.cfg.Fraises[r.Fraise]
		if !ok {
			l.report(path+".fraise", fmt.Sprintf("no fraise named %q", r.Fraise), "fix the name or drop the key")
		} else if r.Environment != "" && f != nil {
			if _, ok := f.Environments[r.Environment]; !ok {
				l.report(path+".environment", fmt.Sprintf("fraise %s has no environment %q", r.Fraise, r.Environment), "fix the name or drop the key")
			}
		}
	}
}

// notifySecrets returns what the targets hold that must never be printed:
// each URL whole, the password, user and long path segments in it (a
// Slack or Telegram token travels there), token-like query values, and
// the webhook signing secrets.
func (n *Notify) notifySecrets() []string {
	var out []string
	for _, name := range sortedKeys(n.Targets) {
		t := n.Targets[name]
		if t == nil {
			continue
		}
		out = append(out, t.Secret.Reveal())
		raw := t.URL.Reveal()
		if raw == "" {
			continue
		}
		out = append(out, raw, strings.TrimPrefix(raw, "webhook+"))
		out = append(out, urlPasswords(raw)...)
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if u.User != nil && len(u.User.Username()) >= 8 {
			out = append(out, u.User.Username())
		}
		for seg := range strings.SplitSeq(u.Path, "/") {
			if len(seg) >= 16 {
				out = append(out, seg)
			}
		}
		for k, vs := range u.Query() {
			k = strings.ToLower(k)
			if strings.Contains(k, "token") || strings.Contains(k, "pass") || strings.Contains(k, "key") || strings.Contains(k, "secret") {
				out = append(out, vs...)
			}
		}
	}
	return out
}
