package forge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kind names a forge. The values are the section names under git: in
// fraises.yaml and the last element of the webhook path /webhook/{forge}.
type Kind string

// The forges fraisier accepts webhooks from.
const (
	GitHub          Kind = "github"
	GitLab          Kind = "gitlab"
	Gitea           Kind = "gitea"
	Bitbucket       Kind = "bitbucket"
	BitbucketServer Kind = "bitbucket_server"
)

// ErrUnknownForge is returned by ParseKind and Detect when the name or the
// headers match no supported forge.
var ErrUnknownForge = errors.New("unknown forge")

// Kinds returns every supported forge, in a fixed order. The slice is new on
// every call, so callers may keep or change it.
func Kinds() []Kind {
	return []Kind{GitHub, GitLab, Gitea, Bitbucket, BitbucketServer}
}

// ParseKind maps a forge name from a webhook path to its Kind. Besides the
// canonical names it accepts "forgejo" (served by the gitea section, as
// Forgejo speaks Gitea's protocol) and the spellings people use for
// Bitbucket Data Center. Names are lower case, as in the configuration.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "github":
		return GitHub, nil
	case "gitlab":
		return GitLab, nil
	case "gitea", "forgejo":
		return Gitea, nil
	case "bitbucket", "bitbucket_cloud", "bitbucket-cloud":
		return Bitbucket, nil
	case "bitbucket_server", "bitbucket-server", "bitbucket_datacenter", "bitbucket-datacenter", "bitbucket_dc", "bitbucket-dc":
		return BitbucketServer, nil
	}
	return "", fmt.Errorf("forge %.64q: %w", s, ErrUnknownForge)
}

// Canonical header names, as net/http stores them, so that lookups do not
// canonicalise (and allocate) on every request.
const (
	hGitHubEvent     = "X-Github-Event"
	hGitHubDelivery  = "X-Github-Delivery"
	hHubSig256       = "X-Hub-Signature-256"
	hHubSig          = "X-Hub-Signature"
	hGitLabEvent     = "X-Gitlab-Event"
	hGitLabToken     = "X-Gitlab-Token"
	hGitLabEventUUID = "X-Gitlab-Event-Uuid"
	hIdempotencyKey  = "Idempotency-Key"
	hWebhookID       = "Webhook-Id"
	hWebhookTS       = "Webhook-Timestamp"
	hWebhookSig      = "Webhook-Signature"
	hGiteaEvent      = "X-Gitea-Event"
	hGiteaDelivery   = "X-Gitea-Delivery"
	hGiteaSig        = "X-Gitea-Signature"
	hForgejoEvent    = "X-Forgejo-Event"
	hForgejoDelivery = "X-Forgejo-Delivery"
	hForgejoSig      = "X-Forgejo-Signature"
	hEventKey        = "X-Event-Key"
	hRequestUUID     = "X-Request-Uuid"
	hHookUUID        = "X-Hook-Uuid"
	hRequestID       = "X-Request-Id"
)

// header returns the first value of a header given in canonical form, as
// net/http stores it (callers building headers by hand use Set or Add).
func header(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func has(h http.Header, canonical string) bool {
	_, ok := h[canonical]
	return ok
}

// Detect tells the forge from its own headers, for a single webhook URL that
// serves several forges. Order matters: Gitea and Forgejo also send
// X-GitHub-Event (and Gogs headers), so they are recognised first; GitLab
// next; then GitHub. Both Bitbucket products send X-Event-Key: the event key
// itself tells them apart when it belongs to one product only, and otherwise
// the delivery id header does (X-Request-UUID for Cloud, X-Request-Id for
// Data Center; a proxy that adds X-Request-Id to every request does not
// confuse Cloud, which also sends X-Request-UUID).
func Detect(h http.Header) (Kind, error) {
	switch {
	case has(h, hForgejoEvent), has(h, hGiteaEvent):
		return Gitea, nil
	case has(h, hGitLabEvent):
		return GitLab, nil
	case has(h, hGitHubEvent):
		return GitHub, nil
	}
	key := header(h, hEventKey)
	if key == "" {
		return "", fmt.Errorf("detect forge from headers: %w", ErrUnknownForge)
	}
	if k, ok := bitbucketByEventKey(key); ok {
		return k, nil
	}
	cloud := has(h, hRequestUUID) || has(h, hHookUUID)
	server := has(h, hRequestID)
	switch {
	case cloud:
		return Bitbucket, nil
	case server:
		return BitbucketServer, nil
	}
	return "", fmt.Errorf("detect forge: X-Event-Key without a Bitbucket delivery id header: %w", ErrUnknownForge)
}

// bitbucketByEventKey recognises event keys that only one Bitbucket product
// sends. Any other key (one either product might send, or one added after
// this was written) is left to the delivery id headers.
func bitbucketByEventKey(key string) (Kind, bool) {
	switch {
	case key == "repo:push", strings.HasPrefix(key, "pullrequest:"), strings.HasPrefix(key, "issue:"),
		key == "repo:fork", key == "repo:updated", key == "repo:transfer", key == "repo:created", key == "repo:deleted",
		strings.HasPrefix(key, "repo:commit_"):
		return Bitbucket, true
	case key == "repo:refs_changed", strings.HasPrefix(key, "pr:"), strings.HasPrefix(key, "diagnostics:"),
		strings.HasPrefix(key, "mirror:"), strings.HasPrefix(key, "project:"), key == "repo:forked",
		key == "repo:modified", key == "repo:secret_detected":
		return BitbucketServer, true
	}
	return "", false
}

// MaxDeliveryIDLen bounds a delivery id: forges send UUIDs, and the id ends
// up in logs and the database.
const MaxDeliveryIDLen = 128

// DeliveryID returns the forge's per-delivery id, or "" when it is missing
// or not printable ASCII of at most MaxDeliveryIDLen bytes. For GitLab it
// is the id that stays the same when GitLab retries a delivery, so that a
// retry can be recognised: the signed webhook-id of a signed delivery
// (call DeliveryID only once Authenticate has verified it), else
// Idempotency-Key. The unsigned Idempotency-Key is never preferred over a
// signed id: a captured delivery sent again under a new one would
// otherwise pass for a new delivery.
func DeliveryID(k Kind, h http.Header) string {
	var id string
	switch k {
	case GitHub:
		id = header(h, hGitHubDelivery)
	case GitLab:
		if has(h, hWebhookSig) {
			id = header(h, hWebhookID)
		} else {
			id = firstHeader(h, hIdempotencyKey, hWebhookID, hGitLabEventUUID)
		}
	case Gitea:
		id = firstHeader(h, hForgejoDelivery, hGiteaDelivery)
	case Bitbucket:
		id = header(h, hRequestUUID)
	case BitbucketServer:
		id = header(h, hRequestID)
	}
	if !printableASCII(id, MaxDeliveryIDLen) {
		return ""
	}
	return id
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := header(h, n); v != "" {
			return v
		}
	}
	return ""
}

// eventHeader returns the raw event type header of forge k.
func eventHeader(k Kind, h http.Header) string {
	switch k {
	case GitHub:
		return header(h, hGitHubEvent)
	case GitLab:
		return header(h, hGitLabEvent)
	case Gitea:
		return firstHeader(h, hForgejoEvent, hGiteaEvent)
	case Bitbucket, BitbucketServer:
		return header(h, hEventKey)
	}
	return ""
}

func validKind(k Kind) bool {
	switch k {
	case GitHub, GitLab, Gitea, Bitbucket, BitbucketServer:
		return true
	}
	return false
}

// printableASCII reports whether s is non-empty, at most max bytes, and
// made of printable ASCII without spaces.
func printableASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
