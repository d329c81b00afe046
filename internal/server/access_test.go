package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// get fetches path from the fixture's server, with a bearer token when
// one is given.
func (f *intakeFixture) get(path, token string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProvidersTellStrangersNothing: /providers says which forges are
// configured and where to post, never how many secrets a forge has or
// whether it takes unsigned deliveries; with an API token set it needs
// the token like /api/*.
func TestProvidersTellStrangersNothing(t *testing.T) {
	tests := []struct {
		name, token, send string
		status            int
	}{
		{"no token configured", "", "", 200},
		{"token configured, none sent", "s3cret-token-0123456789", "", 401},
		{"token configured, wrong one sent", "s3cret-token-0123456789", "s3cret-token-0123456780", 401},
		{"token configured and sent", "s3cret-token-0123456789", "s3cret-token-0123456789", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newIntake(t, "0", "1", tc.token)
			status, body := f.get("/providers", tc.send)
			if status != tc.status {
				t.Fatalf("GET /providers: %d %s, want %d", status, body, tc.status)
			}
			if status != 200 {
				return
			}
			var got struct {
				Providers []map[string]any `json:"providers"`
			}
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("answer %q: %v", body, err)
			}
			for _, p := range got.Providers {
				var keys []string
				for k := range p {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if diff := cmp.Diff([]string{"configured", "forge", "path"}, keys); diff != "" {
					t.Errorf("provider %v answers (-want +got):\n%s", p["forge"], diff)
				}
			}
			if len(got.Providers) != 5 {
				t.Errorf("%d providers, want the 5 forges", len(got.Providers))
			}
		})
	}
}

// TestServeRefusesOpenAPIOnNetwork: without an API token, Serve refuses
// a listener other hosts can reach (a wildcard address counts), and says
// what to set; loopback addresses and unix sockets serve.
func TestServeRefusesOpenAPIOnNetwork(t *testing.T) {
	const token = "s3cret-token-0123456789"
	tests := []struct {
		name, network, addr, token string
		server                     string // more of the server section
		refused                    bool
	}{
		{"loopback", "tcp", "127.0.0.1:0", "", "", false},
		{"another loopback address", "tcp", "127.0.0.2:0", "", "", false},
		{"ipv6 loopback", "tcp6", "[::1]:0", "", "", false},
		{"wildcard", "tcp", "0.0.0.0:0", "", "", true},
		{"ipv6 wildcard", "tcp6", "[::]:0", "", "", true},
		{"empty host (every interface)", "tcp", ":0", "", "", true},
		{"wildcard with open_metrics only", "tcp", "0.0.0.0:0", "", "open_metrics: true", true},
		{"wildcard with a token", "tcp", "0.0.0.0:0", token, "", false},
		{"wildcard with open_api", "tcp", "0.0.0.0:0", "", "open_api: true", false},
		{"unix socket", "unix", "", "", "", false},
		// Local, but the configuration says other hosts come through a proxy.
		{"loopback behind trusted proxies", "tcp", "127.0.0.1:0", "", "trusted_proxies: [10.0.0.0/8]", true},
		{"unix socket behind trusted proxies", "unix", "", "", "trusted_proxies: [10.0.0.0/8]", true},
		{"behind trusted proxies with a token", "tcp", "127.0.0.1:0", token, "trusted_proxies: [10.0.0.0/8]", false},
		{"behind trusted proxies with open_api", "tcp", "127.0.0.1:0", "", "trusted_proxies: [10.0.0.0/8]\n  open_api: true", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := tc.server
			if !strings.Contains(server, "trusted_proxies:") {
				// The fixture's proxies would make every listener proxied.
				server = strings.TrimSuffix("trusted_proxies: []\n  "+server, "\n  ")
			}
			f := newIntakeServer(t, tc.token, server)
			addr := tc.addr
			if tc.network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			l, err := net.Listen(tc.network, addr)
			if err != nil {
				testenv.Unavailable(t, "listen %s %s: %v", tc.network, addr, err)
			}
			defer l.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			served := make(chan struct{})
			err = f.srv.Serve(ctx, l, func() { close(served); cancel() })
			var refusal *ExposureError
			if got := errors.As(err, &refusal); got != tc.refused {
				t.Fatalf("Serve on %s: %v; want refused %v", l.Addr(), err, tc.refused)
			}
			if !tc.refused {
				<-served
				return
			}
			for _, says := range []string{"server.api_token", "server.open_api: true", "loopback", l.Addr().String()} {
				if !strings.Contains(err.Error(), says) {
					t.Errorf("refusal %q does not say %q", err, says)
				}
			}
		})
	}
}

// TestMetricsNeedTheToken: with an API token set, /metrics answers only
// with it; without one it stays open (a local listener).
func TestMetricsNeedTheToken(t *testing.T) {
	const token = "s3cret-token-0123456789"
	tests := []struct {
		name, token, server, send string
		status                    int
	}{
		{"no token configured", "", "", "", 200},
		{"token configured, none sent", token, "", "", 401},
		{"token configured, wrong one sent", token, "", token + "x", 401},
		{"token configured and sent", token, "", token, 200},
		{"token configured, none sent, open_metrics", token, "open_metrics: true", "", 200},
		{"token configured, none sent, open_api", token, "open_api: true", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newIntakeServer(t, tc.token, tc.server)
			status, body := f.get("/metrics", tc.send)
			if status != tc.status {
				t.Fatalf("GET /metrics: %d %s, want %d", status, clip(body, 200), tc.status)
			}
			if status == 200 && !strings.Contains(body, "fraisier_queue_depth") {
				t.Errorf("GET /metrics: no fraisier series in %s", clip(body, 200))
			}
			if status != 200 && strings.Contains(body, "fraisier_") {
				t.Errorf("refused /metrics shows series: %s", clip(body, 200))
			}
		})
	}
}

// newIntakeServer is the intake with the API token and more lines of the
// server section.
func newIntakeServer(t *testing.T, token, server string) *intakeFixture {
	t.Helper()
	text := fmt.Sprintf(intakeConfig, "0", "1", token)
	if strings.Contains(server, "trusted_proxies:") {
		text = strings.Replace(text, "  trusted_proxies: [10.9.0.0/16]\n", "", 1)
	}
	if server != "" {
		text = strings.Replace(text, "  api_token:", "  "+server+"\n  api_token:", 1)
	}
	return newIntakeWith(t, text)
}

// TestAPIWithoutTokenAnswersThisHostOnly: without an API token, a request
// that a proxy forwarded (a proxy on this host in front of a loopback
// listener, listed in trusted_proxies or not) is refused by the read API
// and /metrics, so the setup the documentation recommends cannot open them
// to the internet; one from this host itself is answered.
func TestAPIWithoutTokenAnswersThisHostOnly(t *testing.T) {
	f := newIntakeServer(t, "", "")
	open := newIntakeServer(t, "", "open_api: true\n  open_metrics: true")
	for _, path := range []string{"/api/fraises", "/api/deployments", "/providers", "/metrics"} {
		for _, tc := range []struct {
			name   string
			f      *intakeFixture
			header string
			status int
		}{
			{"from this host", f, "", 200},
			{"X-Forwarded-For", f, "X-Forwarded-For: 203.0.113.7", 403},
			{"Forwarded", f, "Forwarded: for=203.0.113.7", 403},
			{"X-Real-IP", f, "X-Real-IP: 203.0.113.7", 403},
			{"forwarded, open on purpose", open, "X-Forwarded-For: 203.0.113.7", 200},
		} {
			req, err := http.NewRequest(http.MethodGet, tc.f.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if name, value, ok := strings.Cut(tc.header, ": "); ok {
				req.Header.Set(name, value)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("GET %s %s: %d %s, want %d", path, tc.name, resp.StatusCode, b, tc.status)
			}
			if tc.status == 403 && !strings.Contains(string(b), "server.api_token") {
				t.Errorf("GET %s %s: %s; want it to say what to set", path, tc.name, b)
			}
		}
	}
}
