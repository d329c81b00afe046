package config

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
