package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// shellMeta are the characters the webhook intake refuses in refs
// (internal/forge), so that a branch or tags pattern holding one could
// never match a push.
const shellMeta = "$`;|&<>'\"()"

// namePattern is the shape of fraise, environment and job names: they end
// up in paths, unit names and SQL.
const namePattern = `^[a-z0-9][a-z0-9_-]*$`

const maxNameLen = 64

// validate checks everything the decoder cannot: the tag rules (abs, name,
// min, max) over the whole tree, then the rules that relate keys to each
// other.
func (l *loader) validate() {
	l.validateTags(reflect.ValueOf(l.cfg).Elem(), "")
	l.validateServer()
	l.validateState()
	l.validateGit()
	if hc := l.cfg.Defaults.HealthCheck; hc != nil {
		l.validateHealthCheck("defaults.health_check", hc, nil, true)
	}
	for _, fname := range sortedKeys(l.cfg.Fraises) {
		if f := l.cfg.Fraises[fname]; f != nil {
			l.validateFraise("fraises."+fname, f)
		}
	}
	l.validateOrder()
	l.validateAppPaths()
	l.validateRouting()
	l.validateForges()
	l.validateSecretLengths()
}

// validateTags applies the abs, name, min and max tags and refuses
// negative durations, walking the structs by reflection as the decoder
// and the schema generator do.
func (l *loader) validateTags(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			l.validateTags(v.Elem(), path)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				l.validateTags(v.Index(i), indexPath(path, i))
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			l.validateTags(v.MapIndex(k), joinPath(path, k.String()))
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			key := sf.Tag.Get("yaml")
			if key == "" || key == "-" {
				continue
			}
			p := joinPath(path, key)
			fv := v.Field(i)
			if sf.Tag.Get("name") == "true" {
				l.checkNames(p, fv)
			}
			if sf.Tag.Get("account") == "true" && fv.String() != "" {
				l.checkAccount(p, key, fv.String())
			}
			if sf.Tag.Get("abs") == "true" && fv.String() != "" {
				if clean, ok := l.checkAbs(p, key, fv.String()); ok {
					fv.SetString(clean)
				}
			}
			if l.has(p) {
				l.checkBounds(p, key, sf, fv)
			}
			l.checkControl(p, key, fv)
			l.validateTags(fv, p)
		}
	}
}

func (l *loader) checkNames(path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); s != "" {
			if msg := nameProblem(s); msg != "" {
				l.report(path, fmt.Sprintf("%q %s", s, msg), nameHint(s))
			}
		}
	case reflect.Map:
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		slices.Sort(keys)
		for _, k := range keys {
			if msg := nameProblem(k); msg != "" {
				l.report(joinPath(path, k), fmt.Sprintf("%q %s", k, msg), nameHint(k))
			}
		}
	}
}

var nameRE = regexp.MustCompile(namePattern)

func nameProblem(s string) string {
	switch {
	case len(s) > maxNameLen:
		return fmt.Sprintf("is longer than %d characters", maxNameLen)
	case !nameRE.MatchString(s):
		return "is not a valid name: use lower-case letters, digits, - and _, starting with a letter or digit"
	}
	return ""
}

func nameHint(s string) string {
	fixed := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
	fixed = strings.TrimLeft(fixed, "-_")
	if len(fixed) > maxNameLen {
		fixed = fixed[:maxNameLen]
	}
	if fixed == "" || fixed == s {
		return "names end up in paths, unit names and SQL"
	}
	return fmt.Sprintf("names end up in paths, unit names and SQL; try %q", fixed)
}

// checkAbs refuses relative paths and .. components; other untidiness
// (a trailing slash, //) is cleaned away.
func (l *loader) checkAbs(path, key, s string) (string, bool) {
	if !filepath.IsAbs(s) {
		l.report(path, fmt.Sprintf("%s %q is not an absolute path", key, s), "start it with /")
		return "", false
	}
	if slices.Contains(strings.Split(s, "/"), "..") {
		l.report(path, fmt.Sprintf("%s %q has a .. component", key, s), fmt.Sprintf("write %s", filepath.Clean(s)))
		return "", false
	}
	return filepath.Clean(s), true
}

func (l *loader) checkBounds(path, key string, sf reflect.StructField, v reflect.Value) {
	var x float64
	switch v.Kind() {
	case reflect.Int, reflect.Int64:
		if v.Type() == durationType {
			if v.Int() < 0 {
				l.report(path, fmt.Sprintf("%s must not be negative", key), "")
			}
			return
		}
		x = float64(v.Int())
	case reflect.Float64:
		x = v.Float()
	default:
		return
	}
	if m := sf.Tag.Get("min"); m != "" {
		if lo, _ := strconv.ParseFloat(m, 64); x < lo {
			l.report(path, fmt.Sprintf("%s must be at least %s", key, m), boundHint(key))
		}
	}
	if m := sf.Tag.Get("max"); m != "" {
		if hi, _ := strconv.ParseFloat(m, 64); x > hi {
			l.report(path, fmt.Sprintf("%s must be at most %s", key, m), boundHint(key))
		}
	}
}

func boundHint(key string) string {
	if key == "body_limit" {
		return "in bytes: 1048576 is 1 MiB, 26214400 is 25 MiB"
	}
	return ""
}

func (l *loader) validateServer() {
	s := &l.cfg.Server
	switch {
	case s.Listen == "systemd":
	case strings.HasPrefix(s.Listen, "unix:"):
		if p := strings.TrimPrefix(s.Listen, "unix:"); !filepath.IsAbs(p) {
			l.report("server.listen", fmt.Sprintf("socket path %q is not absolute", p), "write unix:/run/fraisier/fraisier.sock")
		}
	default:
		if msg := hostPortProblem(s.Listen); msg != "" {
			l.report("server.listen", fmt.Sprintf("listen %q %s", s.Listen, msg), "write host:port (127.0.0.1:8080), unix:/path, or systemd")
		}
	}
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
	types []string
	hint  string
}{
	{"scripts", []string{"etl"}, ""},
	{"run_after_deploy", []string{"etl"}, ""},
	{"shares_code_with", []string{"etl", "scheduled"}, ""},
	{"jobs", []string{"scheduled"}, "jobs run only in a fraise of type scheduled"},
	{"systemd_service", []string{"api", "etl"}, "jobs have their own units: jobs[].systemd_service"},
	{"health_check", []string{"api", "etl"}, "a scheduled fraise has no service to check"},
}

func (l *loader) validateEnvironment(path string, f *Fraise, e *Environment) {
	l.checkTypedKeys(path, f)
	l.validateRefPatterns(path, e)
	l.validateCodeSource(path, f, e)
	for i, s := range e.Shared {
		l.checkRelative(indexPath(path+".shared", i), "shared entry", s)
	}
	l.validateServices(path, e)
	if e.Install != nil {
		l.validateCommand(path+".install", e.Install)
	}
	if e.RunAfterDeploy != nil {
		l.validateCommand(path+".run_after_deploy", e.RunAfterDeploy)
	}
	if e.Database != nil {
		l.validateDatabase(path+".database", e, e.Database)
	}
	if e.HealthCheck != nil && f.Type != "scheduled" {
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

// checkTypedKeys reports the keys written in an environment of a fraise
// whose type does not use them.
func (l *loader) checkTypedKeys(path string, f *Fraise) {
	for _, r := range fieldsOnlyFor {
		if l.has(path+"."+r.key) && f.Type != "" && !slices.Contains(r.types, f.Type) {
			l.report(path+"."+r.key, fmt.Sprintf("%s is only for %s fraises, and %s is %s fraise", r.key, strings.Join(r.types, " and "), f.Name, article(f.Type)), r.hint)
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
	if e.Layout == "inplace" {
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
	case target.Fraise.Type != "api" && target.Fraise.Type != "etl":
		l.report(p, fmt.Sprintf("%s belongs to %s fraise; code is shared from api or etl environments", e.SharesCodeWith, article(target.Fraise.Type)), "")
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

// unitTypes are the suffixes systemd knows; a name ending in none of them
// is a service, as systemctl assumes.
var unitTypes = []string{"service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice", "scope"}

// unitName checks a unit name and adds the suffix a bare name implies. It
// returns the full name, or a problem and maybe a hint.
func unitName(s, suffix string) (name, problem, hint string) {
	if s == "" {
		return "", "is empty", ""
	}
	if len(s) > 255 {
		return "", "is longer than 255 characters", ""
	}
	for _, c := range s {
		ok := c == ':' || c == '_' || c == '.' || c == '\\' || c == '@' || c == '-' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return "", fmt.Sprintf("has %q, which unit names cannot hold", c), "unit names use letters, digits and : _ . \\ @ -"
		}
	}
	name = s
	if i := strings.LastIndexByte(s, '.'); i < 0 || !slices.Contains(unitTypes, s[i+1:]) {
		name = s + "." + suffix
	}
	if !strings.HasSuffix(name, "."+suffix) {
		return "", "is not a ." + suffix + " unit", "a name without a suffix gets ." + suffix
	}
	if strings.HasSuffix(name, "@."+suffix) {
		return "", "is a template; name an instance", "e.g. " + strings.TrimSuffix(name, "@."+suffix) + "@1." + suffix
	}
	if strings.HasPrefix(name, "@") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") {
		return "", "does not start with a letter or digit", ""
	}
	return name, "", ""
}

// checkUnit checks a unit name written at path and stores it with its
// suffix. An empty name was not written and could not be defaulted (an
// invalid job name is reported already).
func (l *loader) checkUnit(path string, unit *string, suffix string) {
	if *unit == "" && !l.has(path) {
		return
	}
	name, msg, hint := unitName(*unit, suffix)
	if msg != "" {
		l.report(path, fmt.Sprintf("unit %q %s", *unit, msg), orHint(hint, "a name without a suffix gets ."+suffix))
		return
	}
	*unit = name
}

func (l *loader) validateServices(path string, e *Environment) {
	seen := map[string]bool{}
	for i, s := range e.SystemdService {
		p := path + ".systemd_service"
		if !l.present[p].scalar {
			p = indexPath(p, i) // a list; a single name is reported at itself
		}
		name, msg, hint := unitName(s, "service")
		switch {
		case msg != "":
			l.report(p, fmt.Sprintf("unit %q %s", s, msg), orHint(hint, "a name without a suffix gets .service"))
		case seen[name]:
			l.report(p, fmt.Sprintf("unit %s is listed twice", name), "")
		default:
			seen[name] = true
			e.SystemdService[i] = name
		}
	}
}

// validateArgv checks a command line: fraisier runs it without a shell, so
// it needs a program, and the program cannot look like an option.
func (l *loader) validateArgv(path string, argv []string) {
	switch {
	case len(argv) == 0 && l.has(path):
		l.report(path, "empty command", "write the program and its arguments as a list: [uv, sync]")
	case len(argv) == 0:
	case strings.TrimSpace(argv[0]) == "":
		l.report(indexPath(path, 0), "the program is empty", "")
	case strings.HasPrefix(argv[0], "-"):
		l.report(indexPath(path, 0), fmt.Sprintf("program %q starts with -", argv[0]), "the first item is the program; options come after it")
	case len(argv) == 1 && strings.ContainsAny(argv[0], " \t") && !strings.Contains(argv[0], "/"):
		l.report(indexPath(path, 0), fmt.Sprintf("program %q holds spaces", argv[0]),
			"commands never go through a shell: write each argument as its own item, ["+strings.Join(strings.Fields(argv[0]), ", ")+"]")
	}
}

func (l *loader) validateCommand(path string, c *Command) {
	l.validateArgv(path+".command", c.Argv)
	if c.Dir != "" {
		l.checkRelative(path+".dir", "dir", c.Dir)
	}
	l.checkEnvNames(path+".env", c.Env)
}

func (l *loader) checkEnvNames(path string, env map[string]string) {
	for _, k := range sortedKeys(env) {
		ok := k != "" && isNameStart(k[0])
		for i := 0; ok && i < len(k); i++ {
			ok = isNameChar(k[i])
		}
		if !ok {
			l.report(joinPath(path, k), fmt.Sprintf("%q is not an environment variable name", k), "letters, digits and _, not starting with a digit")
		}
	}
}

// validateHealthCheck checks a health check written at path. own says the
// keys were written there (rather than inherited from defaults), which is
// when their presence is worth reporting.
func (l *loader) validateHealthCheck(path string, hc *HealthCheck, e *Environment, own bool) {
	var targets []string
	for _, t := range []struct {
		key string
		set bool
	}{{"url", hc.URL != ""}, {"tcp", hc.TCP != ""}, {"command", len(hc.Command) > 0}, {"unit", hc.Unit}} {
		if t.set {
			targets = append(targets, t.key)
		}
	}
	switch {
	case !own:
		// Inherited from defaults.health_check, and checked there.
	case len(targets) == 0 && e != nil:
		l.report(path, "the health check says nothing to check", "set exactly one of url, tcp, command or unit: true")
	case len(targets) > 1:
		l.report(path+"."+targets[1], fmt.Sprintf("the health check sets both %s and %s", targets[0], targets[1]), "set exactly one of url, tcp, command or unit: true")
	}
	if own {
		if hc.URL != "" {
			u, err := url.Parse(hc.URL)
			switch {
			case err != nil:
				l.report(path+".url", fmt.Sprintf("url %q is not a URL", hc.URL), "")
			case u.Scheme != "http" && u.Scheme != "https":
				l.report(path+".url", fmt.Sprintf("url %q is not http or https", hc.URL), "e.g. http://127.0.0.1:8000/health")
			case u.Host == "":
				l.report(path+".url", fmt.Sprintf("url %q has no host", hc.URL), "e.g. http://127.0.0.1:8000/health")
			}
		}
		if hc.TCP != "" {
			if msg := hostPortProblem(hc.TCP); msg != "" {
				l.report(path+".tcp", fmt.Sprintf("tcp %q %s", hc.TCP, msg), "e.g. 127.0.0.1:5432")
			}
		}
		l.validateArgv(path+".command", hc.Command)
		if hc.URL == "" && len(targets) > 0 {
			for _, k := range []string{"expect_status", "body_contains"} {
				if l.has(path + "." + k) {
					l.report(path+"."+k, k+" applies to url checks only", "")
				}
			}
		}
		for _, d := range []struct {
			key string
			v   Duration
		}{{"timeout", hc.Timeout}, {"interval", hc.Interval}, {"deadline", hc.Deadline}} {
			if l.has(path+"."+d.key) && d.v == 0 {
				l.report(path+"."+d.key, d.key+" must be positive", "")
			}
		}
	}
	if e != nil && hc.Unit && len(e.SystemdService) == 0 {
		l.report(path+".unit", "unit: true checks the environment's units, and it has no systemd_service", "set systemd_service, or check a url, tcp or command")
	}
}

func (l *loader) validateJobs(path string, fr *Fraise, e *Environment) {
	if fr.Type == "scheduled" && len(e.Jobs) == 0 && !l.ps.covered(path+".jobs") {
		l.report(path+".jobs", "a scheduled fraise needs at least one job", "jobs: [{name: nightly, schedule: \"0 3 * * *\", command: [bin/nightly]}]")
	}
	names := map[string]bool{}
	for i := range e.Jobs {
		j := &e.Jobs[i]
		p := indexPath(path+".jobs", i)
		if j.Name != "" {
			if names[j.Name] {
				l.report(p+".name", fmt.Sprintf("job %q is defined twice in this environment", j.Name), "job names are unique within an environment")
			}
			names[j.Name] = true
		}
		switch {
		case j.Schedule != "" && j.OnCalendar != "":
			l.report(p+".on_calendar", "a job has schedule or on_calendar, not both", "")
		case j.Schedule == "" && j.OnCalendar == "":
			l.report(p, "a job needs schedule (cron) or on_calendar (systemd)", `e.g. schedule: "0 3 * * *" or on_calendar: "*-*-* 03:00:00"`)
		case j.Schedule != "":
			if _, err := CronToOnCalendar(j.Schedule); err != nil {
				l.report(p+".schedule", err.Error(), "minute hour day-of-month month day-of-week, e.g. \"30 2 * * 1-5\"")
			}
		default:
			if strings.ContainsFunc(j.OnCalendar, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				l.report(p+".on_calendar", "on_calendar holds control characters", "")
			}
		}
		l.validateArgv(p+".command", j.Command)
		l.checkUnit(p+".systemd_service", &j.SystemdService, "service")
		l.checkUnit(p+".systemd_timer", &j.SystemdTimer, "timer")
	}
}

// ownControlCheck lists the keys whose own rule already refuses control
// characters (with its own message), and body_contains, which only ever
// compares. A fraise's description may span lines (see checkControl).
var ownControlCheck = map[string]bool{"branch": true, "tags": true, "pull_requests": true, "on_calendar": true, "systemd_service": true,
	"systemd_timer": true, "url": true, "tcp": true, "name": true, "body_contains": true, "user": true, "group": true}

// argvKeys are the keys that hold an argv or an environment: a newline
// there is an argument (sh -c "a\nb"), but NUL cannot be passed to a
// program at all.
var argvKeys = map[string]bool{"command": true, "up": true, "down": true, "current": true, "env": true}

// checkControl refuses control characters in the strings of the file that
// reach paths, argv, unit files and environments: a newline in a path or
// a description would start a new line of a unit file, and NUL cannot
// reach the kernel. Secrets are left alone (they are compared, never
// passed on) and so are the keys checked by their own rule.
func (l *loader) checkControl(path, key string, v reflect.Value) {
	if ownControlCheck[key] || v.Type() == secretType {
		return
	}
	if key == "description" && !strings.Contains(path, ".jobs[") {
		return // a fraise's description is only shown; a job's goes into its unit files
	}
	bad := func(s string) bool {
		if argvKeys[key] {
			return strings.IndexByte(s, 0) >= 0
		}
		return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
	}
	what := "control characters"
	if argvKeys[key] {
		what = "a NUL byte"
	}
	switch v.Kind() {
	case reflect.String:
		if bad(v.String()) {
			l.report(path, fmt.Sprintf("%s holds %s", key, what), "")
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String && v.Type().Elem() != secretType {
			for i := range v.Len() {
				if bad(v.Index(i).String()) {
					l.report(indexPath(path, i), fmt.Sprintf("%s holds %s", key, what), "")
				}
			}
		}
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.String {
			for _, k := range sortedKeys(v.Interface().(map[string]string)) {
				if bad(v.MapIndex(reflect.ValueOf(k)).String()) {
					l.report(joinPath(path, k), fmt.Sprintf("%s holds %s", key, what), "")
				}
			}
		}
	}
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
