// Package forge authenticates and parses webhook deliveries from the forges
// fraisier deploys from: GitHub (and GitHub Enterprise), GitLab,
// Gitea/Forgejo, Bitbucket Cloud and Bitbucket Data Center/Server.
//
// It sits on the HTTP intake's hot path and imports only the standard
// library. Headers are looked up in the canonical form net/http gives them.
// A caller works in three steps, in this order:
//
//	k, err := forge.ParseKind(pathValue)                // or forge.Detect(r.Header)
//	i, err := forge.Authenticate(k, r.Header, body, secrets, allowUnsigned, time.Now())
//	ev, err := forge.Parse(k, r.Header, body)
//
// A Kind names a forge; an Event is a parsed delivery: its type (a push,
// a ping, a pull request, a check result or anything else), the
// repository, the sender, the refs a push moved, the pull request it is
// about and the check result it reports (check.go).
//
// Authenticate works on the raw body bytes, before any parsing, so that a
// forged delivery costs one HMAC and no JSON work. Every error it returns is
// an *AuthError wrapping ErrMissingSignature, ErrBadSignature or
// ErrStaleTimestamp (answer 401); its message never holds a secret or a
// computed MAC. Parse returns errors wrapping ErrMalformed (answer 400); an
// event type it does not know is not an error but an Event of Type Other.
// Every forge goes through the same parse flow (parse.go); what differs is
// how its payload names a repository, a ref change and a pull request,
// which each forge's file says.
//
// Everything in an Event has been validated, because the deploy engine hands
// SHAs and ref names to git: SHAs are 40 or 64 lower-case hex digits, refs
// obey git check-ref-format and more (no component starts with "-", no
// shell metacharacter), URLs cannot pass for options, and names and senders
// are bounded, valid UTF-8 without control characters. A push whose ref or
// SHA fails validation is refused as ErrMalformed rather than dropped, so
// that the forge shows the failure.
//
// Per forge:
//
//   - github: X-GitHub-Event, X-GitHub-Delivery, X-Hub-Signature-256
//     (sha256=hex). The SHA-1 X-Hub-Signature is never checked: a delivery
//     carrying only that one is unsigned to fraisier.
//   - gitlab: X-Gitlab-Event, and either a Standard Webhooks signature
//     (webhook-id, webhook-timestamp, webhook-signature "v1,<base64>") over
//     "{id}.{timestamp}.{body}", keyed by the base64 after "whsec_" in a
//     signing key, within SignatureTolerance of now; or, only while no
//     signing key is configured, X-Gitlab-Token (a token, compared in
//     constant time with the secrets that are not signing keys). The
//     delivery id is the signed webhook-id of a signed delivery, else
//     Idempotency-Key (stable across retries; falls back to
//     X-Gitlab-Event-UUID).
//   - gitea (also Forgejo, which sends both header families):
//     X-Forgejo-Event/X-Gitea-Event, X-Forgejo-Delivery/X-Gitea-Delivery,
//     X-Forgejo-Signature/X-Gitea-Signature (bare hex), or X-Hub-Signature-256.
//     Gitea has no ping: its test delivery is a push.
//   - bitbucket (Cloud): X-Event-Key, X-Request-UUID, X-Hub-Signature
//     (sha256=hex; unlike GitHub's header of the same name).
//   - bitbucket_server (Data Center): X-Event-Key, X-Request-Id,
//     X-Hub-Signature (sha256=hex); diagnostics:ping is its ping.
package forge
