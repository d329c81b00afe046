package server

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
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
