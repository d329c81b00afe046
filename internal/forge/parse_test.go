package forge

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hdr builds a header from name, value pairs, canonicalising as net/http does.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Headers as each forge sends them, per its documentation.
func githubHeaders(event string) http.Header {
	return hdr("X-GitHub-Event", event, "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"X-GitHub-Hook-ID", "292430182", "User-Agent", "GitHub-Hookshot/044aadd", "Content-Type", "application/json")
}

func giteaHeaders(event string) http.Header {
	const id = "f6266f16-1bf3-46a5-9ea4-602e06ead473"
	return hdr("X-GitHub-Delivery", id, "X-GitHub-Event", event, "X-Gogs-Delivery", id, "X-Gogs-Event", event,
		"X-Gitea-Delivery", id, "X-Gitea-Event", event)
}

func forgejoHeaders(event string) http.Header {
	h := giteaHeaders(event)
	h.Set("X-Forgejo-Delivery", "0b5f3c1e-7a7e-4a42-9d1b-3f2d2b8f9a10")
	h.Set("X-Forgejo-Event", event)
	return h
}

func gitlabHeaders(event string) http.Header {
	return hdr("X-Gitlab-Event", event, "X-Gitlab-Event-UUID", "5a2f1c1e-0d0a-4a0e-8b8e-1a2b3c4d5e6f",
		"X-Gitlab-Webhook-UUID", "9a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "Idempotency-Key", "908a6d9e-45fd-46c8-97e6-c4f350f219dd",
		"X-Gitlab-Instance", "https://gitlab.example.com")
}

func bitbucketHeaders(event string) http.Header {
	return hdr("X-Event-Key", event, "X-Hook-UUID", "cb7b3e2c-1bd4-4a45-9a6b-0c1d2e3f4a5b",
		"X-Request-UUID", "afe9d8a6-2a4e-4f0c-b0f3-0e7a8f9b1c2d", "X-Attempt-Number", "1", "User-Agent", "Bitbucket-Webhooks/2.0")
}

func bitbucketServerHeaders(event string) http.Header {
	return hdr("X-Event-Key", event, "X-Request-Id", "a9f6b2a7-3c51-4d41-8e1d-5c0b0f1a2b3c", "User-Agent", "Atlassian HttpClient 1.1.0")
}

var (
	ghRepository = Repository{
		FullName:  "Codertocat/Hello-World",
		CloneURLs: []string{"https://github.com/Codertocat/Hello-World.git", "git@github.com:Codertocat/Hello-World.git"},
		WebURL:    "https://github.com/Codertocat/Hello-World",
	}
	giteaRepository = Repository{
		FullName:  "gitea/webhooks",
		CloneURLs: []string{"http://localhost:3000/gitea/webhooks.git", "ssh://gitea@localhost:2222/gitea/webhooks.git"},
		WebURL:    "http://localhost:3000/gitea/webhooks",
	}
	bbRepository = Repository{
		FullName:  "team_name/project-x",
		CloneURLs: []string{"https://bitbucket.org/team_name/project-x.git", "git@bitbucket.org:team_name/project-x.git"},
		WebURL:    "https://bitbucket.org/team_name/project-x",
	}
	bsRepository = Repository{
		FullName:  "PROJ/repository",
		CloneURLs: []string{"https://bitbucket.example.com/scm/proj/repository.git", "ssh://git@bitbucket.example.com:7999/proj/repository.git"},
		WebURL:    "https://bitbucket.example.com/projects/PROJ/repos/repository/browse",
	}
)

const (
	ghDelivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	glDelivery = "908a6d9e-45fd-46c8-97e6-c4f350f219dd"
	bbDelivery = "afe9d8a6-2a4e-4f0c-b0f3-0e7a8f9b1c2d"
	bsDelivery = "a9f6b2a7-3c51-4d41-8e1d-5c0b0f1a2b3c"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		h    http.Header
		file string
		want Event
	}{
		{
			name: "github push", kind: GitHub, h: githubHeaders("push"), file: "github_push.json",
			want: Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "push", Type: Push, Repository: ghRepository, Sender: "Codertocat",
				Changes: []RefChange{{Ref: "refs/heads/main", Name: "main", Before: "9049f1265b7d61be4a8904a9a27120d2064dab3b", After: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}}},
		},
		{
			name: "github tag push", kind: GitHub, h: githubHeaders("push"), file: "github_push_tag.json",
			want: Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "push", Type: Push, Repository: ghRepository, Sender: "Codertocat",
				Changes: []RefChange{{Ref: "refs/tags/v1.2.0", Name: "v1.2.0", IsTag: true, After: "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}}},
		},
		{
			name: "github branch deletion", kind: GitHub, h: githubHeaders("push"), file: "github_push_delete.json",
			want: Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "push", Type: Push, Repository: ghRepository, Sender: "Codertocat",
				Changes: []RefChange{{Ref: "refs/heads/simple-tag", Name: "simple-tag", Before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", Deleted: true}}},
		},
		{
			name: "github ping", kind: GitHub, h: githubHeaders("ping"), file: "github_ping.json",
			want: Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "ping", Type: Ping, Repository: ghRepository, Sender: "Codertocat"},
		},
		{
			name: "github pull request", kind: GitHub, h: githubHeaders("pull_request"), file: "github_pull_request.json",
			want: Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "pull_request", Type: PullRequest, Repository: ghRepository, Sender: "Codertocat",
				PullRequest: &PullRequestInfo{Number: 2, Action: "opened", SourceBranch: "changes", TargetBranch: "master",
					HeadSHA: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", Title: "Update the README with new information.", SameRepository: true}},
		},
		{
			name: "github other event", kind: GitHub, h: githubHeaders("issues"), file: "github_issues.json",
			want: Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "issues", Type: Other, Repository: ghRepository, Sender: "Codertocat"},
		},
		{
			name: "gitea push", kind: Gitea, h: giteaHeaders("push"), file: "gitea_push.json",
			want: Event{Forge: Gitea, DeliveryID: "f6266f16-1bf3-46a5-9ea4-602e06ead473", EventType: "push", Type: Push, Repository: giteaRepository, Sender: "gitea",
				Changes: []RefChange{{Ref: "refs/heads/develop", Name: "develop", Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}}},
		},
		{
			name: "forgejo push", kind: Gitea, h: forgejoHeaders("push"), file: "gitea_push.json",
			want: Event{Forge: Gitea, DeliveryID: "0b5f3c1e-7a7e-4a42-9d1b-3f2d2b8f9a10", EventType: "push", Type: Push, Repository: giteaRepository, Sender: "gitea",
				Changes: []RefChange{{Ref: "refs/heads/develop", Name: "develop", Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}}},
		},
		{
			name: "gitea branch deletion", kind: Gitea, h: giteaHeaders("push"), file: "gitea_push_delete.json",
			want: Event{Forge: Gitea, DeliveryID: "f6266f16-1bf3-46a5-9ea4-602e06ead473", EventType: "push", Type: Push, Repository: giteaRepository, Sender: "gitea",
				Changes: []RefChange{{Ref: "refs/heads/feature/old", Name: "feature/old", Before: "bffeb74224043ba2feb48d137756c8a9331c449a", Deleted: true}}},
		},
		{
			name: "gitea pull request", kind: Gitea, h: giteaHeaders("pull_request"), file: "gitea_pull_request.json",
			want: Event{Forge: Gitea, DeliveryID: "f6266f16-1bf3-46a5-9ea4-602e06ead473", EventType: "pull_request", Type: PullRequest, Repository: giteaRepository, Sender: "gitea",
				PullRequest: &PullRequestInfo{Number: 12, Action: "opened", SourceBranch: "feature/deploy", TargetBranch: "master",
					HeadSHA: "a2f9b3c6d0e14f5a8b7c6d5e4f3a2b1c0d9e8f7a", Title: "Add the deploy hook", SameRepository: true}},
		},
		{
			name: "gitea create event is not a push", kind: Gitea, h: giteaHeaders("create"), file: "gitea_push.json",
			want: Event{Forge: Gitea, DeliveryID: "f6266f16-1bf3-46a5-9ea4-602e06ead473", EventType: "create", Type: Other, Repository: giteaRepository, Sender: "gitea"},
		},
		{
			name: "gitlab push", kind: GitLab, h: gitlabHeaders("Push Hook"), file: "gitlab_push.json",
			want: Event{Forge: GitLab, DeliveryID: glDelivery, EventType: "Push Hook", Type: Push,
				Repository: Repository{FullName: "mike/diaspora", CloneURLs: []string{"http://example.com/mike/diaspora.git", "git@example.com:mike/diaspora.git"}, WebURL: "http://example.com/mike/diaspora"},
				Sender:     "jsmith",
				Changes:    []RefChange{{Ref: "refs/heads/master", Name: "master", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}}},
		},
		{
			name: "gitlab tag push", kind: GitLab, h: gitlabHeaders("Tag Push Hook"), file: "gitlab_tag_push.json",
			want: Event{Forge: GitLab, DeliveryID: glDelivery, EventType: "Tag Push Hook", Type: Push,
				Repository: Repository{FullName: "jsmith/example", CloneURLs: []string{"http://example.com/jsmith/example.git", "git@example.com:jsmith/example.git"}, WebURL: "http://example.com/jsmith/example"},
				Sender:     "jsmith",
				Changes:    []RefChange{{Ref: "refs/tags/v1.0.0", Name: "v1.0.0", IsTag: true, After: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"}}},
		},
		{
			name: "gitlab branch deletion", kind: GitLab, h: gitlabHeaders("Push Hook"), file: "gitlab_push_delete.json",
			want: Event{Forge: GitLab, DeliveryID: glDelivery, EventType: "Push Hook", Type: Push,
				Repository: Repository{FullName: "mike/diaspora", CloneURLs: []string{"http://example.com/mike/diaspora.git", "git@example.com:mike/diaspora.git"}, WebURL: "http://example.com/mike/diaspora"},
				Sender:     "jsmith",
				Changes:    []RefChange{{Ref: "refs/heads/feature/gone", Name: "feature/gone", Before: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Deleted: true}}},
		},
		{
			name: "gitlab system hook push", kind: GitLab, h: gitlabHeaders("System Hook"), file: "gitlab_push.json",
			want: Event{Forge: GitLab, DeliveryID: glDelivery, EventType: "System Hook", Type: Push,
				Repository: Repository{FullName: "mike/diaspora", CloneURLs: []string{"http://example.com/mike/diaspora.git", "git@example.com:mike/diaspora.git"}, WebURL: "http://example.com/mike/diaspora"},
				Sender:     "jsmith",
				Changes:    []RefChange{{Ref: "refs/heads/master", Name: "master", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}}},
		},
		{
			name: "gitlab merge request", kind: GitLab, h: gitlabHeaders("Merge Request Hook"), file: "gitlab_merge_request.json",
			want: Event{Forge: GitLab, DeliveryID: glDelivery, EventType: "Merge Request Hook", Type: PullRequest,
				Repository:  Repository{FullName: "gitlabhq/gitlab-test", CloneURLs: []string{"http://example.com/gitlabhq/gitlab-test.git", "git@example.com:gitlabhq/gitlab-test.git"}, WebURL: "http://example.com/gitlabhq/gitlab-test"},
				Sender:      "root",
				PullRequest: &PullRequestInfo{Number: 1, Action: "open", SourceBranch: "ms-viewport", TargetBranch: "master", HeadSHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Title: "MS-Viewport", SameRepository: true}},
		},
		{
			name: "gitlab pipeline is a check", kind: GitLab, h: gitlabHeaders("Pipeline Hook"), file: "gitlab_pipeline.json",
			want: Event{Forge: GitLab, DeliveryID: glDelivery, EventType: "Pipeline Hook", Type: Check,
				Repository: Repository{FullName: "gitlab-org/gitlab-test", CloneURLs: []string{"http://192.168.64.1:3005/gitlab-org/gitlab-test.git", "git@192.168.64.1:gitlab-org/gitlab-test.git"}, WebURL: "http://192.168.64.1:3005/gitlab-org/gitlab-test"},
				Sender:     "root",
				Check:      &CheckInfo{SHA: "bcbb5ec396a2c0f828686f14fac9b80b780504f2", Branch: "master", Name: "pipeline", Conclusion: "success", Verdict: CheckPassed}},
		},
		{
			name: "bitbucket push with a branch and a tag", kind: Bitbucket, h: bitbucketHeaders("repo:push"), file: "bitbucket_push.json",
			want: Event{Forge: Bitbucket, DeliveryID: bbDelivery, EventType: "repo:push", Type: Push, Repository: bbRepository, Sender: "emmasmith",
				Changes: []RefChange{
					{Ref: "refs/heads/main", Name: "main", Before: "1e65c05c1d5171631d92438a13901ca7dae9618c", After: "709d658dc5b6d6afcd46049c2f332ee3f515a67d"},
					{Ref: "refs/tags/v2.0", Name: "v2.0", IsTag: true, After: "709d658dc5b6d6afcd46049c2f332ee3f515a67d"},
				}},
		},
		{
			name: "bitbucket branch deletion", kind: Bitbucket, h: bitbucketHeaders("repo:push"), file: "bitbucket_push_delete.json",
			want: Event{Forge: Bitbucket, DeliveryID: bbDelivery, EventType: "repo:push", Type: Push, Repository: bbRepository, Sender: "emmasmith",
				Changes: []RefChange{{Ref: "refs/heads/feature/old-login", Name: "feature/old-login", Before: "1e65c05c1d5171631d92438a13901ca7dae9618c", Deleted: true}}},
		},
		{
			name: "bitbucket pull request (abbreviated hash dropped)", kind: Bitbucket, h: bitbucketHeaders("pullrequest:created"), file: "bitbucket_pullrequest_created.json",
			want: Event{Forge: Bitbucket, DeliveryID: bbDelivery, EventType: "pullrequest:created", Type: PullRequest, Repository: bbRepository, Sender: "emmasmith",
				PullRequest: &PullRequestInfo{Number: 7, Action: "created", SourceBranch: "fix/login", TargetBranch: "main", Title: "Fix the login page"}},
		},
		{
			name: "bitbucket server push", kind: BitbucketServer, h: bitbucketServerHeaders("repo:refs_changed"), file: "bitbucket_server_refs_changed.json",
			want: Event{Forge: BitbucketServer, DeliveryID: bsDelivery, EventType: "repo:refs_changed", Type: Push, Repository: bsRepository, Sender: "admin",
				Changes: []RefChange{
					{Ref: "refs/heads/master", Name: "master", Before: "ecddabb624f6f5ba43816f5926e580a5f680a932", After: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc"},
					{Ref: "refs/tags/release-1.0", Name: "release-1.0", IsTag: true, After: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc"},
				}},
		},
		{
			name: "bitbucket server branch deletion", kind: BitbucketServer, h: bitbucketServerHeaders("repo:refs_changed"), file: "bitbucket_server_delete.json",
			want: Event{Forge: BitbucketServer, DeliveryID: bsDelivery, EventType: "repo:refs_changed", Type: Push, Repository: bsRepository, Sender: "admin",
				Changes: []RefChange{{Ref: "refs/heads/feature-x", Name: "feature-x", Before: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc", Deleted: true}}},
		},
		{
			name: "bitbucket server ping", kind: BitbucketServer, h: bitbucketServerHeaders("diagnostics:ping"), file: "bitbucket_server_ping.json",
			want: Event{Forge: BitbucketServer, DeliveryID: bsDelivery, EventType: "diagnostics:ping", Type: Ping},
		},
		{
			name: "bitbucket server pull request", kind: BitbucketServer, h: bitbucketServerHeaders("pr:opened"), file: "bitbucket_server_pr_opened.json",
			want: Event{Forge: BitbucketServer, DeliveryID: bsDelivery, EventType: "pr:opened", Type: PullRequest,
				Repository: Repository{FullName: "PROJ/repository"}, Sender: "admin",
				PullRequest: &PullRequestInfo{Number: 1, Action: "opened", SourceBranch: "a-branch", TargetBranch: "master", HeadSHA: "ef8755f06ee4b28c96a847a95cb8ec8ed6ddd1ca", Title: "a new file added", SameRepository: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.kind, tt.h, readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
			if err := checkInvariants(got); err != nil {
				t.Errorf("invariant: %v", err)
			}
		})
	}
}

func TestParseSHA256Repository(t *testing.T) {
	body := strings.NewReplacer(
		`"before": "9049f1265b7d61be4a8904a9a27120d2064dab3b"`, `"before": "`+strings.Repeat("ab", 32)+`"`,
		`"after": "0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C"`, `"after": "`+strings.Repeat("CD", 32)+`"`,
	).Replace(string(readTestdata(t, "github_push.json")))
	ev, err := Parse(GitHub, githubHeaders("push"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := RefChange{Ref: "refs/heads/main", Name: "main", Before: strings.Repeat("ab", 32), After: strings.Repeat("cd", 32)}
	if diff := cmp.Diff([]RefChange{want}, ev.Changes); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseTitleCleaned(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	body := strings.Replace(string(readTestdata(t, "github_pull_request.json")),
		`"title": "Update the README with new information."`, `"title": "a\u0007b\u001b[31m`+long+`"`, 1)
	ev, err := Parse(GitHub, githubHeaders("pull_request"), []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	title := ev.PullRequest.Title
	if len(title) > MaxTitleLen || !validText(title, MaxTitleLen) || !strings.HasPrefix(title, "a b [31mé") {
		t.Errorf("title %q not cleaned (len %d)", title, len(title))
	}
}

// TestParseMalformed takes real payloads and breaks one thing in each.
func TestParseMalformed(t *testing.T) {
	ghPush := string(readTestdata(t, "github_push.json"))
	glPush := string(readTestdata(t, "gitlab_push.json"))
	bbPush := string(readTestdata(t, "bitbucket_push.json"))
	bsPush := string(readTestdata(t, "bitbucket_server_refs_changed.json"))
	ghPR := string(readTestdata(t, "github_pull_request.json"))
	sub := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("testdata lacks %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	ghRef := func(ref string) string { return sub(ghPush, `"ref": "refs/heads/main"`, `"ref": `+ref) }
	ghAfter := func(after string) string {
		return sub(ghPush, `"after": "0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C"`, `"after": `+after)
	}
	nested := strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100)

	tests := []struct {
		name string
		kind Kind
		h    http.Header
		body string
	}{
		{"not JSON", GitHub, githubHeaders("push"), `ref=refs/heads/main`},
		{"truncated JSON", GitHub, githubHeaders("push"), ghPush[:len(ghPush)/2]},
		{"empty body", GitHub, githubHeaders("push"), ``},
		{"JSON array", GitHub, githubHeaders("push"), `[1,2,3]`},
		{"trailing garbage", GitHub, githubHeaders("push"), ghPush + `{}`},
		{"raw NUL byte in a string", GitHub, githubHeaders("push"), ghRef("\"refs/heads/ma\x00in\"")},
		{"escaped NUL in ref", GitHub, githubHeaders("push"), ghRef(`"refs/heads/ma\u0000in"`)},
		{"invalid UTF-8", GitHub, githubHeaders("push"), ghRef("\"refs/heads/ma\xffin\"")},
		{"invalid UTF-8 in an ignored field", GitHub, githubHeaders("push"), sub(ghPush, `"Update README.md"`, "\"Update \xc3\x28 README\"")},
		{"deeply nested", GitHub, githubHeaders("push"), nested},
		{"deeply nested in an ignored field", GitHub, githubHeaders("push"), sub(ghPush, `"size": 0`, `"size": `+nested)},
		{"ref of wrong type", GitHub, githubHeaders("push"), ghRef(`5`)},
		{"repository of wrong type", GitHub, githubHeaders("push"), sub(ghPush, `"repository": {`, `"repository": "x", "y": {`)},
		{"deleted of wrong type", GitHub, githubHeaders("push"), sub(ghPush, `"deleted": false`, `"deleted": "no"`)},
		{"no ref", GitHub, githubHeaders("push"), ghRef(`""`)},
		{"ref with command substitution", GitHub, githubHeaders("push"), ghRef(`"refs/heads/$(rm -rf /)"`)},
		{"ref with semicolon", GitHub, githubHeaders("push"), ghRef(`"refs/heads/main;reboot"`)},
		{"ref with backticks", GitHub, githubHeaders("push"), ghRef("\"refs/heads/`id`\"")},
		{"ref with newline", GitHub, githubHeaders("push"), ghRef(`"refs/heads/main\nx"`)},
		{"ref with space", GitHub, githubHeaders("push"), ghRef(`"refs/heads/a b"`)},
		{"ref with ..", GitHub, githubHeaders("push"), ghRef(`"refs/heads/a..b"`)},
		{"ref with @{", GitHub, githubHeaders("push"), ghRef(`"refs/heads/a@{1}"`)},
		{"ref ending in .lock", GitHub, githubHeaders("push"), ghRef(`"refs/heads/main.lock"`)},
		{"ref ending in /", GitHub, githubHeaders("push"), ghRef(`"refs/heads/main/"`)},
		{"ref with leading dash", GitHub, githubHeaders("push"), ghRef(`"refs/heads/-main"`)},
		{"ref with option-like component", GitHub, githubHeaders("push"), ghRef(`"refs/heads/x/--upload-pack=evil"`)},
		{"ref with tilde", GitHub, githubHeaders("push"), ghRef(`"refs/heads/main~1"`)},
		{"ref with colon", GitHub, githubHeaders("push"), ghRef(`"refs/heads/a:b"`)},
		{"ref with backslash", GitHub, githubHeaders("push"), ghRef(`"refs/heads/a\\b"`)},
		{"ref with C1 control", GitHub, githubHeaders("push"), ghRef(`"refs/heads/a\u0085b"`)},
		{"ref too long", GitHub, githubHeaders("push"), ghRef(`"refs/heads/` + strings.Repeat("a", 250) + `"`)},
		{"ref outside heads and tags", GitHub, githubHeaders("push"), ghRef(`"refs/pull/1/head"`)},
		{"bare branch name", GitHub, githubHeaders("push"), ghRef(`"main"`)},
		{"empty branch name", GitHub, githubHeaders("push"), ghRef(`"refs/heads/"`)},
		{"after with command substitution", GitHub, githubHeaders("push"), ghAfter(`"$(rm -rf /)"`)},
		{"after with semicolon", GitHub, githubHeaders("push"), ghAfter(`"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1;"`)},
		{"after with backticks", GitHub, githubHeaders("push"), ghAfter("\"`reboot`0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0\"")},
		{"after too short", GitHub, githubHeaders("push"), ghAfter(`"0d1a26e"`)},
		{"after not hex", GitHub, githubHeaders("push"), ghAfter(`"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1g"`)},
		{"after missing", GitHub, githubHeaders("push"), ghAfter(`""`)},
		{"before not hex", GitHub, githubHeaders("push"), sub(ghPush, `"before": "9049f1265b7d61be4a8904a9a27120d2064dab3b"`, `"before": "--upload-pack=x"`)},
		{"no repository", GitHub, githubHeaders("push"), sub(ghPush, `"full_name": "Codertocat/Hello-World"`, `"full_name": ""`)},
		{"repository name with control character", GitHub, githubHeaders("push"), sub(ghPush, `"full_name": "Codertocat/Hello-World"`, `"full_name": "Codertocat/\u001b[2J"`)},
		{"repository name too long", GitHub, githubHeaders("push"), sub(ghPush, `"full_name": "Codertocat/Hello-World"`, `"full_name": "`+strings.Repeat("x", 300)+`"`)},
		{"clone URL as an option", GitHub, githubHeaders("push"), sub(ghPush, `"clone_url": "https://github.com/Codertocat/Hello-World.git"`, `"clone_url": "--upload-pack=touch /tmp/x"`)},
		{"clone URL with space", GitHub, githubHeaders("push"), sub(ghPush, `"clone_url": "https://github.com/Codertocat/Hello-World.git"`, `"clone_url": "https://github.com/a b.git"`)},
		{"web URL not http", GitHub, githubHeaders("push"), sub(ghPush, `"html_url": "https://github.com/Codertocat/Hello-World"`, `"html_url": "javascript:alert(1)"`)},
		{"sender with newline", GitHub, githubHeaders("push"), sub(ghPush, `"login": "Codertocat",
    "id": 21031067,
    "node_id"`, `"login": "Coder\ntocat", "node_id"`)},
		{"no event header", GitHub, hdr("X-GitHub-Delivery", "x"), ghPush},
		{"event header with control character", GitHub, githubHeaders("push\x01"), ghPush},
		{"pull request without object", GitHub, githubHeaders("pull_request"), `{"action":"opened","number":1,"repository":{"full_name":"a/b"}}`},
		{"pull request number zero", GitHub, githubHeaders("pull_request"), strings.ReplaceAll(ghPR, `"number": 2,`, `"number": 0,`)},
		{"pull request number of wrong type", GitHub, githubHeaders("pull_request"), sub(ghPR, `"number": 2,`, `"number": "2",`)},
		{"pull request head with metacharacters", GitHub, githubHeaders("pull_request"), sub(ghPR, `"ref": "changes"`, `"ref": "$(id)"`)},
		{"pull request head SHA invalid", GitHub, githubHeaders("pull_request"), sub(ghPR, `"sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821"`, `"sha": "ec26;"`)},

		{"gitlab object_kind disagrees with header", GitLab, gitlabHeaders("Push Hook"), sub(glPush, `"object_kind": "push"`, `"object_kind": "merge_request"`)},
		{"gitlab after invalid", GitLab, gitlabHeaders("Push Hook"), sub(glPush, `"after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"`, `"after": "HEAD"`)},
		{"gitlab checkout_sha invalid", GitLab, gitlabHeaders("Push Hook"), sub(glPush, `"checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"`, `"checkout_sha": "$(id)"`)},
		{"gitlab no project", GitLab, gitlabHeaders("Push Hook"), sub(glPush, `"path_with_namespace": "mike/diaspora"`, `"path_with_namespace": ""`)},
		{"gitlab project of wrong type", GitLab, gitlabHeaders("Push Hook"), sub(glPush, `"project": {`, `"project": [], "x": {`)},
		{"gitlab merge request without attributes", GitLab, gitlabHeaders("Merge Request Hook"), `{"object_kind":"merge_request","project":{"path_with_namespace":"a/b"}}`},

		{"bitbucket ref type unknown", Bitbucket, bitbucketHeaders("repo:push"), sub(bbPush, `"type": "branch",
          "name": "main"`, `"type": "bookmark",
          "name": "main"`)},
		{"bitbucket branch name with metacharacters", Bitbucket, bitbucketHeaders("repo:push"), sub(bbPush, `"name": "main",`, `"name": "ma|in",`)},
		{"bitbucket hash invalid", Bitbucket, bitbucketHeaders("repo:push"), sub(bbPush, `"hash": "709d658dc5b6d6afcd46049c2f332ee3f515a67d"`, `"hash": "709d658"`)},
		{"bitbucket change with neither side", Bitbucket, bitbucketHeaders("repo:push"), `{"repository":{"full_name":"a/b"},"push":{"changes":[{"new":null,"old":null}]}}`},
		{"bitbucket push without push object", Bitbucket, bitbucketHeaders("repo:push"), `{"repository":{"full_name":"a/b"}}`},
		{"bitbucket changes of wrong type", Bitbucket, bitbucketHeaders("repo:push"), `{"repository":{"full_name":"a/b"},"push":{"changes":{}}}`},

		{"bitbucket server change type unknown", BitbucketServer, bitbucketServerHeaders("repo:refs_changed"), sub(bsPush, `"type": "UPDATE"`, `"type": "MERGE"`)},
		{"bitbucket server toHash invalid", BitbucketServer, bitbucketServerHeaders("repo:refs_changed"), sub(bsPush, `"toHash": "178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
      "type": "UPDATE"`, `"toHash": "178864a7d521b6f5e720b386b2c2b0ef8563e0d;",
      "type": "UPDATE"`)},
		{"bitbucket server ref id invalid", BitbucketServer, bitbucketServerHeaders("repo:refs_changed"), sub(bsPush, `"id": "refs/heads/master"`, `"id": "refs/heads/ma ster"`)},
		{"bitbucket server slug with slash", BitbucketServer, bitbucketServerHeaders("repo:refs_changed"), sub(bsPush, `"slug": "repository"`, `"slug": "a/b"`)},
		{"bitbucket server no repository", BitbucketServer, bitbucketServerHeaders("repo:refs_changed"), `{"changes":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse(tt.kind, tt.h, []byte(tt.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", ev, err)
			}
			if !strings.HasPrefix(err.Error(), "parse "+string(tt.kind)) {
				t.Errorf("error %q does not say what was parsed", err)
			}
		})
	}
}

func TestParseOtherIsLenient(t *testing.T) {
	// An event fraisier ignores must not be refused for a field whose type
	// or content it would not accept in a push: it is dropped instead.
	tests := []struct {
		name string
		kind Kind
		h    http.Header
		body string
		want Event
	}{
		{"wrong types", GitHub, githubHeaders("star"), `{"ref": 5, "repository": {"full_name": "a/b", "clone_url": 7}, "sender": {"login": "octo"}}`,
			Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "star", Type: Other, Repository: Repository{FullName: "a/b"}, Sender: "octo"}},
		{"invalid names dropped", GitHub, githubHeaders("star"), `{"repository": {"full_name": "a/\u0000b", "clone_url": "-x"}, "sender": {"login": "a\nb"}}`,
			Event{Forge: GitHub, DeliveryID: ghDelivery, EventType: "star", Type: Other}},
		{"gitlab system hook of another kind", GitLab, gitlabHeaders("System Hook"), `{"object_kind": "project_create", "event_name": "project_create", "path_with_namespace": "a/b"}`,
			Event{Forge: GitLab, DeliveryID: glDelivery, EventType: "System Hook", Type: Other}},
		{"bitbucket cloud issue", Bitbucket, bitbucketHeaders("issue:created"), `{"issue": {"id": 1}, "repository": {"full_name": "a/b", "links": {"html": {"href": "https://bitbucket.org/a/b"}}}}`,
			Event{Forge: Bitbucket, DeliveryID: bbDelivery, EventType: "issue:created", Type: Other,
				Repository: Repository{FullName: "a/b", WebURL: "https://bitbucket.org/a/b", CloneURLs: []string{"https://bitbucket.org/a/b.git", "git@bitbucket.org:a/b.git"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.kind, tt.h, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUnknownKind(t *testing.T) {
	if _, err := Parse("svn", githubHeaders("push"), []byte(`{}`)); !errors.Is(err, ErrUnknownForge) {
		t.Errorf("err = %v, want ErrUnknownForge", err)
	}
}
