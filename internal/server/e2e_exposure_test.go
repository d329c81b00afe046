package server_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fraiseql/fraisier/internal/testenv"
)

// TestE2EServeRefusesOpenAPIOnNetwork: the real fraisier serve, without
// an API token, exits 3 (configuration) on a wildcard address and says
// what to set; on a loopback address it serves.
func TestE2EServeRefusesOpenAPIOnNetwork(t *testing.T) {
	bin := testenv.BuildFraisier(t)
	tests := []struct {
		name, host string
		refused    bool
	}{
		{"wildcard", "0.0.0.0", true},
		{"loopback", "127.0.0.1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "fe2e-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			port := testenv.FreePort(t)
			p := testenv.StartProc(t, "fraisier serve ("+tc.name+")", minimalConfig(t, dir),
				bin, "serve", "--listen", fmt.Sprintf("%s:%d", tc.host, port))
			if !tc.refused {
				waitReady(t, p, &http.Client{Timeout: 2 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d", port))
				return
			}
			if code := p.Wait(t, 15*time.Second); code != 3 {
				t.Errorf("exit code %d, want 3 (configuration)", code)
			}
			out := p.Out.String()
			for _, says := range []string{"server.api_token", "server.open_api: true", "not a loopback address"} {
				if !strings.Contains(out, says) {
					t.Errorf("output does not say %q:\n%s", says, out)
				}
			}
			if strings.Contains(out, `"listening"`) {
				t.Errorf("it listened before refusing:\n%s", out)
			}
		})
	}
}
