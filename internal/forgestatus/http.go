package forgestatus

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBody bounds how much of an answer is read.
const maxBody = 256 << 10

// call is one request of a report.
type call struct {
	op     string
	method string
	url    string
	body   any // marshalled as JSON when not nil
	out    any // the answer's JSON is decoded into it when not nil
}

// do makes one request with the forge's headers and turns anything but a
// 2xx answer into an *Error.
func (c *Client) do(ctx context.Context, r Report, cl call) error {
	fail := func(status int, msg string) *Error {
		return &Error{Forge: r.Forge, Op: cl.op, Status: status, Message: scrub(msg, r.Token)}
	}
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fail(0, "encode request: "+err.Error())
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, body)
	if err != nil {
		return fail(0, "build request: "+err.Error())
	}
	c.setHeaders(req, r)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		e := fail(0, err.Error())
		e.Retryable = true // not reported yet, whatever stopped it
		return e
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		e := fail(resp.StatusCode, "read answer: "+err.Error())
		e.Retryable = true
		return e
	}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		if cl.out != nil && len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, cl.out); err != nil {
				return fail(code, "the answer is not the JSON expected: "+err.Error())
			}
		}
		return nil
	case code >= 300 && code < 400:
		return fail(code, fmt.Sprintf("the API answers with a redirect to %.200q; set api_url to the address it names", resp.Header.Get("Location")))
	}
	msg := forgeMessage(data)
	e := fail(code, msg)
	e.Retryable = retryableStatus(code) || (code == http.StatusForbidden && rateLimited(resp.Header, msg))
	if e.Retryable {
		e.RetryAfter = retryAfter(resp.Header, c.now())
	}
	return e
}

// setHeaders authenticates the request as its forge documents and names
// the client.
func (c *Client) setHeaders(req *http.Request, r Report) {
	h := req.Header
	h.Set("User-Agent", c.userAgent)
	switch r.Forge {
	case "github":
		h.Set("Accept", "application/vnd.github+json")
		h.Set("X-GitHub-Api-Version", "2022-11-28")
		h.Set("Authorization", "Bearer "+r.Token)
	case "gitlab":
		h.Set("Accept", "application/json")
		h.Set("PRIVATE-TOKEN", r.Token)
	case "gitea":
		h.Set("Accept", "application/json")
		h.Set("Authorization", "token "+r.Token)
	default: // Bitbucket Cloud and Data Center
		h.Set("Accept", "application/json")
		if strings.Contains(r.Token, ":") {
			h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(r.Token)))
		} else {
			h.Set("Authorization", "Bearer "+r.Token)
		}
	}
}

// forgeMessage finds the forge's explanation in an error answer: GitHub,
// Gitea and GitLab's "message" (GitLab's may be an object), GitLab's
// "error", Bitbucket Cloud's error.message, Bitbucket Data Center's and
// GitHub's "errors" list. Anything else gives the body. The caller scrubs
// and caps it.
func forgeMessage(data []byte) string {
	var v map[string]json.RawMessage
	if json.Unmarshal(data, &v) != nil {
		return string(data)
	}
	var parts []string
	for _, key := range []string{"message", "error", "error_description", "errors"} {
		if raw, ok := v[key]; ok {
			parts = append(parts, messageText(raw))
		}
	}
	if len(parts) == 0 {
		return string(data)
	}
	return strings.Join(parts, "; ")
}

// messageText is a string as it is, an object's "message" or an array's
// messages joined, or compact JSON.
func messageText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		var out []string
		for _, item := range list {
			out = append(out, messageText(item))
		}
		return strings.Join(out, ", ")
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

// scrub removes the token (and, for "user:secret", the secret alone)
// from s and caps it.
func scrub(s, token string) string {
	s = truncate(s, len(s)) // control characters out first: they could split a token
	for _, t := range secretParts(token) {
		s = strings.ReplaceAll(s, t, "REDACTED")
	}
	return truncate(s, MaxMessage)
}

func secretParts(token string) []string {
	if token == "" {
		return nil
	}
	out := []string{token, base64.StdEncoding.EncodeToString([]byte(token))}
	if _, secret, ok := strings.Cut(token, ":"); ok && len(secret) >= 4 {
		out = append(out, secret)
	}
	return out
}
