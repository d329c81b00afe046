package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ForgeStatus is what reporting deployments on a forge needs: a token that
// may write commit statuses there, and the API's address for a self-hosted
// forge.
type ForgeStatus struct {
	Token     Secret `yaml:"token" json:"token,omitempty" doc:"API token that may write commit statuses (GitHub: and deployments); for Bitbucket, user:app_password is sent as basic authentication. Use ${VAR} or token_file rather than a literal"`
	TokenFile string `yaml:"token_file" json:"token_file,omitempty" doc:"file holding the token; relative names are looked up in $CREDENTIALS_DIRECTORY"`
	APIURL    string `yaml:"api_url" json:"api_url,omitempty" doc:"the forge's address (default https://api.github.com, https://gitlab.com, https://api.bitbucket.org; required for gitea and bitbucket_server, e.g. https://git.example.com; GitHub Enterprise: https://HOST/api/v3)"`
}

// statusAPIRequired are the forges without a public service, whose
// status.api_url must be set.
var statusAPIRequired = map[string]bool{"gitea": true, "bitbucket_server": true}

// StatusOf returns the status settings of the forge named key (github,
// gitlab, gitea, bitbucket, bitbucket_server): its API address as written
// ("" for the forge's default) and its token; ok is false when the forge
// reports no status.
func (g *Git) StatusOf(key string) (apiURL string, token Secret, ok bool) {
	f := g.Forges()[key]
	if f == nil || f.Status == nil || f.Status.Token == "" {
		return "", "", false
	}
	return f.Status.APIURL, f.Status.Token, true
}

// statusTokens returns every forge's status token, for SecretValues.
func (g *Git) statusTokens() []string {
	var out []string
	for _, key := range sortedKeys(g.Forges()) {
		if s := g.Forges()[key].Status; s != nil && s.Token != "" {
			out = append(out, s.Token.Reveal())
		}
	}
	return out
}

// readStatusTokens reads each forge's status.token_file into its token.
func (l *loader) readStatusTokens() {
	forges := l.cfg.Git.Forges()
	for _, key := range sortedKeys(forges) {
		s := forges[key].Status
		if s == nil || s.TokenFile == "" {
			continue
		}
		path := "git." + key + ".status"
		if s.Token != "" {
			l.report(path+".token_file", "token and token_file are both set", "keep one of them")
			continue
		}
		s.Token, s.TokenFile = l.readSecret(path+".token_file", s.TokenFile)
	}
}

// onlyStatus reports whether the forge section at path holds a status
// block and no webhook key at all: it reports deployments made from the
// command line or the API and accepts no webhook, which a warning says.
func onlyStatus(l *loader, path string) bool {
	for _, k := range []string{"secret", "secret_file", "secrets", "allow_unsigned"} {
		if l.has(path + "." + k) {
			return false
		}
	}
	if !l.has(path + ".status") {
		return false
	}
	l.warn(path, path[len("git."):]+" has a status block and no secret: deployments are reported on it, but its webhooks are refused",
		"add secret (or secret_file) to deploy on its pushes")
	return true
}

// validateForgeStatus checks each forge's status section: a token, and an
// API address fraisier may send that token to.
func (l *loader) validateForgeStatus() {
	forges := l.cfg.Git.Forges()
	for _, key := range sortedKeys(forges) {
		s := forges[key].Status
		if s == nil {
			continue
		}
		path := "git." + key + ".status"
		tokenAt := path + ".token"
		if l.has(path + ".token_file") {
			tokenAt = path + ".token_file"
		}
		switch tok := s.Token.Reveal(); {
		case tok == "" && !l.ps.covered(path+".token_file"):
			l.report(path, key+" status has no token, so no deployment can be reported",
				"set token (from ${VAR}) or token_file to a token that may write commit statuses; or remove status")
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			// Never quoted: it is a secret.
			l.report(tokenAt, "the token holds a space or a control character", "copy the token alone, without quotes or a line break")
		}
		l.checkStatusAPIURL(path+".api_url", key, s.APIURL)
	}
}

// checkStatusAPIURL checks api_url of forge key, written at path.
func (l *loader) checkStatusAPIURL(path, key, raw string) {
	if raw == "" {
		if statusAPIRequired[key] {
			l.report(path, key+" has no public service: status needs api_url", "set api_url to the instance's address, e.g. https://git.example.com")
		}
		return
	}
	const hint = "write the forge's address, e.g. https://git.example.com"
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		l.report(path, fmt.Sprintf("%.200q is not a URL", raw), hint)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		l.report(path, fmt.Sprintf("%.200q is not an http(s) address", raw), hint)
	case u.User != nil:
		// Do not quote it: the password is in it.
		l.report(path, "api_url holds a user or password", "put the credentials in token or token_file, and write the address alone")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		l.report(path, fmt.Sprintf("%.200q has a query or fragment", raw), hint)
	case u.Scheme == "http" && !loopbackHost(u.Hostname()):
		l.warn(path, fmt.Sprintf("%s is plain http: the token crosses the network unencrypted", raw), "use https")
	}
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
