package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHTTPApp(t *testing.T) {
	bin := BuildHTTPApp(t)
	tests := []struct {
		name      string
		behaviour string // "" means no behaviour file
		// wantExit: the process ends by itself with status 1 within 5 s.
		wantExit   bool
		wantHealth int
		minDelay   time.Duration
	}{
		{name: "no file is healthy", wantHealth: 200},
		{name: "healthy", behaviour: "healthy\n", wantHealth: 200},
		{name: "unhealthy", behaviour: "unhealthy", wantHealth: 500},
		{name: "crash", behaviour: "crash\n", wantExit: true},
		{name: "slow", behaviour: "slow:400ms\n", wantHealth: 200, minDelay: 400 * time.Millisecond},
		{name: "slow and unhealthy", behaviour: "slow:100ms\nunhealthy\n", wantHealth: 500, minDelay: 100 * time.Millisecond},
		{name: "crash after", behaviour: "crash-after:300ms", wantHealth: 200, wantExit: true},
		{name: "typo fails loudly", behaviour: "helthy", wantExit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("v1.2.3\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.behaviour != "" {
				if err := os.WriteFile(filepath.Join(dir, "behaviour"), []byte(tt.behaviour), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			port := FreePort(t)
			cmd := exec.Command(bin)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
			var out SyncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			var waitErr error
			go func() { waitErr = cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})

			if tt.wantHealth != 0 {
				code, body, err := getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/health", port), exited)
				if err != nil {
					t.Fatalf("GET /health: %v; output:\n%s", err, out.String())
				}
				if d := time.Since(start); d < tt.minDelay {
					t.Errorf("answered after %s, want at least %s", d, tt.minDelay)
				}
				if code != tt.wantHealth || !strings.Contains(body, "v1.2.3") {
					t.Errorf("/health = %d %q, want %d and the version", code, body, tt.wantHealth)
				}
				_, body, err = getUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), exited)
				if err != nil || body != "v1.2.3\n" {
					t.Errorf("/ = %q, %v; want the version", body, err)
				}
			}
			if tt.wantExit {
				select {
				case <-exited:
					var ee *exec.ExitError
					if !errors.As(waitErr, &ee) || ee.ExitCode() != 1 {
						t.Errorf("exit: %v, want status 1; output:\n%s", waitErr, out.String())
					}
				case <-time.After(5 * time.Second):
					t.Errorf("still running after 5 s")
				}
			}
		})
	}
}

func TestHTTPAppRefusesNonLoopback(t *testing.T) {
	bin := BuildHTTPApp(t)
	out, err := exec.Command(bin, "-addr", "0.0.0.0:0", "-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "non-loopback") {
		t.Errorf("err = %v, output %q; want a refusal", err, out)
	}
}

// getUntil retries GET until the app answers, gives up when it exits.
func getUntil(t *testing.T, url string, exited <-chan struct{}) (int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), err
		}
		select {
		case <-exited:
			return 0, "", errors.New("app exited")
		case <-ctx.Done():
			return 0, "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// FreePort's ports lie outside the range the kernel hands to outgoing
// connections, and can be bound.
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	lo, hi := ephemeralPorts()
	for range 20 {
		p := FreePort(t)
		if p >= lo && p <= hi {
			t.Fatalf("port %d is in the ephemeral range %d-%d", p, lo, hi)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		ln.Close()
	}
}
