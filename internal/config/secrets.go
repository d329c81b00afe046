package config

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// SecretValues returns every secret the configuration holds, longest
// first, so that output can be scrubbed of them: the forges' and fraises'
// webhook secrets (from files too), the API token, the state URL, every
// database URL, and the passwords inside those URLs.
func (c *Config) SecretValues() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	addURL := func(s string) {
		add(s)
		u, err := url.Parse(s)
		if err != nil || u.User == nil {
			return
		}
		if pw, ok := u.User.Password(); ok {
			add(pw)
			// As it is written in the URL, when escaping changes it.
			_, escaped, _ := strings.Cut(u.User.String(), ":")
			add(escaped)
		}
	}
	for _, key := range sortedKeys(c.Git.Forges()) {
		for _, s := range c.Git.Forges()[key].AcceptedSecrets() {
			add(s.Reveal())
		}
	}
	for _, name := range c.FraiseNames() {
		if f := c.Fraises[name]; f != nil {
			for _, s := range f.Webhook.AcceptedSecrets() {
				add(s.Reveal())
			}
		}
	}
	add(c.Server.APIToken.Reveal())
	addURL(c.State.URL.Reveal())
	for _, e := range c.Environments() {
		if e.Database != nil {
			addURL(e.Database.URL.Reveal())
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}
