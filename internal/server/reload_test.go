package server

import (
	"slices"
	"testing"

	"github.com/fraiseql/fraisier/internal/config"
)

// TestReloadNamesRestartOnlySettings pins which changes of the server:
// and state: sections a reload names as needing a restart, by their keys
// in the file, nested sections included.
func TestReloadNamesRestartOnlySettings(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{
			Server: config.Server{Listen: "127.0.0.1:8080", RateLimit: config.RateLimit{Burst: 40}, TrustedProxies: []string{"10.0.0.0/8"}},
			State:  config.State{Path: "/var/lib/fraisier/fraisier.db"},
		}
	}
	cases := []struct {
		name   string
		change func(c *config.Config)
		want   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"listen", func(c *config.Config) { c.Server.Listen = "unix:/run/fraisier.sock" }, []string{"server.listen"}},
		{"nested rate limit", func(c *config.Config) { c.Server.RateLimit.Burst = 80 }, []string{"server.rate_limit.burst"}},
		{"proxies and token", func(c *config.Config) {
			c.Server.TrustedProxies = append(c.Server.TrustedProxies, "192.168.0.0/16")
			c.Server.APIToken = "0123456789abcdef0123"
		}, []string{"server.trusted_proxies", "server.api_token"}},
		{"state database", func(c *config.Config) { c.State.URL = "postgres://db/fraisier" }, []string{"state.url"}},
		{"retention", func(c *config.Config) { c.State.Retention.Events = config.Duration(3600e9) }, []string{"state.retention.events"}},
		{"fraises only", func(c *config.Config) { c.Fraises = map[string]*config.Fraise{"api": {Type: config.TypeAPI}} }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, cur := base(), base()
			tc.change(cur)
			s, err := New(Options{Config: old})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := s.Reload(cur)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Reload names %q as needing a restart, want %q", got, tc.want)
			}
			if s.table.Load().cfg != cur {
				t.Error("Reload did not make the new configuration the routing one")
			}
		})
	}
}
