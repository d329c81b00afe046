package forgestatus

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fraiseql/fraisier/internal/forge"
)

// target is where a report goes: the forge's API base, with the path
// prefix of its API version, and the repository's checked segments.
type target struct {
	base *url.URL
	repo []string
	sha  string
}

// maxSegments bounds a GitLab project path (groups nest 20 deep at most).
const maxSegments = 21

// target checks a report and resolves where it goes. What it refuses is a
// permanent error: sending it again would fail the same way.
func (c *Client) target(r Report) (target, error) {
	bad := func(format string, args ...any) (target, error) {
		return target{}, &Error{Forge: r.Forge, Op: "check report", Message: fmt.Sprintf(format, args...)}
	}
	if !slices.Contains(forge.Kinds(), r.Forge) {
		return bad("unknown forge %.32q", string(r.Forge))
	}
	if !slices.Contains(States(), r.State) {
		return bad("unknown state %.32q", string(r.State))
	}
	sha := strings.ToLower(r.SHA)
	if !isSHA(sha) {
		return bad("%.80q is not a commit SHA (40 or 64 hex digits)", r.SHA)
	}
	if r.Environment == "" || len(r.Environment) > 255 || truncate(r.Environment, 255) != r.Environment {
		return bad("the environment name is empty, too long or holds control characters")
	}
	if r.Token == "" {
		return bad("no token: set git.%s.status.token or token_file", r.Forge)
	}
	repo, err := RepositoryPath(r.Forge, r.Repository)
	if err != nil {
		return bad("%v", err)
	}
	base, err := APIBase(r.Forge, r.APIURL)
	if err != nil {
		return bad("%v", err)
	}
	return target{base: base, repo: repo, sha: sha}, nil
}

func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// apiSuffix is the path a forge's API lives under, below the address of
// the instance.
func apiSuffix(k forge.Kind) []string {
	switch k {
	case forge.GitLab:
		return []string{"/api/v4"}
	case forge.Gitea:
		return []string{"/api/v1"}
	case forge.Bitbucket:
		return []string{"/2.0"}
	case forge.BitbucketServer:
		return []string{"/rest/api/latest", "/rest/api/1.0"}
	}
	return nil // GitHub's api_url is the API itself (https://HOST/api/v3 on Enterprise)
}

// APIBase resolves a forge's api_url (DefaultAPIURL when empty) to the
// base its API paths are joined to: http or https, a host, no user
// information, query or fragment; the API version's path (/api/v4,
// /api/v1, /2.0, /rest/api/latest) is added unless it is already there.
func APIBase(k forge.Kind, apiURL string) (*url.URL, error) {
	raw := apiURL
	if raw == "" {
		raw = DefaultAPIURL(k)
	}
	if raw == "" {
		return nil, fmt.Errorf("%s has no public API address: set git.%s.status.api_url to the instance's address", k, k)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("api_url is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("api_url must start with https:// (or http://)")
	case u.Host == "":
		return nil, fmt.Errorf("api_url names no host")
	case u.User != nil:
		return nil, fmt.Errorf("api_url must not hold a user or password: use token")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("api_url must not hold a query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	suffixes := apiSuffix(k)
	if len(suffixes) > 0 && !slices.ContainsFunc(suffixes, func(s string) bool { return strings.HasSuffix(u.Path, s) }) {
		u.Path += suffixes[0]
	}
	return u, nil
}

// RepositoryPath splits a repository name into its path segments on forge
// k: owner/name, group/.../project on GitLab, PROJECT/slug on Bitbucket
// Data Center. A clone URL (https://, ssh://, git@host:) gives its path,
// without .git (and without scm/ on Bitbucket Data Center). Every segment
// is made of letters, digits, '.', '_', '-' and '~', and is neither "."
// nor "..": a name from a webhook cannot reach another API path.
func RepositoryPath(k forge.Kind, repo string) ([]string, error) {
	p := repositoryPart(repo)
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	segs := strings.Split(p, "/")
	if k == forge.BitbucketServer && len(segs) == 3 && segs[0] == "scm" {
		segs = segs[1:]
	}
	want := "owner/name"
	switch k {
	case forge.GitLab:
		want = "group/project"
	case forge.BitbucketServer:
		want = "PROJECT/repository"
	}
	if len(segs) < 2 || (k != forge.GitLab && len(segs) != 2) || len(segs) > maxSegments {
		return nil, fmt.Errorf("repository %.120q is not %s", shownRepository(repo), want)
	}
	for _, s := range segs {
		if !validSegment(s) {
			return nil, fmt.Errorf("repository %.120q is not %s: %.64q is not a name", shownRepository(repo), want, s)
		}
	}
	return segs, nil
}

// repositoryPart is the path of a clone URL, or repo itself.
func repositoryPart(repo string) string {
	if u, err := url.Parse(repo); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Path
	}
	if at, rest, ok := strings.Cut(repo, "@"); ok && !strings.Contains(at, "/") {
		if _, path, ok := strings.Cut(rest, ":"); ok {
			return path
		}
	}
	return repo
}

func validSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '~'
		if !ok {
			return false
		}
	}
	return true
}

// url joins path segments to the API base, each escaped as one segment
// (a "/" inside one, as in GitLab's project path, becomes %2F), and adds
// an encoded query when given.
func (t target) url(query url.Values, segs ...string) string {
	u := *t.base
	path, raw := u.Path, u.EscapedPath()
	for _, s := range segs {
		path += "/" + s
		raw += "/" + url.PathEscape(s)
	}
	u.Path, u.RawPath = path, raw
	if query != nil {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// shownRepository is a repository name fit for an error or a log: a clone
// URL loses its user and password.
func shownRepository(repo string) string {
	if u, err := url.Parse(repo); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return repo
}
