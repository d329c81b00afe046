package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// shellMeta are the characters the webhook intake refuses in refs
// (internal/forge), so that a branch or tags pattern holding one could
// never match a push.
const shellMeta = "$`;|&<>'\"()"

// validate checks everything the decoder cannot: the tag rules (abs, name,
// min, max) over the whole tree, then the rules that relate keys to each
// other.
func (l *loader) validate() {
	l.validateTags(reflect.ValueOf(l.cfg).Elem(), "")
	l.validateServer()
	l.validateState()
	l.validateGit()
	l.validateHostGroups()
	if hc := l.cfg.Defaults.HealthCheck; hc != nil {
		l.validateHealthCheck("defaults.health_check", hc, nil, true)
	}
	l.validateCheckNames("defaults.checks", l.cfg.Defaults.Checks)
	for _, fname := range sortedKeys(l.cfg.Fraises) {
		if f := l.cfg.Fraises[fname]; f != nil {
			l.validateFraise("fraises."+fname, f)
		}
	}
	l.validateOrder()
	l.validateAppPaths()
	l.validateRouting()
	l.validateForges()
	l.validateForgeStatus()
	l.validateSecretLengths()
	l.validateNotify()
}

func (l *loader) validateServer() {
	s := &l.cfg.Server
	l.validateListen()
	for i, cidr := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			if _, err := netip.ParseAddr(cidr); err != nil {
				l.report(indexPath("server.trusted_proxies", i), fmt.Sprintf("%q is not an address or CIDR", cidr), "write 10.0.0.0/8 or 192.0.2.1")
			}
		}
	}
}

func hostPortProblem(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "is not host:port"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "has no valid port (1-65535)"
	}
	return ""
}

func (l *loader) validateState() {
	s := &l.cfg.State
	var set []string
	for _, k := range []string{"path", "url", "url_file"} {
		if l.has("state." + k) {
			set = append(set, k)
		}
	}
	if len(set) > 1 {
		l.report("state."+set[1], fmt.Sprintf("state has both %s and %s", set[0], set[1]), "keep one: path for SQLite, url or url_file for PostgreSQL")
		return
	}
	if u := s.URL.Reveal(); u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		key := "state.url"
		if s.URLFile != "" {
			key = "state.url_file"
		}
		// The URL holds a password: say what is wrong without quoting it.
		l.report(key, "the state URL must start with postgres:// or postgresql://", "for SQLite use state.path")
	}
}

func (l *loader) validateGit() {
	forges := l.cfg.Git.Forges()
	for _, key := range sortedKeys(forges) {
		f := forges[key]
		path := "git." + key
		for i, s := range f.Secrets {
			if s == "" {
				l.report(indexPath(path+".secrets", i), "empty secret", "remove it, or check the variable it comes from")
			}
		}
		if len(f.AcceptedSecrets()) == 0 && f.AllowUnsigned == nil && !l.ps.covered(path+".secret_file") {
			if onlyStatus(l, path) {
				continue
			}
			l.report(path, fmt.Sprintf("%s has no secret, so every delivery would be refused", key),
				"set secret (from ${VAR}), secret_file or secrets; or allow_unsigned for some fraises or addresses on a private network only")
		}
	}
}

func (l *loader) validateFraise(path string, f *Fraise) {
	if r := f.Repository; r != "" && !isCloneSource(r) && !isRepositoryName(r) {
		l.report(path+".repository", fmt.Sprintf("repository %q is not owner/name, a clone URL or an absolute path", r), "write acme/hello or https://github.com/acme/hello.git")
	}
	if len(f.Environments) == 0 && l.has(path+".environments") {
		l.report(path+".environments", "no environments", "add one, e.g. production: {branch: main, app_path: /srv/"+f.Name+"}")
	}
	for _, ename := range sortedKeys(f.Environments) {
		if e := f.Environments[ename]; e != nil {
			l.validateEnvironment(path+".environments."+ename, f, e)
		}
	}
}

// fieldsOnlyFor lists the environment keys that belong to some fraise
// types only.
var fieldsOnlyFor = []struct {
	key   string
	types []FraiseType
	hint  string
}{
	{"scripts", []FraiseType{TypeETL}, ""},
	{"run_after_deploy", []FraiseType{TypeETL}, ""},
	{"shares_code_with", []FraiseType{TypeETL, TypeScheduled}, ""},
	{"jobs", []FraiseType{TypeScheduled}, "jobs run only in a fraise of type scheduled"},
	{"systemd_service", []FraiseType{TypeAPI, TypeETL}, "jobs have their own units: jobs[].systemd_service"},
	{"health_check", []FraiseType{TypeAPI, TypeETL}, "a scheduled fraise has no service to check"},
}

func (l *loader) validateEnvironment(path string, f *Fraise, e *Environment) {
	l.checkTypedKeys(path, f)
	l.validateHosts(path, f, e)
	l.validateRefPatterns(path, e)
	l.validateCheckGate(path, e)
	l.validateCodeSource(path, f, e)
	for i, s := range e.Shared {
		l.checkRelative(indexPath(path+".shared", i), "shared entry", s)
	}
	l.validateServices(path, e)
	l.validateBlueGreen(path, f, e)
	l.validateRestartSocket(path, f, e)
	if e.Install != nil {
		l.validateCommand(path+".install", e.Install)
	}
	if e.RunAfterDeploy != nil {
		l.validateCommand(path+".run_after_deploy", e.RunAfterDeploy)
	}
	if e.Database != nil {
		l.validateDatabase(path+".database", e, e.Database)
	}
	if e.HealthCheck != nil && f.Type != TypeScheduled {
		own := l.has(path + ".health_check")
		hp := path + ".health_check"
		if !own {
			hp = path // inherited from defaults: report at the environment
		}
		l.validateHealthCheck(hp, e.HealthCheck, e, own)
	}
	for i, s := range e.Scripts {
		l.checkRelative(indexPath(path+".scripts", i), "script", s)
	}
	l.validateJobs(path, f, e)
}

func joinTypes(types []FraiseType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return strings.Join(names, " and ")
}

// checkTypedKeys reports the keys written in an environment of a fraise
// whose type does not use them.
func (l *loader) checkTypedKeys(path string, f *Fraise) {
	for _, r := range fieldsOnlyFor {
		if l.has(path+"."+r.key) && f.Type != "" && !slices.Contains(r.types, f.Type) {
			l.report(path+"."+r.key, fmt.Sprintf("%s is only for %s fraises, and %s is %s fraise", r.key, joinTypes(r.types), f.Name, article(string(f.Type))), r.hint)
		}
	}
}

// validateRefPatterns checks the patterns that route pushes and pull
// requests to the environment.
func (l *loader) validateRefPatterns(path string, e *Environment) {
	if e.Branch != "" {
		l.checkRefPattern(path, "branch", e.Branch, "a branch name (main) or a glob (release/*)", "refs")
	}
	if e.PullRequests != "" {
		l.validatePullRequests(path, e)
	}
	if e.Tags != "" {
		l.checkRefPattern(path, "tags", e.Tags, "a tag glob such as v*", "refs")
	}
}

// checkRefPattern reports the pattern written under key if it is invalid
// (hint is said when the problem comes with none), or if it holds a shell
// metacharacter: webhooks refuse refs holding one, so the pattern could
// never match. refs names what the pattern matches, for that report.
func (l *loader) checkRefPattern(path, key, pattern, hint, refs string) {
	if msg, h := refPatternProblem(pattern); msg != "" {
		l.report(path+"."+key, fmt.Sprintf("%s %q %s", key, pattern, msg), orHint(h, hint))
	} else if i := strings.IndexAny(pattern, shellMeta); i >= 0 {
		l.report(path+"."+key, fmt.Sprintf("%s %q holds %q, a shell metacharacter", key, pattern, pattern[i]),
			"webhooks refuse "+refs+" holding $ ` ; | & < > ' \" ( ), so this pattern could never match")
	}
}

// validatePullRequests checks pull_requests: previews deploy code nobody
// has reviewed, so never to a protected environment, nor to one whose own
// branch the previews would replace.
func (l *loader) validatePullRequests(path string, e *Environment) {
	const own = "give previews an environment of their own, e.g. preview: {branch: preview, pull_requests: main, app_path: ...}"
	sharing := e.SharesCodeWith != "" // pull_requests is refused there anyway
	switch {
	case !sharing && e.IsProtected():
		l.report(path+".pull_requests", fmt.Sprintf("a pull request preview deploys code nobody has reviewed; refused on protected environment %s", e.Name), own)
	case !sharing && e.Branch != "" && patternsOverlap(e.Branch, e.PullRequests):
		l.report(path+".pull_requests", fmt.Sprintf("pull_requests %q matches this environment's own branch %q: any pull request against it would deploy here, where the branch's reviewed code runs", e.PullRequests, e.Branch), own)
	default:
		l.checkRefPattern(path, "pull_requests", e.PullRequests, "the target branch of the pull requests: main, or a glob such as release/*", "branches")
	}
	if e.Layout == LayoutInplace {
		l.report(path+".pull_requests", "pull request heads deploy only with the releases layout", "remove layout: inplace, or pull_requests")
	}
}

// validateCodeSource checks where the environment's code comes from:
// another environment's release (shares_code_with), or its own clone of
// git_repo (by default the fraise's repository) into app_path.
func (l *loader) validateCodeSource(path string, f *Fraise, e *Environment) {
	if e.SharesCodeWith != "" {
		l.validateSharing(path, e)
		for _, k := range []string{"app_path", "git_repo", "pull_requests"} {
			if l.has(path + "." + k) {
				l.report(path+"."+k, fmt.Sprintf("%s is not used with shares_code_with: this environment runs the code of %s", k, e.SharesCodeWith), "remove it")
			}
		}
		return
	}
	if e.AppPath == "" && !l.has(path+".app_path") {
		l.report(path+".app_path", "required key missing", "where the fraise lives on this host, e.g. /srv/"+f.Name)
	}
	const cloneHint = "write https://host/owner/name.git, git@host:owner/name.git or /srv/git/name.git"
	switch {
	case e.GitRepo != "":
		if !isCloneSource(e.GitRepo) {
			l.report(path+".git_repo", fmt.Sprintf("git_repo %q is not a clone URL or an absolute path", e.GitRepo), cloneHint)
		} else if msg := remoteHazard(e.GitRepo); msg != "" {
			key := path + ".git_repo"
			if !l.has(key) {
				key = "fraises." + f.Name + ".repository" // git_repo defaults to it
			}
			l.report(key, fmt.Sprintf("clone source %q %s", e.GitRepo, msg), cloneHint)
		}
	case f.Repository != "" && !l.ps.covered("fraises."+f.Name+".repository"):
		l.report(path+".git_repo", "required key missing",
			fmt.Sprintf("repository %q only routes webhooks; say where to clone from, e.g. git_repo: https://github.com/%s.git", f.Repository, strings.TrimSuffix(f.Repository, ".git")))
	case f.Repository == "":
		l.report(path+".git_repo", "required key missing", "where to clone from; or set repository on the fraise to a clone URL")
	}
}

func orHint(h, fallback string) string {
	if h != "" {
		return h
	}
	return fallback
}

func (l *loader) checkRelative(path, what, s string) {
	switch {
	case s == "":
		l.report(path, what+" is empty", "")
	case filepath.IsAbs(s):
		l.report(path, fmt.Sprintf("%s %q must be relative to the release", what, s), "")
	case !filepath.IsLocal(s):
		l.report(path, fmt.Sprintf("%s %q leaves the release", what, s), "remove the .. components")
	}
}

func (l *loader) validateSharing(path string, e *Environment) {
	p := path + ".shares_code_with"
	fname, ename, ok := strings.Cut(e.SharesCodeWith, "/")
	if !ok || fname == "" || ename == "" || strings.Contains(ename, "/") {
		l.report(p, fmt.Sprintf("%q is not fraise/environment", e.SharesCodeWith), "e.g. hello/production")
		return
	}
	target, err := l.cfg.Lookup(fname, ename)
	if err != nil {
		l.report(p, err.Error(), "")
		return
	}
	switch {
	case target == e:
		l.report(p, "an environment cannot share code with itself", "")
	case target.Fraise.Type == "":
		// reported as a missing type
	case target.Fraise.Type != TypeAPI && target.Fraise.Type != TypeETL:
		l.report(p, fmt.Sprintf("%s belongs to %s fraise; code is shared from api or etl environments", e.SharesCodeWith, article(string(target.Fraise.Type))), "")
	case target.SharesCodeWith != "":
		l.report(p, fmt.Sprintf("%s itself shares code with %s", e.SharesCodeWith, target.SharesCodeWith), "point at "+target.SharesCodeWith+" directly")
	case target.User != e.User || target.Group != e.Group:
		// The release belongs to the account of the environment that
		// deploys it: whatever else runs in it must run as that account,
		// or that account's code runs with another's rights.
		l.report(p, fmt.Sprintf("%s runs as %s and this environment as %s: both run %s's release, which its account can change, so both must run as that account",
			e.SharesCodeWith, accountWords(target.User, target.Group), accountWords(e.User, e.Group), e.SharesCodeWith),
			accountFix(target.User, target.Group, e.SharesCodeWith))
	default:
		e.Code = target
	}
}

// accountWords says who an environment's commands run as, for messages.
func accountWords(user, group string) string {
	switch {
	case user == "" && group == "":
		return "fraisier's own user"
	case group == "":
		return "user " + user
	case user == "":
		return "fraisier's own user in group " + group
	}
	return "user " + user + " in group " + group
}

// accountFix says what to write in an environment that shares the code of
// other, which runs as user and group.
func accountFix(user, group, other string) string {
	keys := []string{"no user:", "no group:"}
	if user != "" {
		keys[0] = "user: " + user
	}
	if group != "" {
		keys[1] = "group: " + group
	}
	return "give this environment " + strings.Join(keys, " and ") + ", as " + other + " has"
}

// remoteHazard is what git.ValidateRemote refuses at deploy time among
// the clone sources isCloneSource accepts, so that the file is refused
// when it is loaded rather than at the first deployment: an option
// where git or ssh reads a host, a user or a path ("-oProxyCommand=..."),
// and transport helpers ("ext::sh -c ..."), which run a program.
func remoteHazard(s string) string {
	if strings.HasPrefix(s, "-") {
		return "starts with -, which git would read as an option"
	}
	if i := strings.Index(s, "::"); i > 0 && !strings.Contains(s[:i], "/") && !strings.Contains(s[:i], "@") {
		return "is a transport helper (" + s[:i] + "::), which runs a program"
	}
	if strings.HasPrefix(s, "/") {
		return ""
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err == nil && (strings.HasPrefix(u.Hostname(), "-") || (u.User != nil && strings.HasPrefix(u.User.Username(), "-")) ||
			strings.HasPrefix(strings.TrimPrefix(u.Path, "/"), "-")) {
			return "has a host, user or path starting with -, which ssh or git would read as an option"
		}
		return ""
	}
	if host, rest, ok := scpLike(s); ok {
		user := ""
		if at := strings.IndexByte(s[:strings.IndexByte(s, ':')], '@'); at >= 0 {
			user = s[:at]
		}
		if strings.HasPrefix(host, "-") || strings.HasPrefix(user, "-") || strings.HasPrefix(rest, "-") {
			return "has a host, user or path starting with -, which ssh or git would read as an option"
		}
	}
	return ""
}
