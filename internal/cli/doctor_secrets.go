package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fraiseql/fraisier/internal/config"
)

// exampleSecretMarks are what the secrets of examples and placeholders
// hold (examples/fraises.yaml's default is dev-secret-not-for-production):
// anyone who read them can sign a delivery.
var exampleSecretMarks = []string{"not-for-production", "changeme", "change-me", "change_me", "example", "placeholder"}

// doctorSecrets checks each forge's and fraise's webhook secrets: set
// (config validation already refused short ones and unreadable files),
// and none an example's default.
func doctorSecrets(cfg *config.Config) []doctorCheck {
	type owner struct {
		key     string
		secrets []config.Secret
		open    bool // unsigned deliveries allowed
	}
	var owners []owner
	for key, f := range cfg.Git.Forges() {
		owners = append(owners, owner{"git." + key, f.AcceptedSecrets(), f.AllowUnsigned != nil})
	}
	for name, f := range cfg.Fraises {
		if f.Webhook != nil {
			owners = append(owners, owner{"fraises." + name + ".webhook", f.Webhook.AcceptedSecrets(), false})
		}
	}
	sort.Slice(owners, func(i, j int) bool { return owners[i].key < owners[j].key })
	var out []doctorCheck
	for _, o := range owners {
		c := doctorCheck{Check: "secrets", Subject: o.key, Result: checkOK, Detail: fmt.Sprintf("%d set", len(o.secrets))}
		switch {
		case len(o.secrets) == 0 && o.open:
			c.Result, c.Detail = checkWarn, "no secret: only unsigned deliveries, as allow_unsigned says"
		case len(o.secrets) == 0:
			c.Result, c.Detail, c.Fix = checkFail, "no secret set", "set "+o.key+".secret_file (openssl rand -hex 32 > the file)"
		}
		for _, s := range o.secrets {
			if isExampleSecret(s.Reveal()) {
				c.Result, c.Detail = checkFail, "a secret is an example's default: anyone who read the example can sign deliveries"
				c.Fix = "generate one (openssl rand -hex 32), set it in the forge and in " + o.key + ".secret_file or its ${VAR}"
				break
			}
		}
		out = append(out, c)
	}
	return out
}

func isExampleSecret(s string) bool {
	s = strings.ToLower(s)
	for _, m := range exampleSecretMarks {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
