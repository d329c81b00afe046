package forgestatus

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/forge"
)

// seen is one request the loopback forge received.
type seen struct {
	Method string
	Path   string // escaped, as sent
	Query  string
	Header http.Header
	Body   map[string]any
}

// answer is what the loopback forge replies to one request.
type answer struct {
	status int
	header map[string]string
	body   string
}

// fakeForge is a loopback HTTP server standing in for a forge's API: it
// records every request and gives the scripted answers in order (the last
// one again once the script runs out).
type fakeForge struct {
	srv *httptest.Server

	mu     sync.Mutex
	script []answer
	reqs   []seen
}

func newFakeForge(t *testing.T, script ...answer) *fakeForge {
	t.Helper()
	f := &fakeForge{script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeForge) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			body = map[string]any{"<not json>": string(raw)}
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	a := answer{status: http.StatusCreated, body: `{}`}
	if len(f.script) > 0 {
		a = f.script[0]
		if len(f.script) > 1 {
			f.script = f.script[1:]
		}
	}
	f.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeForge) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

const (
	testSHA   = "0123456789abcdef0123456789abcdef01234567"
	testToken = "tok-3f9a8c7d6e5b4a3921f0e1d2c3b4a596"
)

// testClient is a client with a fixed clock, for Retry-After dates.
func testClient(now time.Time) *Client {
	c := New("fraisier/test")
	c.now = func() time.Time { return now }
	return c
}

// report is a report of repo on forge k, sent to the loopback forge.
func report(f *fakeForge, k forge.Kind, repo string, s State) Report {
	return Report{
		Forge: k, APIURL: f.srv.URL, Token: testToken, Repository: repo, SHA: testSHA,
		Ref: "main", Environment: "production", State: s, TargetURL: "https://deploy.example/d/7",
		Description: "deployed 0123456 to production",
	}
}
