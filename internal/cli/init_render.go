package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"

	"github.com/fraiseql/fraisier/internal/forge"
)

// initPlan is everything fraisier init writes and prints, decided before
// anything is written.
type initPlan struct {
	Name       string
	Source     string // what the user gave: a path or a clone URL
	Remote     string // clone URL fraisier deploys from
	Repository string // owner/name when the remote names one, else ""
	Branch     string
	SHA        string
	Forge      forge.Kind
	AppPath    string
	Scope      string
	Detected   initDetection
	// SecretPath is where the secret is written; SecretRef is what
	// fraises.yaml names (a credential name under the packaged unit).
	SecretPath, SecretRef string
	// SecretMode is the secret file's mode, once written.
	SecretMode fs.FileMode
	PublicURL  string
}

// yamlString quotes s as a YAML scalar: JSON strings are YAML.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func yamlList(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = yamlString(a)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// renderConfig is the fraises.yaml fraisier init writes.
func (p *initPlan) renderConfig() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# fraises.yaml written by fraisier init from %s.\n", p.sourceLine())
	w("# Check it with: fraisier config validate\n\n")
	w("git:\n  %s:\n", p.Forge)
	if !strings.HasPrefix(p.SecretRef, "/") {
		w("    # A systemd credential: fraisier.service hands every file of\n")
		w("    # /etc/fraisier/credentials to serve as fraisier_<file name>.\n")
	}
	w("    secret_file: %s\n\n", yamlString(p.SecretRef))
	w("server:\n  listen: 127.0.0.1:8080   # behind a TLS reverse proxy\n\n")
	if !strings.HasPrefix(p.SecretRef, "/") {
		w("# serve's state database (StateDirectory=fraisier), for whoever runs\n")
		w("# fraisier: root, or sudo -u fraisier.\n")
		w("state:\n  path: %s\n\n", packagedState)
	}
	w("fraises:\n  %s:\n    type: api\n", p.Name)
	if p.Repository != "" {
		w("    repository: %s\n", yamlString(p.Repository))
	}
	w("    forge: %s\n    environments:\n      production:\n", p.Forge)
	w("        branch: %s\n", yamlString(p.Branch))
	w("        git_repo: %s\n", yamlString(p.Remote))
	w("        app_path: %s\n", yamlString(p.AppPath))
	w("        scope: %s\n", p.Scope)
	w("        systemd_service: %s\n", yamlString(p.Name+".service"))
	if d := p.Detected; d.Install != nil {
		w("        install:   # from %s\n          command: %s\n          timeout: 10m\n", d.InstallFrom, yamlList(d.Install))
	}
	if d := p.Detected; d.Migration != "" {
		w("        database:   # from %s; give url: or url_file: if the tool does not find it itself\n", d.MigrateFrom)
		w("          tool: %s\n", d.Migration)
		if d.MigrateConfig != "" {
			w("          config: %s\n", yamlString(d.MigrateConfig))
		}
	}
	w("        health_check:\n          unit: true   # better: url: http://127.0.0.1:PORT/health\n")
	return []byte(b.String())
}

// renderUnit proposes the app's own unit; fraisier restarts it after each
// switch. ExecStart is a guess from the install command.
func (p *initPlan) renderUnit() []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# %s.service, proposed by fraisier init: check ExecStart.\n", p.Name)
	w("[Unit]\nDescription=%s (deployed by fraisier)\n", p.Name)
	w("After=network-online.target\nWants=network-online.target\n\n")
	w("[Service]\nWorkingDirectory=%s/current\n", p.AppPath)
	w("ExecStart=%s\n", p.execStart())
	w("Restart=on-failure\nNoNewPrivileges=yes\nPrivateTmp=yes\nProtectSystem=full\n")
	if p.Scope == "system" {
		w("# The app's own user, neither root nor fraisier:\n# User=%s\n", p.Name)
	}
	target := "multi-user.target"
	if p.Scope == "user" {
		target = "default.target"
	}
	w("\n[Install]\nWantedBy=%s\n", target)
	return []byte(b.String())
}

func (p *initPlan) execStart() string {
	cur := p.AppPath + "/current"
	switch {
	case p.Detected.Migration == "django":
		return cur + "/.venv/bin/gunicorn --bind 127.0.0.1:8000 " + p.Name + ".wsgi"
	case p.Detected.InstallFrom == "go.mod":
		return cur + "/bin/" + p.Name
	case p.Detected.InstallFrom == "Cargo.lock":
		return cur + "/target/release/" + p.Name
	case strings.HasSuffix(p.Detected.InstallFrom, ".json"), strings.HasSuffix(p.Detected.InstallFrom, "lock.yaml"), p.Detected.InstallFrom == "yarn.lock":
		return "/usr/bin/npm start"
	case p.Detected.InstallFrom == "uv.lock", p.Detected.InstallFrom == "requirements.txt", p.Detected.InstallFrom == "poetry.lock":
		return cur + "/.venv/bin/python -m " + strings.ReplaceAll(p.Name, "-", "_")
	}
	return cur + "/run"
}

// forgeSetting is one field of a forge's webhook form.
type forgeSetting struct{ field, value string }

// webhookSettings says where in the forge's UI the webhook is added and
// what to enter, field by field, as the forge names its fields.
func (p *initPlan) webhookSettings() (where string, settings []forgeSetting) {
	hook := strings.TrimSuffix(p.PublicURL, "/") + "/webhook/" + string(p.Forge)
	secret := "the content of " + p.SecretPath
	switch p.Forge {
	case forge.GitHub:
		return "GitHub: the repository's Settings → Webhooks → Add webhook", []forgeSetting{
			{"Payload URL", hook}, {"Content type", "application/json"}, {"Secret", secret},
			{"SSL verification", "Enable"}, {"Which events", "Just the push event"}, {"Active", "checked"}}
	case forge.GitLab:
		return "GitLab: the project's Settings → Webhooks → Add new webhook", []forgeSetting{
			{"URL", hook}, {"Secret token", secret}, {"Trigger", "Push events (branch " + p.Branch + ")"},
			{"SSL verification", "Enable SSL verification"}}
	case forge.Gitea:
		return "Gitea/Forgejo: the repository's Settings → Webhooks → Add webhook → Gitea (or Forgejo)", []forgeSetting{
			{"Target URL", hook}, {"HTTP method", "POST"}, {"POST content type", "application/json"},
			{"Secret", secret}, {"Trigger on", "Push events"}, {"Branch filter", p.Branch}, {"Active", "checked"}}
	case forge.Bitbucket:
		return "Bitbucket Cloud: the repository's Repository settings → Webhooks → Add webhook", []forgeSetting{
			{"URL", hook}, {"Secret", secret}, {"Triggers", "Repository: Push"}, {"Status", "Active"}}
	default:
		return "Bitbucket Data Center: the repository's Settings → Webhooks → Create webhook", []forgeSetting{
			{"URL", hook}, {"Secret", secret}, {"Events", "Repository: Push"}, {"Status", "Active"}}
	}
}

// printWebhook writes the forge's settings, the secret shown only when
// asked.
func (p *initPlan) printWebhook(out io.Writer, secret string, show bool) {
	where, settings := p.webhookSettings()
	fmt.Fprintf(out, "\n%s:\n", where)
	for _, s := range settings {
		v := s.value
		if s.field == "Secret" || s.field == "Secret token" {
			if show {
				v = secret
			} else {
				v += " (--show-secret prints it)"
			}
		}
		fmt.Fprintf(out, "  %-18s %s\n", s.field, v)
	}
}

// forgeOfRemote is the forge a clone URL's host names, "" when its host
// is not one of the public forges.
func forgeOfRemote(remote string) forge.Kind {
	host := ""
	if u, err := url.Parse(remote); err == nil && strings.Contains(remote, "://") {
		host = u.Hostname()
	} else if _, rest, ok := strings.Cut(remote, "@"); ok {
		host, _, _ = strings.Cut(rest, ":")
	}
	switch strings.ToLower(host) {
	case "github.com":
		return forge.GitHub
	case "gitlab.com":
		return forge.GitLab
	case "bitbucket.org":
		return forge.Bitbucket
	case "codeberg.org":
		return forge.Gitea
	}
	return ""
}

// ownerName is "owner/name" of a forge clone URL (https or ssh), the
// repository webhooks name; "" for a local path or a file URL.
func ownerName(remote string) string {
	var path string
	if u, err := url.Parse(remote); err == nil && strings.Contains(remote, "://") {
		if u.Scheme == "file" {
			return ""
		}
		path = u.Path
	} else if _, rest, ok := strings.Cut(remote, "@"); ok {
		_, path, _ = strings.Cut(rest, ":")
	} else {
		return ""
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if strings.Count(path, "/") < 1 || strings.ContainsAny(path, " \t") {
		return ""
	}
	return path
}

// printInit says what init found and wrote, and what is left to do.
func (a *app) printInit(o initOptions, p *initPlan, unitPath, secret string) {
	out := a.streams.Out
	fmt.Fprintf(out, "source      %s\n", p.sourceLine())
	fmt.Fprintf(out, "fraise      %s (api), forge %s\n", p.Name, p.Forge)
	fmt.Fprintf(out, "install     %s\n", p.Detected.installSummary())
	fmt.Fprintf(out, "migrations  %s\n", p.Detected.migrationSummary())
	fmt.Fprintf(out, "wrote       %s\n", o.output)
	fmt.Fprintf(out, "secret      %s (mode %04o, %d random bytes, hex)", p.SecretPath, p.SecretMode, secretBytes)
	if p.SecretRef != p.SecretPath {
		fmt.Fprintf(out, "; fraises.yaml names it as serve's credential %s", p.SecretRef)
	}
	fmt.Fprintln(out)
	if o.writeUnit {
		fmt.Fprintf(out, "unit        %s (check ExecStart; install it for the %s manager)\n", unitPath, p.Scope)
	} else {
		fmt.Fprintf(out, "\nproposed %s (--write-unit writes it beside %s):\n\n", p.Name+".service", o.output)
		out.Write(p.renderUnit())
	}
	p.printWebhook(out, secret, o.showSecret)
	fmt.Fprintf(out, "\nnext: fraisier config validate %s\n", o.output)
}

// sourceLine is the remote and branch read, with the commit when init
// fetched one.
func (p *initPlan) sourceLine() string {
	if p.SHA != "" {
		return p.Remote + " (" + p.Branch + " at " + shortSHA(p.SHA) + ")"
	}
	return p.Remote + " (" + p.Branch + ")"
}
