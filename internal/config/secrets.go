package config

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// MinSecretLen is the shortest webhook secret, API token or signing key
// (once decoded) fraisier accepts: shorter ones can be guessed.
const MinSecretLen = 16

// validateSecretLengths refuses secrets shorter than MinSecretLen. The
// report never quotes a secret, nor says how long it is.
func (l *loader) validateSecretLengths() {
	forges := l.cfg.Git.Forges()
	for _, key := range sortedKeys(forges) {
		f := forges[key]
		l.checkSecrets("git."+key, f.Secret, f.FileSecret, f.Secrets)
	}
	for _, name := range sortedKeys(l.cfg.Fraises) {
		if f := l.cfg.Fraises[name]; f != nil && f.Webhook != nil {
			w := f.Webhook
			l.checkSecrets("fraises."+name+".webhook", w.Secret, w.FileSecret, w.Secrets)
		}
	}
	p := "server.api_token"
	if l.has("server.api_token_file") {
		p = "server.api_token_file"
	}
	l.checkSecretLen(p, l.cfg.Server.APIToken)
}

func (l *loader) checkSecrets(path string, secret, file Secret, more []Secret) {
	l.checkSecretLen(path+".secret", secret)
	l.checkSecretLen(path+".secret_file", file)
	for i, s := range more {
		l.checkSecretLen(indexPath(path+".secrets", i), s)
	}
}

func (l *loader) checkSecretLen(path string, s Secret) {
	v := s.Reveal()
	if v == "" {
		return // empty ones are reported, or mean "not set"
	}
	const hint = "generate one, e.g. openssl rand -hex 32"
	if b64, ok := strings.CutPrefix(v, "whsec_"); ok {
		key, err := base64.StdEncoding.DecodeString(b64)
		switch {
		case err != nil:
			l.report(path, "the signing key is not whsec_ followed by base64", "copy GitLab's signing token as it is")
		case len(key) < MinSecretLen:
			l.report(path, fmt.Sprintf("the signing key decodes to fewer than %d bytes", MinSecretLen), "let GitLab generate the signing token")
		}
		return
	}
	if len(v) < MinSecretLen {
		l.report(path, fmt.Sprintf("the secret is shorter than %d bytes", MinSecretLen), hint)
	}
}

// urlPasswords returns the passwords a URL carries wherever a database
// client reads one, in the userinfo (user:password@) and as a password
// query parameter (libpq's and pgx's ?password=), each as written in the
// URL and decoded, since a tool may print either. The URL is taken apart
// by hand, so that one net/url would refuse still gives up its password.
func urlPasswords(raw string) []string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	var out []string
	spellings := func(written string) {
		if written == "" {
			return
		}
		out = append(out, written)
		// Percent escapes alone (libpq, the userinfo), or a + for a
		// space as well (a query string as net/url reads it).
		for _, unescape := range []func(string) (string, error){url.PathUnescape, url.QueryUnescape} {
			if s, err := unescape(written); err == nil && s != "" {
				out = append(out, s)
			}
		}
	}
	rest, query, _ := strings.Cut(rest, "?")
	authority, _, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		if _, pw, ok := strings.Cut(authority[:i], ":"); ok {
			spellings(pw)
		}
	}
	for kv := range strings.SplitSeq(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == "password" {
			spellings(v)
		}
	}
	return out
}

// SecretValues returns every secret the configuration holds, longest
// first, so that output can be scrubbed of them: the forges' and fraises'
// webhook secrets (from files too), the API token, the forges' status
// tokens, the state URL, every database URL, the passwords inside those
// URLs (see urlPasswords), and the notify targets' URLs, the tokens in
// them and their signing secrets.
func (c *Config) SecretValues() []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	addURL := func(s string) {
		add(s)
		for _, pw := range urlPasswords(s) {
			add(pw)
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
	for _, t := range c.Git.statusTokens() {
		add(t)
	}
	addURL(c.State.URL.Reveal())
	for _, e := range c.Environments() {
		if e.Database != nil {
			addURL(e.Database.URL.Reveal())
		}
	}
	for _, s := range c.Notify.notifySecrets() {
		add(s)
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return out
}
