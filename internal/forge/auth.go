package forge

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SignatureTolerance is how far a signed GitLab delivery's webhook-timestamp
// may be from now, either way, as the Standard Webhooks specification
// recommends. It bounds how long a captured delivery can be replayed.
const SignatureTolerance = 5 * time.Minute

// Authentication failures. Every one of them means "answer 401"; callers
// branch on them with errors.Is to count or log them apart.
var (
	ErrMissingSignature = errors.New("missing signature")
	ErrBadSignature     = errors.New("bad signature")
	ErrStaleTimestamp   = errors.New("timestamp outside the accepted window")
)

// AuthError says why a delivery was refused. Reason names headers and
// counts, never a secret, a received token or a computed MAC, so that it
// can be logged as it is.
type AuthError struct {
	Kind   Kind
	Reason string
	Err    error // ErrMissingSignature, ErrBadSignature or ErrStaleTimestamp
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("authenticate %s delivery: %v: %s", e.Kind, e.Err, e.Reason)
}

func (e *AuthError) Unwrap() error { return e.Err }

func authErr(k Kind, err error, reason string) error {
	return &AuthError{Kind: k, Reason: reason, Err: err}
}

// maxSignatures bounds how many space-separated signatures a
// webhook-signature header may list, so that a hostile header cannot buy
// unbounded comparisons.
const maxSignatures = 8

// Authenticate checks that body was sent by forge k with one of secrets.
// It returns the index of the secret that verified the delivery, or -1 when
// the delivery carries no signature and allowUnsigned is set. A delivery
// that carries a signature is always checked, even when unsigned ones are
// allowed: a wrong signature is refused, never downgraded. now is the
// current time, for GitLab's signed deliveries.
//
// It must run on the raw body as received, before any parsing.
func Authenticate(k Kind, h http.Header, body []byte, secrets [][]byte, allowUnsigned bool, now time.Time) (matched int, err error) {
	switch k {
	case GitHub:
		sig := header(h, hHubSig256)
		if sig == "" {
			if has(h, hHubSig) {
				return unsigned(k, h, allowUnsigned, "only the SHA-1 X-Hub-Signature is present, and SHA-1 signatures are refused: GitHub sends X-Hub-Signature-256 when the webhook has a secret")
			}
			return unsigned(k, h, allowUnsigned, "no X-Hub-Signature-256 header")
		}
		return verifyPrefixedHex(k, hHubSig256, sig, body, secrets)
	case Gitea:
		// Forgejo sends X-Forgejo-Signature and, for compatibility, the same
		// value as X-Gitea-Signature: the first present is the one checked,
		// so a bad Forgejo signature is not rescued by another header.
		if sig := header(h, hForgejoSig); sig != "" {
			return verifyHex(k, hForgejoSig, sig, body, secrets)
		}
		if sig := header(h, hGiteaSig); sig != "" {
			return verifyHex(k, hGiteaSig, sig, body, secrets)
		}
		if sig := header(h, hHubSig256); sig != "" {
			return verifyPrefixedHex(k, hHubSig256, sig, body, secrets)
		}
		return unsigned(k, h, allowUnsigned, "no X-Forgejo-Signature, X-Gitea-Signature or X-Hub-Signature-256 header")
	case Bitbucket, BitbucketServer:
		sig := header(h, hHubSig)
		if sig == "" {
			return unsigned(k, h, allowUnsigned, "no X-Hub-Signature header")
		}
		return verifyPrefixedHex(k, hHubSig, sig, body, secrets)
	case GitLab:
		// Signing keys (whsec_…) and tokens are kept apart: a signature is
		// checked against the signing keys only, a token against the
		// tokens only. A signed delivery is judged by its signature alone:
		// accepting its X-Gitlab-Token instead would give up the replay
		// protection the timestamp buys. And once a signing key is
		// configured every delivery must be signed, or a token seen once
		// (it travels in the clear with every delivery) would still do.
		// A refusal reads the same whichever secrets are keys and which
		// tokens: it must not tell a stranger how GitLab is configured
		// (config validate tells the operator).
		if has(h, hWebhookSig) {
			return verifyStandardWebhook(k, h, body, secrets, now)
		}
		tok, ok := h[hGitLabToken]
		if !ok || len(tok) == 0 {
			return unsigned(k, h, allowUnsigned, "no X-Gitlab-Token or webhook-signature header")
		}
		if hasSigningKey(secrets) {
			if allowUnsigned {
				return -1, nil // the token is ignored: unsigned, and judged so
			}
			return -1, authErr(k, ErrBadSignature, gitlabTokenRefused)
		}
		return verifyToken(k, tok[0], secrets)
	}
	return -1, authErr(k, ErrMissingSignature, "unknown forge")
}

// unsigned decides on a delivery without a signature this forge would
// check. When it is refused, the reason names any other forge's signature
// header found, which usually means the webhook points at the wrong path.
func unsigned(k Kind, h http.Header, allowUnsigned bool, reason string) (int, error) {
	if allowUnsigned {
		return -1, nil
	}
	for _, name := range [...]string{hHubSig256, hHubSig, hGitLabToken, hWebhookSig, hForgejoSig, hGiteaSig} {
		if has(h, name) {
			return -1, authErr(k, ErrMissingSignature, reason+" (but "+name+" is present: is this delivery from another forge?)")
		}
	}
	return -1, authErr(k, ErrMissingSignature, reason)
}

// verifyPrefixedHex checks "sha256=<hex>" headers (GitHub, Bitbucket, and
// Gitea's GitHub-compatible header).
func verifyPrefixedHex(k Kind, name, sig string, body []byte, secrets [][]byte) (int, error) {
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		if strings.HasPrefix(sig, "sha1=") {
			return -1, authErr(k, ErrBadSignature, name+" uses SHA-1, which is refused")
		}
		return -1, authErr(k, ErrBadSignature, name+" is not of the form sha256=<hex>")
	}
	return verifyHex(k, name, hexSig, body, secrets)
}

// verifyHex checks a hex HMAC-SHA256 of body against every secret.
func verifyHex(k Kind, name, hexSig string, body []byte, secrets [][]byte) (int, error) {
	var want [sha256.Size]byte
	if len(hexSig) != 2*sha256.Size {
		return -1, authErr(k, ErrBadSignature, name+" is not a hex SHA-256 HMAC")
	}
	if _, err := hex.Decode(want[:], []byte(hexSig)); err != nil {
		return -1, authErr(k, ErrBadSignature, name+" is not a hex SHA-256 HMAC")
	}
	if len(secrets) == 0 {
		return -1, authErr(k, ErrBadSignature, name+" is present but no secret is configured to verify it")
	}
	var got [sha256.Size]byte
	for i, s := range secrets {
		if len(s) == 0 {
			continue // an empty secret would make the MAC public
		}
		m := hmac.New(sha256.New, s)
		m.Write(body)
		if hmac.Equal(m.Sum(got[:0]), want[:]) {
			return i, nil
		}
	}
	return -1, authErr(k, ErrBadSignature, fmt.Sprintf("%s matches none of the %d configured secrets", name, len(secrets)))
}

// gitlabTokenRefused is the reason for every X-Gitlab-Token refused, for a
// wrong token and a token while a signing key is configured alike.
const gitlabTokenRefused = "X-Gitlab-Token matches none of the configured tokens, or a signing key is configured and deliveries must be signed"

// verifyToken compares GitLab's X-Gitlab-Token with every secret. Both are
// hashed first so that the comparison takes the same time whatever their
// lengths, which subtle.ConstantTimeCompare alone would reveal.
func verifyToken(k Kind, token string, secrets [][]byte) (int, error) {
	if len(secrets) == 0 {
		return -1, authErr(k, ErrBadSignature, "X-Gitlab-Token is present but no secret is configured to verify it")
	}
	got := sha256.Sum256([]byte(token))
	for i, s := range secrets {
		if len(s) == 0 {
			continue
		}
		want := sha256.Sum256(s)
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return i, nil
		}
	}
	return -1, authErr(k, ErrBadSignature, gitlabTokenRefused)
}

// verifyStandardWebhook checks a Standard Webhooks signature, as GitLab
// sends when the webhook has a signing token: HMAC-SHA256 over
// "{webhook-id}.{webhook-timestamp}.{body}", base64, as "v1,<sig>" entries
// separated by spaces. The keys are the signing keys among secrets (the
// base64 after "whsec_"); the other secrets are tokens, never keys.
func verifyStandardWebhook(k Kind, h http.Header, body []byte, secrets [][]byte, now time.Time) (int, error) {
	id, ts, sigs := header(h, hWebhookID), header(h, hWebhookTS), header(h, hWebhookSig)
	if sigs == "" || id == "" || ts == "" {
		return -1, authErr(k, ErrMissingSignature, "a signed delivery needs webhook-id, webhook-timestamp and webhook-signature")
	}
	// The signed id is the delivery id (DeliveryID): one that could not
	// serve as such is refused, or the delivery would have none to be
	// told from its replays by.
	if !printableASCII(id, MaxDeliveryIDLen) {
		return -1, authErr(k, ErrBadSignature, fmt.Sprintf("webhook-id is not printable ASCII of at most %d bytes", MaxDeliveryIDLen))
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(ts) > 12 {
		return -1, authErr(k, ErrBadSignature, "webhook-timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return -1, authErr(k, ErrStaleTimestamp, fmt.Sprintf("webhook-timestamp is %s from now (at most %s allowed)", d.Round(time.Second), SignatureTolerance))
	}
	// Collect the v1 entries once; other versions (v1a, asymmetric) are
	// ignored as the specification asks.
	var entries [maxSignatures]string
	n := 0
	for f := range strings.FieldsSeq(sigs) {
		if v, ok := strings.CutPrefix(f, "v1,"); ok {
			if n == maxSignatures {
				return -1, authErr(k, ErrBadSignature, fmt.Sprintf("webhook-signature lists more than %d signatures", maxSignatures))
			}
			entries[n] = v
			n++
		}
	}
	if n == 0 {
		return -1, authErr(k, ErrBadSignature, "webhook-signature holds no v1 signature")
	}

	var keyBuf [64]byte
	var sum [sha256.Size]byte
	var enc [44]byte // base64 of 32 bytes
	for i, s := range secrets {
		key, ok := signingKey(s, keyBuf[:])
		if !ok {
			continue
		}
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
		m.Write(body)
		base64.StdEncoding.Encode(enc[:], m.Sum(sum[:0]))
		for _, e := range entries[:n] {
			if hmac.Equal([]byte(e), enc[:]) {
				return i, nil
			}
		}
	}
	// Without a count: how many secrets are keys is how GitLab is configured.
	return -1, authErr(k, ErrBadSignature, "webhook-signature matches none of the configured signing keys")
}

// IsSigningKey reports whether a GitLab secret is a Standard Webhooks
// signing key ("whsec_" and the base64 of the key) rather than a token
// compared with X-Gitlab-Token.
func IsSigningKey(secret []byte) bool { return bytes.HasPrefix(secret, []byte("whsec_")) }

func hasSigningKey(secrets [][]byte) bool {
	return slices.ContainsFunc(secrets, IsSigningKey)
}

// signingKey derives the HMAC key from a signing key: the decoded base64
// after "whsec_". A secret without that prefix is a token, not a key. buf
// holds the decoded key when it fits, to spare an allocation.
func signingKey(secret, buf []byte) ([]byte, bool) {
	b64, ok := bytes.CutPrefix(secret, []byte("whsec_"))
	if !ok {
		return nil, false
	}
	if base64.StdEncoding.DecodedLen(len(b64)) > len(buf) {
		buf = make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	}
	n, err := base64.StdEncoding.Decode(buf, b64)
	if err != nil || n == 0 {
		return nil, false
	}
	return buf[:n], true
}
