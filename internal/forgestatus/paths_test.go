package forgestatus

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fraiseql/fraisier/internal/forge"
)

func TestAPIBase(t *testing.T) {
	cases := []struct {
		forge forge.Kind
		in    string
		want  string
	}{
		{forge.GitHub, "", "https://api.github.com"},
		{forge.GitHub, "https://ghe.example/api/v3/", "https://ghe.example/api/v3"},
		{forge.GitLab, "", "https://gitlab.com/api/v4"},
		{forge.GitLab, "https://git.example/gitlab", "https://git.example/gitlab/api/v4"},
		{forge.GitLab, "https://git.example/api/v4", "https://git.example/api/v4"},
		{forge.Gitea, "https://codeberg.org", "https://codeberg.org/api/v1"},
		{forge.Bitbucket, "", "https://api.bitbucket.org/2.0"},
		{forge.BitbucketServer, "https://bb.example/bitbucket", "https://bb.example/bitbucket/rest/api/latest"},
		{forge.BitbucketServer, "https://bb.example/rest/api/1.0", "https://bb.example/rest/api/1.0"},
	}
	for _, tc := range cases {
		u, err := APIBase(tc.forge, tc.in)
		if err != nil || u.String() != tc.want {
			t.Errorf("APIBase(%s, %q) = %v, %v; want %s", tc.forge, tc.in, u, err, tc.want)
		}
	}
}

func TestRepositoryPath(t *testing.T) {
	cases := []struct {
		forge forge.Kind
		in    string
		want  string // segments joined by " ", "" for refused
	}{
		{forge.GitHub, "acme/api", "acme api"},
		{forge.GitHub, "https://github.com/acme/api.git", "acme api"},
		{forge.GitHub, "git@github.com:acme/api.git", "acme api"},
		{forge.GitHub, "ssh://git@github.com/acme/.github.git", "acme .github"},
		{forge.GitLab, "https://gitlab.com/acme/backend/api.git", "acme backend api"},
		{forge.BitbucketServer, "https://bb.example/scm/PROJ/api.git", "PROJ api"},
		{forge.BitbucketServer, "ssh://git@bb.example:7999/~jdoe/api.git", "~jdoe api"},
		{forge.GitHub, "acme", ""},
		{forge.GitHub, "acme/..", ""},
		{forge.GitHub, "acme/a%2F..", ""},
		{forge.GitHub, "acme/a b", ""},
		{forge.GitLab, "acme//api", ""},
		{forge.GitLab, "acme/./api", ""},
		{forge.Gitea, "acme/api?x=1", ""},
		{forge.Gitea, "acme/api#frag", ""},
		{forge.Gitea, `acme\api`, ""},
	}
	for _, tc := range cases {
		segs, err := RepositoryPath(tc.forge, tc.in)
		if got := strings.Join(segs, " "); got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("RepositoryPath(%s, %q) = %q, %v; want %q", tc.forge, tc.in, got, err, tc.want)
		}
	}
}

// FuzzRepositoryURL builds request URLs from hostile repository names: a
// name is either refused or gives a URL on the API's host whose path,
// once decoded, is the API base followed by exactly the expected segments,
// none of them a dot segment.
func FuzzRepositoryURL(f *testing.F) {
	for _, s := range []string{"acme/api", "../x", "a/%2e%2e", "a/b?c", "a/b#c", "a/b/../../c", "a/b%00", "~u/r", "g/s/p", "a/b\\c", "a/..;/b", "https://h/a/b.git", "git@h:../a"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, repo string, which uint8) {
		kinds := forge.Kinds()
		k := kinds[int(which)%len(kinds)]
		segs, err := RepositoryPath(k, repo)
		if err != nil {
			return
		}
		base, err := APIBase(k, "https://forge.example/base")
		if err != nil {
			t.Fatal(err)
		}
		tg := target{base: base, repo: segs, sha: testSHA}
		raw := tg.url(nil, append([]string{"repos"}, segs...)...)
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q gives an unparsable URL %q: %v", repo, raw, err)
		}
		if u.Host != "forge.example" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("%q leaves the API: %q", repo, raw)
		}
		parts := strings.Split(strings.TrimPrefix(u.EscapedPath(), base.EscapedPath()+"/"), "/")
		if len(parts) != 1+len(segs) {
			t.Fatalf("%q gives %d path segments, want %d: %q", repo, len(parts), 1+len(segs), raw)
		}
		for i, p := range parts[1:] {
			dec, err := url.PathUnescape(p)
			if err != nil || dec != segs[i] || dec == "." || dec == ".." {
				t.Fatalf("%q: segment %q decodes to %q, want %q", repo, p, dec, segs[i])
			}
		}
		// GitLab's project path is one segment with its slashes escaped.
		one := tg.url(nil, "projects", strings.Join(segs, "/"))
		if got := strings.Count(strings.TrimPrefix(one, base.String()), "/"); got != 2 {
			t.Fatalf("%q: the project path is not one segment: %q", repo, one)
		}
	})
}

// TestForgeStateCoversEveryState: every state fraisier reports has a
// state on every forge, and only states the forge documents.
func TestForgeStateCoversEveryState(t *testing.T) {
	documented := map[string][]string{
		"github/deployment": {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"},
		"github/status":     {"error", "failure", "pending", "success"},
		"gitlab":            {"pending", "running", "success", "failed", "canceled"},
		"gitlab/deployment": {"created", "running", "success", "failed", "canceled"},
		"gitea":             {"pending", "success", "error", "failure"},
		"bitbucket":         {"INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"},
		"bitbucket_server":  {"INPROGRESS", "SUCCESSFUL", "FAILED"},
	}
	for _, s := range States() {
		for key, allowed := range documented {
			k, via, _ := strings.Cut(key, "/")
			if via == "deployment" {
				via = ViaDeployment
			}
			if got := ForgeState(forge.Kind(k), via, s); !slices.Contains(allowed, got) {
				t.Errorf("%s on %s maps to %q, not one of %v", s, key, got, allowed)
			}
		}
	}
	if ForgeState(forge.GitHub, "", "exploded") != "" {
		t.Error("an unknown state maps to something")
	}
}

// TestReportJSON: what an outbox stores holds no token or API URL, and
// reads back into the same report.
func TestReportJSON(t *testing.T) {
	r := Report{Forge: forge.GitHub, Repository: "acme/api", SHA: testSHA, Environment: "production", State: Running,
		DeploymentID: 7, ForgeDeploymentID: 42, Via: ViaDeployment, APIURL: "https://ghe.example/api/v3", Token: testToken}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testToken) || strings.Contains(string(b), "ghe.example") {
		t.Fatalf("stored form holds the token or API URL: %s", b)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.APIURL, back.Token = r.APIURL, r.Token
	if back != r {
		t.Fatalf("round trip: %+v, want %+v", back, r)
	}
}

func TestDescription(t *testing.T) {
	long := strings.Repeat("é", 200)
	r := Report{State: Failed, Environment: "prod", Description: long + "\x1b[31m"}
	if got := r.description(); len([]rune(got)) != MaxDescription {
		t.Errorf("description of %d characters, want %d", len([]rune(got)), MaxDescription)
	}
	r.Description = "a\x00b\nc"
	if got := r.description(); got != "abc" {
		t.Errorf("control characters kept: %q", got)
	}
	if k := buildKey("fraisier/" + strings.Repeat("e", 60)); len(k) != maxKey {
		t.Errorf("key %q of %d characters", k, len(k))
	}
	if buildKey("fraisier/"+strings.Repeat("e", 60)+"1") == buildKey("fraisier/"+strings.Repeat("e", 60)+"2") {
		t.Error("two long contexts share a key")
	}
}

// TestRepositoryCredentialsNotShown: a clone URL with a password, given as
// the repository, never shows the password in an error or the report's
// string.
func TestRepositoryCredentialsNotShown(t *testing.T) {
	const pw = "clone-password-0123456789"
	for _, repo := range []string{"https://bot:" + pw + "@github.com/acme/api.git", "https://bot:" + pw + "@github.com/acme/a/b/c.git"} {
		r := Report{Forge: forge.GitHub, Repository: repo}
		_, err := RepositoryPath(forge.GitHub, repo)
		if strings.Contains(r.String(), pw) || (err != nil && strings.Contains(err.Error(), pw)) {
			t.Errorf("%v / %s holds the password", err, r)
		}
	}
}
