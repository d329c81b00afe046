package forge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Vectors computed outside Go (Python's hmac) over the testdata files, so
// that the tests do not merely repeat the implementation.
const (
	ghDocSecret = "It's a Secret to Everybody"
	ghDocBody   = "Hello, World!"
	ghDocSig    = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	ghFileSig    = "sha256=306684de2cadc1699ef4054f22b31ff6673d959672ee51161706339d9fdf3c1f" // github_push.json, "github-secret"
	giteaFileSig = "6a0b2cf9af617c753570dfabfe4454128a5d85fb58ee93cce549375fb520e471"        // gitea_push.json, "gitea-secret"
	bbFileSig    = "sha256=a773d6e57cba2307e39e9538f3ecdd58973041f36e84c200c85db6a88a9e15cb" // bitbucket_push.json, "bitbucket-secret"
	bsFileSig    = "sha256=f03439bb4ad8a5902ee8a694eabd00b2c828e4c86df1d79077e1728273d6c18b" // bitbucket_server_refs_changed.json, "datacenter-secret"

	// The Standard Webhooks specification's example.
	swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTS     = "1614265330"
	swBody   = `{"test": 2432232314}`
	swSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var swTime = time.Unix(1614265330, 0)

func secrets(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, v := range s {
		out[i] = []byte(v)
	}
	return out
}

func with(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func swHeaders(sig string) http.Header {
	return with(gitlabHeaders("Push Hook"), "Webhook-Id", swID, "Webhook-Timestamp", swTS, "Webhook-Signature", sig)
}

func hexMAC(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestAuthenticate(t *testing.T) {
	ghPush := string(readTestdata(t, "github_push.json"))
	giteaPush := string(readTestdata(t, "gitea_push.json"))
	bbPush := string(readTestdata(t, "bitbucket_push.json"))
	bsPush := string(readTestdata(t, "bitbucket_server_refs_changed.json"))
	rawKeySig := func() string { // signed with a secret that has no whsec_ prefix: a token, never a key
		m := hmac.New(sha256.New, []byte("plain-signing-key"))
		m.Write([]byte(swID + "." + swTS + "." + swBody))
		return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}()

	tests := []struct {
		name    string
		kind    Kind
		h       http.Header
		body    string
		secrets [][]byte
		unsig   bool
		now     time.Time
		want    int
		wantErr error
	}{
		// GitHub.
		{"github documented vector", GitHub, hdr("X-Hub-Signature-256", ghDocSig), ghDocBody, secrets(ghDocSecret), false, time.Time{}, 0, nil},
		{"github payload vector", GitHub, with(githubHeaders("push"), "X-Hub-Signature-256", ghFileSig), ghPush, secrets("github-secret"), false, time.Time{}, 0, nil},
		{"github key rotation: second secret matches", GitHub, hdr("X-Hub-Signature-256", ghDocSig), ghDocBody, secrets("the new one", ghDocSecret), false, time.Time{}, 1, nil},
		{"github upper-case hex", GitHub, hdr("X-Hub-Signature-256", "sha256="+strings.ToUpper(ghDocSig[7:])), ghDocBody, secrets(ghDocSecret), false, time.Time{}, 0, nil},
		{"github wrong body", GitHub, hdr("X-Hub-Signature-256", ghDocSig), ghDocBody + " ", secrets(ghDocSecret), false, time.Time{}, -1, ErrBadSignature},
		{"github wrong secret", GitHub, hdr("X-Hub-Signature-256", ghDocSig), ghDocBody, secrets("guess"), false, time.Time{}, -1, ErrBadSignature},
		{"github bad signature not downgraded by allowUnsigned", GitHub, hdr("X-Hub-Signature-256", ghDocSig), ghDocBody, secrets("guess"), true, time.Time{}, -1, ErrBadSignature},
		{"github unsigned refused", GitHub, githubHeaders("push"), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrMissingSignature},
		{"github unsigned allowed", GitHub, githubHeaders("push"), ghDocBody, secrets(ghDocSecret), true, time.Time{}, -1, nil},
		{"github no secrets, unsigned refused", GitHub, githubHeaders("push"), ghDocBody, nil, false, time.Time{}, -1, ErrMissingSignature},
		{"github no secrets, unsigned allowed", GitHub, githubHeaders("push"), ghDocBody, nil, true, time.Time{}, -1, nil},
		{"github no secrets, signed", GitHub, hdr("X-Hub-Signature-256", ghDocSig), ghDocBody, nil, false, time.Time{}, -1, ErrBadSignature},
		{"github empty secret never verifies", GitHub, hdr("X-Hub-Signature-256", "sha256="+hexMAC("", ghDocBody)), ghDocBody, secrets(""), false, time.Time{}, -1, ErrBadSignature},
		{"github SHA-1 header only", GitHub, hdr("X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrMissingSignature},
		{"github SHA-1 in the SHA-256 header", GitHub, hdr("X-Hub-Signature-256", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrBadSignature},
		{"github no prefix", GitHub, hdr("X-Hub-Signature-256", ghDocSig[7:]), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrBadSignature},
		{"github not hex", GitHub, hdr("X-Hub-Signature-256", "sha256="+strings.Repeat("zz", 32)), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrBadSignature},
		{"github short", GitHub, hdr("X-Hub-Signature-256", ghDocSig[:20]), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrBadSignature},
		{"github gets a gitea signature", GitHub, hdr("X-Gitea-Signature", ghDocSig[7:]), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrMissingSignature},
		{"github gets a gitlab token", GitHub, hdr("X-Gitlab-Token", ghDocSecret), ghDocBody, secrets(ghDocSecret), false, time.Time{}, -1, ErrMissingSignature},

		// Gitea and Forgejo.
		{"gitea payload vector", Gitea, with(giteaHeaders("push"), "X-Gitea-Signature", giteaFileSig), giteaPush, secrets("gitea-secret"), false, time.Time{}, 0, nil},
		{"forgejo payload vector", Gitea, with(forgejoHeaders("push"), "X-Forgejo-Signature", giteaFileSig, "X-Gitea-Signature", giteaFileSig), giteaPush, secrets("gitea-secret"), false, time.Time{}, 0, nil},
		{"forgejo bad signature not rescued by gitea header", Gitea, with(forgejoHeaders("push"), "X-Forgejo-Signature", strings.Repeat("0", 64), "X-Gitea-Signature", giteaFileSig), giteaPush, secrets("gitea-secret"), false, time.Time{}, -1, ErrBadSignature},
		{"gitea GitHub-compatible header", Gitea, with(giteaHeaders("push"), "X-Hub-Signature-256", "sha256="+giteaFileSig), giteaPush, secrets("gitea-secret"), false, time.Time{}, 0, nil},
		{"gitea key rotation", Gitea, with(giteaHeaders("push"), "X-Gitea-Signature", giteaFileSig), giteaPush, secrets("old", "gitea-secret"), false, time.Time{}, 1, nil},
		{"gitea prefixed value refused", Gitea, with(giteaHeaders("push"), "X-Gitea-Signature", "sha256="+giteaFileSig), giteaPush, secrets("gitea-secret"), false, time.Time{}, -1, ErrBadSignature},
		{"gitea wrong body", Gitea, with(giteaHeaders("push"), "X-Gitea-Signature", giteaFileSig), giteaPush[1:], secrets("gitea-secret"), false, time.Time{}, -1, ErrBadSignature},
		{"gitea unsigned", Gitea, giteaHeaders("push"), giteaPush, secrets("gitea-secret"), false, time.Time{}, -1, ErrMissingSignature},
		{"gitea unsigned allowed", Gitea, giteaHeaders("push"), giteaPush, nil, true, time.Time{}, -1, nil},

		// Bitbucket Cloud and Data Center.
		{"bitbucket payload vector", Bitbucket, with(bitbucketHeaders("repo:push"), "X-Hub-Signature", bbFileSig), bbPush, secrets("bitbucket-secret"), false, time.Time{}, 0, nil},
		{"bitbucket key rotation", Bitbucket, with(bitbucketHeaders("repo:push"), "X-Hub-Signature", bbFileSig), bbPush, secrets("x", "y", "bitbucket-secret"), false, time.Time{}, 2, nil},
		{"bitbucket SHA-1 refused", Bitbucket, with(bitbucketHeaders("repo:push"), "X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"), bbPush, secrets("bitbucket-secret"), false, time.Time{}, -1, ErrBadSignature},
		{"bitbucket gets GitHub's header", Bitbucket, with(bitbucketHeaders("repo:push"), "X-Hub-Signature-256", bbFileSig), bbPush, secrets("bitbucket-secret"), false, time.Time{}, -1, ErrMissingSignature},
		{"bitbucket unsigned allowed (no secret set on the hook)", Bitbucket, bitbucketHeaders("repo:push"), bbPush, nil, true, time.Time{}, -1, nil},
		{"bitbucket server payload vector", BitbucketServer, with(bitbucketServerHeaders("repo:refs_changed"), "X-Hub-Signature", bsFileSig), bsPush, secrets("datacenter-secret"), false, time.Time{}, 0, nil},
		{"bitbucket server wrong secret", BitbucketServer, with(bitbucketServerHeaders("repo:refs_changed"), "X-Hub-Signature", bsFileSig), bsPush, secrets("bitbucket-secret"), false, time.Time{}, -1, ErrBadSignature},
		{"bitbucket server unsigned", BitbucketServer, bitbucketServerHeaders("repo:refs_changed"), bsPush, secrets("datacenter-secret"), false, time.Time{}, -1, ErrMissingSignature},

		// GitLab secret token.
		{"gitlab token", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", "s3cret-token"), "{}", secrets("s3cret-token"), false, time.Time{}, 0, nil},
		{"gitlab token rotation", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", "s3cret-token"), "{}", secrets("other", "s3cret-token"), false, time.Time{}, 1, nil},
		{"gitlab token wrong", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", "s3cret-tokem"), "{}", secrets("s3cret-token"), false, time.Time{}, -1, ErrBadSignature},
		{"gitlab token prefix of secret", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", "s3cret"), "{}", secrets("s3cret-token"), false, time.Time{}, -1, ErrBadSignature},
		{"gitlab empty token", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", ""), "{}", secrets("s3cret-token"), false, time.Time{}, -1, ErrBadSignature},
		{"gitlab token, no secrets", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", "s3cret-token"), "{}", nil, true, time.Time{}, -1, ErrBadSignature},
		{"gitlab unsigned", GitLab, gitlabHeaders("Push Hook"), "{}", secrets("s3cret-token"), false, time.Time{}, -1, ErrMissingSignature},
		{"gitlab unsigned allowed", GitLab, gitlabHeaders("Push Hook"), "{}", nil, true, time.Time{}, -1, nil},

		// GitLab signing keys and tokens kept apart.
		{"gitlab token refused while a signing key is configured", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", "s3cret-token"), "{}", secrets("s3cret-token", swSecret), false, time.Time{}, -1, ErrBadSignature},
		{"gitlab signing key is not a token", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", swSecret), "{}", secrets(swSecret), false, time.Time{}, -1, ErrBadSignature},
		{"gitlab token while a signing key is configured, unsigned allowed: taken as unsigned", GitLab, with(gitlabHeaders("Push Hook"), "X-Gitlab-Token", "s3cret-token"), "{}", secrets("s3cret-token", swSecret), true, time.Time{}, -1, nil},
		{"gitlab signed alongside a token: the signing key's index", GitLab, swHeaders(swSig), swBody, secrets("s3cret-token", swSecret), false, swTime, 1, nil},
		{"gitlab signed: a token is never a signing key", GitLab, swHeaders(rawKeySig), swBody, secrets("plain-signing-key"), false, swTime, -1, ErrBadSignature},

		// GitLab signed deliveries (Standard Webhooks).
		{"gitlab signed: specification vector", GitLab, swHeaders(swSig), swBody, secrets(swSecret), false, swTime, 0, nil},
		{"gitlab signed: rotation, second secret matches", GitLab, swHeaders(swSig), swBody, secrets("whsec_"+base64.StdEncoding.EncodeToString(make([]byte, 32)), swSecret), false, swTime, 1, nil},
		{"gitlab signed: several signatures, one valid", GitLab, swHeaders("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1a,xyz " + swSig), swBody, secrets(swSecret), false, swTime, 0, nil},
		{"gitlab signed: 4m59s old", GitLab, swHeaders(swSig), swBody, secrets(swSecret), false, swTime.Add(SignatureTolerance - time.Second), 0, nil},
		{"gitlab signed: 4m59s in the future", GitLab, swHeaders(swSig), swBody, secrets(swSecret), false, swTime.Add(-SignatureTolerance + time.Second), 0, nil},
		{"gitlab signed: too old", GitLab, swHeaders(swSig), swBody, secrets(swSecret), false, swTime.Add(SignatureTolerance + time.Second), -1, ErrStaleTimestamp},
		{"gitlab signed: too new", GitLab, swHeaders(swSig), swBody, secrets(swSecret), false, swTime.Add(-SignatureTolerance - time.Second), -1, ErrStaleTimestamp},
		{"gitlab signed: wrong body", GitLab, swHeaders(swSig), swBody + "\n", secrets(swSecret), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: wrong id", GitLab, with(swHeaders(swSig), "Webhook-Id", "msg_other"), swBody, secrets(swSecret), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: wrong secret", GitLab, swHeaders(swSig), swBody, secrets("whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: whsec_ secret not base64", GitLab, swHeaders(swSig), swBody, secrets("whsec_!!!"), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: no v1 signature", GitLab, swHeaders("v2,abc v1a,def"), swBody, secrets(swSecret), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: too many signatures", GitLab, swHeaders(strings.Repeat("v1,AAAA ", maxSignatures) + swSig), swBody, secrets(swSecret), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: no id", GitLab, with(swHeaders(swSig), "Webhook-Id", ""), swBody, secrets(swSecret), false, swTime, -1, ErrMissingSignature},
		{"gitlab signed: no timestamp", GitLab, with(swHeaders(swSig), "Webhook-Timestamp", ""), swBody, secrets(swSecret), false, swTime, -1, ErrMissingSignature},
		{"gitlab signed: timestamp not a number", GitLab, with(swHeaders(swSig), "Webhook-Timestamp", "2021-02-25"), swBody, secrets(swSecret), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: timestamp overflow", GitLab, with(swHeaders(swSig), "Webhook-Timestamp", "99999999999999999999"), swBody, secrets(swSecret), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: bad signature not rescued by a good token", GitLab, with(swHeaders("v1,AAAA"), "X-Gitlab-Token", swSecret), swBody, secrets(swSecret), false, swTime, -1, ErrBadSignature},
		{"gitlab signed: allowUnsigned does not skip the check", GitLab, swHeaders("v1,AAAA"), swBody, secrets(swSecret), true, swTime, -1, ErrBadSignature},
		{"gitlab signed: no secrets", GitLab, swHeaders(swSig), swBody, nil, true, swTime, -1, ErrBadSignature},

		{"unknown forge", "svn", hdr("X-Hub-Signature-256", ghDocSig), ghDocBody, secrets(ghDocSecret), true, time.Time{}, -1, ErrMissingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Authenticate(tt.kind, tt.h, []byte(tt.body), tt.secrets, tt.unsig, tt.now)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Authenticate = %d, %v; want %d, %v", got, err, tt.want, tt.wantErr)
			}
			if err == nil {
				return
			}
			var ae *AuthError
			if !errors.As(err, &ae) || ae.Kind != tt.kind || ae.Reason == "" {
				t.Fatalf("error %#v is not an *AuthError for %s with a reason", err, tt.kind)
			}
			// The message may be logged: it must hold no secret and no MAC
			// that the delivery did not already carry in the clear.
			msg := err.Error()
			for _, s := range tt.secrets {
				if len(s) > 3 && strings.Contains(msg, string(s)) {
					t.Errorf("error %q holds a secret", msg)
				}
				if len(s) > 0 {
					if mac := hexMAC(string(s), tt.body); strings.Contains(msg, mac) {
						t.Errorf("error %q holds a computed MAC", msg)
					}
				}
			}
		})
	}
}

func TestAuthErrorMessages(t *testing.T) {
	_, err := Authenticate(GitHub, hdr("X-Hub-Signature", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"), []byte(ghDocBody), secrets(ghDocSecret), false, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "SHA-1") {
		t.Errorf("a SHA-1-only delivery should say SHA-1 is refused: %v", err)
	}
	_, err = Authenticate(GitHub, hdr("X-Gitlab-Token", "t"), nil, secrets("t"), false, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "X-Gitlab-Token is present") {
		t.Errorf("a delivery with another forge's header should say so: %v", err)
	}
	_, err = Authenticate(GitLab, swHeaders(swSig), []byte(swBody), secrets(swSecret), false, swTime.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), "1h0m0s") {
		t.Errorf("a stale delivery should say how stale: %v", err)
	}
}
