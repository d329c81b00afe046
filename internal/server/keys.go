package server

import (
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
)

// forgeKeys is how one forge's deliveries are authenticated: every
// accepted secret, and for each the fraise it is restricted to ("" for the
// forge's own secrets, which cover every fraise of the forge).
type forgeKeys struct {
	configured bool
	secrets    [][]byte
	owners     []string
	// unsigned is what the forge accepts without a signature; nil when it
	// accepts nothing unsigned.
	unsigned *unsignedPolicy
}

// unsignedPolicy is a forge's allow_unsigned, prepared.
type unsignedPolicy struct {
	// fraises are the only fraises an unsigned delivery may deploy; empty
	// when allow_unsigned names none (then from restricts it).
	fraises []string
	// from are the addresses an unsigned delivery must come from, when
	// restricted is set. An entry that does not parse (the loader refuses
	// one) matches nothing rather than everything.
	from       []netip.Prefix
	restricted bool
}

func buildKeys(cfg *config.Config) map[forge.Kind]forgeKeys {
	sections := map[forge.Kind]*config.Forge{
		forge.GitHub: cfg.Git.GitHub, forge.GitLab: cfg.Git.GitLab, forge.Gitea: cfg.Git.Gitea,
		forge.Bitbucket: cfg.Git.Bitbucket, forge.BitbucketServer: cfg.Git.BitbucketServer,
	}
	keys := map[forge.Kind]forgeKeys{}
	for kind, sec := range sections {
		if sec == nil {
			continue
		}
		k := forgeKeys{configured: true, unsigned: newUnsignedPolicy(sec.AllowUnsigned)}
		for _, s := range sec.AcceptedSecrets() {
			k.secrets = append(k.secrets, []byte(s.Reveal()))
			k.owners = append(k.owners, "")
		}
		// A fraise's own secret may authenticate a delivery of any forge:
		// it then deploys that fraise only, and routing deploys only the
		// delivering forge's fraises.
		for _, name := range cfg.FraiseNames() {
			f := cfg.Fraises[name]
			for _, s := range f.Webhook.AcceptedSecrets() {
				b := []byte(s.Reveal())
				// A signing key turns GitLab's tokens off (forge.Authenticate):
				// only a GitLab fraise's may.
				if kind == forge.GitLab && forge.IsSigningKey(b) && f.ForgeKind() != string(forge.GitLab) {
					continue
				}
				k.secrets = append(k.secrets, b)
				k.owners = append(k.owners, name)
			}
		}
		keys[kind] = k
	}
	return keys
}

func newUnsignedPolicy(u *config.Unsigned) *unsignedPolicy {
	if u == nil {
		return nil
	}
	p := &unsignedPolicy{restricted: len(u.From) > 0}
	if len(u.Fraises) > 0 {
		p.fraises = slices.Clone(u.Fraises)
	}
	for _, s := range u.From {
		if pf, err := netip.ParsePrefix(s); err == nil {
			p.from = append(p.from, pf.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			p.from = append(p.from, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return p
}

// allows reports whether an unsigned delivery from client (an address, or
// "unix" for a unix socket peer) may be accepted at all.
func (p *unsignedPolicy) allows(client string) bool {
	if p == nil {
		return false
	}
	if !p.restricted {
		return true
	}
	a, err := netip.ParseAddr(client)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, pf := range p.from {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// sender is what authentication established about a delivery: whose
// secret signed it, or that it came unsigned and what it may then deploy.
type sender struct {
	forge forge.Kind
	// owner is the fraise whose own secret signed the delivery, or "" for
	// a forge secret (which covers every fraise of the forge) and an
	// unsigned delivery.
	owner string
	// unsigned is set for a delivery accepted without a signature; it may
	// deploy only the fraises in unsignedFor, or when that is empty any
	// fraise of the forge.
	unsigned    bool
	unsignedFor []string
}

// authenticate checks a delivery from client against the forge's keys and
// says who sent it. An unsigned delivery from an address allow_unsigned
// does not cover is refused as one without a signature; the answer does
// not say that unsigned deliveries are accepted from elsewhere.
func (k forgeKeys) authenticate(kind forge.Kind, h http.Header, body []byte, client string, now time.Time) (sender, error) {
	matched, err := forge.Authenticate(kind, h, body, k.secrets, k.unsigned.allows(client), now)
	if err != nil {
		return sender{}, err
	}
	if matched >= 0 {
		return sender{forge: kind, owner: k.owners[matched]}, nil
	}
	return sender{forge: kind, unsigned: true, unsignedFor: k.unsigned.fraises}, nil
}

// notCovered says why the sender may not deploy e, or is "" when it may.
func (who sender) notCovered(e *config.Environment) string {
	fraise, _ := e.Target()
	switch {
	case who.owner != "" && fraise != who.owner:
		return "signed with fraise " + who.owner + "'s own secret, which does not cover " + e.ID()
	case who.unsigned && len(who.unsignedFor) > 0 && !slices.Contains(who.unsignedFor, fraise):
		return "unsigned, and allow_unsigned of " + string(who.forge) + " does not name " + fraise
	}
	return ""
}
