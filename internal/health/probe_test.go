package health_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/health"
)

// These tests use real loopback sockets and processes, so they run outside
// synctest bubbles with short real timeouts; the scheduler's timing is
// covered exactly in schedule_test.go.

// fast is a schedule that keeps real-time tests quick.
func fast(c health.Check) health.Check {
	if c.Interval == 0 {
		c.Interval = 5 * time.Millisecond
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	return c
}

func TestRunURL(t *testing.T) {
	big := strings.Repeat("x", 64<<10) + "ready"
	tests := []struct {
		name string
		// handler gets the 1-based number of the request it serves.
		handler    func(n int, w http.ResponseWriter, r *http.Request)
		check      health.Check
		wantOK     bool
		wantN      int
		wantStatus int // of the last try
		wantLast   string
	}{
		{
			name:    "healthy first try",
			handler: func(int, http.ResponseWriter, *http.Request) {},
			wantOK:  true, wantN: 1, wantStatus: 200,
		},
		{
			name: "healthy on the third try",
			handler: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n < 3 {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			},
			wantOK: true, wantN: 3, wantStatus: 200,
		},
		{
			name:       "wrong status",
			handler:    func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) },
			wantN:      3,
			wantStatus: 500,
			wantLast:   "status 500, want 200",
		},
		{
			name:       "expected status other than 200",
			handler:    func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) },
			check:      health.Check{ExpectStatus: 204},
			wantOK:     true,
			wantN:      1,
			wantStatus: 204,
		},
		{
			name:       "body contains",
			handler:    func(_ int, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"status":"ok","db":"up"}`) },
			check:      health.Check{BodyContains: `"db":"up"`},
			wantOK:     true,
			wantN:      1,
			wantStatus: 200,
		},
		{
			name:       "body does not contain",
			handler:    func(_ int, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"status":"ok","db":"down"}`) },
			check:      health.Check{BodyContains: `"db":"up"`},
			wantN:      3,
			wantStatus: 200,
			wantLast:   `status 200 but body does not contain "\"db\":\"up\"" (27 bytes read)`,
		},
		{
			name:       "body read stops at 64 KiB",
			handler:    func(_ int, w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, big) },
			check:      health.Check{BodyContains: "ready", Retries: health.NoRetries},
			wantN:      1,
			wantStatus: 200,
			wantLast:   `status 200 but body does not contain "ready" (65536 bytes read)`,
		},
		{
			name: "redirect not followed",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/health" {
					panic("redirect followed to " + r.URL.Path)
				}
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			check:      health.Check{Retries: health.NoRetries},
			wantN:      1,
			wantStatus: 302,
			wantLast:   "status 302, want 200",
		},
		{
			name: "redirect expected",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
			},
			check:      health.Check{ExpectStatus: 301},
			wantOK:     true,
			wantN:      1,
			wantStatus: 301,
		},
		{
			name:     "hanging handler cut by timeout",
			handler:  func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			check:    health.Check{Timeout: 100 * time.Millisecond, Retries: 1},
			wantN:    2,
			wantLast: "no answer within 100ms",
		},
		{
			name: "hanging body cut by timeout",
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(200)
				fmt.Fprint(w, "starting")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			check:      health.Check{BodyContains: "ready", Timeout: 100 * time.Millisecond, Retries: health.NoRetries},
			wantN:      1,
			wantStatus: 200,
			wantLast:   "no answer within 100ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var served atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.handler(int(served.Add(1)), w, r)
			}))
			defer srv.Close()
			c := fast(tt.check)
			c.Kind, c.URL = health.KindURL, srv.URL+"/health"
			var observed []health.Attempt

			start := time.Now()
			rep, err := health.Run(t.Context(), c, health.Options{Observer: func(a health.Attempt) { observed = append(observed, a) }})
			took := time.Since(start)

			if rep.OK != tt.wantOK || len(rep.Attempts) != tt.wantN {
				t.Fatalf("OK %v after %d tries, want %v after %d; err %v", rep.OK, len(rep.Attempts), tt.wantOK, tt.wantN, err)
			}
			if len(observed) != len(rep.Attempts) {
				t.Errorf("observer saw %d tries, report has %d", len(observed), len(rep.Attempts))
			}
			for i, a := range rep.Attempts {
				if a.N != i+1 {
					t.Errorf("attempt %d numbered %d", i+1, a.N)
				}
				if i < len(observed) && observed[i] != a {
					t.Errorf("attempt %d = %+v, observed %+v", i+1, a, observed[i])
				}
			}
			if last := rep.Attempts[len(rep.Attempts)-1]; last.Status != tt.wantStatus {
				t.Errorf("last status %d, want %d", last.Status, tt.wantStatus)
			}
			if took > 3*time.Second {
				t.Errorf("Run took %s", took)
			}
			if tt.wantOK {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var f *health.Failure
			if !errors.As(err, &f) {
				t.Fatalf("err = %v (%T), want *health.Failure", err, err)
			}
			if f.Last != tt.wantLast || f.Kind != health.KindURL || f.Target != "GET "+c.URL || f.Reason != health.ReasonRetriesExhausted {
				t.Errorf("failure %+v, want last %q", *f, tt.wantLast)
			}
			if want := fmt.Sprintf("health: GET %s: %s (%d ", c.URL, tt.wantLast, tt.wantN); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("message %q, want it to start %q", err, want)
			}
		})
	}
}

// TestRunURLConnections: every try opens its own connection, so a restarted
// service is really reached, and no credentials ride along, not even the
// cookies of a caller's client.
func TestRunURLConnections(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]bool{}
	var leaks []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		remotes[r.RemoteAddr] = true
		for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization"} {
			if v := r.Header.Get(h); v != "" {
				leaks = append(leaks, h+": "+v)
			}
		}
		w.WriteHeader(503)
	}))
	defer srv.Close()

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "secret"}})
	for _, opts := range []health.Options{{}, {HTTPClient: &http.Client{Jar: jar, Transport: &http.Transport{DisableKeepAlives: true}}}} {
		_, err := health.Run(t.Context(), fast(health.Check{Kind: health.KindURL, URL: srv.URL}), opts)
		if err == nil {
			t.Fatal("a 503 passed")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 6 {
		t.Errorf("6 tries came over %d connections, want 6", len(remotes))
	}
	if len(leaks) > 0 {
		t.Errorf("credentials sent: %v", leaks)
	}
}

func TestRunTCP(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	// Listening then closing leaves a port nothing listens on.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name     string
		addr     string
		wantOK   bool
		wantLast string
	}{
		{name: "open port", addr: open.Addr().String(), wantOK: true},
		{name: "closed port", addr: closedAddr, wantLast: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := health.Run(t.Context(), fast(health.Check{Kind: health.KindTCP, TCPAddr: tt.addr, Retries: 1}), health.Options{})
			if rep.OK != tt.wantOK {
				t.Fatalf("OK %v, want %v; err %v", rep.OK, tt.wantOK, err)
			}
			if tt.wantOK {
				if err != nil || len(rep.Attempts) != 1 {
					t.Fatalf("err %v after %d tries", err, len(rep.Attempts))
				}
				return
			}
			var f *health.Failure
			if !errors.As(err, &f) || f.Attempts != 2 || !strings.Contains(f.Last, tt.wantLast) || f.Target != "tcp "+tt.addr {
				t.Fatalf("err = %v, want a tcp *Failure after 2 tries mentioning %q", err, tt.wantLast)
			}
		})
	}
}

func TestRunCommand(t *testing.T) {
	// A secret of fraisier's own environment, as a webhook secret given as
	// ${VAR} is: no probe command may see it.
	t.Setenv("FRAISIER_HC_SECRET", "sec-health-0123456789")
	tests := []struct {
		name     string
		check    health.Check
		wantOK   bool
		wantLast string
	}{
		{name: "true", check: health.Check{Command: []string{"true"}}, wantOK: true},
		{name: "false", check: health.Check{Command: []string{"false"}}, wantLast: "exit status 1"},
		{name: "output tail", check: health.Check{Command: []string{"sh", "-c", "echo checking; echo 'db: not ready' >&2; exit 3"}}, wantLast: "exit status 3: db: not ready"},
		{name: "fraisier's secrets not inherited", check: health.Check{Command: []string{"sh", "-c", `test -z "$FRAISIER_HC_SECRET" && test -n "$PATH"`}}, wantOK: true},
		{name: "dir and env", check: health.Check{Command: []string{"sh", "-c", `test "$FRAISIER_HC" = 1 && test "$(pwd)" = /`}, Dir: "/", Env: []string{"FRAISIER_HC=1"}}, wantOK: true},
		{name: "timeout", check: health.Check{Command: []string{"sleep", "5"}, Timeout: 100 * time.Millisecond}, wantLast: "no answer within 100ms"},
		{name: "missing program", check: health.Check{Command: []string{"/nonexistent/check"}}, wantLast: "start /nonexistent/check: fork/exec /nonexistent/check: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fast(tt.check)
			c.Kind, c.Retries = health.KindCommand, health.NoRetries
			start := time.Now()
			rep, err := health.Run(t.Context(), c, health.Options{})
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Run took %s", took)
			}
			if rep.OK != tt.wantOK {
				t.Fatalf("OK %v, want %v; err %v", rep.OK, tt.wantOK, err)
			}
			if tt.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var f *health.Failure
			if !errors.As(err, &f) || f.Last != tt.wantLast {
				t.Fatalf("err = %v, want a *Failure whose last try says %q", err, tt.wantLast)
			}
		})
	}
}

// TestRunCanceled cancels from the Observer, mid-retries, against a real
// server: Run stops at once and its error wraps context.Canceled.
func TestRunCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := health.Check{Kind: health.KindURL, URL: srv.URL, Interval: 5 * time.Millisecond, Retries: 5}
	rep, err := health.Run(ctx, c, health.Options{Observer: func(a health.Attempt) {
		if a.N == 2 {
			cancel()
		}
	}})
	var f *health.Failure
	if !errors.Is(err, context.Canceled) || !errors.As(err, &f) || f.Reason != health.ReasonCanceled {
		t.Fatalf("err = %v, want a canceled *Failure wrapping context.Canceled", err)
	}
	if len(rep.Attempts) != 2 || rep.OK {
		t.Errorf("%d tries, OK %v; want 2, false", len(rep.Attempts), rep.OK)
	}
}

func TestRunInvalid(t *testing.T) {
	tests := []struct {
		name  string
		check health.Check
		opts  health.Options
		want  string
	}{
		{name: "no kind", check: health.Check{}, want: "health: invalid untyped check: kind not set"},
		{name: "unknown kind", check: health.Check{Kind: "ping"}, want: `health: invalid ping check: unknown kind "ping" (want url, tcp, command or unit)`},
		{name: "ftp url", check: health.Check{Kind: health.KindURL, URL: "ftp://127.0.0.1/x"}, want: "health: invalid url check: url ftp://127.0.0.1/x: scheme must be http or https"},
		{name: "relative url", check: health.Check{Kind: health.KindURL, URL: "/health"}, want: "health: invalid url check: url /health: scheme must be http or https"},
		{name: "credentials in url", check: health.Check{Kind: health.KindURL, URL: "http://admin:hunter2@127.0.0.1/"}, want: "health: invalid url check: url http://admin:xxxxx@127.0.0.1/: must not carry credentials"},
		{name: "bad status", check: health.Check{Kind: health.KindURL, URL: "http://127.0.0.1/", ExpectStatus: 42}, want: "health: invalid url check: expect_status 42 is not an HTTP status"},
		{name: "tcp without port", check: health.Check{Kind: health.KindTCP, TCPAddr: "127.0.0.1"}, want: "health: invalid tcp check: tcp address: address 127.0.0.1: missing port in address"},
		{name: "empty command", check: health.Check{Kind: health.KindCommand}, want: "health: invalid command check: empty command"},
		{name: "no units", check: health.Check{Kind: health.KindUnit}, want: "health: invalid unit check: no units"},
		{name: "no unit checker", check: health.Check{Kind: health.KindUnit, Units: []string{"api.service"}}, want: "health: invalid unit check: no UnitChecker in Options"},
		{name: "negative timeout", check: health.Check{Kind: health.KindCommand, Command: []string{"true"}, Timeout: -time.Second}, want: "health: invalid command check: timeout -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := health.Run(t.Context(), tt.check, tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			var f *health.Failure
			if errors.As(err, &f) || len(rep.Attempts) != 0 {
				t.Errorf("an invalid check was tried: %d attempts, err %T", len(rep.Attempts), err)
			}
		})
	}
}
