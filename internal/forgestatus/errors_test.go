package forgestatus

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
)

// repoOf is a repository name each forge accepts.
func repoOf(k forge.Kind) string {
	switch k {
	case forge.GitLab:
		return "acme/backend/api"
	case forge.BitbucketServer:
		return "PROJ/api"
	}
	return "acme/api"
}

// TestErrorAnswers: each forge's error answers become the right typed
// error, with the forge's message and the wait it asked for.
func TestErrorAnswers(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		answer    answer
		retryable bool
		after     time.Duration
		message   string
	}{
		{"401", answer{status: 401, body: `{"message":"Bad credentials"}`}, false, 0, "Bad credentials"},
		{"404", answer{status: 404, body: `{"message":"404 Project Not Found"}`}, false, 0, "404 Project Not Found"},
		{"422", answer{status: 422, body: `{"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","message":"This SHA and context has reached the maximum number of statuses."}]}`},
			false, 0, "Validation Failed; This SHA and context has reached the maximum number of statuses."},
		{"400 gitlab field errors", answer{status: 400, body: `{"message":{"state":["is invalid"]}}`}, false, 0, `{"state":["is invalid"]}`},
		{"bitbucket cloud error object", answer{status: 400, body: `{"type":"error","error":{"message":"key: Ensure this value has at most 40 characters"}}`},
			false, 0, "key: Ensure this value has at most 40 characters"},
		{"bitbucket data center errors", answer{status: 400, body: `{"errors":[{"context":null,"message":"Invalid build status","exceptionName":"x"}]}`},
			false, 0, "Invalid build status"},
		{"500", answer{status: 500, body: `<html>oops</html>`}, true, 0, "<html>oops</html>"},
		{"503 retry-after seconds", answer{status: 503, header: map[string]string{"Retry-After": "30"}, body: `{}`}, true, 30 * time.Second, ""},
		{"429 retry-after seconds", answer{status: 429, header: map[string]string{"Retry-After": "120"}, body: `{"message":"slow down"}`}, true, 2 * time.Minute, "slow down"},
		{"429 retry-after date", answer{status: 429, header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, body: `{}`}, true, 90 * time.Second, ""},
		{"429 retry-after in the past", answer{status: 429, header: map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}}, true, 0, ""},
		{"429 retry-after far away", answer{status: 429, header: map[string]string{"Retry-After": "99999999"}}, true, maxRetryAfter, ""},
		{"403 secondary rate limit", answer{status: 403, header: map[string]string{"Retry-After": "60"}, body: `{"message":"You have exceeded a secondary rate limit."}`}, true, time.Minute, "secondary rate limit"},
	}
	for _, k := range forge.Kinds() {
		for _, tc := range cases {
			t.Run(string(k)+"/"+tc.name, func(t *testing.T) {
				f := newFakeForge(t, tc.answer)
				r := report(f, k, repoOf(k), Succeeded)
				r.Via = ViaCommitStatus // GitHub: one request, no fallback
				_, err := testClient(now).Send(context.Background(), r)
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Send = %v, want an *Error", err)
				}
				if e.Status != tc.answer.status || e.Retryable != tc.retryable || e.RetryAfter != tc.after {
					t.Errorf("got status %d retryable %v after %v, want %d %v %v (%v)", e.Status, e.Retryable, e.RetryAfter, tc.answer.status, tc.retryable, tc.after, err)
				}
				if !strings.Contains(e.Message, tc.message) {
					t.Errorf("message %q does not hold %q", e.Message, tc.message)
				}
				if errors.Is(err, ErrRetryable) != tc.retryable || errors.Is(err, ErrPermanent) == tc.retryable {
					t.Errorf("errors.Is disagrees with Retryable: %v", err)
				}
			})
		}
	}
}

// TestTokenNeverInError: a forge that echoes the request's credentials in
// its error message (and a message longer than the cap) never puts the
// token into the error, in any of the forms it was sent.
func TestTokenNeverInError(t *testing.T) {
	tokens := []string{testToken, "jdoe:app-password-0123456789"}
	for _, k := range forge.Kinds() {
		for _, token := range tokens {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				echo := strings.Repeat("x", MaxMessage-20) + " " + r.Header.Get("Authorization") + r.Header.Get("Private-Token")
				b, _ := json.Marshal(map[string]string{"message": "refused " + echo + " and " + token})
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write(b)
			}))
			r := Report{Forge: k, APIURL: srv.URL, Token: token, Repository: repoOf(k), SHA: testSHA, Environment: "prod", State: Running}
			_, err := testClient(time.Now()).Send(context.Background(), r)
			srv.Close()
			if err == nil {
				t.Fatalf("%s: no error", k)
			}
			for _, part := range append(secretParts(token), "app-password") {
				if strings.Contains(err.Error(), part) || strings.Contains(r.String(), part) {
					t.Errorf("%s: the error or the report's string holds the token: %v", k, err)
				}
			}
			if n := len([]rune(err.(*Error).Message)); n > MaxMessage {
				t.Errorf("%s: message of %d characters, cap %d", k, n, MaxMessage)
			}
		}
	}
}

// TestNetworkErrorIsRetryable: no answer at all is retried later.
func TestNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	r := Report{Forge: forge.Gitea, APIURL: url, Token: testToken, Repository: "acme/api", SHA: testSHA, Environment: "prod", State: Running}
	_, err := testClient(time.Now()).Send(context.Background(), r)
	if retry, _ := Retry(err); !retry || !errors.Is(err, ErrRetryable) {
		t.Fatalf("Send to a closed port = %v, want a retryable error", err)
	}
}

// TestRedirectIsNotFollowed: a redirect would carry the token's header to
// another address; it is refused with the address to set instead.
func TestRedirectIsNotFollowed(t *testing.T) {
	other := newFakeForge(t)
	f := newFakeForge(t, answer{status: 307, header: map[string]string{"Location": other.srv.URL + "/api/v4/x"}})
	_, err := testClient(time.Now()).Send(context.Background(), report(f, forge.GitLab, "acme/api", Running))
	if err == nil || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "api_url") {
		t.Fatalf("Send = %v, want a permanent error naming api_url", err)
	}
	if n := len(other.requests()); n != 0 {
		t.Fatalf("the redirect was followed (%d requests)", n)
	}
}

// TestReportChecks: a report that cannot be sent fails before any request,
// permanently, saying why.
func TestReportChecks(t *testing.T) {
	f := newFakeForge(t)
	ok := report(f, forge.GitHub, "acme/api", Running)
	cases := []struct {
		name string
		edit func(*Report)
		want string
	}{
		{"unknown forge", func(r *Report) { r.Forge = "sourcehut" }, "unknown forge"},
		{"unknown state", func(r *Report) { r.State = "exploded" }, "unknown state"},
		{"short sha", func(r *Report) { r.SHA = "0123456" }, "not a commit SHA"},
		{"no environment", func(r *Report) { r.Environment = "" }, "environment"},
		{"control character in environment", func(r *Report) { r.Environment = "prod\n" }, "environment"},
		{"no token", func(r *Report) { r.Token = "" }, "git.github.status.token"},
		{"traversal", func(r *Report) { r.Repository = "../admin" }, "not a name"},
		{"three segments", func(r *Report) { r.Repository = "a/b/c" }, "not owner/name"},
		{"gitea without api_url", func(r *Report) { r.Forge, r.APIURL = forge.Gitea, "" }, "api_url"},
		{"data center without api_url", func(r *Report) { r.Forge, r.APIURL, r.Repository = forge.BitbucketServer, "", "P/r" }, "api_url"},
		{"api_url with a password", func(r *Report) { r.APIURL = "https://u:p@example.com" }, "user or password"},
		{"api_url not http", func(r *Report) { r.APIURL = "file:///etc/passwd" }, "https://"},
	}
	for _, tc := range cases {
		r := ok
		tc.edit(&r)
		_, err := testClient(time.Now()).Send(context.Background(), r)
		if err == nil || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Send = %v, want a permanent error saying %q", tc.name, err, tc.want)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests for reports that cannot be sent", n)
	}
}

// FuzzScrub: whatever a forge answers, the message kept never holds the
// token or, for user:secret, the secret.
func FuzzScrub(f *testing.F) {
	const token = "jdoe:app-password-0123456789"
	for _, s := range []string{"", token, "x" + token + "y", "jdoe:app-pass\x00word-0123456789", strings.Repeat("é", 299) + token} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		got := scrub(msg, token)
		for _, part := range secretParts(token) {
			if strings.Contains(got, part) {
				t.Fatalf("scrub(%q) = %q holds %q", msg, got, part)
			}
		}
		if n := len([]rune(got)); n > MaxMessage {
			t.Fatalf("scrub kept %d characters", n)
		}
	})
}
