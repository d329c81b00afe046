package config

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
)

// NormalizeRepository returns the routing identity of a repository, so that
// every way of writing one compares equal: https://GitHub.com/Acme/Hello.git,
// ssh://git@github.com:22/acme/hello, git@github.com:acme/hello.git and
// github.com/acme/hello all give "github.com/acme/hello". A bare
// owner/name gives "acme/hello" (see SameRepository for how it matches a
// URL). Local paths keep their case and lose a trailing .git:
// /srv/git/Hello.git gives "/srv/git/Hello".
func NormalizeRepository(s string) string {
	host, p := splitRepository(s)
	if host == "" {
		return p
	}
	return host + "/" + p
}

// SameRepository reports whether a and b name the same repository. A bare
// owner/name (no host) matches that owner/name on any host: it is how a
// fraise says "the repository of this name, whichever forge delivers it".
func SameRepository(a, b string) bool {
	ha, pa := splitRepository(a)
	hb, pb := splitRepository(b)
	if pa == "" || pb == "" || pa != pb {
		return false
	}
	return ha == hb || ha == "" || hb == ""
}

// splitRepository returns the lower-cased host and path of a repository
// without scheme, user, port, surrounding slashes and .git. A local path
// has no host and keeps its case and leading slash.
func splitRepository(s string) (host, p string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ""
	}
	trim := func(p string) string {
		p = strings.TrimRight(p, "/")
		p = strings.TrimSuffix(p, ".git")
		return strings.TrimRight(p, "/")
	}
	if strings.HasPrefix(s, "/") {
		return "", trim(path.Clean(s))
	}
	if u, err := url.Parse(s); err == nil && u.Scheme != "" && strings.Contains(s, "://") {
		if u.Scheme == "file" {
			return "", trim(path.Clean(u.Path))
		}
		return strings.ToLower(u.Hostname()), strings.ToLower(strings.TrimLeft(trim(u.Path), "/"))
	}
	if h, rest, ok := scpLike(s); ok {
		return strings.ToLower(h), strings.ToLower(strings.TrimLeft(trim(rest), "/"))
	}
	p = strings.ToLower(strings.Trim(trim(s), "/"))
	// github.com/acme/hello: a first segment with a dot is a host.
	if first, rest, ok := strings.Cut(p, "/"); ok && strings.Contains(first, ".") && strings.Contains(rest, "/") {
		return first, rest
	}
	return "", p
}

// scpLike splits git's [user@]host:path form.
func scpLike(s string) (host, rest string, ok bool) {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || strings.Contains(s[:colon], "/") || colon == len(s)-1 {
		return "", "", false
	}
	host = s[:colon]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if host == "" {
		return "", "", false
	}
	return host, s[colon+1:], true
}

// isCloneSource reports whether s is something git can clone: a URL, the
// scp-like form, or an absolute path. A bare owner/name is not.
func isCloneSource(s string) bool {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return false
	case strings.HasPrefix(s, "/"):
		return true
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil {
			return false
		}
		switch u.Scheme {
		case "file":
			return u.Path != ""
		case "http", "https", "ssh", "git", "git+ssh", "ssh+git":
			return u.Host != "" && strings.Trim(u.Path, "/") != ""
		}
		return false
	}
	_, rest, ok := scpLike(s)
	return ok && strings.Trim(rest, "/") != ""
}

// isRepositoryName reports whether s is a bare owner/name (or
// host/owner/name, or group/subgroup/name) routing identity.
func isRepositoryName(s string) bool {
	segs := strings.Split(s, "/")
	if len(segs) < 2 {
		return false
	}
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			if !(c == '-' || c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
				return false
			}
		}
	}
	return true
}

// RouteRepository is the repository whose pushes deploy e: its fraise's
// repository, or else its own git_repo.
func (e *Environment) RouteRepository() string {
	if e.Fraise != nil && e.Fraise.Repository != "" {
		return e.Fraise.Repository
	}
	return e.GitRepo
}

// Match returns the environments that a push of ref to repository,
// delivered by forge (a key of the git section), deploys, sorted by fraise
// and environment. ref is refs/heads/NAME, refs/tags/NAME, or a bare
// branch name. This is the routing rule described in the package
// documentation; the validator guarantees that it never picks two
// environments of one fraise for the same push.
func (c *Config) Match(forge, repository, ref string) []*Environment {
	return c.Router().Match(forge, []string{repository}, ref)
}

// Router is the routing rule of Match, prepared once: the auto-deploy
// environments in order, each with its repository already normalised. A
// server routes every delivery through it, rather than normalising every
// environment's repository (and sorting them) per delivery.
type Router struct {
	routes []route
}

type route struct {
	env        *Environment
	forge      string
	host, path string
}

// Router prepares c's routing. c must not change afterwards.
func (c *Config) Router() *Router {
	r := &Router{}
	for _, e := range c.Environments() {
		if !e.IsAutoDeploy() {
			continue
		}
		host, p := splitRepository(e.RouteRepository())
		forge := e.Fraise.ForgeKind()
		if p == "" || forge == "" {
			continue // no webhook can deploy it
		}
		r.routes = append(r.routes, route{env: e, forge: forge, host: host, path: p})
	}
	return r
}

// Match returns the environments a push of ref, delivered by forge, deploys
// when the pushed repository goes by any of names (its full name, its clone
// URLs), sorted by fraise and environment, each once. Only fraises of that
// forge (Fraise.ForgeKind) are candidates.
func (r *Router) Match(forge string, names []string, ref string) []*Environment {
	var name string
	tag := false
	switch {
	case strings.HasPrefix(ref, "refs/heads/"):
		name = strings.TrimPrefix(ref, "refs/heads/")
	case strings.HasPrefix(ref, "refs/tags/"):
		name, tag = strings.TrimPrefix(ref, "refs/tags/"), true
	case strings.HasPrefix(ref, "refs/"):
		return nil
	default:
		name = ref
	}
	return r.match(forge, names, func(e *Environment) bool {
		return tag && e.Tags != "" && refMatches(e.Tags, name) || !tag && refMatches(e.Branch, name)
	})
}

// MatchPullRequest returns the environments that deploy the head of a pull
// request, delivered by forge, against target (a branch name) in the
// repository going by any of names: those of that forge's fraises whose
// pull_requests pattern matches it, sorted by fraise and environment.
func (r *Router) MatchPullRequest(forge string, names []string, target string) []*Environment {
	return r.match(forge, names, func(e *Environment) bool {
		return e.PullRequests != "" && refMatches(e.PullRequests, target)
	})
}

// match returns the environments of forge's fraises, of the repository
// going by any of names, that want says deploy.
func (r *Router) match(forge string, names []string, want func(*Environment) bool) []*Environment {
	type split struct{ host, path string }
	var buf [4]split
	pushed := buf[:0]
	for _, n := range names {
		if h, p := splitRepository(n); p != "" {
			pushed = append(pushed, split{h, p})
		}
	}
	var out []*Environment
	for _, rt := range r.routes {
		if rt.forge != forge {
			continue
		}
		same := false
		for _, n := range pushed {
			if n.path == rt.path && (n.host == rt.host || n.host == "" || rt.host == "") {
				same = true
				break
			}
		}
		if same && want(rt.env) {
			out = append(out, rt.env)
		}
	}
	return out
}

// refMatches matches a branch or tag name against a pattern. Patterns are
// path.Match globs: * stops at /, so release/* matches release/1.2 but not
// release/1.2/hotfix.
func refMatches(pattern, name string) bool {
	if pattern == name {
		return true
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// patternsOverlap reports whether some ref could match both patterns. Two
// different globs are taken not to overlap: deciding that in general is
// costly, and the common mistakes (the same branch twice, a literal branch
// that a glob also matches) are caught.
func patternsOverlap(a, b string) bool {
	switch {
	case a == b:
		return true
	case !isGlob(a):
		return refMatches(b, a)
	case !isGlob(b):
		return refMatches(a, b)
	}
	return false
}

// refPatternProblem says what is wrong with a branch or tag pattern, or "".
// The rules are git check-ref-format's, with the glob characters * ? [ ]
// allowed.
func refPatternProblem(s string) (msg, hint string) {
	switch {
	case s == "":
		return "must not be empty", ""
	case strings.HasPrefix(s, "refs/"):
		return "is a full ref", "write the short name: " + strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(s, "refs/"), "heads/"), "tags/")
	case strings.HasPrefix(s, "-"):
		return "must not start with -", ""
	case strings.Contains(s, ".."):
		return "must not contain ..", ""
	case strings.Contains(s, "@{"):
		return "must not contain @{", ""
	case strings.Contains(s, "//"), strings.HasPrefix(s, "/"), strings.HasSuffix(s, "/"):
		return "has an empty path component", ""
	case strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock"):
		return "must not end with . or .lock", ""
	case s == "@":
		return "must not be @", ""
	}
	for _, c := range s {
		switch {
		case c < 0x20 || c == 0x7f:
			return "must not contain control characters", ""
		case c == ' ' || c == '\t':
			return "must not contain spaces", ""
		case c == '~' || c == '^' || c == ':' || c == '\\':
			return "must not contain " + string(c), ""
		}
	}
	for _, comp := range strings.Split(s, "/") {
		if strings.HasPrefix(comp, ".") {
			return "has a component starting with .", ""
		}
	}
	if _, err := path.Match(s, ""); err != nil {
		return "is not a valid glob", "close every [ with ]"
	}
	return "", ""
}

// validateRouting enforces the routing rule of the package documentation:
// one push deploys at most one environment of a fraise, and no two
// environments share a directory or a unit.
func (l *loader) validateRouting() {
	envs := l.cfg.Environments()
	path := func(e *Environment) string { return envPath(e.Fraise.Name, e.Name) }
	for i, a := range envs {
		for _, b := range envs[i+1:] {
			first, second := a, b
			if l.before(path(b), path(a)) {
				first, second = b, a
			}
			l.checkPair(path(second), first, second)
		}
	}
}

// checkPair reports what a and b (b written after a) collide on, at b.
func (l *loader) checkPair(at string, a, b *Environment) {
	if a.Fraise == b.Fraise && a.IsAutoDeploy() && b.IsAutoDeploy() {
		if a.Branch != "" && b.Branch != "" && patternsOverlap(a.Branch, b.Branch) {
			msg := fmt.Sprintf("branch %q is also deployed by %s: a push to it would deploy both", b.Branch, a.ID())
			if a.Branch != b.Branch {
				msg = fmt.Sprintf("branch %q overlaps %q of %s: a push matching both would deploy both", b.Branch, a.Branch, a.ID())
			}
			l.report(at+".branch", msg, "give each environment its own branch, or set auto_deploy: false on the one deployed by hand")
		}
		if a.PullRequests != "" && b.PullRequests != "" && patternsOverlap(a.PullRequests, b.PullRequests) {
			l.report(at+".pull_requests", fmt.Sprintf("pull_requests %q overlaps %q of %s: a pull request against a branch matching both would deploy both", b.PullRequests, a.PullRequests, a.ID()),
				"give each environment its own target branches")
		}
		if a.Tags != "" && b.Tags != "" && patternsOverlap(a.Tags, b.Tags) {
			l.report(at+".tags", fmt.Sprintf("tags %q overlap %q of %s: a tag push matching both would deploy both", b.Tags, a.Tags, a.ID()),
				"give each environment its own tag pattern")
		}
	}
	if a.SharesCodeWith == "" && b.SharesCodeWith == "" && a.AppPath != "" && b.AppPath != "" {
		l.checkAppPaths(at, a, b)
	}
	if a.Scope == b.Scope {
		for i, u := range b.SystemdService {
			if slices.Contains(a.SystemdService, u) {
				p := at + ".systemd_service"
				if !l.present[p].scalar {
					p = indexPath(p, i)
				}
				l.report(p, fmt.Sprintf("unit %s is also restarted by %s", u, a.ID()), "each environment needs its own units")
			}
		}
	}
}

// checkAppPaths reports b's app_path (b written after a) if it is a's, or
// nested with it, as written or once symlinks are resolved.
func (l *loader) checkAppPaths(at string, a, b *Environment) {
	const own = "give each environment its own directory"
	overlap := func(pa, pb string) string {
		switch {
		case pa == pb:
			return "same"
		case strings.HasPrefix(pb, strings.TrimSuffix(pa, "/")+"/"):
			return "inside"
		case strings.HasPrefix(pa, strings.TrimSuffix(pb, "/")+"/"):
			return "contains"
		}
		return ""
	}
	pa, pb := a.AppPath, b.AppPath
	switch overlap(pa, pb) {
	case "same":
		l.report(at+".app_path", fmt.Sprintf("app_path %s is also the app_path of %s: they would overwrite each other", pb, a.ID()),
			own+"; an etl or scheduled fraise can run another's code with shares_code_with")
		return
	case "inside":
		l.report(at+".app_path", fmt.Sprintf("app_path %s is inside %s, the app_path of %s", pb, pa, a.ID()), own)
		return
	case "contains":
		l.report(at+".app_path", fmt.Sprintf("app_path %s contains %s, the app_path of %s", pb, pa, a.ID()), own)
		return
	}
	ra, okA := l.realAppPath[a]
	rb, okB := l.realAppPath[b]
	if !okA || !okB || ra == pa && rb == pb {
		return
	}
	switch overlap(ra, rb) {
	case "same":
		l.report(at+".app_path", fmt.Sprintf("app_path %s is the directory of %s's app_path %s under another name: through symlinks both are %s", pb, a.ID(), pa, rb),
			own+"; an etl or scheduled fraise can run another's code with shares_code_with")
	case "inside":
		l.report(at+".app_path", fmt.Sprintf("app_path %s leads through a symlink to %s, inside %s's app_path %s (%s)", pb, rb, a.ID(), pa, ra), own)
	case "contains":
		l.report(at+".app_path", fmt.Sprintf("app_path %s leads through a symlink to %s, which contains %s's app_path %s (%s)", pb, rb, a.ID(), pa, ra), own)
	}
}

// before reports whether the key at path a is written before the one at b.
func (l *loader) before(a, b string) bool {
	pa, pb := l.at(a), l.at(b)
	if pa.line != pb.line {
		return pa.line < pb.line
	}
	return pa.col < pb.col
}
