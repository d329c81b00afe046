package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// forgeHosts are the public forges whose host alone tells the forge.
var forgeHosts = map[string]string{
	"github.com":    "github",
	"gitlab.com":    "gitlab",
	"bitbucket.org": "bitbucket",
	"codeberg.org":  "gitea",
}

// ForgeKind is the forge whose webhooks deploy the fraise, by its key in
// the git section: forge as written; else the forge its repository's host
// tells (github.com, gitlab.com, bitbucket.org, codeberg.org), or, when the
// fraise names no repository host, the one its environments' git_repo
// hosts agree on; else the only forge configured. It is "" when none of
// these tells, which the validator refuses when several forges are
// configured. A delivery from another forge never deploys the fraise.
func (f *Fraise) ForgeKind() string {
	if f.Forge != "" {
		return f.Forge
	}
	if k := f.hostForge(); k != "" {
		return k
	}
	if f.Config != nil {
		if forges := f.Config.Git.Forges(); len(forges) == 1 {
			for k := range forges {
				return k
			}
		}
	}
	return ""
}

// hostForge is the forge told by the host of the fraise's repository or,
// when the repository names no host, by the hosts of its environments'
// git_repo when every one of them tells the same forge.
func (f *Fraise) hostForge() string {
	if host, _ := splitRepository(f.Repository); host != "" {
		return forgeHosts[host]
	}
	kind := ""
	for _, e := range f.Environments {
		if e == nil || e.SharesCodeWith != "" {
			continue
		}
		host, _ := splitRepository(e.GitRepo)
		k := forgeHosts[host]
		if k == "" || (kind != "" && k != kind) {
			return ""
		}
		kind = k
	}
	return kind
}

// validateForges ties every fraise to one forge and checks what each
// forge accepts without a signature.
func (l *loader) validateForges() {
	forges := l.cfg.Git.Forges()
	configured := sortedKeys(forges)
	for _, fname := range sortedKeys(l.cfg.Fraises) {
		f := l.cfg.Fraises[fname]
		if f == nil {
			continue
		}
		path := "fraises." + fname
		kind := f.ForgeKind()
		switch {
		case kind == "" && len(forges) > 1:
			why := "it names no repository"
			if f.Repository != "" {
				why = fmt.Sprintf("repository %q names no host fraisier knows a forge by", f.Repository)
			}
			l.report(path+".forge", fmt.Sprintf("which forge delivers %s's webhooks cannot be told: %s, and several forges are configured (%s)", fname, why, strings.Join(configured, ", ")),
				"set forge: to one of "+strings.Join(configured, ", "))
		case kind != "" && len(forges) > 0 && forges[kind] == nil:
			l.warn(path, fmt.Sprintf("%s is on %s, which has no git section: no webhook deploys it", fname, kind),
				"add git."+kind+", or set forge: to the forge that delivers its pushes")
		}
	}
	for _, key := range configured {
		if u := forges[key].AllowUnsigned; u != nil {
			l.validateUnsigned("git."+key+".allow_unsigned", key, u)
		}
	}
	l.warnGitLabTokens()
}

// validateUnsigned checks the allow_unsigned of forge key, written at path.
func (l *loader) validateUnsigned(path, key string, u *Unsigned) {
	if len(u.Fraises) == 0 && len(u.From) == 0 {
		l.report(path, "allow_unsigned names no fraises and no addresses",
			"say which deliveries may come unsigned: fraises: [name], from: [10.0.0.0/8], or both (then both must hold)")
		return
	}
	for i, name := range u.Fraises {
		p := indexPath(path+".fraises", i)
		f, ok := l.cfg.Fraises[name]
		switch {
		case !ok:
			l.report(p, fmt.Sprintf("no fraise %q (have: %s)", name, strings.Join(l.cfg.FraiseNames(), ", ")), "")
		case f != nil && f.ForgeKind() != key && f.ForgeKind() != "":
			l.report(p, fmt.Sprintf("fraise %s is on %s, not %s: %s's deliveries never deploy it", name, f.ForgeKind(), key, key),
				"name fraises of this forge only")
		}
	}
	for i, cidr := range u.From {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			if _, err := netip.ParseAddr(cidr); err != nil {
				l.report(indexPath(path+".from", i), fmt.Sprintf("%q is not an address or CIDR", cidr), "write 10.0.0.0/8 or 192.0.2.1")
			}
		}
	}
	var scope []string
	if len(u.Fraises) > 0 {
		scope = append(scope, "for "+strings.Join(u.Fraises, ", "))
	}
	if len(u.From) > 0 {
		scope = append(scope, "from "+strings.Join(u.From, ", "))
	}
	l.warn(path, fmt.Sprintf("%s deliveries without a signature are accepted %s: whoever can send one can deploy", key, strings.Join(scope, " and ")),
		"use it on a private network only; a secret is always safer")
}

// warnGitLabTokens warns when GitLab has both signing keys and plain
// tokens: while a signing key is configured, every GitLab delivery must be
// signed, so the tokens are never accepted.
func (l *loader) warnGitLabTokens() {
	gl := l.cfg.Git.GitLab
	if gl == nil {
		return
	}
	all := gl.AcceptedSecrets()
	for _, name := range l.cfg.FraiseNames() {
		if f := l.cfg.Fraises[name]; f != nil && f.ForgeKind() == "gitlab" {
			all = append(all, f.Webhook.AcceptedSecrets()...)
		}
	}
	signing := slices.ContainsFunc(all, func(s Secret) bool { return isSigningKey(s.Reveal()) })
	token := slices.ContainsFunc(all, func(s Secret) bool { return !isSigningKey(s.Reveal()) })
	if signing && token {
		l.warn("git.gitlab", "GitLab has a signing key (whsec_…) and a plain token: while a signing key is configured, deliveries must be signed and the token is never accepted",
			"remove the token once every GitLab webhook has its signing token")
	}
}

// isSigningKey reports whether a GitLab secret is a signing key
// (Standard Webhooks: whsec_ and the base64 of the key) rather than a
// token compared with X-Gitlab-Token.
func isSigningKey(s string) bool { return strings.HasPrefix(s, "whsec_") }
