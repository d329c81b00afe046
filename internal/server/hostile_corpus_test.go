package server

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/store"
)

// The hostile corpus: each forge's ways of signing, the requests built
// from them, and the ways a request reaches the server (whole, raw bytes,
// streamed).

// hxReq is one request of the corpus. Most are sent with net/http; raw
// requests are written to the connection byte for byte (what net/http
// refuses to send); stream bodies are generated while they are sent.
type hxReq struct {
	method, path string
	header       [][2]string
	body         []byte
	// stream, when positive, sends that many bytes of JSON-looking body
	// instead of body; chunked sends it without a Content-Length.
	stream  int64
	chunked bool
	raw     []byte
}

// hxCase is one hostile request and what the contract promises for it.
type hxCase struct {
	name     string
	category string
	req      hxReq
	// status is the documented answer; 0 means the server closes the
	// connection without answering (a client too slow to send its request).
	status int
	// outcome is the answer's outcome, when fraisier (and not net/http
	// before it) answers.
	outcome store.Outcome
	// authentic: signed with a configured secret. Only these may be
	// recorded with their delivery id, or queue anything.
	authentic bool
	duplicate bool
}

// hxForge describes one forge's documented push and how to sign it.
type hxForge struct {
	kind    string
	file    string
	eventH  string
	event   string
	idH     string
	secret  string
	refJSON string // the pushed branch as it appears in the payload
	refOf   func(branch string) string
	repo    string // the repository name as it appears in the payload
	sha     string
	sign    func(h [][2]string, secret string, body []byte) [][2]string
	// repoStatus answers a signed push whose repository name is hostile.
	repoStatus int
}

func outcomeOf(status int) store.Outcome {
	switch status {
	case 202:
		return "accepted"
	case 200:
		return "ignored"
	}
	return "rejected"
}

func hxHMACHeader(name, prefix string) func([][2]string, string, []byte) [][2]string {
	return func(h [][2]string, secret string, body []byte) [][2]string {
		return append(h, [2]string{name, prefix + hexHMAC(secret, body)})
	}
}

func hxJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

var hxForges = []hxForge{
	{kind: "github", file: "github_push", eventH: "X-GitHub-Event", event: "push", idH: "X-GitHub-Delivery", secret: "hx-gh-secret-7f3a",
		refJSON: `"refs/heads/main"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"Codertocat/Hello-World"`, sha: "0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C", sign: hxHMACHeader("X-Hub-Signature-256", "sha256="), repoStatus: 202},
	// GitLab signs (Standard Webhooks): with its signing key configured,
	// the token hx-gl-token-91c2 is refused, and the corpus sends it as
	// one more forgery.
	{kind: "gitlab", file: "gitlab_push", eventH: "X-Gitlab-Event", event: "Push Hook", idH: "X-Gitlab-Event-UUID", secret: hxWhsecKey,
		refJSON: `"refs/heads/master"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"mike/diaspora"`, sha: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		sign: hxStandardWebhook, repoStatus: 202},
	{kind: "gitea", file: "gitea_push", eventH: "X-Gitea-Event", event: "push", idH: "X-Gitea-Delivery", secret: "hx-gitea-secret-0b4d",
		refJSON: `"refs/heads/develop"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"gitea/webhooks"`, sha: "bffeb74224043ba2feb48d137756c8a9331c449a", sign: hxHMACHeader("X-Gitea-Signature", ""), repoStatus: 202},
	{kind: "bitbucket", file: "bitbucket_push", eventH: "X-Event-Key", event: "repo:push", idH: "X-Request-UUID", secret: "hx-bb-secret-5e6f",
		refJSON: `"name": "main"`, refOf: func(b string) string { return `"name": ` + hxJSON(b) },
		repo: `"team_name/project-x"`, sha: "709d658dc5b6d6afcd46049c2f332ee3f515a67d", sign: hxHMACHeader("X-Hub-Signature", "sha256="), repoStatus: 200},
	{kind: "bitbucket_server", file: "bitbucket_server_refs_changed", eventH: "X-Event-Key", event: "repo:refs_changed", idH: "X-Request-Id", secret: "hx-bbs-secret-a8d1",
		refJSON: `"refs/heads/master"`, refOf: func(b string) string { return hxJSON("refs/heads/" + b) },
		repo: `"slug": "repository"`, sha: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc", sign: hxHMACHeader("X-Hub-Signature", "sha256="), repoStatus: 400},
}

// hxStandardWebhook signs as GitLab does with a signing key: the
// delivery's X-Gitlab-Event-UUID (when it has one) is also its webhook-id.
func hxStandardWebhook(h [][2]string, key string, body []byte) [][2]string {
	did := "hx-gitlab-without-id"
	for _, kv := range h {
		if kv[0] == "X-Gitlab-Event-UUID" {
			did = kv[1]
		}
	}
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(m, "%s.%s.", did, stamp)
	m.Write(body)
	return append(h, [2]string{"Webhook-Id", did}, [2]string{"Webhook-Timestamp", stamp},
		[2]string{"Webhook-Signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))})
}

// hxCorpus generates the corpus. marker names the files an injection
// would create; round keeps delivery ids unique when the corpus is sent
// several times to one server.
func hxCorpus(t *testing.T, marker string, round int) []hxCase {
	t.Helper()
	var cases []hxCase
	add := func(c hxCase) { cases = append(cases, c) }
	id := func(f hxForge, what string) string { return fmt.Sprintf("hx-%d-%s-%s", round, f.kind, what) }
	evil := "/tmp/" + marker
	hostile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "hostile", name))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.ReplaceAll(b, []byte("MARKER"), []byte(marker))
	}

	for _, f := range hxForges {
		base := payload(t, f.file)
		// Each round pushes a commit of its own: another round's pushes
		// under their own delivery ids would be replays.
		sha := f.sha
		if round > 0 {
			sha = fmt.Sprintf("%040x", round)
			base = bytes.ReplaceAll(base, []byte(f.sha), []byte(sha))
		}
		if !bytes.Contains(base, []byte(f.refJSON)) || !bytes.Contains(base, []byte(f.repo)) {
			t.Fatalf("%s: payload lacks %s or %s", f.file, f.refJSON, f.repo)
		}
		path := "/webhook/" + f.kind
		hdr := func(did string) [][2]string {
			h := [][2]string{{"Content-Type", "application/json"}, {f.eventH, f.event}}
			if did != "" {
				h = append(h, [2]string{f.idH, did})
			}
			return h
		}
		signed := func(did string, body []byte) hxReq {
			return hxReq{method: "POST", path: path, header: f.sign(hdr(did), f.secret, body), body: body}
		}
		withRef := func(branch string) []byte {
			return bytes.ReplaceAll(base, []byte(f.refJSON), []byte(f.refOf(branch)))
		}
		withRepo := func(name string) []byte {
			repl := hxJSON(name)
			if strings.HasPrefix(f.repo, `"slug"`) {
				repl = `"slug": ` + hxJSON(name)
			}
			return bytes.ReplaceAll(base, []byte(f.repo), []byte(repl))
		}
		cat := func(c string) string { return c }

		// Unauthenticated: 401, recorded rejected without the delivery id.
		unauth := func(name, category string, req hxReq) {
			add(hxCase{name: f.kind + ": " + name, category: category, req: req, status: 401, outcome: "rejected"})
		}
		unauth("missing signature", cat("missing signature"), hxReq{method: "POST", path: path, header: hdr(id(f, "nosig")), body: base})
		unauth("wrong secret", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "wrong")), "not-the-secret", base), body: base})
		unauth("another forge's secret", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "cross")), "hx-api-token-3c9e", base), body: base})
		unauth("empty secret", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "emptysecret")), "", base), body: base})
		unauth("secret with a trailing escaped newline", "bad signature", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "nl")), f.secret+`\n`, base), body: base})
		if f.kind != "gitlab" {
			// HMAC forges: the signature binds the body.
			unauth("signature of another body", "signature of another body", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "other")), f.secret, []byte("{}")), body: base})
			tampered := withRef("$(touch " + evil + ")")
			unauth("signature of the body before tampering", "signature of another body", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "tamper")), f.secret, base), body: tampered})
			appended := append(append([]byte{}, base...), ' ')
			unauth("signature of the body, one byte appended", "signature of another body", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "append")), f.secret, base), body: appended})
			name, prefix := hxSigHeader(f)
			good := prefix + hexHMAC(f.secret, base)
			for _, v := range []struct{ what, sig string }{
				{"empty signature", ""}, {"truncated signature", good[:len(good)/2]}, {"signature not hex", prefix + strings.Repeat("zz", 32)},
				{"signature with a shell payload", prefix + "$(touch " + evil + ")"}, {"signature twice as long", good + hexHMAC(f.secret, base)},
				{"sha1 prefix", "sha1=" + hexHMAC(f.secret, base)}, {"upper-case prefix", strings.ToUpper(prefix) + hexHMAC(f.secret, base)[:10]},
			} {
				unauth(v.what, "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "sig-"+strconv.Itoa(len(cases)))), [2]string{name, v.sig}), body: base})
			}
		} else {
			unauth("token with a shell payload", "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "shtoken")), [2]string{"X-Gitlab-Token", "$(touch " + evil + ")"}), body: base})
			unauth("token prefix", "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "prefix")), [2]string{"X-Gitlab-Token", f.secret[:5]}), body: base})
			unauth("the signing token sent as the token", "bad signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "whsec-as-token")), [2]string{"X-Gitlab-Token", "whsec_"}), body: base})
			unauth("the configured token, while a signing key is configured", "missing signature", hxReq{method: "POST", path: path, header: append(hdr(id(f, "token")), [2]string{"X-Gitlab-Token", "hx-gl-token-91c2"}), body: base})
			now := time.Now()
			sw := func(what string, key string, ts time.Time, signed []byte, body []byte) {
				did := id(f, "sw-"+what)
				h := hdr("")
				stamp := strconv.FormatInt(ts.Unix(), 10)
				m := hmac.New(sha256.New, []byte(key))
				fmt.Fprintf(m, "%s.%s.", did, stamp)
				m.Write(signed)
				h = append(h, [2]string{"Webhook-Id", did}, [2]string{"Webhook-Timestamp", stamp},
					[2]string{"Webhook-Signature", "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))})
				unauth("standard webhooks: "+what, "bad signature", hxReq{method: "POST", path: path, header: h, body: body})
			}
			sw("stale timestamp (replay after 10 minutes)", hxWhsecKey, now.Add(-10*time.Minute), base, base)
			sw("timestamp from the future", hxWhsecKey, now.Add(10*time.Minute), base, base)
			sw("signature of another body", hxWhsecKey, now, []byte("{}"), base)
			sw("wrong key", "not-the-key", now, base, base)
		}
		unauth("malformed JSON", "malformed JSON", hxReq{method: "POST", path: path, header: hdr(id(f, "malformed-unsigned")), body: []byte(`{"ref": `)})
		unauth("deeply nested JSON", "deeply nested JSON", hxReq{method: "POST", path: path, header: hdr(id(f, "nested-unsigned")), body: hostile("nested.json")})
		unauth("shell metacharacters in the ref", "shell metacharacters", hxReq{method: "POST", path: path, header: hdr(id(f, "meta-unsigned")), body: withRef("$(touch " + evil + ")")})
		unauth("path traversal in the repository", "path traversal", hxReq{method: "POST", path: path, header: hdr(id(f, "trav-unsigned")), body: withRepo("../../../../tmp/" + marker)})
		unauth("NUL bytes in the body", "NUL bytes", hxReq{method: "POST", path: path, header: hdr(id(f, "nul-unsigned")), body: append([]byte{0, 0, 0}, base...)})
		// The delivery id of a real delivery that has not arrived yet: the
		// forgery must not take it (checked when the real one follows).
		unauth("forged delivery with a future real delivery's id", "replayed delivery", hxReq{method: "POST", path: path, header: f.sign(hdr(id(f, "real")), "forged", base), body: base})

		// Authenticated and malformed: 400, recorded rejected.
		bad := func(name, category string, did string, body []byte) {
			add(hxCase{name: f.kind + ": signed " + name, category: category, req: signed(did, body), status: 400, outcome: "rejected", authentic: true})
		}
		bad("malformed JSON", "malformed JSON", id(f, "malformed"), []byte(`{"ref": `))
		bad("JSON array", "malformed JSON", id(f, "array"), []byte(`[1, 2, 3]`))
		bad("JSON null", "malformed JSON", id(f, "null"), []byte(`null`))
		bad("empty body", "malformed JSON", id(f, "empty"), nil)
		bad("trailing garbage after the JSON", "malformed JSON", id(f, "trailing"), append(append([]byte{}, base...), []byte(`{"ref": "x"}`)...))
		bad("deeply nested JSON", "deeply nested JSON", id(f, "nested"), hostile("nested.json"))
		bad("deeply nested JSON inside the payload", "deeply nested JSON", id(f, "nested-inner"),
			bytes.Replace(base, []byte("{"), []byte(`{"x": `+strings.Repeat("[", 200)+strings.Repeat("]", 200)+`, `), 1))
		for i, meta := range []string{"$(touch " + evil + ")", "`touch " + evil + "`", "main;touch " + evil, "main|touch " + evil, "main&&touch " + evil,
			"main>" + evil, "main<" + evil, "main'x", `main"x`, "main\ntouch " + evil, "--upload-pack=touch " + evil, "-x"} {
			bad(fmt.Sprintf("shell metacharacters in the ref (%d)", i), "shell metacharacters", id(f, "meta-"+strconv.Itoa(i)), withRef(meta))
		}
		for i, trav := range []string{"../../../../tmp/" + marker, "main/../../" + marker, "..", "main/.hidden"} {
			bad(fmt.Sprintf("path traversal in the ref (%d)", i), "path traversal", id(f, "trav-ref-"+strconv.Itoa(i)), withRef(trav))
		}
		bad("NUL byte in the ref", "NUL bytes", id(f, "nul-ref"), withRef("main\x00"+evil))
		bad("NUL bytes in the body", "NUL bytes", id(f, "nul-body"), append([]byte{0}, base...))
		bad("invalid UTF-8 in the ref", "invalid UTF-8", id(f, "utf8-ref"),
			bytes.ReplaceAll(base, []byte(f.refJSON), []byte(strings.Replace(f.refOf("mainXX"), "XX", "\xff\xfe", 1))))
		bad("invalid UTF-8 in the repository", "invalid UTF-8", id(f, "utf8-repo"), bytes.ReplaceAll(base, []byte(f.repo),
			[]byte(strings.Replace(f.repo, `"`, "\"\xc3\x28", 2)[:len(f.repo)+2]+`"`)))
		bad("SHA with a shell payload", "shell metacharacters", id(f, "sha"), bytes.ReplaceAll(base, []byte(sha), []byte("$(touch "+evil+")")))
		bad("SHA that looks like an option", "shell metacharacters", id(f, "sha-opt"), bytes.ReplaceAll(base, []byte(sha), []byte("--output="+evil)))

		// Authenticated, harmless to deploy: repository names that route
		// nowhere are ignored (200), names that are not names are refused.
		// Where the payload also carries clone URLs (GitHub, GitLab, Gitea)
		// those still route it: the hostile name is only recorded, and what
		// is cloned is the configuration's git_repo, never the payload's.
		// Bitbucket Cloud has only the name, which routes nowhere; Data
		// Center refuses a slug holding /.
		for i, repo := range []string{"../../../../tmp/" + marker, "acme/hello;touch " + evil, "acme/$(touch " + evil + ")", "acme/`id`"} {
			add(hxCase{name: fmt.Sprintf("%s: signed hostile repository name (%d)", f.kind, i), category: "path traversal",
				req: signed(id(f, "repo-"+strconv.Itoa(i)), withRepo(repo)), status: f.repoStatus, outcome: outcomeOf(f.repoStatus), authentic: true})
		}
		add(hxCase{name: f.kind + ": signed repository name with a NUL byte", category: "NUL bytes",
			req: signed(id(f, "repo-nul"), withRepo("acme/hello\x00")), status: 400, outcome: "rejected", authentic: true})

		// Unknown events, signed: 200 ignored.
		for i, ev := range []string{"deployment_status", "push; touch " + evil, "../../etc/passwd"} {
			h := f.sign([][2]string{{"Content-Type", "application/json"}, {f.eventH, ev}, {f.idH, id(f, "event-"+strconv.Itoa(i))}}, f.secret, base)
			add(hxCase{name: fmt.Sprintf("%s: signed unknown event %q", f.kind, ev), category: "unknown event",
				req: hxReq{method: "POST", path: path, header: h, body: base}, status: 200, outcome: "ignored", authentic: true})
		}

		// Replays: the real delivery (after its forgery above), then the
		// same bytes again: the first answer, duplicate, nothing new queued.
		add(hxCase{name: f.kind + ": the real delivery after a forgery took its id", category: "replayed delivery",
			req: signed(id(f, "real"), base), status: 202, outcome: "accepted", authentic: true})
		for i := range 2 {
			add(hxCase{name: fmt.Sprintf("%s: replayed delivery (%d)", f.kind, i+1), category: "replayed delivery",
				req: signed(id(f, "real"), base), status: 202, outcome: "accepted", authentic: true, duplicate: true})
		}
		// The same push under a new delivery id: recorded ignored, nothing
		// queued.
		add(hxCase{name: f.kind + ": the real delivery's push under a new delivery id", category: "replayed under a new id",
			req: signed(id(f, "real-new-id"), base), status: 200, outcome: "ignored", authentic: true})

		// Refused before authentication: content type, size.
		add(hxCase{name: f.kind + ": text/plain", category: "content type", req: hxReq{method: "POST", path: path,
			header: f.sign([][2]string{{"Content-Type", "text/plain"}, {f.eventH, f.event}, {f.idH, id(f, "ct")}}, f.secret, base), body: base},
			status: 415, outcome: "rejected"})
		add(hxCase{name: f.kind + ": content type with an injected parameter", category: "header injection", req: hxReq{method: "POST", path: path,
			header: [][2]string{{"Content-Type", "application/json; charset=\"$(touch " + evil + ")\"; x=\"`id`"}, {f.eventH, f.event}}, body: base},
			status: 415, outcome: "rejected"})
		add(hxCase{name: f.kind + ": 30 MB body", category: "30 MB body", req: hxReq{method: "POST", path: path,
			header: f.sign(hdr(id(f, "big")), f.secret, nil), stream: 30 << 20}, status: 413, outcome: "rejected"})
		add(hxCase{name: f.kind + ": 30 MB body, chunked", category: "30 MB body", req: hxReq{method: "POST", path: path,
			header: hdr(id(f, "big-chunked")), stream: 30 << 20, chunked: true}, status: 413, outcome: "rejected"})
		add(hxCase{name: f.kind + ": body one byte over the limit", category: "30 MB body", req: hxReq{method: "POST", path: path,
			header: hdr(id(f, "limit")), stream: 1<<20 + 1}, status: 413, outcome: "rejected"})
	}

	// Forge detection and paths: 400, 404, 405; never recorded.
	gh := hxForges[0]
	ghBody := payload(t, gh.file)
	ghSigned := func(did string) [][2]string {
		return gh.sign([][2]string{{"Content-Type", "application/json"}, {"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", did}}, gh.secret, ghBody)
	}
	for _, p := range []string{"/webhook/sourceforge", "/webhook/github%2f..%2f..%2fetc%2fpasswd", "/webhook/..%2f..%2f" + marker,
		"/webhook/%00", "/webhook/github%0d%0aSet-Cookie:%20x=1", "/webhook/" + strings.Repeat("a", 4000)} {
		add(hxCase{name: "unknown forge in the path " + clip(p, 60), category: "path traversal",
			req: hxReq{method: "POST", path: p, header: ghSigned(fmt.Sprintf("hx-%d-path-%d", round, len(cases))), body: ghBody}, status: 404, outcome: "bad_request"})
	}
	add(hxCase{name: "no forge headers", category: "unknown event", req: hxReq{method: "POST", path: "/webhook",
		header: [][2]string{{"Content-Type", "application/json"}}, body: ghBody}, status: 400, outcome: "bad_request"})
	add(hxCase{name: "X-Event-Key without a Bitbucket delivery id", category: "unknown event", req: hxReq{method: "POST", path: "/webhook",
		header: [][2]string{{"Content-Type", "application/json"}, {"X-Event-Key", "repo:something"}}, body: ghBody}, status: 400, outcome: "bad_request"})
	add(hxCase{name: "GET /webhook", category: "unknown event", req: hxReq{method: "GET", path: "/webhook"}, status: 405})
	add(hxCase{name: "PUT /webhook/github", category: "unknown event", req: hxReq{method: "PUT", path: "/webhook/github", header: ghSigned("hx-put"), body: ghBody}, status: 405})
	add(hxCase{name: "API without its token", category: "missing signature", req: hxReq{method: "GET", path: "/api/fraises"}, status: 401})
	add(hxCase{name: "API with a wrong token", category: "bad signature", req: hxReq{method: "GET", path: "/api/deployments",
		header: [][2]string{{"Authorization", "Bearer hx-api-token-3c9"}}}, status: 401})
	add(hxCase{name: "API with a token payload", category: "header injection", req: hxReq{method: "GET", path: "/api/deployments?fraise=../../etc",
		header: [][2]string{{"Authorization", "Bearer $(touch " + evil + ")"}}}, status: 401})

	// Header injection and malformed HTTP, written byte for byte: net/http
	// refuses them before any handler (400, 431), or they are one more
	// header and authentication refuses the request (401).
	rawPost := func(headers string, body []byte) []byte {
		return []byte(fmt.Sprintf("POST /webhook/github HTTP/1.1\r\nHost: fraisier\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			headers, len(body), body))
	}
	sig := "X-Hub-Signature-256: sha256=" + hexHMAC(gh.secret, ghBody) + "\r\n"
	for _, r := range []struct {
		name   string
		raw    []byte
		status int
		auth   bool
	}{
		{"NUL byte in a header value", rawPost("X-GitHub-Event: push\r\nX-GitHub-Delivery: a\x00b\r\n"+sig, ghBody), 400, false},
		{"CR inside a header value", rawPost("X-GitHub-Event: push\rX-Injected: 1\r\n"+sig, ghBody), 400, false},
		// net/http unfolds it into one value (RFC 9112 allows either): the
		// event type "push X-Injected: 1" is unknown, and ignored.
		{"obsolete line folding", rawPost("X-GitHub-Event: push\r\n X-Injected: 1\r\n"+sig, ghBody), 200, true},
		{"header name with a space", rawPost("X-GitHub Event: push\r\n"+sig, ghBody), 400, false},
		{"header without a colon", rawPost("X-GitHub-Event push\r\n"+sig, ghBody), 400, false},
		// net/http reads the chunked body (empty) and drops Content-Length;
		// the smuggled second request is never read (Connection: close).
		{"Content-Length and Transfer-Encoding together (smuggling)", []byte("POST /webhook/github HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nPOST /webhook/github HTTP/1.1\r\n\r\n"), 401, false},
		{"two different Content-Lengths", []byte("POST /webhook/github HTTP/1.1\r\nHost: f\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}x"), 400, false},
		{"64 KB of headers", rawPost("X-GitHub-Event: push\r\nX-Padding: "+strings.Repeat("a", 70<<10)+"\r\n", ghBody), 431, false},
		{"a delivery id with an injected header, unsigned", rawPost("X-GitHub-Event: push\r\nX-GitHub-Delivery: x\r\nSet-Cookie: x=1\r\n", ghBody), 401, false},
		{"an injected second signature header", rawPost("X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=00\r\n"+sig, ghBody), 401, false},
		{"a bare LF line ending", []byte(strings.ReplaceAll(string(rawPost("X-GitHub-Event: push\r\n", ghBody)), "\r\n", "\n")), 401, false},
		{"HTTP/0.9 request line", []byte("POST /webhook/github\r\n\r\n"), 400, false},
		{"request line with a shell payload", []byte("POST /webhook/$(touch%20" + evil + ") HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"), 404, false},
	} {
		var outcome store.Outcome
		if r.status < 300 || r.status == 401 {
			outcome = outcomeOf(r.status)
		}
		add(hxCase{name: "raw: " + r.name, category: "header injection", req: hxReq{raw: r.raw}, status: r.status, outcome: outcome, authentic: r.auth})
	}
	return cases
}

// hasDeliveryHeader reports whether r names a delivery id in a header.
func hasDeliveryHeader(r hxReq) bool {
	for _, h := range r.header {
		switch http.CanonicalHeaderKey(h[0]) {
		case "X-Github-Delivery", "X-Gitlab-Event-Uuid", "X-Gitea-Delivery", "X-Request-Uuid", "X-Request-Id", "Webhook-Id":
			return true
		}
	}
	return false
}

// hxSigHeader is the header an HMAC forge signs in, and its prefix.
func hxSigHeader(f hxForge) (string, string) {
	h := f.sign(nil, "k", nil)
	name, v := h[0][0], h[0][1]
	prefix, _, _ := strings.Cut(v, "=")
	if prefix == v {
		return name, ""
	}
	return name, prefix + "="
}

// hxResult is what one request got.
type hxResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

var hxClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

// jsonStream yields n bytes: a JSON object whose value is one long string.
type jsonStream struct{ n, off int64 }

func (s *jsonStream) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	k := int64(len(p))
	if k > s.n-s.off {
		k = s.n - s.off
	}
	for i := int64(0); i < k; i++ {
		switch pos := s.off + i; {
		case pos < 6:
			p[i] = `{"a":"`[pos]
		case pos >= s.n-2:
			p[i] = `"}`[pos-(s.n-2)]
		default:
			p[i] = 'x'
		}
	}
	s.off += k
	return int(k), nil
}

func (s *hxServer) do(r hxReq) hxResult {
	if r.raw != nil {
		return s.raw(r.raw)
	}
	if r.stream > 0 {
		return s.streamed(r)
	}
	req, err := http.NewRequest(r.method, s.base+r.path, bytes.NewReader(r.body))
	if err != nil {
		return hxResult{err: err}
	}
	if strings.Contains(r.path, "%") {
		req.URL.RawPath = r.path // keep the escapes as sent
		req.URL.Opaque = r.path
	}
	for _, h := range r.header {
		req.Header.Add(h[0], h[1])
	}
	resp, err := hxClient.Do(req)
	if err != nil {
		return hxResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return hxResult{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// raw writes b to a new connection and reads one answer, or notes that
// the connection closed without one (status 0).
func (s *hxServer) raw(b []byte) hxResult {
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return hxResult{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go c.Write(b)
	return readResult(c)
}

// streamed sends a generated body of r.stream bytes on its own connection,
// reading the answer while it writes: the server answers 413 long before
// the body ends.
func (s *hxServer) streamed(r hxReq) hxResult {
	c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return hxResult{err: err}
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: fraisier\r\n", r.method, r.path)
	for _, h := range r.header {
		fmt.Fprintf(&head, "%s: %s\r\n", h[0], h[1])
	}
	if r.chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", r.stream)
	}
	go func() {
		w := bufio.NewWriterSize(c, 64<<10)
		w.Write(head.Bytes())
		src := &jsonStream{n: r.stream}
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				var werr error
				if r.chunked {
					_, werr = fmt.Fprintf(w, "%x\r\n%s\r\n", n, buf[:n])
				} else {
					_, werr = w.Write(buf[:n])
				}
				if werr != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
		if r.chunked {
			w.WriteString("0\r\n\r\n")
		}
		w.Flush()
	}()
	return readResult(c)
}

// readResult reads the server's answer on c.
func readResult(c net.Conn) hxResult {
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return hxResult{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return hxResult{status: resp.StatusCode, header: resp.Header, body: body}
}
