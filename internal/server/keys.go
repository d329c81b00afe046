package server

import (
	"net/http"
	"time"

	"github.com/fraiseql/fraisier/internal/config"
	"github.com/fraiseql/fraisier/internal/forge"
)

// forgeKeys is how one forge's deliveries are authenticated: every
// accepted secret, and for each the fraise it is restricted to ("" for the
// forge's own secrets, which cover every fraise).
type forgeKeys struct {
	configured    bool
	allowUnsigned bool
	secrets       [][]byte
	owners        []string
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
		k := forgeKeys{configured: true, allowUnsigned: sec.AllowUnsigned != nil}
		for _, s := range sec.AcceptedSecrets() {
			k.secrets = append(k.secrets, []byte(s.Reveal()))
			k.owners = append(k.owners, "")
		}
		for _, name := range cfg.FraiseNames() {
			for _, s := range cfg.Fraises[name].Webhook.AcceptedSecrets() {
				k.secrets = append(k.secrets, []byte(s.Reveal()))
				k.owners = append(k.owners, name)
			}
		}
		keys[kind] = k
	}
	return keys
}

// sender is what authentication established about a delivery: whose
// secret signed it.
type sender struct {
	// owner is the fraise whose own secret signed the delivery, or "" for
	// a forge secret (which covers every fraise) and an unsigned delivery.
	owner string
}

// authenticate checks a delivery from client against the forge's keys and
// says who sent it.
func (k forgeKeys) authenticate(kind forge.Kind, h http.Header, body []byte, client string, now time.Time) (sender, error) {
	matched, err := forge.Authenticate(kind, h, body, k.secrets, k.allowUnsigned, now)
	if err != nil {
		return sender{}, err
	}
	if matched >= 0 {
		return sender{owner: k.owners[matched]}, nil
	}
	return sender{}, nil
}
