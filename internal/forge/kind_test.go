package forge

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestKindsAndParseKind(t *testing.T) {
	want := []Kind{"github", "gitlab", "gitea", "bitbucket", "bitbucket_server"}
	if got := Kinds(); !slices.Equal(got, want) {
		t.Fatalf("Kinds() = %v, want %v", got, want)
	}
	Kinds()[0] = "changed" // callers may change the slice they get
	if Kinds()[0] != GitHub {
		t.Fatal("Kinds shares its slice")
	}
	for _, k := range want {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	aliases := map[string]Kind{
		"forgejo": Gitea, "bitbucket-server": BitbucketServer, "bitbucket_datacenter": BitbucketServer,
		"bitbucket-datacenter": BitbucketServer, "bitbucket-cloud": Bitbucket,
	}
	for s, k := range aliases {
		if got, err := ParseKind(s); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", s, got, err, k)
		}
	}
	for _, s := range []string{"", "GitHub", "gogs", "svn", "github/", "../github", "git\x00hub"} {
		if _, err := ParseKind(s); !errors.Is(err, ErrUnknownForge) {
			t.Errorf("ParseKind(%q) err = %v, want ErrUnknownForge", s, err)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want Kind
	}{
		{"github", githubHeaders("push"), GitHub},
		{"github enterprise", hdr("X-GitHub-Event", "push", "X-GitHub-Delivery", "x", "X-GitHub-Enterprise-Version", "3.14.0", "X-GitHub-Enterprise-Host", "ghe.example.com"), GitHub},
		{"gitea sends X-GitHub-Event too", giteaHeaders("push"), Gitea},
		{"forgejo", forgejoHeaders("push"), Gitea},
		{"forgejo without gitea headers", hdr("X-Forgejo-Event", "push", "X-GitHub-Event", "push"), Gitea},
		{"gitlab", gitlabHeaders("Push Hook"), GitLab},
		{"gitlab system hook", gitlabHeaders("System Hook"), GitLab},
		{"bitbucket cloud", bitbucketHeaders("repo:push"), Bitbucket},
		{"bitbucket cloud pull request", bitbucketHeaders("pullrequest:fulfilled"), Bitbucket},
		{"bitbucket cloud behind a proxy adding X-Request-Id", func() http.Header {
			h := bitbucketHeaders("repo:updated")
			h.Set("X-Request-Id", "proxy-1")
			return h
		}(), Bitbucket},
		{"bitbucket cloud unknown key by header", hdr("X-Event-Key", "repo:something_new", "X-Request-UUID", "u"), Bitbucket},
		{"bitbucket server", bitbucketServerHeaders("repo:refs_changed"), BitbucketServer},
		{"bitbucket server ping", bitbucketServerHeaders("diagnostics:ping"), BitbucketServer},
		{"bitbucket server pull request", bitbucketServerHeaders("pr:merged"), BitbucketServer},
		{"bitbucket server unknown key by header", hdr("X-Event-Key", "repo:something_new", "X-Request-Id", "r"), BitbucketServer},
		{"bitbucket server key wins over cloud header", hdr("X-Event-Key", "repo:refs_changed", "X-Request-UUID", "u"), BitbucketServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(tt.h)
			if err != nil || got != tt.want {
				t.Errorf("Detect = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for name, h := range map[string]http.Header{
		"no headers":                     {},
		"gogs only":                      hdr("X-Gogs-Event", "push", "X-Gogs-Delivery", "x"),
		"event key without delivery id":  hdr("X-Event-Key", "repo:something_new"),
		"signature only":                 hdr("X-Hub-Signature-256", "sha256=00"),
		"lower-case map key not by http": {"x-github-event": {"push"}},
	} {
		t.Run("unknown/"+name, func(t *testing.T) {
			if k, err := Detect(h); !errors.Is(err, ErrUnknownForge) {
				t.Errorf("Detect = %q, %v; want ErrUnknownForge", k, err)
			}
		})
	}
}

func TestDeliveryID(t *testing.T) {
	tests := []struct {
		name string
		k    Kind
		h    http.Header
		want string
	}{
		{"github", GitHub, githubHeaders("push"), ghDelivery},
		{"gitea", Gitea, giteaHeaders("push"), "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
		{"forgejo preferred", Gitea, forgejoHeaders("push"), "0b5f3c1e-7a7e-4a42-9d1b-3f2d2b8f9a10"},
		{"gitlab idempotency key", GitLab, gitlabHeaders("Push Hook"), glDelivery},
		{"gitlab event uuid when no idempotency key", GitLab, hdr("X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "e-1"), "e-1"},
		{"gitlab signed: the signed webhook-id, not the unsigned idempotency key", GitLab, with(swHeaders(swSig), "Idempotency-Key", "replayed-1"), swID},
		{"gitlab unsigned: idempotency key before webhook-id", GitLab, hdr("X-Gitlab-Event", "Push Hook", "Idempotency-Key", "i-1", "Webhook-Id", "w-1"), "i-1"},
		{"bitbucket cloud request uuid, not hook uuid", Bitbucket, bitbucketHeaders("repo:push"), bbDelivery},
		{"bitbucket server", BitbucketServer, bitbucketServerHeaders("repo:refs_changed"), bsDelivery},
		{"wrong forge's header", GitHub, bitbucketHeaders("repo:push"), ""},
		{"too long", GitHub, hdr("X-GitHub-Delivery", strings.Repeat("a", MaxDeliveryIDLen+1)), ""},
		{"longest", GitHub, hdr("X-GitHub-Delivery", strings.Repeat("a", MaxDeliveryIDLen)), strings.Repeat("a", MaxDeliveryIDLen)},
		{"space", GitHub, hdr("X-GitHub-Delivery", "a b"), ""},
		{"control", GitHub, hdr("X-GitHub-Delivery", "a\x7fb"), ""},
		{"non-ASCII", GitHub, hdr("X-GitHub-Delivery", "é"), ""},
		{"unknown kind", "svn", githubHeaders("push"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DeliveryID(tt.k, tt.h); got != tt.want {
				t.Errorf("DeliveryID = %q, want %q", got, tt.want)
			}
		})
	}
}
